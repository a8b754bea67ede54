"""Bad values end to end (docs/data-contract.md): values the contract's types cannot hold fail before dbt starts.

Real Dagster runs of real dbt on a real DuckDB file, through the CLI. The error names the file and the
column (and for repeated keys a few ids); nothing of the month is published.
"""

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feature_store_assets.cli.main import main

pytestmark = pytest.mark.e2e


def materialize(first: str, last: str) -> int:
    return main(["materialize", "--from", first, "--to", last])


def published_months(store) -> list[str]:
    if not store.settings.analytics.exists():
        return []
    with duckdb.connect(str(store.settings.analytics), read_only=True) as con:
        rows = con.sql(
            "select distinct strftime(feature_month, '%Y-%m') from features.client_features order by 1"
        ).fetchall()
    return [month for (month,) in rows]


def replace_column(path, name, values) -> None:
    table = pq.read_table(path)
    pq.write_table(table.set_column(table.schema.get_field_index(name), name, values(table.column(name))), path)


def test_time_zone_aware_timestamps_fail_their_month_naming_file_and_column(feature_store, capsys):
    assert materialize("2023-01", "2023-01") == 0
    path = feature_store.raw_dir / "transactions_inclinic" / "month=2023-02" / "part-0.parquet"
    replace_column(path, "transaction_ts", lambda ts: ts.cast(pa.timestamp("us", tz="UTC")))
    capsys.readouterr()

    assert materialize("2023-02", "2023-02") == 1
    error = capsys.readouterr().err
    assert f"{path}: column 'transaction_ts' has type timestamp[us, tz=UTC]" in error
    assert "the contract wants naive timestamps" in error
    assert published_months(feature_store) == ["2023-01"]
    assert (
        feature_store.scalar(
            "select count(*) from aggregation.client_monthly_financials where activity_month = '2023-02-01'"
        )
        == 0
    )


def test_double_revenue_with_nan_fails_naming_file_and_column(feature_store, capsys):
    path = feature_store.raw_dir / "transactions" / "month=2023-01" / "part-0.parquet"
    replace_column(
        path, "revenue", lambda revenue: pa.array([float("nan"), *revenue.cast(pa.float64()).to_pylist()[1:]])
    )
    assert materialize("2023-01", "2023-01") == 1
    error = capsys.readouterr().err
    assert f"{path}: column 'revenue' (double) has 1 NaN value(s)" in error
    assert "Could not cast" not in error
    assert published_months(feature_store) == []


def test_repeated_client_ids_fail_naming_the_file_and_ids(feature_store, capsys):
    path = feature_store.raw_dir / "clients.parquet"
    clients = pq.read_table(path).sort_by("client_id")
    pq.write_table(pa.concat_tables([clients, clients.slice(0, 2)]), path)
    first, second = clients.column("client_id").to_pylist()[:2]

    assert materialize("2023-01", "2023-01") == 1
    error = capsys.readouterr().err
    assert f"{path}: column 'client_id' is the key, but 2 value(s) appear more than once: {first}, {second}" in error
    assert "unique_integrated_clients_client_id" not in error
    assert published_months(feature_store) == []
