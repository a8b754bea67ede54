"""The operating setup without servers: the shipped instance, `feature-store ui`, the dbt wrapper,
the freshness rule and the JSON logs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from feature_store_assets.cli.main import main
from feature_store_assets.core.resources import WAREHOUSE_POOL, DuckDBFile
from feature_store_assets.core.settings import ConfigurationError, Settings
from feature_store_assets.definitions import build_definitions
from feature_store_assets.defs.checks.freshness import (
    FRESH,
    FRESHNESS_JOB,
    OVERDUE,
    SOURCE_LATE,
    UNPUBLISHED,
    freshness,
    freshness_result,
    landed_months,
    latest_complete_month,
    latest_due_month,
    latest_published_month,
    month_due,
)
from feature_store_assets.defs.dbt.process import WRAPPER_NAME
from feature_store_assets.defs.landing_zone.validation import EVENT_TABLES
from feature_store_assets.defs.schedules.monthly import MONTHLY_JOB
from feature_store_assets.operations import instance as operations
from feature_store_assets.operations.logs import run_loggers
from feature_store_assets_tests.support.operations import alive, child_pids, kill, starting_with, wait_for
from feature_store_assets_tests.support.serving import free_port

SETTINGS = Settings.from_env({"FEATURE_STORE_START_MONTH": "2023-01"})


@pytest.fixture(scope="module")
def defs():
    return build_definitions(SETTINGS)


@pytest.fixture
def instance_home(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(operations.SHIPPED_DAGSTER_HOME / "dagster.yaml", home / "dagster.yaml")
    return home


def test_shipped_instance_runs_one_run_at_a_time_and_serializes_the_warehouse_pool(instance_home):
    operations.prepare_instance(instance_home)
    with dg.DagsterInstance.from_config(str(instance_home)) as instance:
        config = instance.get_concurrency_config()
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert config.run_queue_config.max_concurrent_runs == 1
        assert config.pool_config.pool_granularity.value == "run"
        assert config.pool_config.default_pool_limit == 1
        assert instance.run_monitoring_enabled
        # set explicitly: the daemon's first pass over a pool without a stored limit lets every run through
        limits = {pool.name: (pool.limit, pool.from_default) for pool in instance.event_log_storage.get_pool_limits()}
        assert limits[WAREHOUSE_POOL] == (1, False)


def test_every_step_that_opens_the_warehouse_is_in_its_pool(defs):
    unpooled = {
        assets_def.node_def.name
        for assets_def in defs.resolve_asset_graph().assets_defs
        if assets_def.is_executable and assets_def.node_def.pool != WAREHOUSE_POOL
    }
    # the freshness check reads only the analytics file and the landing zone's folder names;
    # quality_checks (checks/quality.py) reads the warehouse without the pool, which max_concurrent_runs: 1 covers
    assert unpooled <= {"publish__analytics_database_latest_complete_month_published", "quality_checks"}


def test_ui_command_runs_dagster_dev_on_the_repository_workspace_with_absolute_settings(instance_home, monkeypatch):
    launched = {}
    monkeypatch.setattr(
        operations.os, "execvpe", lambda file, args, env: launched.update(file=file, args=args, env=env)
    )
    monkeypatch.setenv("FEATURE_STORE_WAREHOUSE", "relative/warehouse.duckdb")
    assert main(["ui", "--dagster-home", str(instance_home), "--port", "3999"]) == 0

    args, env = launched["args"], launched["env"]
    assert args[0].endswith("dagster") and args[1] == "dev"
    assert args[args.index("-w") + 1] == str(operations.WORKSPACE)
    assert args[args.index("-h") + 1] == "127.0.0.1" and args[args.index("-p") + 1] == "3999"
    assert env["DAGSTER_HOME"] == str(instance_home)
    assert env["FEATURE_STORE_WAREHOUSE"].startswith("/") and env["FEATURE_STORE_WAREHOUSE"].endswith(
        "relative/warehouse.duckdb"
    )
    assert (instance_home / "history").exists()  # the instance was created before dagster dev


def test_ui_started_in_a_scripts_background_stops_on_sigterm(instance_home, tmp_path):
    """A script's background job (`feature-store ui &`) starts with SIGINT ignored, and `dagster dev` gives SIGTERM
    what SIGINT does: the UI must still stop when a supervisor or `kill` asks it to."""
    import urllib.request

    port = free_port()
    env = {**SETTINGS.as_env(), "FEATURE_STORE_WAREHOUSE": str(tmp_path / "warehouse.duckdb")}
    command = [str(Path(sys.executable).parent / "feature-store"), "ui", "--dagster-home", str(instance_home)]
    ui = subprocess.Popen(
        [*command, "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its webserver, daemon and code server go with it in the cleanup below
        preexec_fn=starting_with(signal.SIG_IGN, signal.SIGINT),  # a script's background job
    )

    def serving() -> bool:
        assert ui.poll() is None, f"feature-store ui exited with {ui.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                return True
        except OSError:
            return False

    try:
        wait_for(serving, timeout=180, interval=1, what="the Dagster UI")
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(timeout=60) == 0
    finally:
        try:
            os.killpg(ui.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        ui.wait(timeout=10)


def test_ui_logs_json_when_asked(instance_home, monkeypatch):
    monkeypatch.setattr(operations.os, "execvpe", lambda file, args, env: None)
    assert "--log-format" not in operations.ui_command()
    monkeypatch.setenv("FEATURE_STORE_LOG_FORMAT", "json")
    assert operations.ui_command()[-2:] == ["--log-format", "json"]


def test_ui_refuses_a_home_without_the_instance_configuration(tmp_path, capsys):
    assert main(["ui", "--dagster-home", str(tmp_path)]) == 1
    assert "dagster.yaml not found" in capsys.readouterr().err


PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen(sys.argv[1:])
    print(child.pid, flush=True)
    time.sleep(120)
    """
)


