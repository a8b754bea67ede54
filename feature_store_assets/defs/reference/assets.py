"""Reference assets: the IRS ZIP income file and each client's ZIP income, written to the warehouse."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pandera.errors

from feature_store_assets.core.resources import WAREHOUSE_POOL, DuckDBFile, FeatureStoreResource
from feature_store_assets.defs.landing_zone.validation import LandingZoneError, file_problems
from feature_store_assets.defs.reference.schemas import client_zip_income_schema, zip_income_schema
from feature_store_assets.defs.reference.zip_income import match_client_zips, read_irs_zip_income, zip_income_by_zip
from feature_store_assets.warehouse.connections import quote, sql_string

CLIENT_ZIP_COLUMNS = {"client_id": "bigint", "zip_code": "varchar"}


SCHEMA_CHECK = "pandera_schema"


def schema_check_spec(asset_key: list[str]) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        SCHEMA_CHECK,
        asset=dg.AssetKey(asset_key),
        blocking=True,
        description="The DataFrame passes its pandera schema before it is written; failing rows are shown.",
    )


def validated(schema, frame: pd.DataFrame, asset_key: list[str]):
    """Yield the schema check's result; return the frame coerced to its schema.

    A failure is a failed check whose metadata holds a sample of the failing rows, then a step
    failure: nothing is written and nothing downstream runs.
    """
    try:
        coerced = schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as error:
        sample = error.failure_cases.head(20).to_string(index=False)
        yield dg.AssetCheckResult(
            asset_key=dg.AssetKey(asset_key),
            check_name=SCHEMA_CHECK,
            passed=False,
            metadata={
                "failing_values": len(error.failure_cases),
                "failure_cases": dg.MetadataValue.md(f"```\n{sample}\n```"),
            },
        )
        raise dg.Failure(description=f"{schema.name} failed its schema checks:\n{sample}") from error
    yield dg.AssetCheckResult(
        asset_key=dg.AssetKey(asset_key),
        check_name=SCHEMA_CHECK,
        passed=True,
        metadata={"rows": len(coerced), "columns": len(coerced.columns)},
    )
    return coerced


def export_for_spark(warehouse: DuckDBFile, table: str, spark_dir: Path) -> Path:
    """Write reference.<table> as Parquet to <spark_dir>/reference/<table>/ (replacing it), where dbt on Spark
    reads it (dbt_subproject/macros/read_landing_zone.sql, reference_table)."""
    target = spark_dir / "reference" / table
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with warehouse.connect(read_only=True) as con:
        con.execute(f"copy reference.{quote(table)} to {sql_string(str(target / 'part-0.parquet'))} (format parquet)")
    return target


def write_table(warehouse: DuckDBFile, schema: str, table: str, frame: pd.DataFrame) -> None:
    """Replace a warehouse table with a DataFrame, atomically."""
    with warehouse.connect() as con:
        con.execute(f"create schema if not exists {schema}")
        con.register("frame", frame)
        con.execute(f"create or replace table {schema}.{table} as select * from frame")


ZIP_INCOME = ["reference", "zip_income"]
CLIENT_ZIP_INCOME = ["reference", "client_zip_income"]


@dg.asset(
    key=ZIP_INCOME,
    check_specs=[schema_check_spec(ZIP_INCOME)],
    group_name="reference",
    pool=WAREHOUSE_POOL,
    kinds={"python", "duckdb"},
    description="Average adjusted gross income per tax return for each ZIP code, from the IRS SOI ZIP code file "
    "(FEATURE_STORE_ZIP_INCOME), with its percent rank among all ZIPs of the file.",
)
def zip_income(feature_store: FeatureStoreResource, warehouse: DuckDBFile):
    path = feature_store.settings.zip_income
    rows = read_irs_zip_income(path)
    by_zip = yield from validated(zip_income_schema, zip_income_by_zip(rows, path), ZIP_INCOME)
    write_table(warehouse, "reference", "zip_income", by_zip)
    yield dg.MaterializeResult(
        metadata={
            "source_file": str(path),
            "source_rows": len(rows),
            "zip_codes": len(by_zip),
            "dagster/row_count": len(by_zip),
            "median_avg_agi": float(by_zip["avg_agi"].median()) if len(by_zip) else 0.0,
        }
    )


@dg.asset(
    key=CLIENT_ZIP_INCOME,
    check_specs=[schema_check_spec(CLIENT_ZIP_INCOME)],
    group_name="reference",
    deps=[zip_income, dg.AssetKey(["landing_zone", "clients"])],
    pool=WAREHOUSE_POOL,
    kinds={"python", "duckdb"},
    description="Each client's ZIP code normalized (ZIP+4 cut, lost leading zeros restored), its match status "
    "against the ZIP income source and the ZIP's average AGI and percent rank.",
)
def client_zip_income(feature_store: FeatureStoreResource, warehouse: DuckDBFile):
    settings = feature_store.settings
    clients_file = settings.raw_dir / "clients.parquet"
    problems = (
        file_problems(clients_file, CLIENT_ZIP_COLUMNS)
        if clients_file.exists()
        else [f"{clients_file}: file not found"]
    )
    if problems:
        raise LandingZoneError("\n".join(problems))
    with warehouse.connect(read_only=True) as con:
        clients = con.execute(
            "select distinct on (client_id) client_id, zip_code from read_parquet(?) "
            "where client_id is not null order by client_id",
            [str(clients_file)],
        ).df()
        source = con.execute("select zip_code, avg_agi, avg_agi_pctl from reference.zip_income").df()
    matched = yield from validated(client_zip_income_schema, match_client_zips(clients, source), CLIENT_ZIP_INCOME)
    write_table(warehouse, "reference", "client_zip_income", matched)
    if settings.on_spark:  # the Python assets keep their tables in DuckDB; dbt on Spark reads a Parquet copy
        export_for_spark(warehouse, "client_zip_income", settings.spark_dir)
    counts = matched["zip_income_match"].value_counts()
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(matched),
            **{
                f"clients_{status}": int(counts.get(status, 0))
                for status in ("matched", "not_in_source", "invalid_zip", "missing_zip")
            },
        }
    )
