"""Operating through the Dagster UI: a real dagster-webserver and dagster-daemon on loopback.

The servers run on a copy of the shipped instance configuration (dagster_home/dagster.yaml)
over a generated 8-month landing zone; runs are launched the way the UI launches them (a
browser click, or the UI's GraphQL mutations) and carried out by the daemon's run queue, or
by `feature-store materialize` on the same instance. The servers start once for the module;
its tests run in order on one xdist worker.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from feature_store_assets.core.settings import SAMPLE_ZIP_INCOME
from feature_store_assets.generator import GeneratorOptions, generate_landing_zone
from feature_store_assets_tests.support.browser import ARTIFACTS, browser_page
from feature_store_assets_tests.support.operations import (
    DagsterServers,
    alive,
    child_pids,
    dbt_build_child,
    digest,
    duplicate_keys,
    kill,
    kill_in_dbt,
    months_of,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("dagster_ui")]

ZONE = GeneratorOptions(start_month="2023-01", months=8, clinics=6, clients=400, inclinic_rows_per_month=1500, seed=3)
MONTHS = [f"2023-{m:02d}" for m in range(1, 8)]  # the UI's runs; the CLI's tests add 2023-08
CLI_MONTH = "2023-08"
LAYERS = ("landing_zone", "reference", "filter", "aggregation", "features", "publish")
RUN_TIMEOUT = 420  # seconds for one queued run, on a loaded 2-core machine
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on UnauthorizedError { message } ... on PartitionSetNotFoundError { message } } }"""
LAUNCH_RUN = """
mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }"""
BACKFILL_STATUS = """
query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }"""
RUNS = """
query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
  runId status startTime endTime tags { key value } } } } }"""
PARTITION_STATS = """
query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  partitionStats { numMaterialized numFailed } } } }"""


@pytest.fixture(scope="module")
def dagster(tmp_path_factory):
    root = tmp_path_factory.mktemp("operations_ui")
    generate_landing_zone(root / "raw", ZONE, zip_income_csv=SAMPLE_ZIP_INCOME)
    env = {
        **os.environ,
        "FEATURE_STORE_RAW_DIR": str(root / "raw"),
        "FEATURE_STORE_WAREHOUSE": str(root / "warehouse.duckdb"),
        "FEATURE_STORE_ANALYTICS": str(root / "analytics.duckdb"),
        "FEATURE_STORE_START_MONTH": "2023-01",
        "FEATURE_STORE_ZIP_INCOME": str(SAMPLE_ZIP_INCOME),
    }
    env.pop("FEATURE_STORE_LOG_FORMAT", None)
    servers = DagsterServers(root, env)
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


def warehouse(dagster) -> Path:
    return Path(dagster.env["FEATURE_STORE_WAREHOUSE"])


def analytics(dagster) -> Path:
    return Path(dagster.env["FEATURE_STORE_ANALYTICS"])


def runs(dagster, **filter_) -> list[dict]:
    found = dagster.gql(RUNS, {"filter": filter_})["runsOrError"]["results"]
    for run in found:
        run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
    return sorted(found, key=lambda r: r["startTime"] or float("inf"))


def wait_for_runs(dagster, run_ids: list[str], timeout: float = RUN_TIMEOUT) -> list[dict]:
    def finished():
        found = runs(dagster, runIds=run_ids)
        return found if len(found) == len(run_ids) and all(r["status"] in FINISHED for r in found) else None

    return wait_for(finished, timeout=timeout, interval=2, what=f"runs {run_ids} to finish")


