"""Bad input end to end (docs/data-contract.md): real Dagster runs of real dbt on a real DuckDB file.

A bad month fails with an error naming the file, column or months; other months stay as they were.
"""

import shutil

import pytest

from feature_store_assets.cli.main import main

pytestmark = pytest.mark.e2e

FEATURES_BY_MONTH = "select * from features.client_features order by feature_month, client_id"


def materialize(first: str, last: str) -> int:
    return main(["materialize", "--from", first, "--to", last])


def months_in_features(store) -> list[str]:
    return [
        m.strftime("%Y-%m")
        for m in store.query("select distinct feature_month from features.client_features order by 1")["feature_month"]
    ]


def test_corrupt_file_fails_its_month_names_the_file_and_keeps_other_months(feature_store, capsys):
    assert materialize("2023-01", "2023-02") == 0
    before = feature_store.query(FEATURES_BY_MONTH)
    broken = feature_store.raw_dir / "transactions_inclinic" / "month=2023-03" / "part-9.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    capsys.readouterr()

    assert materialize("2023-03", "2023-03") == 1
    error = capsys.readouterr().err
    assert str(broken) in error and "not a valid Parquet file" in error
    assert feature_store.query(FEATURES_BY_MONTH).equals(before)

    broken.unlink()  # the operator removes the bad file and re-runs the month
    assert materialize("2023-03", "2023-03") == 0
    assert months_in_features(feature_store) == ["2023-01", "2023-02", "2023-03"]


def test_file_without_a_required_column_names_file_and_column(feature_store, capsys):
    import duckdb

    path = feature_store.raw_dir / "web_sessions" / "month=2023-01" / "part-1.parquet"
    duckdb.sql(
        f"copy (select session_id, client_id, session_start_ts, page_views, product_views, orders "
        f"from read_parquet('{feature_store.raw_dir}/web_sessions/month=2023-01/part-0.parquet')) to '{path}'"
    )
    assert materialize("2023-01", "2023-01") == 1
    error = capsys.readouterr().err
    assert f"{path}: missing required column 'add_to_cart_events'" in error
    assert not feature_store.settings.warehouse.exists() or "client_features" not in str(
        feature_store.query("select table_name from information_schema.tables")["table_name"].tolist()
    )


def test_month_without_files_fails_before_dbt_naming_its_tables_and_publishes_nothing(feature_store, capsys):
    assert materialize("2023-01", "2023-01") == 0
    before = feature_store.query(FEATURES_BY_MONTH)
    for table in ("transactions_inclinic", "transactions", "web_sessions"):
        shutil.rmtree(feature_store.raw_dir / table / "month=2023-02")
    capsys.readouterr()

    assert materialize("2023-02", "2023-02") == 1
    error = capsys.readouterr().err
    for table in ("transactions_inclinic", "transactions", "web_sessions"):
        assert f"{table} has no file for month=2023-02" in error
    assert feature_store.query(FEATURES_BY_MONTH).equals(before)
    # recorded as the month's failed row-count check of the filter assets (the quality-check step never ran)
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        record = instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(dg.AssetKey(["filtered", "inclinic_transactions"]), "row_count")
        )
    evaluation = record.event.dagster_event.event_specific_data
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "2023-02: not built: transactions_inclinic has no file for month=2023-02" in evaluation.description
    assert (
        feature_store.scalar(
            "select count(*) from aggregation.client_monthly_financials where activity_month = '2023-02-01'"
        )
        == 0
    )
    # the models that are not monthly were rebuilt all the same, in that failed run, without a partition
    with dg.DagsterInstance.get() as instance:
        [failed_run] = instance.get_runs(limit=1)
        clients = instance.get_latest_materialization_event(dg.AssetKey(["filtered", "integrated_clients"]))
    assert failed_run.status == dg.DagsterRunStatus.FAILURE
    assert clients.run_id == failed_run.run_id and clients.asset_materialization.partition is None


def test_feature_month_without_its_aggregation_history_names_the_missing_months(feature_store, capsys):
    assert materialize("2023-01", "2023-01") == 0
    capsys.readouterr()
    assert materialize("2023-03", "2023-04") == 1
    error = capsys.readouterr().err
    assert "2023-03: its 12-month window needs 2023-02 (never materialized)" in error
    assert "2023-04: its 12-month window needs 2023-02 (never materialized)" in error
    assert months_in_features(feature_store) == ["2023-01"]


def test_month_before_the_start_is_refused(feature_store, capsys):
    assert materialize("2022-12", "2023-01") == 1
    assert "before FEATURE_STORE_START_MONTH=2023-01" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("STATEFIPS,STATE,zipcode,agi_stub,N2\n25,MA,2138,1,5\n", "N1, A00100"),
        ("STATEFIPS,STATE,zipcode,agi_stub,N1,A00100\n", "{path}: has the required columns but no data rows"),
    ],
    ids=["without_required_columns", "without_data_rows"],
)
def test_bad_zip_income_file_fails_naming_the_file_and_what_is_wrong(
    feature_store, monkeypatch, tmp_path, capsys, content, named
):
    bad = tmp_path / "22zpallagi.csv"
    bad.write_text(content)
    monkeypatch.setenv("FEATURE_STORE_ZIP_INCOME", str(bad))
    assert materialize("2023-01", "2023-01") == 1
    error = capsys.readouterr().err
    assert "reference/zip_income failed" in error and str(bad) in error and named.format(path=bad) in error
    assert not feature_store.settings.analytics.exists()  # nothing published
