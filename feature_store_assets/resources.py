"""The Dagster resource carrying the data contract's settings to every asset.

It also holds the warehouse's run lock (runs.py) for the whole run: the process executing the
run takes it when the run's resources are set up, before the first step, and lets it go when
they are torn down, so a second run on the same warehouse is refused before it writes anything.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from feature_store_assets.settings import Settings

# Every asset that writes the warehouse shares this pool: DuckDB allows one writer per file.
WAREHOUSE_POOL = "duckdb_warehouse"


class FeatureStoreResource(dg.ConfigurableResource):
    """Paths and start month of one feature store (see settings.py for their meaning)."""

    raw_dir: str
    warehouse: str
    zip_income: str
    start_month: str
    analytics: str
    quality_mode: str = "enforce"
    dbt_target: str = "duckdb"
    spark_dir: str = ""
    _locked: bool = PrivateAttr(default=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureStoreResource:
        return cls(
            raw_dir=str(settings.raw_dir),
            warehouse=str(settings.warehouse),
            zip_income=str(settings.zip_income),
            start_month=settings.start_month,
            analytics=str(settings.analytics),
            quality_mode=settings.quality_mode,
            dbt_target=settings.dbt_target,
            spark_dir=str(settings.spark_dir),
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from feature_store_assets import runs
        from feature_store_assets.freshness import FRESHNESS_JOB

        run = context.dagster_run
        if run is not None and run.job_name == FRESHNESS_JOB:
            return  # reads only the analytics file: it runs beside any run
        if run is not None and context.instance is not None:
            tags = runs.process_tags()
            if any(run.tags.get(key) != value for key, value in tags.items()):
                context.instance.add_run_tags(run.run_id, tags)  # a run worker: the reaper can tell if it dies
        command = f"Dagster run of {run.job_name}" if run is not None else None
        runs.acquire(Path(self.warehouse), run.run_id if run is not None else None, command)
        self._locked = True

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        from feature_store_assets import runs

        if self._locked:
            runs.release(Path(self.warehouse))
            self._locked = False

    @property
    def settings(self) -> Settings:
        return Settings.from_env(
            {
                "FEATURE_STORE_RAW_DIR": self.raw_dir,
                "FEATURE_STORE_WAREHOUSE": self.warehouse,
                "FEATURE_STORE_ZIP_INCOME": self.zip_income,
                "FEATURE_STORE_START_MONTH": self.start_month,
                "FEATURE_STORE_ANALYTICS": self.analytics,
                "FEATURE_STORE_QUALITY_MODE": self.quality_mode,
                "FEATURE_STORE_DBT_TARGET": self.dbt_target,
                "FEATURE_STORE_SPARK_DIR": self.spark_dir,
            }
        )
