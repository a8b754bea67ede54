"""The monthly partitions every event, filter, aggregation and feature asset shares."""

import dagster as dg

from feature_store_assets.core.settings import Settings


def monthly_partitions(settings: Settings) -> dg.MonthlyPartitionsDefinition:
    """One partition per calendar month from FEATURE_STORE_START_MONTH; keys are first days (2024-03-01)."""
    return dg.MonthlyPartitionsDefinition(start_date=settings.start_date)
