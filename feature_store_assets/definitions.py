"""Everything assembled into one Definitions; `dagster dev` loads `defs` from here."""

from __future__ import annotations

import dagster as dg

from feature_store_assets.core.partitions import monthly_partitions
from feature_store_assets.core.resources import resources_from_settings
from feature_store_assets.core.settings import Settings
from feature_store_assets.defs.catalog.assets import feature_catalog
from feature_store_assets.defs.checks.freshness import (
    freshness_check_job,
    freshness_check_schedule,
    latest_complete_month_published,
)
from feature_store_assets.defs.checks.quality import build_quality_checks
from feature_store_assets.defs.dbt.assets import build_dbt_assets
from feature_store_assets.defs.dbt.process import dbt_executable
from feature_store_assets.defs.dbt.project import DbtCli, dbt_project
from feature_store_assets.defs.landing_zone.assets import landing_zone_specs
from feature_store_assets.defs.publish.analytics import analytics_database
from feature_store_assets.defs.reference.assets import client_zip_income, zip_income
from feature_store_assets.defs.schedules.monthly import monthly_job, monthly_schedule
from feature_store_assets.operations.logs import run_loggers
from feature_store_assets.operations.runs import dead_run_sensor


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or Settings.from_env()
    partitions_def = monthly_partitions(settings)
    job = monthly_job(partitions_def)
    return dg.Definitions(
        assets=[
            *landing_zone_specs(partitions_def),
            zip_income,
            client_zip_income,
            *build_dbt_assets(partitions_def),
            feature_catalog,
            analytics_database,
        ],
        asset_checks=[build_quality_checks(), latest_complete_month_published],
        jobs=[job, freshness_check_job],
        schedules=[monthly_schedule(job), freshness_check_schedule],
        # marks runs whose process died (a killed CLI run) failed, so the one-run queue moves on
        sensors=[dead_run_sensor],
        loggers=run_loggers(),
        resources={
            # dbt_executable: a dbt that dies with its run, so a killed run leaves no writer holding the warehouse
            "dbt": DbtCli(project_dir=dbt_project, dbt_executable=dbt_executable()),
            # every setting, and the warehouse and analytics file as dagster-duckdb DuckDBResources
            **resources_from_settings(settings),
        },
        # One DuckDB writer at a time: steps run one after another in the run's process.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
