"""The data contract's environment variables, resolved to absolute paths.

One setting moves the whole system: the Dagster definitions, the dbt profile
(through the environment handed to the dbt subprocess) and the CLI all read
their paths from here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from feature_store_assets.core.months import MONTH_PATTERN
from feature_store_assets.core.paths import PACKAGE_DIR

SAMPLE_ZIP_INCOME = PACKAGE_DIR / "defs" / "reference" / "data" / "zip_income_sample.csv"

# Beyond the contract: `warn` reports the quality checks' failures without blocking publishing,
# for onboarding a new landing zone whose volumes and rejection rates are not known yet.
QUALITY_MODES = ("enforce", "warn")
# Beyond the contract: the dbt profile target (docs/spark.md). `spark` builds the models on Spark,
# whose state (warehouse, metastore, logs) lives in FEATURE_STORE_SPARK_DIR; anything else is a DuckDB target.
SPARK_TARGET = "spark"
LOG_FORMATS = ("text", "json")
# DuckDB's memory limit for the pipeline's connections, dbt's included (dbt_subproject/profiles.yml reads the
# same variable with the same default). DuckDB spills to disk beyond it; its own default is 80% of the RAM.
MEMORY_LIMIT_ENV = "FEATURE_STORE_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "1500MB"


class ConfigurationError(ValueError):
    """An environment variable of the data contract has an unusable value."""


@dataclass(frozen=True)
class Setting:
    """How one Settings field is read: its environment variable, the default when it is unset or empty, and
    `parse(value, cwd)`, which validates the value (a ConfigurationError naming the variable) and converts it."""

    env: str
    default: str
    parse: Callable[[str, str, Path], Any]


def _path(name: str, value: str, cwd: Path) -> Path:
    return (cwd / value).resolve() if not Path(value).is_absolute() else Path(value)


def _folder(name: str, value: str, cwd: Path) -> Path:
    return (cwd / value).resolve()


def _text(name: str, value: str, cwd: Path) -> str:
    return value


def _month(name: str, value: str, cwd: Path) -> str:
    if not MONTH_PATTERN.fullmatch(value):
        raise ConfigurationError(f"{name} must be YYYY-MM, got {value!r}")
    return value


def _quality_mode(name: str, value: str, cwd: Path) -> str:
    if value not in QUALITY_MODES:
        raise ConfigurationError(f"{name} must be one of {QUALITY_MODES}, got {value!r}")
    return value


def _log_format(name: str, value: str, cwd: Path) -> str:
    value = value.strip().lower()
    if value not in LOG_FORMATS:
        raise ConfigurationError(f"{name} must be text or json, got {value!r}")
    return value


def _positive(name: str, value: str, cwd: Path) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ConfigurationError(f"{name} must be a positive number of rows, got {value!r}")
    return int(value)


ONLINE_STORE_SCHEMES = ("redis", "rediss", "unix")


def redacted_url(url: str) -> str:
    """The URL with its password (if any) masked, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _online_store(name: str, value: str, cwd: Path) -> str:
    """ "" (the in-memory store) or a Redis URL: redis://[:password@]host[:port][/db], rediss://, unix://."""
    if not value:
        return value
    parts = urlsplit(value)
    problem = None
    if parts.scheme not in ONLINE_STORE_SCHEMES:
        problem = f"its scheme must be one of {', '.join(s + '://' for s in ONLINE_STORE_SCHEMES)}"
    elif parts.scheme != "unix" and not parts.hostname:
        problem = "it names no host"
    elif parts.scheme != "unix" and parts.path.strip("/") and not parts.path.strip("/").isdigit():
        problem = f"its database {parts.path.strip('/')!r} is not a number"
    else:
        try:
            parts.port  # noqa: B018 (parsing it validates it)
        except ValueError:
            problem = "its port is not a number"
    if problem:
        raise ConfigurationError(
            f"{name}={redacted_url(value)} is no Redis URL: {problem} (e.g. redis://127.0.0.1:6379/0; unset it "
            "for the in-memory online store)"
        )
    return value


def _optional_folder(name: str, value: str, cwd: Path) -> Path | None:
    return _folder(name, value, cwd) if value else None


def _versions(name: str, value: str, cwd: Path) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ConfigurationError(f"{name} must be a positive number of versions to keep, got {value!r}")
    return int(value)


def _setting(
    env: str,
    default: str,
    parse: Callable[[str, str, Path], Any] = _text,
    required: bool = False,
    repr: bool = True,  # False for a secret: never in a printed Settings
) -> Any:
    """A Settings field read from `env` (README, Configuration); optional fields default to the parsed default."""
    metadata = {"setting": Setting(env, default, parse)}
    if required:
        return field(metadata=metadata, repr=repr)
    return field(default_factory=lambda: parse(env, default, Path.cwd()), metadata=metadata, repr=repr)