def launch_month(dagster, month: str, **tags: str) -> str:
    """One run of the monthly job for one partition, as the job's Materialize button launches it."""
    tags = {"dagster/partition": f"{month}-01", **tags}
    result = dagster.gql(
        LAUNCH_RUN,
        {
            "params": {
                "selector": {
                    "repositoryLocationName": dagster.location,
                    "repositoryName": "__repository__",
                    "jobName": "monthly_feature_job",
                },
                "executionMetadata": {"tags": [{"key": key, "value": value} for key, value in tags.items()]},
                "runConfigData": {},
                "mode": "default",
            }
        },
    )["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def assert_never_overlapped(finished_runs: list[dict]) -> None:
    spans = sorted((r["startTime"], r["endTime"]) for r in finished_runs if r["startTime"])
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start, f"runs overlapped: {spans}"


def lock_errors(dagster) -> list[str]:
    """Every event or compute log of the instance that mentions DuckDB's lock conflict."""
    from dagster._serdes import serialize_value

    hits = []
    with dg.DagsterInstance.from_config(str(dagster.home)) as instance:
        for run in instance.get_runs():
            for entry in instance.all_logs(run.run_id):
                if "Could not set lock" in serialize_value(entry):
                    hits.append(f"run {run.run_id}: {entry.user_message[:200]}")
    for log in (dagster.home / "storage").rglob("*"):
        if log.is_file() and b"Could not set lock" in log.read_bytes():
            hits.append(str(log))
    return hits


def assert_store_is_clean(dagster, months: list[str]) -> None:
    assert list(months_of(warehouse(dagster))) == months
    assert months_of(analytics(dagster)) == months_of(warehouse(dagster))
    assert all(rows > 0 for rows in months_of(warehouse(dagster)).values())
    assert set(duplicate_keys(warehouse(dagster)).values()) == {0}
    assert set(duplicate_keys(analytics(dagster)).values()) == {0}


def cli_materialize(dagster, month: str) -> subprocess.Popen:
    """`feature-store materialize` for one month on the servers' warehouse and instance (their environment)."""
    return subprocess.Popen(
        [sys.executable, "-m", "feature_store_assets.cli.main", "materialize", "--from", month, "--to", month],
        env=dagster.env,
        cwd=dagster.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_asset_graph_shows_the_layers_and_a_partition_launches_from_the_browser(dagster):
    with browser_page() as page:
        page.goto(f"{dagster.url}/asset-groups")
        for layer in LAYERS:
            page.get_by_text(layer, exact=True).first.wait_for()
        page.get_by_role("button", name="Materialize all").wait_for()
        page.screenshot(path=ARTIFACTS / "dagster-asset-graph.png")
        # the shipped instance turns off Dagster's newsletter prompt (it appears after 1 s otherwise)
        page.wait_for_timeout(1500)
        assert page.get_by_text("Join the Dagster community").count() == 0

        page.get_by_role("button", name="Materialize all").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name="Show all partitions").click()  # 2023 is older than the 90 days shown
        partitions = dialog.locator("input[type=text]").first
        partitions.fill("2023-01-01")
        partitions.press("Enter")
        dialog.get_by_text("1 partition", exact=True).wait_for()
        page.screenshot(path=ARTIFACTS / "dagster-materialize-dialog.png")
        dialog.get_by_role("button", name="Launch 1 run").click()
        dialog.wait_for(state="hidden")

    launched = wait_for(lambda: runs(dagster), timeout=60, interval=1, what="the run the browser launched")
    assert len(launched) == 1 and launched[0]["tags"]["dagster/partition"] == "2023-01-01"
    [run] = wait_for_runs(dagster, [launched[0]["runId"]])
    assert run["status"] == "SUCCESS"
    assert list(months_of(analytics(dagster))) == ["2023-01"]  # published through the same asset


def test_six_month_backfill_from_the_ui_is_one_run_per_step_group_and_never_collides(dagster):
    nodes = dagster.gql("{ assetNodes { assetKey { path } isMaterializable } }")["assetNodes"]
    selection = [node["assetKey"] for node in nodes if node["isMaterializable"]]
    backfill = dagster.gql(
        LAUNCH_BACKFILL,
        {
            "params": {
                "assetSelection": selection,
                "partitionNames": [f"{month}-01" for month in MONTHS[:6]],
                "title": "six months from the test",
            }
        },
    )["launchPartitionBackfill"]
    assert backfill["__typename"] == "LaunchBackfillSuccess", backfill
    backfill_id = backfill["backfillId"]

    def status():
        found = dagster.gql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]["status"]
        return found if found not in ("REQUESTED", "CANCELING", "FAILING") else None

    assert wait_for(status, timeout=900, interval=5, what=f"backfill {backfill_id}") == "COMPLETED_SUCCESS"

    backfill_runs = runs(dagster, tags=[{"key": "dagster/backfill", "value": backfill_id}])
    assert backfill_runs and all(r["status"] == "SUCCESS" for r in backfill_runs)
    ranged = [r for r in backfill_runs if "dagster/asset_partition_range_start" in r["tags"]]
    # single-run backfill policy: the six months go through dbt together, not as six runs
    assert ranged and len(ranged) < 6
    assert {
        (r["tags"]["dagster/asset_partition_range_start"], r["tags"]["dagster/asset_partition_range_end"])
        for r in ranged
    } >= {("2023-01-01", "2023-06-01")}
    assert_never_overlapped(runs(dagster))
    stats = dagster.gql(PARTITION_STATS, {"key": {"path": ["features", "client_features"]}})["assetNodeOrError"]
    assert stats["partitionStats"]["numMaterialized"] == 6 and stats["partitionStats"]["numFailed"] == 0
    assert_store_is_clean(dagster, MONTHS[:6])
    assert lock_errors(dagster) == []


