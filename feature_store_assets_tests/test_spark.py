"""The same dbt model files on Apache Spark, through the same Dagster job: the published features must
equal DuckDB's (README, Scaling out).

Two real runs of `feature-store materialize` over the small generated landing zone, each with its own
warehouse and analytics file: one on the default DuckDB target, one with FEATURE_STORE_DBT_TARGET=spark,
where dbt builds every monthly model on local Spark (dbt-spark's session method, one dbt build) and the
DuckDB warehouse reads Spark's month-partitioned Parquet tables through views, so the row counts, the
quality checks, the ledger, the catalog and publishing run unchanged.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from feature_store_assets.cli.main import main
from feature_store_assets.warehouse.spark import SparkWarehouseError, mirror_spark_tables
from feature_store_assets_tests.conftest import configure

pytestmark = [pytest.mark.spark, pytest.mark.e2e, pytest.mark.xdist_group("spark")]

MONTHS = [date(2023, 1, 1), date(2023, 2, 1), date(2023, 3, 1)]
# published tables compared whole, with their keys
COMPARED = {
    "features.client_features": ["client_id", "feature_month"],
    "marts.product_affinity": ["snapshot_month", "antecedent_category", "consequent_category"],
    "marts.product_recommendations": ["snapshot_month", "source_category", "recommended_category"],
    "marts.client_segments": ["client_id", "snapshot_month"],
    "marts.cohort_health": ["cohort_type", "cohort_month", "snapshot_month"],
    "aggregation.client_monthly_financials": ["client_id", "activity_month"],
    "quality.rejected_rows": None,  # no key: every column, sorted
}


def published(analytics, table: str, key: list[str] | None) -> pd.DataFrame:
    with duckdb.connect(str(analytics), read_only=True) as con:
        frame = con.execute(f"select * from {table}").df()
    frame = frame[sorted(frame.columns)]
    return frame.sort_values(key or list(frame.columns)).reset_index(drop=True)


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory, small_landing_zone):
    """The same three months materialized through Dagster on DuckDB and on Spark."""
    stores = {}
    for engine in ("duckdb", "spark"):
        root = tmp_path_factory.mktemp(engine)
        with pytest.MonkeyPatch.context() as patch:
            stores[engine] = configure(patch, root, small_landing_zone)
            if engine == "spark":
                patch.setenv("FEATURE_STORE_DBT_TARGET", "spark")
                patch.setenv("FEATURE_STORE_SPARK_DIR", str(root / "spark"))
            assert main(["materialize", "--from", "2023-01", "--to", "2023-03"]) == 0, f"the {engine} run failed"
    return stores


def test_the_dagster_job_on_spark_publishes_what_it_publishes_on_duckdb(both_engines):
    duck, spark = both_engines["duckdb"].settings, both_engines["spark"].settings
    assert (spark.warehouse.parent / "spark" / "warehouse" / "features.db" / "client_features").is_dir()
    for table, key in COMPARED.items():
        expected, actual = published(duck.analytics, table, key), published(spark.analytics, table, key)
        assert len(actual) == len(expected) > 0, table
        pd.testing.assert_frame_equal(actual, expected, check_dtype=False, rtol=1e-9, atol=1e-12, obj=table)
    months = sorted(
        published(spark.analytics, "features.client_features", COMPARED["features.client_features"])[
            "feature_month"
        ].unique()
    )
    assert [pd.Timestamp(m).date() for m in months] == MONTHS


def test_on_spark_the_warehouse_reads_the_models_through_views_and_keeps_the_ledger(both_engines):
    spark = both_engines["spark"].settings
    with duckdb.connect(str(spark.warehouse), read_only=True) as con:
        views = {
            f"{s}.{v}"
            for s, v in con.execute("select schema_name, view_name from duckdb_views() where not internal").fetchall()
        }
        tables = {f"{s}.{t}" for s, t in con.execute("select schema_name, table_name from duckdb_tables()").fetchall()}
        ledger = con.execute(
            "select count(distinct model), min(month), max(month) from quality.materialized_months"
        ).fetchone()
        comment = con.execute(
            "select comment from duckdb_columns() where schema_name = 'features' and table_name = 'client_features' "
            "and column_name = 'total_revenue_12m'"
        ).fetchone()[0]
    assert {"features.client_features", "marts.product_affinity", "quality.rejected_rows"} <= views
    assert not views & tables
    assert {"reference.client_zip_income", "quality.materialized_months"} <= tables  # the Python assets' own
    assert ledger[1:] == (MONTHS[0], MONTHS[-1]) and ledger[0] >= 10
    assert comment  # the column's description from its dbt .yml, carried to the view and then published
    with duckdb.connect(str(spark.analytics), read_only=True) as con:
        published_comment = con.execute(
            "select comment from duckdb_columns() where schema_name = 'features' and table_name = 'client_features' "
            "and column_name = 'total_revenue_12m'"
        ).fetchone()[0]
    assert published_comment == comment


def test_a_duckdb_warehouse_is_not_mirrored_over(both_engines):
    duck = both_engines["duckdb"].settings
    with pytest.raises(SparkWarehouseError, match="features.client_features.*FEATURE_STORE_WAREHOUSE"):
        mirror_spark_tables(duck.warehouse, duck.warehouse.parent / "spark", {("features", "client_features"): {}})
