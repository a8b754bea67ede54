"""The analytics file analysts read: views over the published store's current version, swapped in after each
successful run, never while a reader is disturbed."""

import hashlib
import subprocess
import sys
import textwrap
from datetime import date

import duckdb
import pytest

from feature_store_assets.cli.main import main
from feature_store_assets.core.names import LEDGER

pytestmark = pytest.mark.e2e

# the tables and views of a DuckDB file (the warehouse's are tables, the analytics file's views)
PUBLISHED_RELATIONS = (
    "select table_schema, table_name from information_schema.tables where table_schema != 'information_schema'"
)

READER = textwrap.dedent(
    """
    import sys, duckdb
    path = sys.argv[1]
    count = "select count(distinct feature_month) from features.client_features"
    con = duckdb.connect(path, read_only=True)
    print(con.execute(count).fetchone()[0], flush=True)
    sys.stdin.readline()  # the test materializes another month meanwhile
    print(con.execute(count).fetchone()[0], flush=True)
    con.close()
    print(duckdb.connect(path, read_only=True).execute(count).fetchone()[0], flush=True)
    """
)


def test_reader_in_another_process_is_not_disturbed_and_sees_the_new_month_on_reconnect(feature_store):
    assert main(["materialize", "--from", "2023-01", "--to", "2023-01"]) == 0
    analytics = feature_store.settings.analytics
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(analytics)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout.readline().strip() == "1"
        assert main(["materialize", "--from", "2023-02", "--to", "2023-02"]) == 0  # not blocked by the open reader
        out, _ = reader.communicate("go\n", timeout=60)
    finally:
        reader.kill()
    assert out.split() == ["1", "2"]  # the open session kept its snapshot; a new one sees February
    assert reader.returncode == 0


def test_failed_run_leaves_the_published_file_exactly_as_it_was(feature_store):
    assert main(["materialize", "--from", "2023-01", "--to", "2023-01"]) == 0
    digest = hashlib.sha256(feature_store.settings.analytics.read_bytes()).hexdigest()
    (feature_store.raw_dir / "transactions" / "month=2023-02" / "part-0.parquet").write_bytes(b"truncated")
    assert main(["materialize", "--from", "2023-02", "--to", "2023-02"]) == 1
    assert hashlib.sha256(feature_store.settings.analytics.read_bytes()).hexdigest() == digest
    assert not list(feature_store.settings.analytics.parent.glob(".*.publishing"))


def test_published_tables_carry_the_warehouse_rows_and_column_docs(feature_store):
    assert main(["materialize", "--from", "2023-01", "--to", "2023-02"]) == 0
    with duckdb.connect(str(feature_store.settings.analytics), read_only=True) as con:
        tables = {f"{s}.{t}" for s, t in con.execute(PUBLISHED_RELATIONS).fetchall()}
        kinds = {
            kind for (kind,) in con.execute("select distinct table_type from information_schema.tables").fetchall()
        }
        comment = con.execute(
            "select comment from duckdb_columns() where table_name = 'client_features' and column_name = 'hd_revenue_share_12m'"
        ).fetchone()[0]
        published_rows = con.execute("select count(*) from features.client_features").fetchone()[0]
    assert {
        "features.client_features",
        "aggregation.client_monthly_financials",
        "quality.rejected_rows",
        "reference.zip_income",
        "reference.client_zip_income",
    } <= tables
    assert not any(t.startswith("filtered.") for t in tables)
    assert kinds == {"VIEW"}  # over the store's Parquet files: the file holds no rows of its own
    assert comment == "hd_revenue_12m / total_revenue_12m; NULL when total_revenue_12m <= 0"
    assert published_rows == feature_store.scalar("select count(*) from features.client_features") > 0


def table_digests(path) -> dict[str, tuple]:
    """Rows and an order-independent content hash of every table and view of a DuckDB file. The ledger's
    published_at is left out: a publish stamps its new file before the swap and the warehouse after it."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(f"select * from ({PUBLISHED_RELATIONS}) where table_schema != 'filtered'").fetchall()
        return {
            f"{s}.{t}": con.execute(
                f'select count(*), sum(hash(t)) from (select * exclude (published_at) from "{s}"."{t}") t'
                if f"{s}.{t}" == LEDGER
                else f'select count(*), sum(hash(t)) from "{s}"."{t}" t'
            ).fetchone()
            for s, t in tables
        }


def test_publishing_month_by_month_gives_the_same_file_as_a_full_copy(feature_store, tmp_path):
    from feature_store_assets.defs.publish.analytics import PUBLISHED_SCHEMAS, publish_analytics

    assert main(["materialize", "--from", "2023-01", "--to", "2023-01"]) == 0
    assert main(["materialize", "--from", "2023-02", "--to", "2023-02"]) == 0  # published February only
    assert main(["materialize", "--from", "2023-01", "--to", "2023-01"]) == 0  # and January again
    full = tmp_path / "full" / "analytics.duckdb"
    publish_analytics(feature_store.settings.warehouse, full)  # a store of its own, beside it
    published = table_digests(feature_store.settings.analytics)
    assert published == table_digests(full)
    assert {name.split(".")[0] for name in published} == set(PUBLISHED_SCHEMAS)
    assert published["features.client_features"][0] > 0


def test_publishing_months_replaces_only_those_months(feature_store):
    from feature_store_assets.defs.publish.analytics import publish_analytics

    settings = feature_store.settings
    assert main(["materialize", "--from", "2023-01", "--to", "2023-02"]) == 0
    with duckdb.connect(str(settings.warehouse)) as con:  # the warehouse changes in both months, outside any run
        con.execute("update features.client_features set tenure_days = -1")
        con.execute("create or replace table reference.zip_income as select * from reference.zip_income limit 3")
    publish_analytics(settings.warehouse, settings.analytics, months=[date(2023, 2, 1)])

    def published(sql):
        with duckdb.connect(str(settings.analytics), read_only=True) as con:
            return con.execute(sql).fetchall()

    tenure = "select feature_month, min(tenure_days) < 0 from features.client_features group by 1 order by 1"
    assert published(tenure) == [(date(2023, 1, 1), False), (date(2023, 2, 1), True)]
    assert published("select count(*) from reference.zip_income") == [(3,)]  # no month column: copied whole
    publish_analytics(settings.warehouse, settings.analytics)  # no months: everything
    assert published(tenure) == [(date(2023, 1, 1), True), (date(2023, 2, 1), True)]
