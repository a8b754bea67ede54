"""The pipeline side of the benchmark: generate a landing zone, materialize months through Dagster, count raw rows."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.measure import Measured, python_module, run_measured
from feature_store_assets.core.months import add_months, format_month, parse_month
from feature_store_assets.defs.landing_zone.validation import EVENT_TABLES, landed_rows

START_MONTH = "2023-01"


@dataclass(frozen=True)
class PipelineScale:
    """Landing-zone shape. Online orders and web sessions follow the generator's ratios (0.25 and 0.5 of in-clinic rows)."""

    inclinic_rows_per_month: int
    clients: int
    clinics: int
    months: int  # months generated; the last one is the "history" month of item 2
    backfill_months: int  # months 2..1+backfill_months run as one backfill (item 3)


@dataclass
class Store:
    """One benchmark feature store: its landing zone and the environment the CLI reads (docs/data-contract.md)."""

    root: Path

    @property
    def raw_dir(self) -> Path:
        return self.root / "raw"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def analytics(self) -> Path:
        return self.root / "analytics.duckdb"

    @property
    def env(self) -> dict[str, str]:
        return {
            "FEATURE_STORE_RAW_DIR": str(self.raw_dir),
            "FEATURE_STORE_WAREHOUSE": str(self.warehouse),
            "FEATURE_STORE_ANALYTICS": str(self.analytics),
            "FEATURE_STORE_START_MONTH": START_MONTH,
        }


def month(index: int) -> str:
    """The index-th month of the landing zone (1-based), as YYYY-MM."""
    return format_month(add_months(parse_month(START_MONTH), index - 1))


def generate(store: Store, scale: PipelineScale, seed: int = 7) -> tuple[float, dict[str, int]]:
    """Write the landing zone with the project's generator (in this process): seconds and rows per table."""
    from feature_store_assets.generator import GeneratorOptions, generate_landing_zone

    began = time.perf_counter()
    counts = generate_landing_zone(
        store.raw_dir,
        GeneratorOptions(
            start_month=START_MONTH,
            months=scale.months,
            clinics=scale.clinics,
            clients=scale.clients,
            inclinic_rows_per_month=scale.inclinic_rows_per_month,
            seed=seed,
        ),
    )
    return time.perf_counter() - began, counts


def raw_rows(store: Store, first: int, last: int) -> dict[str, int]:
    """Event rows landed in months first..last (1-based), per table, from the Parquet footers."""
    rows = dict.fromkeys(EVENT_TABLES, 0)
    for index in range(first, last + 1):
        for table in EVENT_TABLES:
            rows[table] += landed_rows(store.raw_dir, table, parse_month(month(index)))
    return rows


def warm_page_cache(store: Store, first: int, last: int) -> int:
    """Read months first..last of the landing zone (and the client and clinic files) once, unmeasured.

    Every step then starts with its input in the OS page cache, whichever ran first: the pipeline, the lower
    bound and the pandas job read the same month. Returns the bytes read.
    """
    files = [store.raw_dir / "clients.parquet", store.raw_dir / "clinics.parquet"]
    for index in range(first, last + 1):
        files += sorted(store.raw_dir.glob(f"*/month={month(index)}/*.parquet"))
    read = 0
    for path in files:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 24):
                read += len(chunk)
    return read


def materialize(store: Store, first: int, last: int, env: dict[str, str] | None = None) -> Measured:
    """`feature-store materialize` over months first..last as one Dagster run (every layer, checks, publish), measured
    with the months' raw files in the page cache. `env`: more environment (e.g. DAGSTER_HOME)."""
    warm_page_cache(store, first, last)
    return run_measured(
        python_module("feature_store_assets.cli.main", "materialize", "--from", month(first), "--to", month(last)),
        env={**store.env, **(env or {})},
    )
