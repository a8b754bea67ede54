"""Helpers of the operations tests: key uniqueness in a DuckDB file, file digests, child processes."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import duckdb

from feature_store_assets.core.months import RUN_WINDOW_ENV

# Every month table's key, as its dbt tests state it.
TABLE_KEYS = {
    "features.client_features": ("client_id", "feature_month"),
    "aggregation.client_monthly_financials": ("client_id", "activity_month"),
    "aggregation.client_monthly_inclinic_mix": ("client_id", "activity_month"),
    "aggregation.client_monthly_web_engagement": ("client_id", "activity_month"),
    "aggregation.clinic_monthly_revenue": ("clinic_id", "activity_month"),
    "aggregation.category_pair_monthly_visits": ("activity_month", "product_category", "paired_category"),
    "filtered.inclinic_transactions": ("transaction_id", "event_month"),
    "filtered.hd_orders": ("transaction_id", "event_month"),
    "filtered.web_sessions": ("session_id", "event_month"),
    "quality.materialized_months": ("model", "month"),
}


def duplicate_keys(path: Path) -> dict[str, int]:
    """Keys found more than once, per table of TABLE_KEYS present in the file (all zeros when clean)."""
    found = {}
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {  # tables (the warehouse) and views (the analytics file, over the published store)
            f"{s}.{t}"
            for s, t in con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        }
        for table, key in TABLE_KEYS.items():
            if table in tables:
                columns = ", ".join(key)
                found[table] = con.execute(
                    f"select count(*) from (select {columns} from {table} group by all having count(*) > 1)"
                ).fetchone()[0]
    return found


def months_of(path: Path, table: str = "features.client_features", column: str = "feature_month") -> dict[str, int]:
    """Rows per month ('YYYY-MM') of a table."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            f"select strftime({column}, '%Y-%m'), count(*) from {table} group by 1 order by 1"
        ).fetchall()
    return dict(rows)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def child_pids(pid: int) -> list[int]:
    """Direct children of a process, from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll until condition() is truthy; its value, or AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def environ(pid: int) -> dict[str, str]:
    try:
        entries = (Path("/proc") / str(pid) / "environ").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return {}
    return dict(entry.split("=", 1) for entry in entries if "=" in entry)


def dbt_build_child(pid: int) -> int | None:
    """The monthly `dbt build` process a run started (the one given the run's months in its environment, not the
    unpartitioned models' build before it), if it is running now."""
    for child in child_pids(pid):
        if "dbt" in cmdline(child) and " build " in cmdline(child) and RUN_WINDOW_ENV["min_date"] in environ(child):
            return child
    return None


def starting_with(disposition, *signals):
    """A Popen preexec_fn: the child starts with `signals` at `disposition`. signal.SIG_IGN and SIGINT: as a script's
    background job starts; SIGTERM too: after Dagster ran in that script (it gives SIGTERM what SIGINT does)."""
    import signal

    def preexec() -> None:
        for signum in signals:
            signal.signal(signum, disposition)

    return preexec


def kill(pid: int, sig) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def kill_in_dbt(run, warehouse: Path, timeout: float = 120) -> str:
    """SIGKILL a `feature-store materialize` process while its dbt build rewrites a month; the killed run's id.

    Checks that dbt dies with it (an orphan would keep the warehouse locked against the next run).
    """
    import signal

    from feature_store_assets.operations.runs import lock_path, parse_holder

    dbt = wait_for(lambda: dbt_build_child(run.pid), timeout=timeout, interval=0.1, what="the run's dbt build")
    run_id = parse_holder(lock_path(warehouse).read_text())["run_id"]
    time.sleep(2.0)  # dbt is rewriting the month
    assert alive(dbt), "dbt finished before the kill: the test would prove nothing"
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    wait_for(lambda: not alive(dbt), timeout=3, what="dbt to die with its run")
    return run_id


class DagsterServers:
    """dagster-webserver and dagster-daemon on loopback, on a copy of the shipped instance configuration
    (or of `instance_yaml`, another instance template such as dagster.postgres.yaml)."""

    def __init__(self, root: Path, env: dict[str, str], instance_yaml: Path | None = None):
        import socket

        from feature_store_assets.operations.instance import prepare_instance
        from feature_store_assets_tests.conftest import instance_home_copy

        self.root = root
        self.home = instance_home_copy(root / "dagster_home", instance_yaml)
        prepare_instance(self.home)  # storage and pool limit exist before two processes open them
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "DAGSTER_HOME": str(self.home)}
        self.processes: list = []

    def start(self, timeout: float = 240, daemon: bool = True) -> None:
        """Start the webserver (and the daemon unless daemon=False: then start_daemon() later) and wait for the code."""
        from feature_store_assets.core.paths import WORKSPACE

        self._spawn("webserver", ["dagster-webserver", "-h", "127.0.0.1", "-p", str(self.port), "-w", str(WORKSPACE)])
        if daemon:
            self.start_daemon()
        wait_for(self._location_loaded, timeout=timeout, interval=1, what=f"the Dagster webserver on {self.url}")

    def start_daemon(self) -> None:
        from feature_store_assets.core.paths import WORKSPACE

        self._spawn("daemon", ["dagster-daemon", "run", "-w", str(WORKSPACE)])

    def _spawn(self, name: str, command: list[str]) -> None:
        import signal
        import subprocess
        import sys

        from feature_store_assets.core.paths import REPO_DIR

        command = [str(Path(sys.executable).parent / command[0]), *command[1:]]
        log = open(self.root / f"{name}.log", "wb")
        self.processes.append(
            subprocess.Popen(
                command,
                cwd=REPO_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # as a supervisor starts them, whatever the test run inherited: Dagster's servers give SIGTERM what
                # SIGINT does, so with SIGINT ignored (pytest in a script's background) stop() would wait 30 s each
                preexec_fn=starting_with(signal.SIG_DFL, signal.SIGINT, signal.SIGTERM),
            )
        )

    def _location_loaded(self) -> bool:
        for process in self.processes:
            if process.poll() is not None:
                raise AssertionError(f"{process.args[0]} exited with {process.returncode}: see {self.root}")
        try:
            entries = self.gql(
                "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
            )["workspaceOrError"]["locationEntries"]
        except OSError:
            return False
        for entry in entries:
            if entry["locationOrLoadError"] and entry["locationOrLoadError"]["__typename"] == "PythonError":
                raise AssertionError(f"code location failed to load: {entry['locationOrLoadError']['message']}")
        self.location = entries[0]["name"] if entries else None
        return bool(entries) and all(e["loadStatus"] == "LOADED" and e["locationOrLoadError"] for e in entries)

    def gql(self, query: str, variables: dict | None = None) -> dict:
        import json
        import urllib.request

        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def stop(self) -> None:
        import signal
        import subprocess

        for process in self.processes:  # each leads its own session: its code servers and run workers go with it
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)