@pytest.mark.parametrize("through_wrapper", [True, False], ids=["feature-store-dbt", "plain"])
def test_dbt_started_through_the_wrapper_dies_with_the_process_that_started_it(through_wrapper, monkeypatch):
    wrapper = shutil.which(WRAPPER_NAME, path=str(operations.Path(sys.executable).parent))
    assert wrapper, f"{WRAPPER_NAME} is not installed: pip install -e ."
    monkeypatch.setenv("FEATURE_STORE_DBT_EXECUTABLE", "sleep")  # the wrapper execs this instead of dbt
    command = [wrapper, "60"] if through_wrapper else ["sleep", "60"]
    parent = subprocess.Popen([sys.executable, "-c", PARENT, *command], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        wait_for(
            lambda: child in child_pids(parent.pid) and "sleep" in open(f"/proc/{child}/cmdline").read(),
            timeout=10,
            what="the child to exec",
        )
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        if through_wrapper:
            wait_for(lambda: not alive(child), timeout=3, what="the child to die with its parent")
        else:  # the control: without the wrapper the orphan lives on
            time.sleep(1)
            assert alive(child)
    finally:
        kill(child, signal.SIGKILL)
        kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)


def test_the_wrapper_answers_dbt_s_version_question_itself_with_dbt_s_version():
    """dagster-dbt runs `<executable> --version` once per run; the wrapper answers without starting dbt."""
    bin_dir = Path(sys.executable).parent
    ours = subprocess.run([bin_dir / WRAPPER_NAME, "--version"], capture_output=True, text=True, check=True).stdout
    dbts = subprocess.run([bin_dir / "dbt", "--version"], capture_output=True, text=True, check=True).stdout
    version = re.compile(r"(\d+\.\d+\.\d+)")  # what dagster-dbt reads: the first version in the output
    assert version.search(ours)[1] == version.search(dbts)[1]


def test_definitions_start_dbt_through_the_wrapper(defs):
    assert defs.resources["dbt"].dbt_executable.endswith(WRAPPER_NAME)


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (datetime(2024, 3, 5, 5, 59, tzinfo=UTC), date(2024, 1, 1)),  # February is due at 06:00 on the 5th
        (datetime(2024, 3, 5, 6, 0, tzinfo=UTC), date(2024, 2, 1)),
        (datetime(2024, 3, 31, 23, 0, tzinfo=UTC), date(2024, 2, 1)),
        (datetime(2024, 1, 1, 0, 0, tzinfo=UTC), date(2023, 11, 1)),  # across the year
    ],
)
def test_latest_due_month_is_the_previous_month_once_the_schedule_and_grace_days_passed(now, due):
    assert latest_due_month(now) == due
    assert month_due(due) <= now


NOW = datetime(2024, 3, 10, 12, tzinfo=UTC)  # February was due at 2024-03-05 06:00 UTC
SOURCE = Path("/landing/raw")


