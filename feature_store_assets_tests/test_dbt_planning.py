"""The dbt step's planning, as pure functions: the months a run may build, the builds' events merged into one
step's, each month's row counts, each month's pre-flight verdict, and the cleanup of dbt's target folders; and
what the manifest tells the step about the filter models (their landing-zone tables, the rejected-rows model)."""

import os
from datetime import date

import dagster as dg
import duckdb
import pytest

from feature_store_assets.defs.checks.acceptance import months_not_buildable
from feature_store_assets.defs.dbt.planning import (
    KEPT_FAILED_BUILDS,
    KEPT_MARKER,
    RUN_TARGET_PREFIX,
    MergedDbtEvents,
    clean_dbt_targets,
    materialization_row_metadata,
    month_problems,
)
from feature_store_assets.defs.dbt.project import filter_landing_tables, load_manifest, rejected_rows_model
from feature_store_assets.defs.landing_zone.validation import LandingZoneReport
from feature_store_assets.warehouse.ledger import ACCEPTED, FAILED, MonthState

JAN, FEB, MAR, APR = (date(2023, m, 1) for m in (1, 2, 3, 4))
# above the kernel's largest possible pid (pid_max is at most 2^22): never a live process
DEAD_PID = 4_194_305


def test_filter_models_landing_zone_tables_come_from_lineage():
    manifest = load_manifest()
    assert filter_landing_tables(manifest) == {
        "inclinic_transactions": ("transactions_inclinic",),
        "hd_orders": ("transactions",),
        "web_sessions": ("web_sessions",),
        "rejected_rows": ("transactions_inclinic", "transactions", "web_sessions"),
    }
    assert rejected_rows_model(manifest)["name"] == "rejected_rows"


def test_merged_events_keep_the_last_output_and_the_first_failed_check():
    key = dg.AssetKey(["filtered", "inclinic_transactions"])

    def check(passed: bool, build: int) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(asset_key=key, check_name="not_null_client_id", passed=passed, metadata={"b": build})

    events = MergedDbtEvents()
    first_log = dg.AssetObservation(asset_key=key, metadata={"build": 1})
    events.add([dg.Output(None, output_name="inclinic", metadata={"build": 1}), check(True, 1), first_log])
    events.add([dg.Output(None, output_name="inclinic", metadata={"build": 2}), check(False, 2)])
    events.add([dg.Output(None, output_name="inclinic", metadata={"build": 3}), check(True, 3), first_log])
    merged = list(events)
    outputs = [e for e in merged if isinstance(e, dg.Output)]
    checks = [e for e in merged if isinstance(e, dg.AssetCheckResult)]
    assert [o.metadata["build"].value for o in outputs] == [3]  # one output per asset: the last build's
    assert [(c.passed, c.metadata["b"].value) for c in checks] == [(False, 2)]  # a failure on any build stays
    assert sum(isinstance(e, dg.AssetObservation) for e in merged) == 2  # other events are all kept


