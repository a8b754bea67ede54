"""Store versions: one JSON record per publish, under `<store>/_versions/`, the newest the current one.

A record is written (to a temporary file, fsynced, then renamed) only after every table of the version
committed, so a publish that dies midway lists nothing; the record names each table's Delta version and
the exact Parquet files (relative to the table's folder) and partition values that version reads, with
the columns, their types and comments, so the analytics file can be rebuilt from a record alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

VERSIONS_DIR = "_versions"


class StoreError(ValueError):
    """The published store cannot do what was asked (no such version, no store); the message says why."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB's type name, as the warehouse has it
    comment: str | None = None


@dataclass(frozen=True)
class DataFile:
    path: str  # relative to the table's folder
    partition: dict[str, str] = field(default_factory=dict)  # partition column -> value as the path spells it
    rows: int = 0


@dataclass(frozen=True)
class TableVersion:
    schema: str
    table: str
    delta_version: int
    columns: list[Column]
    files: list[DataFile]
    month_column: str | None = None  # the partition column of a monthly table
    comment: str | None = None

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


@dataclass(frozen=True)
class StoreVersion:
    version: int
    run_id: str | None
    published_at: str  # ISO 8601, UTC
    months: list[str] | None  # YYYY-MM the publish (re)placed; None: a full publish (everything)
    tables: dict[str, TableVersion]  # "schema.table" -> its table version
    restored_from: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def table_dir(store_dir: Path, schema: str, table: str) -> Path:
    return Path(store_dir) / schema / table


def _record_path(store_dir: Path, version: int) -> Path:
    return Path(store_dir) / VERSIONS_DIR / f"{version:08d}.json"


def _from_dict(data: dict) -> StoreVersion:
    tables = {
        name: TableVersion(
            **{
                **entry,
                "columns": [Column(**c) for c in entry["columns"]],
                "files": [DataFile(**f) for f in entry["files"]],
            }
        )
        for name, entry in data["tables"].items()
    }
    return StoreVersion(**{**data, "tables": tables})


def read_version(store_dir: Path, version: int) -> StoreVersion:
    path = _record_path(store_dir, version)
    try:
        return _from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        listed = ", ".join(str(v.version) for v in list_versions(store_dir)) or "none"
        raise StoreError(f"no version {version} in the published store {store_dir} (versions kept: {listed})") from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise StoreError(f"{path}: not a store version record ({error})") from error


def list_versions(store_dir: Path) -> list[StoreVersion]:
    """Every kept version of the store, oldest first (empty when nothing was published)."""
    folder = Path(store_dir) / VERSIONS_DIR
    if not folder.is_dir():
        return []
    numbers = sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())
    return [read_version(store_dir, n) for n in numbers]


def current_version(store_dir: Path) -> StoreVersion | None:
    """The version the analytics file shows: the newest record (None before the first publish)."""
    folder = Path(store_dir) / VERSIONS_DIR
    numbers = sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit()) if folder.is_dir() else []
    return read_version(store_dir, numbers[-1]) if numbers else None


def write_version(store_dir: Path, record: StoreVersion) -> Path:
    """Write the record atomically (temporary file, fsync, rename, fsync of the folder): it is there whole or not."""
    path = _record_path(store_dir, record.version)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(staging, "w") as out:
            json.dump(record.as_dict(), out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return path


def remove_version(store_dir: Path, version: int) -> None:
    _record_path(store_dir, version).unlink(missing_ok=True)
