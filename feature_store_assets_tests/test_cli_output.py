"""What an operator reads (issue 13, items 4 and 5): errors that name the fix, and a short progress view.

The formatting is tested as pure functions; the runs are real `feature-store materialize` processes
(real Dagster, real dbt on a real DuckDB file) with stdout and stderr redirected to files, as an
operator's cron job or CI would have them.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from feature_store_assets.cli.main import check_reason, describe_error, step_labels
from feature_store_assets.cli.progress import (
    RunProgress,
    format_duration,
    parse_dbt_line,
    progress_bar,
    progress_line,
    remaining_seconds,
    step_details,
)
from feature_store_assets.core.months import RUN_WINDOW_ENV, month_build_message, month_build_months
from feature_store_assets.core.settings import ConfigurationError, Settings
from feature_store_assets.operations.logs import dbt_error_summary, prune_run_logs, run_log_dir
from feature_store_assets.warehouse.ledger import FAILED, month_states

ANSI = "\x1b["
MONTHS = [date(2023, m, 1) for m in (2, 3, 4)]
# A DagsterDbtCliRuntimeError's message as dagster-dbt writes it (a real one, the --select list shortened).
DBT_ERROR = """The dbt CLI process with command

`/venv/bin/feature-store-dbt build --exclude-resource-type unit_test --select feature_store.filter.events.hd_orders feature_store.filter.events.web_sessions`

failed with exit code `1`. Check the stdout in the Dagster compute logs for the full information about the error.

Errors parsed from dbt logs:

5 of 128 ERROR creating sql incremental model filtered.hd_orders ............... [ERROR in 0.15s]

Failure in model hd_orders (models/filter/events/hd_orders.sql)

  Runtime Error in model hd_orders (models/filter/events/hd_orders.sql)
  Catalog Error: Table with name stg_online_orders does not exist!

Failure in model hd_orders (models/filter/events/hd_orders.sql)
"""


# ---- pure formatting


def test_durations_bars_and_time_left():
    assert [format_duration(s) for s in (4.24, 59.9, 61, 3725)] == ["4.2s", "59.9s", "1:01", "1:02:05"]
    assert progress_bar(0.25, width=8) == "[##......]" and progress_bar(1.7, width=4) == "[####]"
    assert remaining_seconds(30, 0.25) == pytest.approx(90) and remaining_seconds(30, 0.01) is None
    line = progress_line("dbt 1/4 months", 0.25, 30)
    assert line.startswith("dbt 1/4 months [######..................]") and "25%" in line
    assert "elapsed 30.0s" in line and "remaining ~1:30" in line
    assert "remaining ?" in progress_line("dbt 0/4 months", 0.0, 3)


def test_dbt_lines_and_build_months_are_read():
    ok = parse_dbt_line("12 of 128 OK created sql incremental model filtered.hd_orders ......... [OK in 0.15s]")
    assert (ok.index, ok.total, ok.status, ok.what) == (
        12,
        128,
        "OK",
        "created sql incremental model filtered.hd_orders",
    )
    error = parse_dbt_line("6 of 128 ERROR creating sql incremental model filtered.web_sessions ... [ERROR in 0.13s]")
    assert error.status == "ERROR" and error.what == "creating sql incremental model filtered.web_sessions"
    assert parse_dbt_line("3 of 128 START test not_null_x ..... [RUN]").status == "START"
    assert parse_dbt_line("Found 19 models, 118 data tests") is None
    message = month_build_message(MONTHS[0], MONTHS[-1])
    assert message == (
        "dbt build of 2023-02..2023-04: FEATURE_STORE_RUN_MIN_DATE=2023-02-01 FEATURE_STORE_RUN_MAX_DATE=2023-05-01"
    )
    assert month_build_months(message) == MONTHS
    assert month_build_months("Running dbt command: `dbt build`") is None


def test_step_lines_say_what_a_step_did():
    assert step_details(1, {"passed": 1}) == "1 asset, 1 check passed"
    assert step_details(19, {"passed": 117, "failed (WARN)": 1, "failed (ERROR)": 0}) == (
        "19 assets, 118 checks: 117 passed, 1 failed (WARN)"
    )
    keys = [dg.AssetKey(["filtered", "hd_orders"]), dg.AssetKey(["features", "client_features"])]
    assert step_labels(
        {
            "reference__zip_income": [dg.AssetKey(["reference", "zip_income"])],
            "dbt_models": keys,
            "quality_checks": [],
        }
    ) == {
        "reference__zip_income": "reference/zip_income",
        "dbt_models": "dbt models (2 assets)",
        "quality_checks": "quality checks",
    }


def dbt_build(progress: RunProgress, months: list[date], nodes: int, clock: list[float]) -> None:
    """dbt's lines of one build of `months`, as dagster-dbt echoes them, one second a node."""
    progress.on_event(LogEntry(20, month_build_message(months[0], months[-1])))  # the monthly step's line
    progress.on_event(LogEntry(20, "Running dbt command: `dbt build --exclude-resource-type unit_test --select x`."))
    progress.on_dbt_line("Running with dbt=1.11.16")
    for node in range(1, nodes + 1):
        clock[0] += 1
        progress.on_dbt_line(f"{node} of {nodes} START sql table model filtered.m{node} ...... [RUN]")
        status = "ERROR" if node == 3 else "OK"
        progress.on_dbt_line(
            f"{node} of {nodes} {status} created sql table model filtered.m{node} ...... [{status} in 1s]"
        )


