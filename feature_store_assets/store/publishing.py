"""Publishing the warehouse's analyst-facing tables as one store version, restoring an earlier one.

Order of a publish, so that dying anywhere leaves the previous version current and readable:
1. roll back any Delta commit past the current version (a publish that died before recording its version);
2. commit each table to Delta: a monthly table already in the store with the same columns gets only the
   published months' partitions replaced, every other table is rewritten whole;
3. write the new analytics file (views over the new files) beside the old one;
4. write the version record (atomic rename): from here the version is listed, whole;
5. swap the analytics file in (os.replace; on failure the record is removed again);
6. keep the last `keep` versions: older records are removed and every data file no kept version reads is
   deleted (the files of the previous versions stay while they are kept, so readers holding an older
   analytics file keep working).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from feature_store_assets.core.months import format_month
from feature_store_assets.core.names import LEDGER
from feature_store_assets.store.analytics_file import build_analytics_file, staging_path
from feature_store_assets.store.tables import (
    restore_table,
    roll_back_unlisted_commits,
    snapshot_files,
    vacuum,
    write_table,
)
from feature_store_assets.store.versions import (
    Column,
    StoreError,
    StoreVersion,
    current_version,
    list_versions,
    read_version,
    remove_version,
    write_version,
)
from feature_store_assets.warehouse.connections import limit_memory, quote, sql_string
from feature_store_assets.warehouse.ledger import mark_published

# Schemas analysts read. The filter layer's event tables stay in the warehouse: they are large and row-level.
PUBLISHED_SCHEMAS = ("features", "aggregation", "quality", "reference", "marts")
DEFAULT_KEEP_VERSIONS = 12
_LEDGER_COPY = "published_ledger"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _next_number(store_dir: Path) -> int:
    current = current_version(store_dir)
    return 1 if current is None else current.version + 1


def warehouse_tables(con: duckdb.DuckDBPyConnection, schemas: Iterable[str]) -> list[tuple[str, str, str | None]]:
    """(schema, table, comment) of the warehouse's tables and views in the schemas (with the Spark target, the
    warehouse reads dbt's tables through views: warehouse/spark.py)."""
    schemas = list(schemas)
    return con.execute(
        "select schema_name, table_name, comment from duckdb_tables() "
        "where database_name = 'warehouse' and list_contains(?, schema_name) "
        "union select schema_name, view_name, comment from duckdb_views() "
        "where database_name = 'warehouse' and list_contains(?, schema_name) and not internal order by 1, 2",
        [schemas, schemas],
    ).fetchall()


def warehouse_columns(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], list[Column]]:
    """(schema, table) -> its columns in order, with DuckDB's type and the comment (from the dbt yml)."""
    columns: dict[tuple[str, str], list[Column]] = {}
    for schema, table, column, data_type, comment in con.execute(
        "select schema_name, table_name, column_name, data_type, nullif(comment, '') from duckdb_columns() "
        "where database_name = 'warehouse' order by schema_name, table_name, column_index"
    ).fetchall():
        columns.setdefault((schema, table), []).append(Column(column, data_type, comment))
    return columns


def _same_columns(a: list[Column], b: list[Column]) -> bool:
    return [(c.name, c.type) for c in a] == [(c.name, c.type) for c in b]


def _swap_in(store_dir: Path, analytics: Path, record: StoreVersion) -> None:
    """Steps 3-5: the new analytics file, then the record, then the swap (the record removed if the swap fails)."""
    staging = build_analytics_file(store_dir, analytics, record)
    try:
        write_version(store_dir, record)
        try:
            os.replace(staging, analytics)
        except BaseException:
            remove_version(store_dir, record.version)
            raise
    finally:
        staging.unlink(missing_ok=True)


def retain(store_dir: Path, keep: int) -> list[Path]:
    """Keep the newest `keep` versions: remove older records, then delete every file no kept version reads."""
    versions = list_versions(store_dir)
    for old in versions[:-keep]:
        remove_version(store_dir, old.version)
    return vacuum(store_dir, versions[-keep:])


