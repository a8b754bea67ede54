"""The shipped instance's SQLite event log (operations/storage.py): the rows Dagster's own storage writes, in the
files Dagster's own storage reads, with connections kept open only where that is safe."""

from __future__ import annotations

import multiprocessing
import shutil

import dagster as dg
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from benchmarks.event_log import materialization_event
from feature_store_assets.operations import instance as operations
from feature_store_assets.operations.storage import (
    KEPT_ENGINES,
    FeatureStoreInstance,
    PooledSqliteEventLogStorage,
)

ASSET = dg.AssetKey(["features", "client_features"])


def materialization(run_id: str, partition: str) -> EventLogEntry:
    return materialization_event(run_id, ASSET, partition)


def run_id(number: int) -> str:
    return f"{number:08d}-0000-0000-0000-000000000000"


def shipped_home(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(operations.SHIPPED_DAGSTER_HOME / "dagster.yaml", home / "dagster.yaml")
    return home


def partitions_seen_by_dagsters_own_storage(home) -> list[str]:
    storage = SqliteEventLogStorage(str(home / "history" / "runs"))
    records = storage.fetch_materializations(ASSET, limit=1000).records
    return sorted(record.partition_key for record in records)


def test_the_shipped_instance_keeps_its_event_log_in_its_folder_where_dagsters_storage_reads_it(tmp_path):
    home = shipped_home(tmp_path)
    with operations.open_instance(home) as instance:
        assert isinstance(instance, FeatureStoreInstance)
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        for number in range(3):
            instance.event_log_storage.store_event(materialization(run_id(number), f"2023-0{number + 1}-01"))
        stored = instance.event_log_storage.get_logs_for_run(run_id(1))
        assert [entry.dagster_event.partition for entry in stored] == ["2023-02-01"]
    assert sorted(path.name for path in (home / "history" / "runs").glob("0*.db")) == [
        f"{run_id(number)}.db" for number in range(3)
    ]
    assert partitions_seen_by_dagsters_own_storage(home) == ["2023-01-01", "2023-02-01", "2023-03-01"]


def test_a_storage_configured_in_dagster_yaml_is_used_as_it_is(tmp_path):
    home = shipped_home(tmp_path)
    (home / "dagster.yaml").write_text(
        (home / "dagster.yaml").read_text() + f"\nstorage:\n  sqlite:\n    base_dir: {tmp_path / 'elsewhere'}\n"
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance, FeatureStoreInstance)
        assert type(instance.event_log_storage) is SqliteEventLogStorage
        instance.event_log_storage.store_event(materialization(run_id(1), "2023-01-01"))
    assert (tmp_path / "elsewhere" / "history" / "runs" / f"{run_id(1)}.db").exists()


def test_it_keeps_a_bounded_number_of_files_open_and_a_wipe_closes_them_first(tmp_path):
    storage = PooledSqliteEventLogStorage(str(tmp_path / "runs"))
    runs = KEPT_ENGINES + 5
    for number in range(runs):
        storage.store_event(materialization(run_id(number), "2023-01-01"))
    assert len(storage._engines) == KEPT_ENGINES
    assert "index" in storage._engines  # written with every materialization: never the least recently used
    # an evicted run's file is opened again when it is read
    assert len(storage.get_logs_for_run(run_id(0))) == 1
    storage.wipe()
    assert list(storage._engines) == ["index"]  # the runs' files are gone, their engines too; the index is emptied
    assert not list((tmp_path / "runs").glob("0*.db"))
    storage.store_event(materialization(run_id(99), "2023-05-01"))
    assert [entry.run_id for entry in storage.get_logs_for_run(run_id(99))] == [run_id(99)]
    storage.dispose()
    assert storage._engines == {}


def _store_in_child(storage: PooledSqliteEventLogStorage, number: int, answers) -> None:
    inherited = storage._engines[run_id(number)]
    storage.store_event(materialization(run_id(number), "2023-04-01"))
    answers.put(storage._engines[run_id(number)] is not inherited)


def test_a_forked_process_opens_its_own_connections(tmp_path):
    storage = PooledSqliteEventLogStorage(str(tmp_path / "runs"))
    storage.store_event(materialization(run_id(1), "2023-01-01"))
    fork = multiprocessing.get_context("fork")
    answers = fork.Queue()
    child = fork.Process(target=_store_in_child, args=(storage, 1, answers))
    child.start()
    assert answers.get(timeout=60) is True  # the child wrote through an engine of its own
    child.join(60)
    assert child.exitcode == 0
    storage.store_event(materialization(run_id(1), "2023-02-01"))
    partitions = [entry.dagster_event.partition for entry in storage.get_logs_for_run(run_id(1))]
    assert partitions == ["2023-01-01", "2023-04-01", "2023-02-01"]