class LogEntry:
    """The two fields RunProgress reads of a Dagster log message (an EventLogEntry without a Dagster event)."""

    dagster_event = None

    def __init__(self, level: int, message: str) -> None:
        self.level, self.user_message = level, message


def test_a_backfill_written_to_a_file_gets_a_bar_line_per_tenth_without_carriage_returns():
    out, err, clock = io.StringIO(), io.StringIO(), [0.0]
    progress = RunProgress(out, err, MONTHS, {}, clock=lambda: clock[0])
    for month in MONTHS:  # one dbt build per month, as a backfill of large months makes them
        dbt_build(progress, [month], 10, clock)
    progress.on_event(LogEntry(30, "not built:\n  2023-05: web_sessions has no file for month=2023-05"))
    lines = out.getvalue().splitlines()
    bars = [line for line in lines if "built" in line and "[" in line]
    assert 5 <= len(bars) <= 10 and "\r" not in out.getvalue() and ANSI not in out.getvalue()
    assert bars[-1].startswith("  dbt 3/3 months built [########################] 100%") and "elapsed 30.0s" in bars[-1]
    assert any(
        line.startswith("  dbt 1/3 months built, build of 2023-")
        and "models and tests [" in line
        and "remaining ~" in line
        for line in bars
    )
    assert sum("dbt ERROR: created sql table model filtered.m3" in line for line in lines) == 3
    assert err.getvalue() == "warning: not built:\n    2023-05: web_sessions has no file for month=2023-05\n"


def test_a_one_month_run_in_a_file_prints_no_bar():
    out, clock = io.StringIO(), [0.0]
    progress = RunProgress(out, io.StringIO(), MONTHS[:1], {}, clock=lambda: clock[0])
    dbt_build(progress, MONTHS[:1], 20, clock)
    assert "months [" not in out.getvalue() and out.getvalue().count("\n") == 1  # the failed node's line


# ---- errors


def test_dbt_errors_keep_dbt_s_messages_without_the_command_line():
    summary = dbt_error_summary(DBT_ERROR)
    assert summary.splitlines()[0] == "dbt failed (exit code 1):"
    assert "stg_online_orders does not exist" in summary and summary.count("Failure in model hd_orders") == 1
    assert "--select" not in summary and "compute logs" not in summary and "5 of 128" not in summary
    assert dbt_error_summary("no month of the run was built") == "no month of the run was built"
    assert dbt_error_summary(DBT_ERROR.split("Errors parsed")[0]) == "dbt failed (exit code 1)"


def test_a_step_error_names_the_error_that_matters():
    from dagster._utils.error import SerializableErrorInfo

    cause = SerializableErrorInfo(
        "feature_store_assets.defs.landing_zone.validation.LandingZoneError: /lz/clients.parquet: file not found\n",
        [],
        "LandingZoneError",
    )
    wrapper = SerializableErrorInfo(
        'dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing op "x":\n',
        [],
        "DagsterExecutionStepExecutionError",
        cause=cause,
    )
    assert describe_error(wrapper) == "LandingZoneError: /lz/clients.parquet: file not found"
    dbt = SerializableErrorInfo(
        f"dagster_dbt.errors.DagsterDbtCliRuntimeError: {DBT_ERROR}", [], "DagsterDbtCliRuntimeError"
    )
    assert describe_error(dbt).startswith(
        "DagsterDbtCliRuntimeError: dbt failed (exit code 1):\nFailure in model hd_orders"
    )


def test_every_failed_check_has_a_reason():
    described = "client_id is never NULL in the run's months."
    dbt_metadata = {"status": dg.MetadataValue.text("fail"), "dagster_dbt/failed_row_count": dg.MetadataValue.int(3)}
    assert check_reason(None, dbt_metadata, described) == (
        "dbt test fail: 3 failing rows; the check: client_id is never NULL in the run's months."
    )
    assert check_reason("2023-02: 40% NULL", {}, None) == "2023-02: 40% NULL"
    assert check_reason("", {"failed_months": dg.MetadataValue.text("2023-02")}) == "failed_months=2023-02"
    assert check_reason(None, {}) == "failed (no details recorded)"


