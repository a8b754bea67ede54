"""The published store: the analyst-facing tables as Delta Lake tables (delta-rs), in versions. No Dagster here.

Layout of the store folder (FEATURE_STORE_PUBLISHED_DIR, default `published/` beside the analytics file):

    <store>/<schema>/<table>/          one Delta table per published table; monthly tables partitioned by
                                       their month key (`feature_month=2024-01-01/part-….parquet`)
    <store>/_versions/00000007.json    one record per store version (versions.py)

Every publish is one store version: its number, the Dagster run id, the time, the months it (re)placed and,
per table, the Delta version and the exact Parquet files with their partition values. The newest record is
the current version; the analytics DuckDB file (FEATURE_STORE_ANALYTICS) is views over its files
(analytics_file.py). The last FEATURE_STORE_KEEP_VERSIONS versions are kept; files no kept version reads are
deleted. `restore` makes an earlier version current again as a new version (publishing.py, and
docs/published-store.md for operators).

API for readers (training retrieval pinning a version, Feast, Spark, pandas):

- `current_version(store_dir) -> StoreVersion | None`: the current version (None before the first publish).
- `list_versions(store_dir) -> list[StoreVersion]`: every kept version, oldest first.
- `table_files(store_dir, schema, table, version=None) -> list[DataFile]`: the Parquet files (absolute paths),
  partition values (column -> value as the path spells it, e.g. `{"feature_month": "2024-01-01"}`) and row
  counts that a version (default: the current one) reads for a table. Partition columns are not inside the
  files (Delta, Hive-style): take them from `partition`, or read with hive partitioning.
  A StoreError names the version or table when there is no such thing.
- `StoreVersion.tables["schema.table"]`: its `delta_version` (for `DeltaTable(path, version=...)`, Spark's
  `versionAsOf`), `columns` (name, DuckDB type, comment), `month_column`, `comment`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from feature_store_assets.store.publishing import PUBLISHED_SCHEMAS, publish, rebuild_analytics, restore
from feature_store_assets.store.versions import (
    DataFile,
    StoreError,
    StoreVersion,
    TableVersion,
    current_version,
    list_versions,
    read_version,
    table_dir,
)


def table_files(store_dir: Path, schema: str, table: str, version: int | None = None) -> list[DataFile]:
    """The Parquet files (absolute paths), partition values and rows of a table at a store version (default:
    the current one)."""
    record = current_version(store_dir) if version is None else read_version(store_dir, version)
    if record is None:
        raise StoreError(f"nothing published in {store_dir}")
    entry = record.tables.get(f"{schema}.{table}")
    if entry is None:
        raise StoreError(
            f"{schema}.{table} is not in version {record.version} of {store_dir} "
            f"(its tables: {', '.join(sorted(record.tables))})"
        )
    folder = table_dir(store_dir, schema, table)
    return [replace(f, path=str(folder / f.path)) for f in entry.files]


__all__ = [
    "PUBLISHED_SCHEMAS",
    "DataFile",
    "StoreError",
    "StoreVersion",
    "TableVersion",
    "current_version",
    "list_versions",
    "publish",
    "rebuild_analytics",
    "restore",
    "table_files",
]
