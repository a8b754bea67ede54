"""The analytics DuckDB file: one view per published table over the exact Parquet files of a store version.

Written in DuckDB's v1.1.0 storage format, so DuckDB 1.1 and later (the pip `duckdb-cli` too) open it; the
same schemas and table names as the warehouse, each view's columns in the warehouse's order and cast to the
warehouse's types (a month partition column comes from the file path, `hive_partitioning`), with the table's
and columns' comments. A table without rows gets a typed view with no rows. The file is written beside the
analytics file and swapped in with os.replace: a reader holding the old file keeps reading the old version's
files (kept by the retention), and its next connection opens the new file.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from feature_store_assets.store.versions import StoreVersion, TableVersion, table_dir
from feature_store_assets.warehouse.connections import quote, sql_string

STORAGE_VERSION = "v1.1.0"
STAGING_SUFFIX = ".publishing"


def staging_path(analytics: Path, pid: int | None = None) -> Path:
    return analytics.with_name(f".{analytics.name}.{os.getpid() if pid is None else pid}{STAGING_SUFFIX}")


def remove_abandoned_staging(analytics: Path) -> list[Path]:
    """Delete the half-written files (and their WAL) of publishes whose process is gone (killed, disk full)."""
    removed = []
    for path in analytics.parent.glob(f".{analytics.name}.*{STAGING_SUFFIX}*"):
        pid = path.name.removeprefix(f".{analytics.name}.").split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and Path(f"/proc/{pid}").exists():
            continue  # a publish in progress in another process
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def view_sql(store_dir: Path, entry: TableVersion) -> str:
    """The SELECT of a table's view: its files at this version, its columns in order and type."""
    if not entry.files:
        columns = ", ".join(f"cast(null as {c.type}) as {quote(c.name)}" for c in entry.columns)
        return f"select {columns} limit 0"
    folder = table_dir(store_dir, entry.schema, entry.table)
    files = ", ".join(sql_string(str(folder / f.path)) for f in entry.files)
    hive = "true" if entry.month_column else "false"
    columns = ", ".join(f"cast({quote(c.name)} as {c.type}) as {quote(c.name)}" for c in entry.columns)
    return f"select {columns} from read_parquet([{files}], hive_partitioning = {hive}, hive_types_autocast = false)"


def build_analytics_file(store_dir: Path, analytics: Path, record: StoreVersion) -> Path:
    """Write the views of `record` into a new file beside `analytics`; its path, for the caller to swap in
    (os.replace) or remove. Nothing is left behind on error."""
    analytics.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(analytics)
    staging = staging_path(analytics)
    staging.unlink(missing_ok=True)
    try:
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"attach {sql_string(str(staging))} as analytics (storage_version '{STORAGE_VERSION}')")
            for schema in sorted({entry.schema for entry in record.tables.values()}):
                con.execute(f"create schema analytics.{quote(schema)}")
            for entry in record.tables.values():
                name = f"analytics.{quote(entry.schema)}.{quote(entry.table)}"
                con.execute(f"create view {name} as {view_sql(store_dir, entry)}")
                if entry.comment:
                    con.execute(f"comment on view {name} is {sql_string(entry.comment)}")
                for column in entry.columns:
                    if column.comment:
                        con.execute(f"comment on column {name}.{quote(column.name)} is {sql_string(column.comment)}")
            con.execute("detach analytics")
        finally:
            con.close()
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    finally:
        Path(f"{staging}.wal").unlink(missing_ok=True)
    return staging