@pytest.fixture
def warehouse(tmp_path):
    """A read-only connection to a warehouse holding rejected rows and a staging table, as the step counts them."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema quality; create schema filtered")
        con.execute("create table quality.rejected_rows (table_name varchar, event_month date, reason varchar)")
        con.execute(
            "insert into quality.rejected_rows values ('transactions_inclinic', ?, 'null_revenue'), "
            "('transactions_inclinic', ?, 'unknown_client'), ('transactions', ?, 'null_revenue'), "
            "('web_sessions', ?, 'future_timestamp')",
            [JAN, JAN, JAN, FEB],
        )
        # a staging table holds the last build's months only: here February's
        con.execute(
            "create table filtered.stg_inclinic_transactions as select ?::date as event_month from range(4)", [FEB]
        )
    with duckdb.connect(str(path), read_only=True) as con:
        yield con


def test_row_metadata_counts_rows_in_out_and_rejected_per_month(warehouse):
    months = [JAN, FEB]
    built = {
        "inclinic_transactions": {JAN: 8, FEB: 9},
        "rejected_rows": {JAN: 3, FEB: 1},
        "client_monthly_inclinic_mix": {JAN: 5, FEB: 6},
    }
    landed = {
        "transactions_inclinic": {JAN: 10, FEB: 9},
        "transactions": {JAN: 2, FEB: 1},
        "web_sessions": {JAN: 1, FEB: 4},
    }
    metadata = materialization_row_metadata(warehouse, load_manifest(), built, months, landed)

    inclinic = metadata["inclinic_transactions"].by_month
    assert inclinic[JAN] == {"rows_out": 8, "rows_in": 10, "dagster/row_count": 8, "rows_rejected": 2}
    assert inclinic[FEB] == {"rows_out": 9, "rows_in": 9, "dagster/row_count": 9, "rows_rejected": 0}
    assert metadata["inclinic_transactions"].run["rows_by_month"].value == {"2023-01": 8, "2023-02": 9}
    # the rejected-rows model reads every event table; it has no rejected rows of its own
    assert metadata["rejected_rows"].by_month[JAN] == {"rows_out": 3, "rows_in": 13, "dagster/row_count": 3}
    assert metadata["rejected_rows"].by_month[FEB]["rows_in"] == 14
    # an aggregation's rows in are its monthly parents' rows out
    mix = metadata["client_monthly_inclinic_mix"].by_month
    assert (mix[JAN]["rows_in"], mix[FEB]["rows_in"], mix[FEB]["rows_out"]) == (8, 9, 6)
    assert "rows_rejected" not in mix[JAN]
    # staging tables: only the months they hold get counts
    staging = metadata["stg_inclinic_transactions"]
    assert staging.by_month == {FEB: {"rows_out": 4, "dagster/row_count": 4}}
    assert staging.run == {"months_held": "2023-02"}
    assert metadata["stg_online_orders"].run == {"months_held": "none"} and not metadata["stg_online_orders"].by_month
    assert "hd_orders" not in metadata  # not built by this run


def test_row_metadata_counts_no_rejected_rows_when_the_rejected_model_was_not_built(warehouse):
    metadata = materialization_row_metadata(
        warehouse, load_manifest(), {"hd_orders": {JAN: 2}}, [JAN], {"transactions": {JAN: 3}}
    )
    assert metadata["hd_orders"].by_month[JAN] == {
        "rows_out": 2,
        "rows_in": 3,
        "dagster/row_count": 2,
        "rows_rejected": 0,
    }


def test_month_problems_name_bad_files_and_tables_without_a_file():
    report = LandingZoneReport(
        reference=[],
        by_month={JAN: ["transactions/month=2023-01/part-0.parquet: column revenue is varchar"], FEB: [], MAR: []},
        empty_tables={JAN: ["web_sessions"], FEB: [], MAR: ["transactions", "web_sessions"]},
    )
    assert month_problems(report, [JAN, FEB, MAR, APR]) == {
        JAN: "transactions/month=2023-01/part-0.parquet: column revenue is varchar; "
        "web_sessions has no file for month=2023-01",
        MAR: "transactions has no file for month=2023-03; web_sessions has no file for month=2023-03",
    }


def test_clean_dbt_targets_removes_killed_builds_and_keeps_the_newest_failed_ones(tmp_path):
    live = tmp_path / f"{RUN_TARGET_PREFIX}{os.getpid()}-live"
    killed = tmp_path / f"{RUN_TARGET_PREFIX}{DEAD_PID}-killed"
    not_a_pid = tmp_path / f"{RUN_TARGET_PREFIX}x-odd"
    other = tmp_path / "partial_parse_and_manifest"
    for folder in (live, killed, not_a_pid, other):
        folder.mkdir()
    failed = []
    for n in range(KEPT_FAILED_BUILDS + 2):  # failed builds, oldest first; their process is gone
        folder = tmp_path / f"{RUN_TARGET_PREFIX}{DEAD_PID}-failed{n}"
        folder.mkdir()
        (folder / KEPT_MARKER).write_text("dbt build of 2023-01\n")
        os.utime(folder, (1_700_000_000 + n, 1_700_000_000 + n))
        failed.append(folder)

    clean_dbt_targets(tmp_path)

    remaining = {p.name for p in tmp_path.iterdir()}
    assert remaining == {live.name, other.name, *(f.name for f in failed[-KEPT_FAILED_BUILDS:])}


def _accepted(*months: date) -> dict[date, MonthState]:
    return {m: MonthState(ACCEPTED, None, "run-1") for m in months}


def test_months_not_buildable_keeps_bad_months_and_builds_the_rest_without_windows():
    held = months_not_buildable([FEB, MAR], JAN, {FEB: "bad file"}, {}, windows=False, run_builds_history=False)
    assert held == {FEB: "bad file"}


def test_months_not_buildable_holds_a_month_whose_window_needs_a_month_not_accepted():
    history = {**_accepted(JAN), FEB: MonthState(FAILED, "dbt build failed", "run-2")}
    held = months_not_buildable([MAR, APR], JAN, {}, history, windows=True, run_builds_history=True)
    assert held == {
        MAR: "its 12-month window needs 2023-02 (failed: dbt build failed)",
        APR: "its 12-month window needs 2023-02 (failed: dbt build failed)",
    }
    # a month never materialized, when the run does not build the aggregations itself
    held = months_not_buildable([MAR], JAN, {}, _accepted(JAN, FEB), windows=True, run_builds_history=False)
    assert held == {MAR: "its 12-month window needs 2023-03 (never materialized)"}


def test_months_not_buildable_holds_later_months_of_the_run_behind_a_bad_one():
    held = months_not_buildable(
        [FEB, MAR, APR], JAN, {MAR: "bad file"}, _accepted(JAN), windows=True, run_builds_history=True
    )
    assert held == {
        MAR: "bad file",
        APR: "its 12-month window needs 2023-03, which is not built in this run: bad file",
    }
    # nothing before the start month is needed
    assert months_not_buildable([JAN], JAN, {}, {}, windows=True, run_builds_history=True) == {}
