"""Helpers for the serving tests: a really materialized and published store, and a large synthetic one."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from feature_store_assets.core.settings import Settings
from feature_store_assets_tests.conftest import FeatureStore, configure


def materialize(store: FeatureStore, first: str, last: str) -> None:
    """Run `feature-store materialize` for months first..last with the store's settings in the environment."""
    from feature_store_assets.cli.main import main

    # Module-scoped fixtures cannot take the function-scoped monkeypatch.
    with pytest.MonkeyPatch.context() as patch:
        configure(patch, store.root, store.raw_dir)
        assert main(["materialize", "--from", first, "--to", last]) == 0, f"materialize {first}..{last} failed"


def published_store(root: Path, raw_dir: Path, first: str = "2023-01", last: str = "2023-03") -> FeatureStore:
    """A feature store in `root` over the (unmodified) landing zone, with months first..last published."""
    root.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        store = configure(patch, root, raw_dir)
    materialize(store, first, last)
    return store


def copy_store(store: FeatureStore, root: Path) -> FeatureStore:
    """The same warehouse and analytics file under another root, to publish more months without touching `store`."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(store.settings.warehouse, root / "warehouse.duckdb")
    shutil.copy2(store.settings.analytics, root / "analytics.duckdb")
    with pytest.MonkeyPatch.context() as patch:
        return configure(patch, root, store.raw_dir)


def analytics_query(settings: Settings, sql: str):
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"attach '{settings.analytics}' as analytics (read_only)")
        con.execute("use analytics")
        return con.sql(sql).df()
    finally:
        con.close()


def synthetic_analytics(real: Path, out: Path, clients: int, months: int) -> Path:
    """A published-like file with the real schema and catalog, `clients` x `months` rows of random values."""
    out.unlink(missing_ok=True)
    with duckdb.connect(str(out)) as con:
        con.execute(f"attach '{real}' as real (read_only)")
        columns = con.execute(
            "select column_name, data_type from duckdb_columns() where database_name = 'real' "
            "and schema_name = 'features' and table_name = 'client_features' order by column_index"
        ).fetchall()
        values = {
            "client_id": "c.id",
            "feature_month": "date '2022-01-01' + to_months(m.i::int)",
            "clinic_id": "c.id % 400",
        }
        selected = []
        for name, data_type in columns:
            if name in values:
                expression = values[name]
            elif data_type == "VARCHAR":
                expression = "case when random() < 0.1 then null else lpad((c.id % 99999)::varchar, 5, '0') end"
            elif data_type in ("INTEGER", "BIGINT"):
                expression = f"(random() * 100)::{data_type}"
            else:
                expression = "case when random() < 0.1 then null else random() end"
            selected.append(f'{expression} as "{name}"')
        con.execute("create schema features")
        con.execute(
            f"create table features.client_features as select {', '.join(selected)} "
            f"from range({clients}) c(id), range({months}) m(i) order by feature_month, client_id"
        )
        con.execute("create table features.feature_catalog as select * from real.features.feature_catalog")
    return out
