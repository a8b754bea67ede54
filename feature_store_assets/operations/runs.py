"""One run on the warehouse at a time, and no dead run holding Dagster's queue.

The run lock. DuckDB lets one process write a file, and a second writer fails at whatever step
first opens it (`Could not set lock on file`). So the process that executes a run (the CLI's
process for `feature-store materialize`, the run worker for a run launched from the UI or a
schedule) takes an exclusive OS lock (flock) on `<warehouse>.lock` before any step runs, and
writes there who holds it (run id, pid, host, start time, command). A second run refuses at
once with that record instead of failing halfway. The OS releases the lock when the process
ends, killed or not, so a lock is never left behind; the file itself stays (and is emptied).

Dead runs. A run whose process was killed stays STARTED in the Dagster instance forever (its
process reports nothing any more), and with one run at a time the daemon's queue then waits
for good. Every run records its process (PID_TAG, HOST_TAG); `reap_dead_runs` marks a run of
this host whose process is gone as failed. It runs when the CLI starts a run, when
`feature-store ui` starts, and every 30 s in the daemon (`dead_run_sensor`).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import dagster as dg

PID_TAG = "feature_store/pid"
HOST_TAG = "feature_store/host"
IN_PROGRESS = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)
REAP_INTERVAL_SECONDS = 30


class RunInProgress(RuntimeError):
    """Another run holds the warehouse; the message says which and what to do."""


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


def process_tags(pid: int | None = None, host: str | None = None) -> dict[str, str]:
    """The tags that let `reap_dead_runs` tell whether a run's process is still there."""
    return {PID_TAG: str(os.getpid() if pid is None else pid), HOST_TAG: host or socket.gethostname()}


def holder_record(run_id: str | None, command: str | None = None, now: datetime | None = None) -> dict[str, object]:
    return {
        "run_id": run_id,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "command": command or " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]),
    }


def in_progress_message(warehouse: Path, holder: Mapping[str, object]) -> str:
    """What a refused run prints: who holds the warehouse, since when, and what to do."""
    lock = lock_path(warehouse)
    pid = holder.get("pid", "?")
    return (
        f"a feature-store run is in progress on {warehouse}: run {holder.get('run_id') or '(id not recorded yet)'} "
        f"(pid {pid} on {holder.get('host', '?')}, since {holder.get('started_at', '?')}, "
        f"started by `{holder.get('command', '?')}`); wait for it to finish (see it in the UI: feature-store ui, "
        f"then Runs) and run again. The lock goes with the process: if pid {pid} is gone, a process it started "
        f"still holds {lock}; find it with `fuser -v {lock}` and stop it"
    )


def parse_holder(text: str) -> dict[str, object]:
    try:
        record = json.loads(text)
    except ValueError:  # the holder took the lock an instant ago and has not written its record yet
        return {}
    return record if isinstance(record, dict) else {}


@dataclass
class _Held:
    file: IO[str]
    count: int


# Locks this process holds, by lock file: the CLI takes the lock before the run starts and the
# run's resource takes it again in the same process (flock would refuse a second open file).
_HELD: dict[Path, _Held] = {}


def acquire(warehouse: Path, run_id: str | None, command: str | None = None) -> None:
    """Take the warehouse's run lock, or raise RunInProgress at once naming the run that holds it."""
    path = lock_path(Path(warehouse).resolve())
    held = _HELD.get(path)
    if held:
        held.count += 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    file = open(path, "a+")  # never truncated before the lock is ours: it names the holder
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.seek(0)
        holder = parse_holder(file.read())
        file.close()
        raise RunInProgress(in_progress_message(Path(warehouse), holder)) from None
    file.truncate(0)
    file.write(json.dumps(holder_record(run_id, command)) + "\n")
    file.flush()
    _HELD[path] = _Held(file, 1)


def release(warehouse: Path) -> None:
    path = lock_path(Path(warehouse).resolve())
    held = _HELD.get(path)
    if held is None:
        return
    held.count -= 1
    if held.count == 0:
        del _HELD[path]
        held.file.truncate(0)
        fcntl.flock(held.file, fcntl.LOCK_UN)
        held.file.close()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:  # a zombie is dead, only not reaped by its parent yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def dead_runs(
    runs: Iterable[dg.DagsterRun], host: str, alive: Callable[[int], bool] = process_alive
) -> list[dg.DagsterRun]:
    """Runs in progress whose recorded process on this host is gone (runs of other hosts, or without the tags, are left)."""
    found = []
    for run in runs:
        pid = run.tags.get(PID_TAG, "")
        if run.status in IN_PROGRESS and run.tags.get(HOST_TAG) == host and pid.isdigit() and not alive(int(pid)):
            found.append(run)
    return found


def dead_run_message(run: dg.DagsterRun) -> str:
    return (
        f"feature-store: the process of this run (pid {run.tags[PID_TAG]} on {run.tags[HOST_TAG]}) is gone "
        "(killed, or out of memory) while the run was in progress; marked failed so the queue moves on. "
        "Nothing was published; re-run its months."
    )


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark every run whose process is gone as failed; their ids."""
    candidates = instance.get_runs(filters=dg.RunsFilter(statuses=list(IN_PROGRESS)))
    reaped = []
    for run in dead_runs(candidates, socket.gethostname()):
        current = instance.get_run_by_id(run.run_id)  # it may have finished since the query
        if current is not None and current.status in IN_PROGRESS:
            instance.report_run_failed(current, message=dead_run_message(current))
            reaped.append(run.run_id)
    return reaped


@dg.sensor(
    minimum_interval_seconds=REAP_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks runs whose process is gone (a killed `feature-store materialize`, a run worker that died "
    "with its code server) as failed, so the one-run-at-a-time queue moves on. Launches nothing.",
)
def dead_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    reaped = reap_dead_runs(context.instance)
    return dg.SkipReason(f"marked failed, their process gone: {', '.join(reaped)}" if reaped else "no dead runs")
