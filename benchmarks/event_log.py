"""The Dagster instance's event writes: Dagster's SQLite event log against the shipped instance's pooled one.

    python -m benchmarks.event_log              # 760 events each, the count of a one-month run
    python -m benchmarks.event_log --events 200

A run stores every event it makes in the instance (a month: 211 asset checks planned and evaluated, 244 step
outputs, 27 assets planned and materialized, about 760 events). Each storage gets a fresh instance folder in
--dir (default: a temporary folder on the same disk as this repository, since fsync costs differ between disks),
and the same events, alternating between the two three times; the medians are printed as milliseconds per event
(wall and CPU) and their ratio. The pooled storage is feature_store_assets/operations/storage.py.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from feature_store_assets.operations.storage import PooledSqliteEventLogStorage

HERE = Path(__file__).resolve().parent
ROUNDS = 3


def materialization_event(run_id: str, asset_key: dg.AssetKey, partition: str) -> EventLogEntry:
    """The event a run stores when it materializes `asset_key`'s `partition` (it also goes to the index file)."""
    event = DagsterEvent(
        DagsterEventType.ASSET_MATERIALIZATION.value,
        "monthly_feature_job",
        event_specific_data=StepMaterializationData(dg.AssetMaterialization(asset_key=asset_key, partition=partition)),
    )
    return EventLogEntry(
        error_info=None,
        level=20,
        user_message="",
        run_id=run_id,
        timestamp=time.time(),
        dagster_event=event,
        job_name="monthly_feature_job",
    )


def events(count: int, run_id: str) -> list[EventLogEntry]:
    """Materializations of 27 assets over 12 partitions."""
    return [
        materialization_event(run_id, dg.AssetKey(["layer", f"model_{n % 27}"]), f"2023-{n % 12 + 1:02d}-01")
        for n in range(count)
    ]


def per_event(storage_class: type[SqliteEventLogStorage], folder: Path, count: int) -> tuple[float, float]:
    storage = storage_class(str(folder))
    batch = events(count, "00000000-0000-0000-0000-000000000001")
    wall, cpu = time.perf_counter(), time.process_time()
    for entry in batch:
        storage.store_event(entry)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    storage.dispose()
    return wall / count * 1000, cpu / count * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.event_log", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=760)
    parser.add_argument("--dir", type=Path, default=HERE / "work")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    storages = {
        "Dagster's SqliteEventLogStorage": SqliteEventLogStorage,
        "pooled (shipped)": PooledSqliteEventLogStorage,
    }
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in storages}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="event-log-") as root:
        for round_number in range(ROUNDS):
            for name, storage_class in storages.items():
                folder = Path(root) / f"{storage_class.__name__}-{round_number}"
                measured[name].append(per_event(storage_class, folder, args.events))
    medians = {
        name: tuple(statistics.median(value[i] for value in values) for i in (0, 1))
        for name, values in measured.items()
    }
    print(f"{args.events} events per storage, median of {ROUNDS} rounds, in {args.dir}")
    print(f"{'storage':36} {'ms/event wall':>14} {'ms/event CPU':>13}")
    for name, (wall, cpu) in medians.items():
        print(f"{name:36} {wall:14.2f} {cpu:13.2f}")
    stock, pooled = medians.values()
    print(f"Dagster's / pooled: {stock[0] / pooled[0]:.1f}x wall, {stock[1] / pooled[1]:.1f}x CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
