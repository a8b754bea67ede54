"""The reference assets through real Dagster materializations: pandera failures are check failures."""

import dagster as dg
import duckdb

from feature_store_assets.core.resources import resources_from_settings
from feature_store_assets.core.settings import Settings
from feature_store_assets.defs.reference.assets import SCHEMA_CHECK, client_zip_income, zip_income


def materialize_reference(tmp_path, raw_dir, zip_csv):
    settings = Settings.from_env(
        {
            "FEATURE_STORE_RAW_DIR": str(raw_dir),
            "FEATURE_STORE_WAREHOUSE": str(tmp_path / "wh.duckdb"),
            "FEATURE_STORE_ZIP_INCOME": str(zip_csv),
        }
    )
    result = dg.materialize(
        [zip_income, client_zip_income],
        resources=resources_from_settings(settings),
        raise_on_error=False,
    )
    return result, settings


def test_valid_reference_data_passes_its_schema_checks_and_is_written(tmp_path, small_landing_zone):
    from feature_store_assets.core.settings import SAMPLE_ZIP_INCOME

    result, settings = materialize_reference(tmp_path, small_landing_zone, SAMPLE_ZIP_INCOME)
    assert result.success
    checks = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
    assert checks["reference/zip_income"].passed and checks["reference/client_zip_income"].passed
    assert checks["reference/client_zip_income"].metadata["rows"].value == 600
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        matches = dict(
            con.execute("select zip_income_match, count(*) from reference.client_zip_income group by 1").fetchall()
        )
    assert set(matches) == {"matched", "not_in_source", "invalid_zip", "missing_zip"}


def test_a_schema_failure_is_a_failed_check_with_the_failing_rows_and_nothing_is_written(tmp_path, small_landing_zone):
    bad = tmp_path / "21zpallagi.csv"
    bad.write_text("STATEFIPS,STATE,zipcode,agi_stub,N1,A00100\n25,MA,2138,1,100,5000\n25,Mass.,2139,1,50,2000\n")
    result, settings = materialize_reference(tmp_path, small_landing_zone, bad)
    assert not result.success
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == SCHEMA_CHECK]
    assert evaluation.asset_key == dg.AssetKey(["reference", "zip_income"]) and not evaluation.passed
    assert "Mass." in evaluation.metadata["failure_cases"].value
    assert not settings.warehouse.exists() or "zip_income" not in str(
        duckdb.connect(str(settings.warehouse), read_only=True)
        .execute("select table_name from duckdb_tables()")
        .fetchall()
    )
