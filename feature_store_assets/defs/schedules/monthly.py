"""The monthly job (the whole graph for a month or a range of months) and its schedule."""

from __future__ import annotations

import dagster as dg

# Layers the job materializes, upstream first; the landing zone is external and never materialized.
PIPELINE_GROUPS = ("reference", "staging", "filter", "aggregation", "features", "marts", "publish")

MONTHLY_JOB = "monthly_feature_job"
# The previous month is complete once its files have landed: run on the 2nd at 06:00 UTC.
SCHEDULE_DAY_OF_MONTH = 2
SCHEDULE_HOUR = 6


def monthly_job(partitions_def: dg.PartitionsDefinition) -> dg.UnresolvedAssetJobDefinition:
    """Every layer and its checks but the freshness check: a run never evaluates it (it has its own schedule)."""
    from feature_store_assets.defs.checks.freshness import latest_complete_month_published

    return dg.define_asset_job(
        MONTHLY_JOB,
        selection=dg.AssetSelection.groups(*PIPELINE_GROUPS)
        - dg.AssetSelection.checks(latest_complete_month_published),
        partitions_def=partitions_def,
        description="Reference data, then the filter, aggregation and feature layers for one month or a range of months, then the analytics file.",
    )


def monthly_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """Materializes the last complete month (the partition that ended before the tick)."""
    return dg.build_schedule_from_partitioned_job(
        job,
        name="monthly_feature_schedule",
        day_of_month=SCHEDULE_DAY_OF_MONTH,
        hour_of_day=SCHEDULE_HOUR,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
