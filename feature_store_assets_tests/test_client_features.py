"""End to end: the real pipeline's `features.client_features` against the pandas reference.

The edge-case landing zone is materialized three ways: 2024-01..2024-04 in one
run; month by month into a second warehouse; then one month again. Each month
of the table must equal `reference_features` (docs/features.md in pandas), and the
three ways must give identical rows.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from feature_store_assets_tests.support.edge_case_landing_zone import (
    ABSENT_ROWS,
    EXPECTED_VALUES,
    FEATURE_MONTHS,
    NEVER_FEATURED_CLIENTS,
    NEVER_FEATURED_CLINICS,
    PLANTED_REJECTIONS,
    START_MONTH,
    write_edge_case_landing_zone,
    write_edge_case_zip_income,
)
from feature_store_assets_tests.support.reference_features import FEATURE_COLUMNS, compute_client_features

pytestmark = pytest.mark.e2e

RERUN_MONTH = "2024-02"
KEY = ("client_id", "feature_month")
REJECTION_REASONS = {"wrong_month_folder", "unknown_client", "null_revenue"}
REJECTED_KEY_COLUMNS = ("event_id", "row_key", "key", "transaction_id", "session_id")
SHOWN_DIFFERENCES = 5


# ---------------------------------------------------------------- running the pipeline


@dataclass(frozen=True)
class LandingZone:
    raw_dir: Path
    zip_income: Path


@dataclass(frozen=True)
class Run:
    warehouse: Path
    analytics: Path


def materialize(zone: LandingZone, run: Run, first: str, last: str, **extra_env: str) -> None:
    env = {
        **extra_env,
        "FEATURE_STORE_RAW_DIR": str(zone.raw_dir),
        "FEATURE_STORE_WAREHOUSE": str(run.warehouse),
        "FEATURE_STORE_ZIP_INCOME": str(zone.zip_income),
        "FEATURE_STORE_START_MONTH": START_MONTH,
        "FEATURE_STORE_ANALYTICS": str(run.analytics),
    }
    # Module-scoped fixtures cannot take the function-scoped monkeypatch.
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        from feature_store_assets.cli.main import main

        rc = main(["materialize", "--from", first, "--to", last])
    assert rc == 0, f"materialize {first}..{last} returned {rc}"


def query(duckdb_file: Path, sql: str) -> pd.DataFrame:
    # Read-only and closed at once: the pipeline must be able to open the file again.
    con = duckdb.connect(str(duckdb_file), read_only=True)
    try:
        return con.sql(sql).df()
    finally:
        con.close()


def read_features(duckdb_file: Path) -> pd.DataFrame:
    return query(duckdb_file, "select * from features.client_features order by feature_month, client_id")


def read_rejected_rows(duckdb_file: Path) -> pd.DataFrame:
    return query(duckdb_file, "select * from quality.rejected_rows")


def new_run(tmp_path_factory, name: str) -> Run:
    run_dir = tmp_path_factory.mktemp(name)
    return Run(run_dir / "warehouse.duckdb", run_dir / "analytics.duckdb")


@pytest.fixture(scope="module")
def landing_zone(tmp_path_factory) -> LandingZone:
    root = tmp_path_factory.mktemp("edge_case_landing_zone")
    zone = LandingZone(root / "raw", root / "zip_income.csv")
    write_edge_case_landing_zone(zone.raw_dir)
    write_edge_case_zip_income(zone.zip_income)
    return zone


@pytest.fixture(scope="module")
def reference(landing_zone) -> dict[str, pd.DataFrame]:
    return {
        month: compute_client_features(landing_zone.raw_dir, landing_zone.zip_income, month, START_MONTH)
        for month in FEATURE_MONTHS
    }


@pytest.fixture(scope="module")
def multi_month_run(landing_zone, tmp_path_factory) -> Run:
    run = new_run(tmp_path_factory, "multi_month")
    materialize(landing_zone, run, FEATURE_MONTHS[0], FEATURE_MONTHS[-1])
    return run


@pytest.fixture(scope="module")
def pipeline_features(multi_month_run) -> pd.DataFrame:
    return read_features(multi_month_run.warehouse)


@dataclass(frozen=True)
class MonthByMonth:
    features: pd.DataFrame
    rejected_rows: pd.DataFrame
    features_after_rerun: pd.DataFrame
    rejected_rows_after_rerun: pd.DataFrame


@pytest.fixture(scope="module")
def month_by_month_run(landing_zone, tmp_path_factory) -> MonthByMonth:
    run = new_run(tmp_path_factory, "month_by_month")
    for month in FEATURE_MONTHS:
        materialize(landing_zone, run, month, month)
    features, rejected = read_features(run.warehouse), read_rejected_rows(run.warehouse)
    materialize(landing_zone, run, RERUN_MONTH, RERUN_MONTH)
    return MonthByMonth(features, rejected, read_features(run.warehouse), read_rejected_rows(run.warehouse))


# ---------------------------------------------------------------- comparing tables


def python_value(value, sql_type: str):
    """One cell as a plain Python value (None for NULL), whatever dtype DuckDB or pandas gave it."""
    if value is None or value is pd.NA or (not isinstance(value, str) and pd.isna(value)):
        return None
    if sql_type in ("BIGINT", "INTEGER"):
        # A non-integral number stays a float, so that it shows up as a difference.
        return int(value) if float(value).is_integer() else float(value)
    if sql_type == "DOUBLE":
        return float(value)
    if sql_type == "DATE":
        return pd.Timestamp(value).date()
    return str(value)


def same_value(a, b, sql_type: str, rel_tol: float, abs_tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if sql_type == "DOUBLE":
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)
    return a == b


def rows_by_key(frame: pd.DataFrame) -> tuple[dict[tuple, dict], list[tuple]]:
    rows, duplicates = {}, []
    for record in frame.to_dict("records"):
        row = {column: python_value(record[column], sql_type) for column, sql_type in FEATURE_COLUMNS.items()}
        key = tuple(row[column] for column in KEY)
        if key in rows:
            duplicates.append(key)
        rows[key] = row
    return rows, duplicates


def feature_differences(
    pipeline: pd.DataFrame, expected: pd.DataFrame, rel_tol: float = 1e-9, abs_tol: float = 1e-12
) -> list[str]:
    """What differs between two client_features tables, as readable lines (empty when equal)."""
    if list(pipeline.columns) != list(expected.columns):
        return [f"columns differ\n  pipeline: {list(pipeline.columns)}\n  expected: {list(expected.columns)}"]
    pipeline_rows, pipeline_duplicates = rows_by_key(pipeline)
    expected_rows, _ = rows_by_key(expected)
    problems = []
    if pipeline_duplicates:
        problems.append(f"duplicate keys in the pipeline: {pipeline_duplicates[:SHOWN_DIFFERENCES]}")
    missing = sorted(expected_rows.keys() - pipeline_rows.keys())
    extra = sorted(pipeline_rows.keys() - expected_rows.keys())
    if missing:
        problems.append(f"{len(missing)} (client_id, feature_month) missing in the pipeline: {missing[:10]}")
    if extra:
        problems.append(f"{len(extra)} (client_id, feature_month) only in the pipeline: {extra[:10]}")
    common = sorted(expected_rows.keys() & pipeline_rows.keys())
    for column, sql_type in FEATURE_COLUMNS.items():
        pairs = [(key, pipeline_rows[key][column], expected_rows[key][column]) for key in common]
        differing = [
            (key, got, want) for key, got, want in pairs if not same_value(got, want, sql_type, rel_tol, abs_tol)
        ]
        if differing:
            shown = "\n".join(
                f"    client {key[0]} {key[1]}: pipeline={got!r} expected={want!r}"
                for key, got, want in differing[:SHOWN_DIFFERENCES]
            )
            problems.append(f"{column} ({sql_type}): {len(differing)} rows differ\n{shown}")
    return problems


def month_rows(features: pd.DataFrame, month: str) -> pd.DataFrame:
    first_day = dt.date.fromisoformat(f"{month}-01")
    return features[[python_value(day, "DATE") == first_day for day in features["feature_month"]]]


def feature_cell(features: pd.DataFrame, month: str, client_id: int, column: str):
    rows = month_rows(features, month)
    cells = rows.loc[rows["client_id"] == client_id, column]
    assert len(cells) == 1, f"client {client_id} has {len(cells)} rows in {month}"
    return python_value(cells.iloc[0], FEATURE_COLUMNS[column])


# ---------------------------------------------------------------- the table equals docs/features.md


def test_columns_and_types_are_those_of_features_md(multi_month_run):
    described = query(multi_month_run.warehouse, "describe features.client_features")
    assert list(zip(described["column_name"], described["column_type"])) == list(FEATURE_COLUMNS.items())


def test_only_the_materialized_months_are_present(pipeline_features):
    months = {python_value(day, "DATE") for day in pipeline_features["feature_month"]}
    assert months == {dt.date.fromisoformat(f"{month}-01") for month in FEATURE_MONTHS}


@pytest.mark.parametrize("month", FEATURE_MONTHS)
def test_month_equals_reference(pipeline_features, reference, month):
    problems = feature_differences(month_rows(pipeline_features, month), reference[month])
    assert not problems, f"{month}: pipeline vs reference\n" + "\n".join(problems)


# ---------------------------------------------------------------- edge cases by name


def test_clients_created_after_month_end_have_no_row_that_month(pipeline_features):
    for month, client_id in ABSENT_ROWS:
        assert client_id not in set(month_rows(pipeline_features, month)["client_id"]), (month, client_id)
    assert feature_cell(pipeline_features, "2024-02", 107, "tenure_days") == 29  # created exactly at Jan's E


def test_clients_of_non_complete_clinics_never_appear(pipeline_features):
    assert not NEVER_FEATURED_CLIENTS & set(pipeline_features["client_id"])
    assert not NEVER_FEATURED_CLINICS & set(pipeline_features["clinic_id"])


@pytest.mark.parametrize("expectation", EXPECTED_VALUES, ids=lambda e: f"{e.month}-{e.client_id}-{e.column}")
def test_hand_computed_edge_case(pipeline_features, expectation):
    actual = feature_cell(pipeline_features, expectation.month, expectation.client_id, expectation.column)
    assert expectation.matches(actual), f"{expectation.why}: pipeline={actual!r} expected={expectation.value!r}"


# ---------------------------------------------------------------- bad input


def month_text(value) -> str:
    return value[:7] if isinstance(value, str) else pd.Timestamp(value).strftime("%Y-%m")


def test_rejected_rows_hold_the_planted_bad_rows(multi_month_run):
    rejected = read_rejected_rows(multi_month_run.warehouse)
    month_columns = [column for column in rejected.columns if "month" in column.lower()]
    assert {"table_name", "reason"} <= set(rejected.columns) and month_columns, list(rejected.columns)
    key_column = next((column for column in REJECTED_KEY_COLUMNS if column in rejected.columns), None)
    found: dict[tuple[str, str, str], list[int | None]] = {}
    for row in rejected[rejected["reason"].isin(REJECTION_REASONS)].to_dict("records"):
        table = str(row["table_name"]).split(".")[-1]
        where = (table, row["reason"], month_text(row[month_columns[0]]))
        found.setdefault(where, []).append(int(row[key_column]) if key_column else None)
    counts = {where: len(keys) for where, keys in found.items()}
    assert counts == {where: len(keys) for where, keys in PLANTED_REJECTIONS.items()}
    if key_column:
        assert {where: set(keys) for where, keys in found.items()} == PLANTED_REJECTIONS


# ---------------------------------------------------------------- runs agree


def test_month_by_month_equals_one_multi_month_run(pipeline_features, month_by_month_run):
    problems = feature_differences(month_by_month_run.features, pipeline_features, rel_tol=0.0, abs_tol=0.0)
    assert not problems, "month-by-month vs multi-month\n" + "\n".join(problems)


def test_one_run_of_one_dbt_build_per_month_equals_one_build(
    landing_zone, tmp_path_factory, pipeline_features, multi_month_run
):
    run = new_run(tmp_path_factory, "build_per_month")
    # every month above the row budget of a build: the run makes one dbt build per month, oldest first
    materialize(landing_zone, run, FEATURE_MONTHS[0], FEATURE_MONTHS[-1], FEATURE_STORE_MAX_ROWS_PER_DBT_BUILD="1")
    problems = feature_differences(read_features(run.warehouse), pipeline_features, rel_tol=0.0, abs_tol=0.0)
    assert not problems, "a build per month vs one build\n" + "\n".join(problems)
    ledger = "select model, month, row_count from quality.materialized_months order by all"
    assert query(run.warehouse, ledger).equals(query(multi_month_run.warehouse, ledger))
    assert len(query(run.warehouse, ledger)) > 0


def test_rerunning_a_month_leaves_the_table_identical(month_by_month_run):
    after, before = month_by_month_run.features_after_rerun, month_by_month_run.features
    assert len(after) == len(before)
    problems = feature_differences(after, before, rel_tol=0.0, abs_tol=0.0)
    assert not problems, f"after re-running {RERUN_MONTH}\n" + "\n".join(problems)


def test_rerunning_a_month_leaves_rejected_rows_identical(month_by_month_run):
    def as_sorted_rows(frame: pd.DataFrame) -> list[tuple]:
        return sorted(tuple(str(value) for value in row) for row in frame.itertuples(index=False))

    assert as_sorted_rows(month_by_month_run.rejected_rows_after_rerun) == as_sorted_rows(
        month_by_month_run.rejected_rows
    )


def test_analytics_file_publishes_the_same_features(multi_month_run, pipeline_features):
    published = read_features(multi_month_run.analytics)
    problems = feature_differences(published, pipeline_features, rel_tol=0.0, abs_tol=0.0)
    assert not problems, "analytics vs warehouse\n" + "\n".join(problems)
