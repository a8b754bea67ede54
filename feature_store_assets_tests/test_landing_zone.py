"""Pre-flight validation of landing-zone files against the contract declared in dbt's sources.yml."""

from datetime import date

import duckdb
import pytest

from feature_store_assets.dbt import load_manifest
from feature_store_assets.landing_zone import LandingZoneError, contract_from_manifest, validate_landing_zone

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
