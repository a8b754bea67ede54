"""The Dagster resource carrying the data contract's settings to every asset."""

from __future__ import annotations

import dagster as dg

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
