"""Pre-flight validation of landing-zone files against the contract declared in dbt's sources.yml."""

from datetime import date, datetime
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feature_store_assets.defs.dbt.project import load_manifest
from feature_store_assets.defs.landing_zone.validation import (
    LandingZoneError,
    contract_from_manifest,
    file_problems,
    landing_zone_report,
    validate_landing_zone,
)

CONTRACT = contract_from_manifest(load_manifest())
MARCH = date(2023, 3, 1)


def test_the_contract_is_read_from_sources_yml():
    assert set(CONTRACT) == {"clinics", "clients", "transactions_inclinic", "transactions", "web_sessions"}
    assert CONTRACT["transactions_inclinic"]["revenue"] == "decimal(12,2)"
    assert list(CONTRACT["clients"]) == ["client_id", "clinic_id", "zip_code", "created_at"]


def test_a_generated_landing_zone_passes(small_landing_zone):
    validate_landing_zone(small_landing_zone, [date(2023, 1, 1), MARCH], CONTRACT)


def write_month_file(raw_dir, select_sql, name="redelivered.parquet"):
    path = raw_dir / "transactions_inclinic" / "month=2023-03" / name
    duckdb.sql(f"copy ({select_sql}) to '{path}' (format parquet)")
    return path


def test_corrupt_file_is_named(feature_store):
    path = feature_store.raw_dir / "transactions_inclinic" / "month=2023-03" / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(LandingZoneError, match="not a valid Parquet file") as error:
        validate_landing_zone(feature_store.raw_dir, [MARCH], CONTRACT)
    assert str(path) in str(error.value)


def test_missing_column_is_named(feature_store):
    path = write_month_file(
        feature_store.raw_dir,
        "select 1::bigint transaction_id, 1::bigint client_id, 1::bigint clinic_id, "
        "timestamp '2023-03-02' transaction_ts, 'food' product_category, 1::int quantity",
    )
    with pytest.raises(LandingZoneError, match=f"{path}: missing required column 'revenue'"):
        validate_landing_zone(feature_store.raw_dir, [MARCH], CONTRACT)


def test_incompatible_type_is_named(feature_store):
    path = write_month_file(
        feature_store.raw_dir,
        "select 1::bigint transaction_id, 1::bigint client_id, 1::bigint clinic_id, "
        "timestamp '2023-03-02' transaction_ts, 'food' product_category, 1::int quantity, 'twelve' revenue",
    )
    with pytest.raises(LandingZoneError, match=f"{path}: column 'revenue' has type string"):
        validate_landing_zone(feature_store.raw_dir, [MARCH], CONTRACT)


def test_other_months_files_are_not_read(feature_store):
    (feature_store.raw_dir / "transactions_inclinic" / "month=2023-03" / "broken.parquet").write_bytes(b"x")
    validate_landing_zone(feature_store.raw_dir, [date(2023, 2, 1)], CONTRACT)


def test_missing_reference_file_is_named(feature_store):
    (feature_store.raw_dir / "clients.parquet").unlink()
    with pytest.raises(LandingZoneError, match="clients.parquet: file not found"):
        validate_landing_zone(feature_store.raw_dir, [], CONTRACT)


# Bad values (docs/data-contract.md: timestamps are naive; types as declared in sources.yml), on small real Parquet files.

INCLINIC = CONTRACT["transactions_inclinic"]


def inclinic_file(tmp_path, write_statistics=True, **columns):
    """A three-row transactions_inclinic file of the contract's types, with some columns replaced."""
    table = {
        "transaction_id": pa.array([1, 2, 3], pa.int64()),
        "client_id": pa.array([10, 11, None], pa.int64()),
        "clinic_id": pa.array([5, 5, 5], pa.int64()),
        "transaction_ts": pa.array(
            [datetime(2023, 3, 1), datetime(2023, 3, 15, 12), datetime(2023, 3, 31, 23, 59)], pa.timestamp("us")
        ),
        "product_category": pa.array(["food", "dental", "vaccines"]),
        "quantity": pa.array([1, 2, 3], pa.int32()),
        "revenue": pa.array([Decimal("12.50"), Decimal("-3.00"), None], pa.decimal128(12, 2)),
    }
    table.update(columns)
    path = tmp_path / "part-0.parquet"
    pq.write_table(pa.table(table), path, write_statistics=write_statistics)
    return path


def test_a_clean_file_and_wider_types_holding_fitting_values_pass(tmp_path):
    assert file_problems(inclinic_file(tmp_path), INCLINIC) == []
    wider = inclinic_file(
        tmp_path,
        quantity=pa.array([1, -2, 2**31 - 1], pa.int64()),
        revenue=pa.array([Decimal("9999999999.99"), Decimal("-9999999999.99"), None], pa.decimal128(18, 2)),
    )
    assert file_problems(wider, INCLINIC) == []


