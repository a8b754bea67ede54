"""Spark and pandas read the published store's features.client_features directly and get DuckDB's rows.

pandas reads the Delta table with deltalake (`DeltaTable(...).to_pandas()`). Spark reads the current
version's Parquet files as the store lists them (`table_files`) (Spark's own Delta reader needs the delta-spark
jars, which are not installed here), with the table's folder as basePath so feature_month comes from the
partition folders. Months 2023-01..2023-03 of the small landing zone, really published.
"""

from __future__ import annotations

import pandas as pd
import pytest
from deltalake import DeltaTable

from feature_store_assets.core.names import FEATURE_MODEL, FEATURES_TABLE
from feature_store_assets.store import table_dir, table_files
from feature_store_assets_tests.support.serving import analytics_query
from feature_store_assets_tests.support.shared import published_copy

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("published_readers")]

KEYS = ["client_id", "feature_month"]


@pytest.fixture(scope="module")
def store(tmp_path_factory, small_landing_zone):
    return published_copy(tmp_path_factory, small_landing_zone, "published_readers")


@pytest.fixture(scope="module")
def duckdb_rows(store) -> pd.DataFrame:
    rows = analytics_query(store.settings, f"select * from {FEATURES_TABLE}")
    rows["feature_month"] = pd.to_datetime(rows["feature_month"])
    return rows.sort_values(KEYS, ignore_index=True)


def comparable(rows: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """Rows in DuckDB's column order and key order, with its dtypes, for assert_frame_equal."""
    rows = rows[list(like.columns)].copy()
    rows["feature_month"] = pd.to_datetime(rows["feature_month"])
    return rows.sort_values(KEYS, ignore_index=True).astype(like.dtypes.to_dict())


def test_pandas_reads_the_delta_table_with_duckdbs_rows(store, duckdb_rows):
    folder = table_dir(store.settings.published_dir, "features", FEATURE_MODEL)
    rows = DeltaTable(str(folder)).to_pandas()
    assert len(rows) == len(duckdb_rows) > 0
    pd.testing.assert_frame_equal(comparable(rows, duckdb_rows), duckdb_rows)


def test_spark_reads_the_current_versions_files_with_duckdbs_rows(store, duckdb_rows):
    from pyspark.sql import SparkSession

    store_dir = store.settings.published_dir
    files = table_files(store_dir, "features", FEATURE_MODEL)
    folder = table_dir(store_dir, "features", FEATURE_MODEL)
    spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
    try:
        frame = spark.read.option("basePath", str(folder)).parquet(*(f.path for f in files))
        assert dict(frame.dtypes)["feature_month"] == "date"
        rows = frame.toPandas()
    finally:
        spark.stop()
    assert len(rows) == len(duckdb_rows) > 0
    pd.testing.assert_frame_equal(comparable(rows, duckdb_rows), duckdb_rows)