def publish(
    warehouse: Path,
    store_dir: Path,
    analytics: Path,
    *,
    run_id: str | None = None,
    months: Iterable[date] | None = None,
    monthly: Mapping[tuple[str, str], tuple[str, Iterable[date] | None]] | None = None,
    descriptions: Mapping[tuple[str, str], str] | None = None,
    keep: int = DEFAULT_KEEP_VERSIONS,
    schemas: Iterable[str] = PUBLISHED_SCHEMAS,
) -> StoreVersion:
    """Publish the warehouse's tables of `schemas` as a new store version and make it current; returns it.

    `monthly`: (schema, table) -> (month column, the months it may publish; None for any) of the monthly
    tables. `months`: the months to (re)place; given, and with the table in the current version with the same
    columns, only those months' partitions are rewritten; otherwise the table is written whole (a monthly one
    restricted to the months it may publish). The ledger's copy marks `months` published. `descriptions`:
    table comments (dbt's model descriptions), else the warehouse's comment.
    """
    store_dir, analytics = Path(store_dir), Path(analytics)
    store_dir.mkdir(parents=True, exist_ok=True)
    current = current_version(store_dir)
    roll_back_unlisted_commits(store_dir, current)
    months = sorted(set(months)) if months is not None else None
    monthly = {
        key: (column, None if allowed is None else sorted(set(allowed)))
        for key, (column, allowed) in (monthly or {}).items()
    }
    descriptions = descriptions or {}
    entries = {}
    with limit_memory(duckdb.connect(":memory:")) as con:
        con.execute(f"attach {sql_string(str(warehouse))} as warehouse (read_only)")
        columns = warehouse_columns(con)
        for schema, table, warehouse_comment in warehouse_tables(con, schemas):
            name, key = f"{schema}.{table}", (schema, table)
            source = f"warehouse.{quote(schema)}.{quote(table)}"
            if name == LEDGER:  # the published copy says which months it holds
                con.execute(f"create or replace temp table {_LEDGER_COPY} as select * from {source}")
                if months:
                    mark_published(con, months, ledger=_LEDGER_COPY)
                source = _LEDGER_COPY
            month_column, allowed = monthly.get(key, (None, None))
            previous = current.tables.get(name) if current else None
            comment = descriptions.get(key) or warehouse_comment
            replace_months = None
            query = f"select * from {source}"
            if month_column is not None:
                incremental = (
                    months is not None
                    and previous is not None
                    and previous.month_column == month_column
                    and _same_columns(previous.columns, columns[key])
                )
                chosen = [m for m in months if allowed is None or m in allowed] if incremental else allowed
                if incremental and not chosen:  # none of its months published now: the table stays as it is
                    entries[name] = previous
                    continue
                if incremental:
                    replace_months = chosen
                if chosen is not None:
                    query += f" where list_contains({_date_list(chosen)}, {quote(month_column)})"
            entries[name] = write_table(
                store_dir,
                schema,
                table,
                con,
                query,
                columns[key],
                comment,
                month_column,
                replace_months,
            )
    record = StoreVersion(
        _next_number(store_dir),
        run_id,
        _now(),
        None if months is None else [format_month(m) for m in months],
        entries,
    )
    _swap_in(store_dir, analytics, record)
    retain(store_dir, keep)
    return record


def _date_list(months: Iterable[date]) -> str:
    return "[" + ", ".join(f"date '{m.isoformat()}'" for m in months) + "]::date[]"


def restore(
    store_dir: Path, analytics: Path, version: int, *, run_id: str | None = None, keep: int = DEFAULT_KEEP_VERSIONS
) -> StoreVersion:
    """Make an earlier version current again: each of its tables is Delta-restored to what that version read
    (a new Delta commit; later publishes build on it) and a new store version records it (`restored_from`).
    The analytics file shows it at once. Returns the new version."""
    store_dir, analytics = Path(store_dir), Path(analytics)
    target = read_version(store_dir, version)
    current = current_version(store_dir)
    if current is not None and current.version == version:
        raise StoreError(f"version {version} is already the current version of {store_dir}")
    roll_back_unlisted_commits(store_dir, current)
    entries = {}
    for name, entry in target.tables.items():
        restored = restore_table(store_dir, entry.schema, entry.table, entry.delta_version)
        files = snapshot_files(store_dir, entry.schema, entry.table, restored)
        entries[name] = replace(entry, delta_version=restored, files=files)
    record = StoreVersion(_next_number(store_dir), run_id, _now(), target.months, entries, restored_from=version)
    _swap_in(store_dir, analytics, record)
    retain(store_dir, keep)
    return record


def rebuild_analytics(store_dir: Path, analytics: Path) -> StoreVersion:
    """Write the analytics file for the current version again (after moving or copying the store folder: the
    views name its files by absolute path). No new version."""
    store_dir, analytics = Path(store_dir), Path(analytics)
    record = current_version(store_dir)
    if record is None:
        raise StoreError(f"nothing published in {store_dir}: no version to show")
    staging = build_analytics_file(store_dir, analytics, record)
    try:
        os.replace(staging, analytics)
    finally:
        staging.unlink(missing_ok=True)
    return record


__all__ = [
    "PUBLISHED_SCHEMAS",
    "publish",
    "rebuild_analytics",
    "restore",
    "retain",
    "staging_path",
    "warehouse_columns",
    "warehouse_tables",
]