def test_a_missing_landing_zone_or_zip_file_is_one_line_naming_the_variable(tmp_path):
    with pytest.raises(ConfigurationError) as unset:
        Settings.from_env({}, cwd=tmp_path).require_inputs({})
    message = str(unset.value)
    assert "\n" not in message and message.startswith("FEATURE_STORE_RAW_DIR is not set (default data/raw")
    assert f"{tmp_path / 'data' / 'raw'} does not exist" in message and "set FEATURE_STORE_RAW_DIR" in message

    (tmp_path / "lz").mkdir()
    (tmp_path / "lz" / "clinics.parquet").write_bytes(b"")
    env = {"FEATURE_STORE_RAW_DIR": "lz", "FEATURE_STORE_ZIP_INCOME": "irs.csv"}
    with pytest.raises(
        ConfigurationError, match=rf"^FEATURE_STORE_RAW_DIR=lz: {re.escape(str(tmp_path))}/lz holds no clients.parquet"
    ):
        Settings.from_env(env, cwd=tmp_path).require_inputs(env)
    (tmp_path / "lz" / "clients.parquet").write_bytes(b"")
    with pytest.raises(
        ConfigurationError,
        match=rf"^FEATURE_STORE_ZIP_INCOME=irs.csv: {re.escape(str(tmp_path))}/irs.csv does not exist",
    ):
        Settings.from_env(env, cwd=tmp_path).require_inputs(env)


def test_only_the_newest_runs_logs_are_kept(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    for n in range(4):
        run_log_dir(warehouse, f"run-{n}").mkdir(parents=True)
        os.utime(run_log_dir(warehouse, f"run-{n}"), (n, n))
    assert [f.name for f in prune_run_logs(warehouse, keep=2)] == ["run-0", "run-1"]
    assert sorted(f.name for f in (tmp_path / "logs").iterdir()) == ["run-2", "run-3"]


# ---- real runs


def run_cli(args: list[str], folder: Path, cwd: Path | None = None, env: dict[str, str] | None = None):
    """`feature-store <args>` in a child process, stdout and stderr in files; returns (code, seconds, out, err)."""
    out_path, err_path = folder / "stdout.txt", folder / "stderr.txt"
    began = time.monotonic()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        code = subprocess.run(
            [sys.executable, "-m", "feature_store_assets.cli.main", *args],
            stdout=out,
            stderr=err,
            cwd=cwd,
            env=env,
            timeout=600,
        ).returncode
    return code, time.monotonic() - began, out_path.read_text(), err_path.read_text()


def dbt_log_named(text: str) -> Path:
    match = re.search(r"dbt log: (\S+/dbt\.log)", text)
    assert match, text
    return Path(match[1])


@pytest.mark.e2e
def test_a_month_s_run_prints_a_short_view_and_keeps_dbt_s_log_and_verbose_prints_dbt(feature_store, tmp_path):
    code, _, out, err = run_cli(["materialize", "--from", "2023-01", "--to", "2023-01"], tmp_path)
    assert code == 0, out + err
    assert ANSI not in out and ANSI not in err
    assert len((out + err).splitlines()) < 40, out + err
    assert re.search(r"^  dbt models \(\d+ assets\) +ok +\d", out, re.M), out
    assert "Running with dbt" not in out  # dbt's lines are in its log, not on the screen
    log = dbt_log_named(out)
    assert log.parent.parent == feature_store.settings.warehouse.parent / "logs"
    text = log.read_text()
    assert "START sql incremental model filtered.inclinic_transactions" in text and "Completed successfully" in text
    assert ANSI not in text
    assert "materialized 2023-01" in out.splitlines()[-1]

    code, _, out, err = run_cli(["materialize", "--from", "2023-02", "--to", "2023-02", "--verbose"], tmp_path)
    assert code == 0, out + err
    assert "Running with dbt" in out and "OK created sql incremental model filtered.inclinic_transactions" in out
    assert "RUN_SUCCESS" in err  # Dagster's console log
    assert ANSI not in out and ANSI not in err
    assert dbt_log_named(out).exists()


@pytest.mark.e2e
def test_a_table_missing_for_a_month_fails_before_dbt_naming_table_and_month(feature_store, tmp_path):
    shutil.rmtree(feature_store.raw_dir / "web_sessions" / "month=2023-01")
    code, seconds, out, err = run_cli(["materialize", "--from", "2023-01", "--to", "2023-01"], tmp_path)
    assert code == 1, out + err
    assert "web_sessions has no file for month=2023-01" in err
    # the monthly dbt build never started (only the unpartitioned models' short build before it ran)
    assert "Running with dbt" not in (out + err)
    run_log = Path(re.search(r"run log: (\S+)", err)[1])
    assert run_log.exists() and RUN_WINDOW_ENV["min_date"] not in run_log.read_text()
    assert seconds < 90  # loading the definitions and the pre-flight; dbt alone takes longer
    for line in (out + err).splitlines():
        if line.startswith("failed check:"):
            assert re.search(r"\): \S", line), line
    assert ANSI not in out and ANSI not in err and "Traceback" not in err
    assert month_states(feature_store.settings.warehouse)[date(2023, 1, 1)].status == FAILED


def test_a_run_from_a_folder_without_a_landing_zone_fails_at_once_and_creates_nothing(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURE_STORE_")}
    code, seconds, out, err = run_cli(["materialize", "--from", "2023-01", "--to", "2023-01"], tmp_path, elsewhere, env)
    assert code == 1 and seconds < 20, (out, err)
    assert out == "" and len(err.splitlines()) == 1, err
    assert "FEATURE_STORE_RAW_DIR" in err and str(elsewhere / "data" / "raw") in err
    assert list(elsewhere.iterdir()) == []  # no data/ folder, no warehouse, no lock file