def test_freshness_is_fresh_once_the_latest_month_due_is_published():
    fresh = freshness(date(2024, 2, 1), date(2024, 2, 1), NOW, SOURCE)
    assert fresh.state == FRESH and fresh.passed and fresh.severity is None
    assert fresh.description == "the analytics file holds 2024-02; 2024-02 was the latest month due"
    result = freshness_result(fresh)
    assert result.passed and result.metadata["state"].value == FRESH
    # a month that has landed but is not due yet is no failure
    early = freshness(date(2024, 1, 1), date(2024, 2, 1), datetime(2024, 3, 3, tzinfo=UTC), SOURCE)
    assert early.passed and "2024-02 has landed and is due at 2024-03-05 06:00 UTC" in early.description


def test_freshness_is_overdue_when_a_landed_month_is_past_due_and_not_published():
    late = freshness(date(2024, 1, 1), date(2024, 2, 1), NOW, SOURCE)
    assert late.state == OVERDUE and not late.passed and late.severity == "ERROR"
    assert "2024-02 has landed in /landing/raw and was due at 2024-03-05 06:00 UTC (5 days ago)" in late.description
    assert late.metadata["awaited_month"] == "2024-02" and late.metadata["days_late"] == 5
    result = freshness_result(late)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["days_late"].value == 5
    # several months behind: the first unpublished month is the one named
    behind = freshness(date(2023, 10, 1), date(2024, 2, 1), NOW, SOURCE)
    assert (
        behind.state == OVERDUE and "2023-11 has landed" in behind.description and "up to 2024-02" in behind.description
    )


def test_freshness_is_source_late_when_the_newest_landed_month_is_published():
    waiting = freshness(date(2024, 1, 1), date(2024, 1, 1), NOW, SOURCE)
    assert waiting.state == SOURCE_LATE and not waiting.passed and waiting.severity == "WARN"
    assert waiting.description.startswith(
        "source late: the landing zone's newest complete month, 2024-01, is published"
    )
    assert "2024-02 was due at 2024-03-05 06:00 UTC (5 days ago)" in waiting.description
    assert "/landing/raw/<table>/month=2024-02/" in waiting.description
    assert freshness_result(waiting).severity == dg.AssetCheckSeverity.WARN
    # historical data (the demo's): years behind the calendar, still the source's delay, not ours
    history = freshness(date(2023, 12, 1), date(2023, 12, 1), datetime(2026, 11, 22, tzinfo=UTC), SOURCE)
    assert history.state == SOURCE_LATE and history.severity == "WARN" and "2024-01 was due" in history.description
    empty = freshness(date(2024, 1, 1), None, NOW, SOURCE)
    assert empty.state == SOURCE_LATE and "the landing zone /landing/raw holds no complete month" in empty.description


def test_freshness_with_nothing_published_is_an_error_only_once_a_landed_month_is_due():
    nothing = freshness(None, None, NOW, SOURCE)
    assert (
        nothing.state == UNPUBLISHED and nothing.severity == "WARN" and "holds no complete month" in nothing.description
    )
    landed = freshness(None, date(2024, 1, 1), NOW, SOURCE)
    assert landed.state == UNPUBLISHED and landed.severity == "ERROR"
    assert "complete months up to 2024-01, which was due at 2024-02-05 06:00 UTC (34 days ago)" in landed.description
    not_due = freshness(None, date(2024, 2, 1), datetime(2024, 3, 3, tzinfo=UTC), SOURCE)
    assert not_due.state == UNPUBLISHED and not_due.severity == "WARN" and "is due at 2024-03-05" in not_due.description


def test_a_month_has_landed_when_every_event_table_has_a_file_and_the_month_is_over(tmp_path):
    def land(table, month, name="part-0.parquet"):
        folder = tmp_path / table / f"month={month}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).touch()  # names only: the check never opens a file

    for table in EVENT_TABLES:
        land(table, "2024-01")
        land(table, "2024-03")  # the current month at NOW: still filling
    land("transactions", "2024-02")
    land("web_sessions", "2024-02")
    (tmp_path / "transactions_inclinic" / "month=2024-02").mkdir()  # a folder without a file has not landed
    land("transactions", "month=bad", "x.parquet")
    (tmp_path / "transactions" / "_SUCCESS").touch()
    landed = landed_months(tmp_path)
    assert landed["transactions"] == {date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)}
    assert landed["transactions_inclinic"] == {date(2024, 1, 1), date(2024, 3, 1)}
    assert latest_complete_month(landed, before=date(2024, 3, 1)) == date(2024, 1, 1)
    assert latest_complete_month(landed, before=date(2024, 4, 1)) == date(2024, 3, 1)
    assert latest_complete_month(landed_months(tmp_path / "missing"), before=date(2024, 3, 1)) is None


