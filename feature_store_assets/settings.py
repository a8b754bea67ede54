"""The data contract's environment variables, resolved to absolute paths.

One setting moves the whole system: the Dagster definitions, the dbt profile
(through the environment handed to the dbt subprocess) and the CLI all read
their paths from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from feature_store_assets.months import MONTH_PATTERN

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_ZIP_INCOME = PACKAGE_DIR / "reference" / "data" / "zip_income_sample.csv"

DEFAULTS = {
    "FEATURE_STORE_RAW_DIR": "data/raw",
    "FEATURE_STORE_WAREHOUSE": "data/warehouse.duckdb",
    "FEATURE_STORE_ZIP_INCOME": str(SAMPLE_ZIP_INCOME),
    "FEATURE_STORE_START_MONTH": "2023-01",
    "FEATURE_STORE_ANALYTICS": "data/analytics.duckdb",
}

# Beyond the contract: `warn` reports the quality checks' failures without blocking publishing,
# for onboarding a new landing zone whose volumes and rejection rates are not known yet.
QUALITY_MODES = ("enforce", "warn")
# Beyond the contract: the dbt profile target (docs/spark.md). `spark` builds the models on Spark,
# whose state (warehouse, metastore, logs) lives in FEATURE_STORE_SPARK_DIR; anything else is a DuckDB target.
SPARK_TARGET = "spark"
DEFAULT_SPARK_DIR = "data/spark"


class ConfigurationError(ValueError):
    """An environment variable of the data contract has an unusable value."""


@dataclass(frozen=True)
class Settings:
    raw_dir: Path
    warehouse: Path
    zip_income: Path
    start_month: str  # YYYY-MM
    analytics: Path
    quality_mode: str = "enforce"
    dbt_target: str = "duckdb"
    spark_dir: Path = field(default_factory=lambda: Path(DEFAULT_SPARK_DIR).resolve())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        env = os.environ if env is None else env
        cwd = Path.cwd() if cwd is None else cwd

        def path(name: str) -> Path:
            value = env.get(name) or DEFAULTS[name]
            return (cwd / value).resolve() if not Path(value).is_absolute() else Path(value)

        start_month = env.get("FEATURE_STORE_START_MONTH") or DEFAULTS["FEATURE_STORE_START_MONTH"]
        if not MONTH_PATTERN.fullmatch(start_month):
            raise ConfigurationError(f"FEATURE_STORE_START_MONTH must be YYYY-MM, got {start_month!r}")
        quality_mode = env.get("FEATURE_STORE_QUALITY_MODE") or "enforce"
        if quality_mode not in QUALITY_MODES:
            raise ConfigurationError(f"FEATURE_STORE_QUALITY_MODE must be one of {QUALITY_MODES}, got {quality_mode!r}")
        return cls(
            raw_dir=path("FEATURE_STORE_RAW_DIR"),
            warehouse=path("FEATURE_STORE_WAREHOUSE"),
            zip_income=path("FEATURE_STORE_ZIP_INCOME"),
            start_month=start_month,
            analytics=path("FEATURE_STORE_ANALYTICS"),
            quality_mode=quality_mode,
            dbt_target=env.get("FEATURE_STORE_DBT_TARGET") or "duckdb",
            spark_dir=(cwd / (env.get("FEATURE_STORE_SPARK_DIR") or DEFAULT_SPARK_DIR)).resolve(),
        )

    @property
    def on_spark(self) -> bool:
        """dbt builds the models on Spark: the DuckDB warehouse then reads them through views (warehouse.py)."""
        return self.dbt_target == SPARK_TARGET

    @property
    def start_date(self) -> str:
        """The first partition's key, as Dagster's monthly partitions spell it."""
        return f"{self.start_month}-01"

    def require_inputs(self, env: Mapping[str, str] | None = None) -> None:
        """Raise a one-line ConfigurationError naming the variable, its path and what to do when the landing zone
        (its folder, clinics.parquet, clients.parquet) or the ZIP income file is not there; a run checks this
        before it creates anything (the warehouse, its folder, its lock)."""
        from feature_store_assets.landing_zone import REFERENCE_TABLES

        env = os.environ if env is None else env
        missing = [
            f"{table}.parquet" for table in REFERENCE_TABLES if not (self.raw_dir / f"{table}.parquet").is_file()
        ]
        if not self.raw_dir.is_dir() or missing:
            problem = "does not exist" if not self.raw_dir.is_dir() else f"holds no {' and no '.join(missing)}"
            raise ConfigurationError(
                f"{_setting('FEATURE_STORE_RAW_DIR', env)}: {self.raw_dir} {problem}, so it is no landing zone; "
                "set FEATURE_STORE_RAW_DIR to the landing zone's folder, or run from the folder that holds data/raw "
                "(`feature-store generate` writes a synthetic landing zone)"
            )
        if not self.zip_income.is_file():
            raise ConfigurationError(
                f"{_setting('FEATURE_STORE_ZIP_INCOME', env)}: {self.zip_income} does not exist; set "
                "FEATURE_STORE_ZIP_INCOME to the IRS SOI ZIP income CSV, or unset it for the shipped sample"
            )

    def as_env(self) -> dict[str, str]:
        """The same settings as absolute-path environment variables, for the dbt subprocess."""
        return {
            "FEATURE_STORE_RAW_DIR": str(self.raw_dir),
            "FEATURE_STORE_WAREHOUSE": str(self.warehouse),
            "FEATURE_STORE_ZIP_INCOME": str(self.zip_income),
            "FEATURE_STORE_START_MONTH": self.start_month,
            "FEATURE_STORE_ANALYTICS": str(self.analytics),
            "FEATURE_STORE_QUALITY_MODE": self.quality_mode,
            "FEATURE_STORE_DBT_TARGET": self.dbt_target,
            "FEATURE_STORE_SPARK_DIR": str(self.spark_dir),
        }


def _setting(name: str, env: Mapping[str, str]) -> str:
    """Where a path setting came from, for an error: `NAME=value`, or the default it fell back to."""
    value = env.get(name)
    return f"{name}={value}" if value else f"{name} is not set (default {DEFAULTS[name]}, under the current directory)"