def test_killed_run_worker_fails_its_run_changes_nothing_published_and_a_relaunch_recovers(dagster):
    before = digest(analytics(dagster))
    run_id = launch_month(dagster, "2023-07")
    daemon = dagster.processes[1].pid

    def worker_in_dbt():
        # daemon -> code server -> run worker -> dbt build
        for code_server in child_pids(daemon):
            for worker in child_pids(code_server):
                dbt = dbt_build_child(worker)
                if dbt:
                    return worker, dbt
        return None

    worker, dbt = wait_for(worker_in_dbt, timeout=RUN_TIMEOUT, interval=0.2, what="the run's dbt build")
    time.sleep(2.0)  # dbt is rewriting the month
    assert alive(dbt), "dbt finished before the kill: the test would prove nothing"
    kill(worker, signal.SIGKILL)
    wait_for(lambda: not alive(dbt), timeout=3, what="dbt to die with its run worker")

    [run] = wait_for_runs(dagster, [run_id], timeout=180)  # the code server notices and fails the run
    assert run["status"] == "FAILURE"
    assert digest(analytics(dagster)) == before
    assert "2023-07" not in months_of(analytics(dagster))

    [rerun] = wait_for_runs(dagster, [launch_month(dagster, "2023-07")])  # the queue is not held by the dead run
    assert rerun["status"] == "SUCCESS"
    assert_store_is_clean(dagster, MONTHS)
    assert lock_errors(dagster) == []


def test_runs_queued_together_run_one_at_a_time_in_queue_order(dagster):
    launched = [launch_month(dagster, month) for month in MONTHS[4:7]]  # three months, clicked in a row
    queued = runs(dagster, runIds=launched)
    assert sum(r["status"] in ("QUEUED", "NOT_STARTED") for r in queued) >= 2  # they did wait in the queue together

    finished = wait_for_runs(dagster, launched, timeout=3 * RUN_TIMEOUT)
    assert all(r["status"] == "SUCCESS" for r in finished)
    assert [r["runId"] for r in finished] == launched  # started oldest month first
    assert_never_overlapped(runs(dagster))
    assert_store_is_clean(dagster, MONTHS)
    assert lock_errors(dagster) == []


def ledger_run_ids(dagster, month: str) -> set[str]:
    import duckdb

    with duckdb.connect(str(warehouse(dagster)), read_only=True) as con:
        rows = con.execute(
            "select distinct dagster_run_id from quality.materialized_months where month = ?", [f"{month}-01"]
        ).fetchall()
    return {run_id for (run_id,) in rows}


def test_a_cli_run_shows_in_the_ui_with_its_partition_materialized(dagster):
    cli = cli_materialize(dagster, CLI_MONTH)
    _, errors = cli.communicate(timeout=RUN_TIMEOUT)
    assert cli.returncode == 0, errors
    [run_id] = ledger_run_ids(dagster, CLI_MONTH)  # the ledger's run id is a run of the UI's instance
    [run] = runs(dagster, runIds=[run_id])
    assert run["status"] == "SUCCESS" and run["tags"]["dagster/asset_partition_range_start"] == f"{CLI_MONTH}-01"

    with browser_page() as page:
        page.goto(f"{dagster.url}/runs/{run_id}")
        page.get_by_text("Success", exact=True).first.wait_for()
        page.get_by_text(re.compile(r"^\d+ checks$")).first.wait_for()  # with its check results
        page.screenshot(path=ARTIFACTS / "dagster-cli-run.png")
        page.goto(f"{dagster.url}/assets/features/client_features?view=partitions&partition={CLI_MONTH}-01")
        page.get_by_text("Materialized", exact=True).first.wait_for()
        page.get_by_text(run_id[:8]).first.wait_for()  # the partition's latest materialization: the CLI's run
        page.screenshot(path=ARTIFACTS / "dagster-cli-partition.png")
    stats = dagster.gql(PARTITION_STATS, {"key": {"path": ["features", "client_features"]}})["assetNodeOrError"]
    assert stats["partitionStats"]["numMaterialized"] == len(MONTHS) + 1


def test_a_killed_cli_run_is_marked_failed_and_the_next_queued_run_starts(dagster):
    """The daemon's dead-run sensor fails the run whose process was killed; the queue (one run at a time) moves on."""
    before = digest(analytics(dagster))
    cli = cli_materialize(dagster, CLI_MONTH)
    try:
        killed = kill_in_dbt(cli, warehouse(dagster), timeout=RUN_TIMEOUT)
    finally:
        kill(cli.pid, signal.SIGKILL)
        cli.wait(timeout=30)

    [failed] = wait_for_runs(dagster, [killed], timeout=180)  # the sensor ticks every 30 s
    assert failed["status"] == "FAILURE"
    with dg.DagsterInstance.from_config(str(dagster.home)) as instance:
        messages = [entry.message for entry in instance.all_logs(killed, of_type=dg.DagsterEventType.RUN_FAILURE)]
    assert any(f"pid {cli.pid}" in message and "is gone" in message for message in messages), messages
    assert digest(analytics(dagster)) == before

    # as the monthly schedule launches its run: through the daemon's queue, which the dead run no longer holds
    [scheduled] = wait_for_runs(
        dagster, [launch_month(dagster, CLI_MONTH, **{"dagster/schedule_name": "monthly_feature_schedule"})]
    )
    assert scheduled["status"] == "SUCCESS"
    assert_store_is_clean(dagster, [*MONTHS, CLI_MONTH])
    assert lock_errors(dagster) == []
