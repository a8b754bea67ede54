"""The same dbt model files on Apache Spark: client_features must equal DuckDB's (README, Scaling out).

One dbt invocation builds every monthly model on local Spark (dbt-spark's session method) over the
small generated landing zone; the DuckDB side is the normal Dagster run. Spark's tables are Parquet
folders partitioned by month, read back here with DuckDB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from feature_store_assets.cli import main
from feature_store_assets.dbt import DBT_PROJECT_DIR
from feature_store_assets.months import dbt_vars
from feature_store_assets.reference.assets import export_for_spark
from feature_store_assets_tests.conftest import configure

pytestmark = [pytest.mark.spark, pytest.mark.e2e, pytest.mark.xdist_group("spark")]

FIRST, LAST = date(2023, 1, 1), date(2023, 3, 1)
KEYS = ["client_id", "feature_month"]


def build_on_spark(spark_dir: Path, env: dict[str, str], work: Path) -> subprocess.CompletedProcess:
    dbt = Path(sys.executable).with_name("dbt")
    command = [
        str(dbt), "build", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
        "--select", "tag:monthly", "--exclude-resource-type", "unit_test",
        "--vars", json.dumps(dbt_vars(FIRST, LAST)),
    ]
    spark_env = {**env, "FEATURE_STORE_DBT_TARGET": "spark", "FEATURE_STORE_SPARK_DIR": str(spark_dir)}
    return subprocess.run(command, env=spark_env, cwd=work, capture_output=True, text=True, timeout=1200)


def spark_table(spark_dir: Path, schema: str, table: str) -> pd.DataFrame:
    files = f"{spark_dir}/warehouse/{schema}.db/{table}/*/*.parquet"
    with duckdb.connect() as con:
        return con.execute(f"select * from read_parquet('{files}', hive_partitioning = true)").df()


def test_client_features_are_the_same_on_spark_and_duckdb(tmp_path, small_landing_zone, monkeypatch):
    store = configure(monkeypatch, tmp_path, small_landing_zone)
    assert main(["materialize", "--from", "2023-01", "--to", "2023-03"]) == 0
    spark_dir = tmp_path / "spark"
    export_for_spark(store.settings.warehouse, "client_zip_income", spark_dir / "reference")

    built = build_on_spark(spark_dir, dict(os.environ), tmp_path)
    assert built.returncode == 0, built.stdout[-6000:]
    assert "ERROR=0" in built.stdout

    with duckdb.connect(str(store.settings.warehouse), read_only=True) as con:
        expected = con.execute("select * from features.client_features order by client_id, feature_month").df()
    actual = spark_table(spark_dir, "features", "client_features")
    actual["feature_month"] = pd.to_datetime(actual["feature_month"]).dt.date
    expected["feature_month"] = pd.to_datetime(expected["feature_month"]).dt.date
    actual = actual[list(expected.columns)].sort_values(KEYS).reset_index(drop=True)
    assert sorted(expected["feature_month"].unique()) == [date(2023, 1, 1), date(2023, 2, 1), date(2023, 3, 1)]
    assert len(actual) == len(expected) > 0
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False, rtol=1e-9, atol=1e-12)
