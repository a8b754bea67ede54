"""One run on the warehouse at a time (runs.py's lock) and dead runs marked failed, with real processes.

The lock is held by a second real process (a child Python holding it, or a real
`feature-store materialize`); runs are real Dagster runs of the monthly job.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import dagster as dg
import pytest

from feature_store_assets.definitions import build_definitions
from feature_store_assets.defs.schedules.monthly import MONTHLY_JOB
from feature_store_assets.operations import runs
from feature_store_assets_tests.support.operations import duplicate_keys, kill, months_of, wait_for

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from feature_store_assets.operations import runs
    runs.acquire(Path(sys.argv[1]), "run-of-the-other-process", "feature-store materialize --from 2023-01 --to 2023-01")
    print("locked", flush=True)
    time.sleep(120)
    """
)


@pytest.fixture
def holder(feature_store):
    """A second process holding the feature store's warehouse lock; killed at the end."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(feature_store.settings.warehouse)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "locked"
        yield process
    finally:
        kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def run_of(status: dg.DagsterRunStatus, **tags: str) -> dg.DagsterRun:
    return dg.DagsterRun(job_name=MONTHLY_JOB, status=status, tags=tags)


def test_dead_runs_are_the_runs_in_progress_of_this_host_whose_process_is_gone():
    alive = {100}.__contains__
    dead_started = run_of(dg.DagsterRunStatus.STARTED, **runs.process_tags(200, "here"))
    dead_starting = run_of(dg.DagsterRunStatus.STARTING, **runs.process_tags(201, "here"))
    candidates = [
        dead_started,
        dead_starting,
        run_of(dg.DagsterRunStatus.STARTED, **runs.process_tags(100, "here")),  # its process runs
        run_of(dg.DagsterRunStatus.STARTED, **runs.process_tags(200, "elsewhere")),  # another host: cannot tell
        run_of(dg.DagsterRunStatus.STARTED),  # no process recorded (a run worker before its resources)
        run_of(dg.DagsterRunStatus.FAILURE, **runs.process_tags(200, "here")),  # already finished
    ]
    assert runs.dead_runs(candidates, "here", alive) == [dead_started, dead_starting]
    assert "pid 200 on here" in runs.dead_run_message(dead_started)


def test_the_lock_refuses_a_second_process_naming_the_holder_and_goes_with_the_holders_death(feature_store, holder):
    warehouse = feature_store.settings.warehouse
    with pytest.raises(runs.RunInProgress) as refused:
        runs.acquire(warehouse, "a-second-run")
    message = str(refused.value)
    assert (
        f"a feature-store run is in progress on {warehouse}: run run-of-the-other-process (pid {holder.pid} on "
        in message
    )
    assert "started by `feature-store materialize --from 2023-01 --to 2023-01`" in message
    assert f"fuser -v {warehouse}.lock" in message
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    runs.acquire(warehouse, "a-second-run")  # at once: the lock died with its process
    try:
        assert json.loads(runs.lock_path(warehouse).read_text())["run_id"] == "a-second-run"
    finally:
        runs.release(warehouse)
    assert runs.lock_path(warehouse).read_text() == ""  # released: no holder named any more


def test_a_run_launched_outside_the_cli_is_refused_before_any_step_runs(feature_store, holder):
    """As a run worker of the UI or the daemon runs the job: the resource takes the lock before the first step."""
    job = build_definitions(feature_store.settings).resolve_job_def(MONTHLY_JOB)
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, partition_key="2023-01-01", raise_on_error=False)
    assert not result.success
    assert [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START] == []
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE]
    assert "a feature-store run is in progress" in failure.event_specific_data.error.to_string()
    assert not feature_store.settings.warehouse.exists()


@pytest.mark.e2e
def test_a_second_materialize_refuses_at_once_while_the_first_runs_and_the_first_succeeds(feature_store):
    warehouse = feature_store.settings.warehouse
    command = [
        sys.executable,
        "-m",
        "feature_store_assets.cli.main",
        "materialize",
        "--from",
        "2023-01",
        "--to",
        "2023-01",
    ]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        holder = wait_for(
            lambda: (
                runs.parse_holder(runs.lock_path(warehouse).read_text()) if runs.lock_path(warehouse).exists() else None
            ),
            timeout=60,
            interval=0.1,
            what="the first run to take the lock",
        )
        began = time.monotonic()
        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
        took = time.monotonic() - began
        assert first.poll() is None, "the first run finished before the second was refused: the test proves nothing"
        assert second.returncode == 1
        assert (
            f"a feature-store run is in progress on {warehouse}: run {holder['run_id']} (pid {first.pid} "
            in second.stderr
        )
        assert took < 30, f"the second run took {took:.1f}s to refuse"  # Python and Dagster's import, on a busy machine
        _, errors = first.communicate(timeout=600)
        assert first.returncode == 0, errors
    finally:
        kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)

    assert months_of(warehouse) == months_of(feature_store.settings.analytics) and list(months_of(warehouse)) == [
        "2023-01"
    ]
    assert set(duplicate_keys(warehouse).values()) == {0}
    with dg.DagsterInstance.from_config(str(feature_store.root / "dagster_home")) as instance:
        [run] = instance.get_runs()  # the refused run never became a run
        assert run.run_id == holder["run_id"] and run.status == dg.DagsterRunStatus.SUCCESS


def test_the_cli_and_the_ui_use_one_instance_by_default_overridable(tmp_path, monkeypatch):
    from feature_store_assets.cli.main import main, parser
    from feature_store_assets.operations import instance as operations

    assert operations.instance_home(None, {}) == operations.SHIPPED_DAGSTER_HOME
    assert operations.instance_home(None, {"DAGSTER_HOME": str(tmp_path)}) == tmp_path
    assert operations.instance_home(str(tmp_path / "other"), {"DAGSTER_HOME": str(tmp_path)}) == tmp_path / "other"
    assert parser().parse_args(["materialize", "--from", "2023-01", "--to", "2023-01"]).dagster_home is None

    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((operations.SHIPPED_DAGSTER_HOME / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    launched = {}
    monkeypatch.setattr(operations.os, "execvpe", lambda file, args, env: launched.update(env=env))
    assert main(["ui"]) == 0
    assert launched["env"]["DAGSTER_HOME"] == str(home)  # the UI opens the instance the CLI's runs went to