def test_a_double_revenue_that_fits_passes(tmp_path):
    path = inclinic_file(tmp_path, revenue=pa.array([12.5, -3.0, 9999999999.99], pa.float64()))
    assert file_problems(path, INCLINIC) == []


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_a_time_zone_aware_timestamp_is_named(tmp_path, tz):
    path = inclinic_file(tmp_path, transaction_ts=pa.array([0, 1, 2], pa.timestamp("us", tz=tz)))
    [problem] = file_problems(path, INCLINIC)
    assert problem.startswith(f"{path}: column 'transaction_ts' has type timestamp[us, tz={tz}]")
    assert "the contract wants naive timestamps" in problem


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, float("nan"), float("nan")], "has 2 NaN value(s), which the contract's decimal(12,2) cannot hold"),
        ([1.0, float("inf"), float("-inf")], "has 2 infinite value(s), which the contract's decimal(12,2) cannot hold"),
        (
            [1.0, 1e15, -2.0],
            "has values outside the contract's decimal(12,2) (-9999999999.99 to 9999999999.99): "
            "smallest -2.0, largest 1000000000000000.0",
        ),
        ([1.0, 9999999999.996, None], "has values outside the contract's decimal(12,2)"),  # rounds to 10000000000.00
    ],
)
def test_a_double_revenue_the_decimal_cannot_hold_is_named(tmp_path, values, expected):
    path = inclinic_file(tmp_path, revenue=pa.array(values, pa.float64()))
    [problem] = file_problems(path, INCLINIC)
    assert problem.startswith(f"{path}: column 'revenue' (double) ")
    assert expected in problem


def test_nan_and_out_of_range_are_both_named(tmp_path):
    path = inclinic_file(tmp_path, revenue=pa.array([float("nan"), float("inf"), -1e13], pa.float64()))
    problems = file_problems(path, INCLINIC)
    assert [p.split(" (double) ")[1].split(",")[0] for p in problems] == [
        "has 1 NaN and 1 infinite value(s)",
        "has values outside the contract's decimal(12",
    ]


def test_a_wider_decimal_out_of_range_is_named(tmp_path):
    path = inclinic_file(
        tmp_path, revenue=pa.array([Decimal("1.00"), Decimal("-12345678901.25"), None], pa.decimal128(18, 2))
    )
    assert file_problems(path, INCLINIC) == [
        f"{path}: column 'revenue' (decimal128(18, 2)) has values outside the contract's decimal(12,2) "
        "(-9999999999.99 to 9999999999.99): smallest -12345678901.25, largest 1.00"
    ]


@pytest.mark.parametrize("write_statistics", [True, False], ids=["statistics", "column scan"])
def test_an_int64_quantity_beyond_integer_is_named(tmp_path, write_statistics):
    path = inclinic_file(tmp_path, write_statistics, quantity=pa.array([1, 2**31, None], pa.int64()))
    assert file_problems(path, INCLINIC) == [
        f"{path}: column 'quantity' (int64) has values outside the contract's integer "
        "(-2147483648 to 2147483647): smallest 1, largest 2147483648"
    ]


def test_an_unsigned_id_beyond_bigint_is_named(tmp_path):
    path = inclinic_file(tmp_path, transaction_id=pa.array([1, 2, 2**64 - 1], pa.uint64()))
    [problem] = file_problems(path, INCLINIC)
    assert f"{path}: column 'transaction_id' (uint64) has values outside the contract's bigint" in problem


def test_repeated_client_ids_are_counted_and_a_few_named(feature_store):
    path = feature_store.raw_dir / "clients.parquet"
    clients = pq.read_table(path)
    repeated = clients.slice(0, 7)  # the seven smallest ids, delivered twice
    pq.write_table(pa.concat_tables([repeated, clients]), path)
    ids = sorted(repeated.column("client_id").to_pylist())
    with pytest.raises(LandingZoneError) as error:
        validate_landing_zone(feature_store.raw_dir, [MARCH], CONTRACT)
    assert (
        f"{path}: column 'client_id' is the key, but 7 value(s) appear more than once: "
        f"{', '.join(map(str, ids[:5]))}, ...\n" in str(error.value) + "\n"
    )


def test_repeated_transaction_ids_are_not_a_file_problem(tmp_path):
    # a re-delivered event row is counted once downstream (docs/data-contract.md): only reference keys must be unique
    path = inclinic_file(tmp_path, transaction_id=pa.array([1, 1, 1], pa.int64()))
    assert file_problems(path, INCLINIC) == []


def test_the_report_has_every_month_and_keeps_bad_months_apart(feature_store):
    raw = feature_store.raw_dir
    months = [date(2023, 1, 1), date(2023, 2, 1), MARCH]
    bad = inclinic_file(
        raw / "transactions_inclinic" / "month=2023-03",
        transaction_ts=pa.array([0, 1, 2], pa.timestamp("us", tz="UTC")),
    )
    for path in (raw / "web_sessions" / "month=2023-02").glob("*.parquet"):
        path.unlink()

    report = landing_zone_report(raw, months, CONTRACT)
    assert report.reference == []
    assert list(report.by_month) == months and report.by_month[date(2023, 1, 1)] == []
    assert [p.split(": ")[0] for p in report.by_month[MARCH]] == [str(bad)]
    assert report.empty_tables == {date(2023, 1, 1): [], date(2023, 2, 1): ["web_sessions"], MARCH: []}
    assert report.bad_months == [MARCH] and report.good_months == months[:2] and not report.ok
    report.raise_if_bad(months[:2])  # the good months alone pass
    with pytest.raises(LandingZoneError, match="transaction_ts"):
        report.raise_if_bad()


def test_a_reference_problem_leaves_no_good_month(feature_store):
    (feature_store.raw_dir / "clinics.parquet").unlink()
    report = landing_zone_report(feature_store.raw_dir, [MARCH], CONTRACT)
    assert report.reference == [f"{feature_store.raw_dir / 'clinics.parquet'}: file not found"]
    assert report.by_month == {MARCH: []} and report.bad_months == [] and report.good_months == []
    with pytest.raises(LandingZoneError, match="clinics.parquet: file not found"):
        report.raise_if_bad([MARCH])