@dataclass(frozen=True)
class Settings:
    """Every setting, once: each field's environment variable, default and validation are its `Setting`."""

    raw_dir: Path = _setting("FEATURE_STORE_RAW_DIR", "data/raw", _path, required=True)
    warehouse: Path = _setting("FEATURE_STORE_WAREHOUSE", "data/warehouse.duckdb", _path, required=True)
    zip_income: Path = _setting("FEATURE_STORE_ZIP_INCOME", str(SAMPLE_ZIP_INCOME), _path, required=True)
    start_month: str = _setting("FEATURE_STORE_START_MONTH", "2023-01", _month, required=True)  # YYYY-MM
    analytics: Path = _setting("FEATURE_STORE_ANALYTICS", "data/analytics.duckdb", _path, required=True)
    quality_mode: str = _setting("FEATURE_STORE_QUALITY_MODE", "enforce", _quality_mode)
    dbt_target: str = _setting("FEATURE_STORE_DBT_TARGET", "duckdb")
    spark_dir: Path = _setting("FEATURE_STORE_SPARK_DIR", "data/spark", _folder)
    # `json`: the runs' console log, the webserver's and the daemon's, one JSON object a line (logs.py)
    log_format: str = _setting("FEATURE_STORE_LOG_FORMAT", "text", _log_format)
    duckdb_memory_limit: str = _setting(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT)
    # landed event rows one dbt build may cover; at least one month per build (dbt.py)
    max_rows_per_dbt_build: int = _setting("FEATURE_STORE_MAX_ROWS_PER_DBT_BUILD", "40000000", _positive)
    # the published store's Delta tables and versions (store/, docs/published-store.md); unset: `published/`
    # beside the analytics file, and as_env leaves it unset, so the store follows FEATURE_STORE_ANALYTICS
    published_dir: Path = _setting("FEATURE_STORE_PUBLISHED_DIR", "", _optional_folder)
    # store versions kept for restore and pinned reads; older versions' files are vacuumed
    keep_versions: int = _setting("FEATURE_STORE_KEEP_VERSIONS", "12", _versions)
    # the HTTP API's key (docs/serving.md, Keys): required for POST /extract always, for reads when set;
    # FEATURE_STORE_API_KEY_FILE names a file holding it instead (a secret mounted as a file)
    api_key: str = _setting("FEATURE_STORE_API_KEY", "", repr=False)
    api_key_file: str = _setting("FEATURE_STORE_API_KEY_FILE", "")  # a path; "" when unset
    # the shared online store (docs/serving.md): "" serves from each process's memory; a redis:// URL makes each
    # publish push the latest snapshot there and `feature-store serve` read it. A secret (it may hold a password):
    # never printed, nor in dbt's environment or a run's config; the publish step reads it from its environment
    online_store: str = _setting("FEATURE_STORE_ONLINE_STORE", "", _online_store, repr=False)

    def __post_init__(self) -> None:
        if self.published_dir is None:
            object.__setattr__(self, "published_dir", self._default_published_dir)

    @property
    def _default_published_dir(self) -> Path:
        return self.analytics.parent / "published"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        env = os.environ if env is None else env
        cwd = Path.cwd() if cwd is None else cwd
        return cls(**{f.name: setting_from_env(f.name, env, cwd) for f in fields(cls)})

    def resolved_api_key(self) -> str | None:
        """The API key: FEATURE_STORE_API_KEY, else the first line of FEATURE_STORE_API_KEY_FILE; None when neither."""
        if self.api_key:
            return self.api_key
        if not self.api_key_file:
            return None
        try:
            key = Path(self.api_key_file).read_text().strip()
        except OSError as error:
            raise ConfigurationError(
                f"FEATURE_STORE_API_KEY_FILE={self.api_key_file} cannot be read: {error.strerror}"
            ) from None
        if not key:
            raise ConfigurationError(f"FEATURE_STORE_API_KEY_FILE={self.api_key_file} is empty: write the key in it")
        return key

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
        from feature_store_assets.defs.landing_zone.validation import REFERENCE_TABLES

        env = os.environ if env is None else env
        missing = [
            f"{table}.parquet" for table in REFERENCE_TABLES if not (self.raw_dir / f"{table}.parquet").is_file()
        ]
        if not self.raw_dir.is_dir() or missing:
            problem = "does not exist" if not self.raw_dir.is_dir() else f"holds no {' and no '.join(missing)}"
            raise ConfigurationError(
                f"{_described('FEATURE_STORE_RAW_DIR', env)}: {self.raw_dir} {problem}, so it is no landing zone; "
                "set FEATURE_STORE_RAW_DIR to the landing zone's folder, or run from the folder that holds data/raw "
                "(`feature-store generate` writes a synthetic landing zone)"
            )
        if not self.zip_income.is_file():
            raise ConfigurationError(
                f"{_described('FEATURE_STORE_ZIP_INCOME', env)}: {self.zip_income} does not exist; set "
                "FEATURE_STORE_ZIP_INCOME to the IRS SOI ZIP income CSV, or unset it for the shipped sample"
            )

    def as_env(self) -> dict[str, str]:
        """The same settings as absolute-path environment variables, for the dbt subprocess. A default that
        follows another setting (the store beside the analytics file) is left out: it follows it there too."""
        derived = {"published_dir": self._default_published_dir}
        return {
            f.metadata["setting"].env: str(getattr(self, f.name))
            for f in fields(self)
            if f.repr  # never a secret: dbt's environment does not need the API key
            and (f.name not in derived or getattr(self, f.name) != derived[f.name])
            and getattr(self, f.name) is not None
        }


def settings_fields(secrets: bool = True) -> dict[str, Setting]:
    """Settings' field names with how each is read, in order; `secrets=False` leaves out the secrets (the API
    key): the pipeline never needs them, so they stay out of the dbt environment and of Dagster's run config."""
    return {f.name: f.metadata["setting"] for f in fields(Settings) if secrets or f.repr}


def setting_from_env(name: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Any:
    """One setting (a Settings field name) from the environment, validated: for readers that need only it."""
    setting = settings_fields()[name]
    env = os.environ if env is None else env
    return setting.parse(setting.env, env.get(setting.env) or setting.default, Path.cwd() if cwd is None else cwd)


def _described(name: str, env: Mapping[str, str]) -> str:
    """Where a path setting came from, for an error: `NAME=value`, or the default it fell back to."""
    value = env.get(name)
    default = next(s.default for s in settings_fields().values() if s.env == name)
    return f"{name}={value}" if value else f"{name} is not set (default {default}, under the current directory)"