def test_the_freshness_job_tells_the_source_s_delay_from_the_store_s(tmp_path):
    analytics = tmp_path / "analytics.duckdb"
    with duckdb.connect(str(analytics)) as con:
        con.execute("create schema features")
        con.execute("create table features.client_features as select date '2023-02-01' as feature_month")
    for table in EVENT_TABLES:
        for month in ("2023-01", "2023-02"):
            (tmp_path / "raw" / table / f"month={month}").mkdir(parents=True)
            (tmp_path / "raw" / table / f"month={month}" / "part-0.parquet").touch()
    settings = Settings.from_env(
        {
            "FEATURE_STORE_START_MONTH": "2023-01",
            "FEATURE_STORE_RAW_DIR": str(tmp_path / "raw"),
            "FEATURE_STORE_ANALYTICS": str(analytics),
            "FEATURE_STORE_WAREHOUSE": str(tmp_path / "w.duckdb"),
        }
    )
    job = build_definitions(settings).resolve_job_def(FRESHNESS_JOB)

    def evaluate():
        result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
        assert result.success  # a failed check is no failed run
        [evaluation] = result.get_asset_check_evaluations()
        return evaluation

    waiting = evaluate()
    assert not waiting.passed and waiting.severity == dg.AssetCheckSeverity.WARN
    assert waiting.metadata["state"].value == SOURCE_LATE and "month=2023-03/" in waiting.description
    for table in EVENT_TABLES:
        (tmp_path / "raw" / table / "month=2023-03").mkdir()
        (tmp_path / "raw" / table / "month=2023-03" / "part-0.parquet").touch()
    late = evaluate()
    assert not late.passed and late.severity == dg.AssetCheckSeverity.ERROR
    assert late.metadata["state"].value == OVERDUE and "2023-03 has landed" in late.description


def test_latest_published_month_is_read_from_the_analytics_file(tmp_path):
    path = tmp_path / "analytics.duckdb"
    assert latest_published_month(DuckDBFile(database=str(path))) is None
    with duckdb.connect(str(path)) as con:
        con.execute("create schema features")
        con.execute(
            "create table features.client_features as select * from (values (date '2024-01-01'), (date '2024-02-01')) t(feature_month)"
        )
    assert latest_published_month(DuckDBFile(database=str(path))) == date(2024, 2, 1)


def test_freshness_check_has_its_own_daily_schedule(defs):
    schedule = defs.resolve_schedule_def("freshness_check_schedule")
    assert schedule.cron_schedule == "0 7 * * *" and schedule.job_name == FRESHNESS_JOB
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    checks = defs.resolve_job_def(FRESHNESS_JOB).asset_layer.asset_graph.asset_check_keys
    assert {c.name for c in checks} == {"latest_complete_month_published"}


def test_json_log_format_swaps_the_console_logger(defs, monkeypatch):
    assert run_loggers({}) is None and run_loggers({"FEATURE_STORE_LOG_FORMAT": "text"}) is None
    assert run_loggers({"FEATURE_STORE_LOG_FORMAT": "JSON"}) == {"console": dg.json_console_logger}
    with pytest.raises(ConfigurationError, match="text or json"):
        run_loggers({"FEATURE_STORE_LOG_FORMAT": "xml"})
    monkeypatch.setenv("FEATURE_STORE_LOG_FORMAT", "json")
    job = build_definitions(SETTINGS).resolve_job_def(MONTHLY_JOB)
    assert job.loggers["console"] is dg.json_console_logger
    assert defs.resolve_job_def(MONTHLY_JOB).loggers.get("console") is not dg.json_console_logger


def test_json_logs_are_one_json_object_a_line(capfd, monkeypatch):
    monkeypatch.setenv("FEATURE_STORE_LOG_FORMAT", "json")

    @dg.asset
    def greeting(context) -> None:
        context.log.info("hello from a run")

    defs = dg.Definitions(assets=[greeting], jobs=[dg.define_asset_job("greet")], loggers=run_loggers())
    console = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}  # as `feature-store materialize` runs
    assert defs.resolve_job_def("greet").execute_in_process(run_config=console).success
    lines = [line for line in capfd.readouterr().err.splitlines() if "hello from a run" in line]
    import json

    assert lines and json.loads(lines[0])["dagster_meta"]["orig_message"] == "hello from a run"
