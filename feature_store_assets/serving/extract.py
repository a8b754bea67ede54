"""`POST /extract`: start the monthly job for one month, as `feature-store materialize` does, in its own process.

The run goes through the Dagster instance the UI shows (DAGSTER_HOME, operations/instance.py) and holds
the warehouse's run lock (operations/runs.py) like any run: a second extraction, or one while any other
run holds the warehouse, is refused at once naming the run that holds it. The answer is the run id to
poll (`GET /extract/{run_id}`); once the run succeeded, the poll answers the features' counts for the
month, read from the published file's `features.feature_month_values`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from feature_store_assets.core.months import format_month
from feature_store_assets.core.settings import Settings
from feature_store_assets.defs.checks.freshness import landed_months, latest_complete_month
from feature_store_assets.operations.runs import RunInProgress, acquire, lock_path, parse_holder, release
from feature_store_assets.serving.catalog import MONTH_VALUES_TABLE
from feature_store_assets.serving.published import SNAPSHOT_COLUMN, open_analytics
from feature_store_assets.warehouse.connections import table_exists

RUN_ID_WAIT_SECONDS = 60.0
STARTED, RUNNING, SUCCEEDED, FAILED = "started", "running", "succeeded", "failed"


class ExtractRefused(Exception):
    """The extraction cannot start; `status` is the HTTP status (409 a run holds the warehouse, 400 bad month)."""

    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass
class Extraction:
    run_id: str
    month: date
    process: subprocess.Popen
    log: Path
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def status(self) -> str:
        code = self.process.poll()
        return RUNNING if code is None else SUCCEEDED if code == 0 else FAILED


def month_to_extract(requested: date | None, raw_dir: Path, today: date) -> date:
    """The requested month, else the latest month every event table has landed before this one."""
    if requested is not None:
        return requested
    latest = latest_complete_month(landed_months(raw_dir), before=today.replace(day=1))
    if latest is None:
        raise ExtractRefused(400, f"the landing zone {raw_dir} holds no complete month: nothing to extract")
    return latest


def feature_counts(analytics: Path, month: date) -> dict[str, int]:
    """Per feature, the rows with a value in `month` of the published file."""
    with open_analytics(analytics) as con:
        if not table_exists(con, MONTH_VALUES_TABLE):
            return {}
        rows = con.execute(
            f"select feature_name, non_null_rows from {MONTH_VALUES_TABLE} where {SNAPSHOT_COLUMN} = ?", [month]
        ).fetchall()
    return {name: int(count) for name, count in rows}


class Extractor:
    """Starts at most one extraction at a time (this process's own guard, then the warehouse's run lock)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.runs: dict[str, Extraction] = {}
        self._guard = threading.Lock()

    def current(self) -> Extraction | None:
        return next((run for run in self.runs.values() if run.status == RUNNING), None)

    def start(self, month: date) -> Extraction:
        with self._guard:
            running = self.current()
            if running is not None:
                raise ExtractRefused(
                    409, f"an extraction is running: run {running.run_id} ({format_month(running.month)}); poll it"
                )
            warehouse = self.settings.warehouse
            try:  # the lock is free now, or another run holds it: refuse before starting a process
                acquire(warehouse, None, command="feature-store serve (probe)")
            except RunInProgress as error:
                raise ExtractRefused(409, str(error)) from None
            release(warehouse)
            log = warehouse.parent / "logs" / f"extract-{format_month(month)}-{int(time.time())}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("w") as out:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "feature_store_assets.cli.main",
                        "materialize",
                        "--from",
                        format_month(month),
                        "--to",
                        format_month(month),
                    ],
                    env={**os.environ, **self.settings.as_env()},
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            run_id = self._run_id(process, log)
            extraction = Extraction(run_id, month, process, log)
            self.runs[run_id] = extraction
            return extraction

    def _run_id(self, process: subprocess.Popen, log: Path) -> str:
        """The run id the child wrote into the lock, as soon as it holds it."""
        path = lock_path(self.settings.warehouse.resolve())
        deadline = time.monotonic() + RUN_ID_WAIT_SECONDS
        while time.monotonic() < deadline:
            holder = parse_holder(path.read_text()) if path.exists() else {}
            if holder.get("pid") == process.pid and holder.get("run_id"):
                return str(holder["run_id"])
            if process.poll() is not None:
                tail = log.read_text()[-2000:].strip()
                if "a feature-store run is in progress" in tail:
                    raise ExtractRefused(409, tail.splitlines()[-1])
                raise ExtractRefused(500, f"the extraction did not start (exit {process.returncode}): {tail}")
            time.sleep(0.1)
        process.terminate()
        raise ExtractRefused(500, f"the extraction did not take the run lock within {RUN_ID_WAIT_SECONDS:.0f} s: {log}")

    def report(self, run_id: str) -> dict[str, object] | None:
        """The contract's extract answer for a run this server started, or None for an unknown run id."""
        run = self.runs.get(run_id)
        if run is None:
            return None
        status = run.status
        counts: dict[str, int] = {}
        if status == SUCCEEDED:
            counts = feature_counts(self.settings.analytics, run.month)
            message = f"extracted {format_month(run.month)}: run {run_id} succeeded"
        elif status == FAILED:
            message = (
                f"run {run_id} ({format_month(run.month)}) failed (exit {run.process.returncode}); its log: {run.log}"
            )
        else:
            message = f"run {run_id} ({format_month(run.month)}) is running; poll GET /extract/{run_id}"
        return {
            "message": message,
            "features_extracted": counts,
            "total_features": len(counts),
            "run_id": run_id,
            "month": format_month(run.month),
            "status": status,
        }
