"""The store's Delta tables (delta-rs): month partition replacement, whole rewrites, rollback and vacuum.

A monthly table is partitioned by its month key; replacing months is one Delta commit that removes those
partitions' files and adds the new ones (an overwrite with a predicate on the month key), so the other
months' files are never touched. Other tables are overwritten whole. Each write is one atomic Delta commit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
from deltalake import DeltaTable, PostCommitHookProperties, write_deltalake

from feature_store_assets.store.versions import Column, DataFile, StoreVersion, TableVersion, table_dir

DELTA_LOG = "_delta_log"
# After each commit delta-rs writes a checkpoint every delta.checkpointInterval (100) commits, so readers need not
# replay the whole log. Its other hook, deleting log entries older than delta.logRetentionDuration (30 days) at a
# checkpoint, is off: a kept store version (a year of monthly publishes by default) must stay restorable, and
# the log is one small JSON file per commit. Data files are removed by `vacuum` below, from the store's versions.
LOG_HOOKS = PostCommitHookProperties(create_checkpoint=True, cleanup_expired_logs=False)


def _with_comments(data: pa.RecordBatchReader, columns: list[Column]) -> pa.RecordBatchReader:
    """The same batches under a schema whose fields carry the column comments (Delta keeps them as field
    metadata `comment`, which Spark shows)."""
    comments = {c.name: c.comment for c in columns if c.comment}
    schema = pa.schema(
        [f.with_metadata({"comment": comments[f.name]}) if f.name in comments else f for f in data.schema]
    )
    return pa.RecordBatchReader.from_batches(schema, (batch.cast(schema) for batch in data))


def month_predicate(month_column: str, months: Iterable[date]) -> str:
    """The Delta predicate selecting the months' partitions."""
    values = ", ".join(f"'{m.isoformat()}'" for m in sorted(set(months)))
    return f'"{month_column}" IN ({values})'


def write_table(
    store_dir: Path,
    schema: str,
    table: str,
    data: pa.RecordBatchReader,
    columns: list[Column],
    comment: str | None,
    month_column: str | None = None,
    replace_months: Iterable[date] | None = None,
) -> int:
    """Commit `data` to the table: replacing only `replace_months` (a monthly table already in the store with
    the same columns), else the whole table. Returns the new Delta version."""
    path = table_dir(store_dir, schema, table)
    path.mkdir(parents=True, exist_ok=True)
    data = _with_comments(data, columns)
    if replace_months is not None:
        write_deltalake(
            str(path),
            data,
            mode="overwrite",
            predicate=month_predicate(month_column, replace_months),
            post_commithook_properties=LOG_HOOKS,
        )
    else:
        write_deltalake(
            str(path),
            data,
            mode="overwrite",
            schema_mode="overwrite",
            partition_by=[month_column] if month_column else None,
            description=comment,
            post_commithook_properties=LOG_HOOKS,
        )
    return DeltaTable(str(path)).version()


def _partition(relative: str) -> dict[str, str]:
    """Partition values from a Hive-style relative path (`feature_month=2024-01-01/part-….parquet`)."""
    return dict(unquote(part).split("=", 1) for part in relative.split("/")[:-1] if "=" in part)


def snapshot_files(store_dir: Path, schema: str, table: str, version: int) -> list[DataFile]:
    """The Parquet files (relative to the table folder), partition values and rows a Delta version reads."""
    path = table_dir(store_dir, schema, table)
    actions = pa.table(DeltaTable(str(path), version=version).get_add_actions(flatten=True))
    files = []
    for row in actions.select(["path", "num_records"]).to_pylist():
        relative = unquote(row["path"])
        files.append(DataFile(relative, _partition(relative), int(row["num_records"] or 0)))
    return sorted(files, key=lambda f: f.path)


def table_version(
    store_dir: Path,
    schema: str,
    table: str,
    version: int,
    columns: list[Column],
    month_column: str | None,
    comment: str | None,
) -> TableVersion:
    return TableVersion(
        schema,
        table,
        version,
        columns,
        snapshot_files(store_dir, schema, table, version),
        month_column,
        comment,
    )


def latest_delta_version(store_dir: Path, schema: str, table: str) -> int | None:
    path = table_dir(store_dir, schema, table)
    if not (path / DELTA_LOG).is_dir():
        return None
    return DeltaTable(str(path)).version()


def restore_table(store_dir: Path, schema: str, table: str, version: int) -> int:
    """Make the table's latest Delta version read what `version` read (a Delta restore, one new commit), unless
    it already is that version. Returns the Delta version that now reads it."""
    path = table_dir(store_dir, schema, table)
    delta = DeltaTable(str(path))
    if delta.version() == version:
        return version
    delta.restore(version)
    return DeltaTable(str(path)).version()


def roll_back_unlisted_commits(store_dir: Path, current: StoreVersion | None) -> list[str]:
    """Tables whose Delta log went on past the current store version (a publish died after committing some
    tables and before its version was recorded) are restored to the current version's content, so the next
    publish starts from what the store lists. Returns the tables rolled back."""
    rolled = []
    for entry in (current.tables if current else {}).values():
        latest = latest_delta_version(store_dir, entry.schema, entry.table)
        if latest is not None and latest != entry.delta_version:
            restore_table(store_dir, entry.schema, entry.table, entry.delta_version)
            rolled.append(entry.name)
    return rolled


def _data_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != DELTA_LOG]
        for name in files:
            yield Path(root) / name


def vacuum(store_dir: Path, kept: Iterable[StoreVersion]) -> list[Path]:
    """Delete every data file under the store's tables that no kept version reads (files of versions dropped
    from the retention, and of publishes that died before their version was recorded); never a file a kept
    version reads. Returns the files deleted."""
    kept = list(kept)
    wanted = {
        table_dir(store_dir, entry.schema, entry.table) / f.path
        for record in kept
        for entry in record.tables.values()
        for f in entry.files
    }
    deleted = []
    store_dir = Path(store_dir)
    for log in sorted(store_dir.glob(f"*/*/{DELTA_LOG}")):
        folder = log.parent
        for path in _data_files(folder):
            if path not in wanted:
                path.unlink()
                deleted.append(path)
        for root, _dirs, _files in os.walk(folder, topdown=False):  # partition folders left empty
            if Path(root) != folder and DELTA_LOG not in Path(root).parts and not any(Path(root).iterdir()):
                Path(root).rmdir()
    return deleted
