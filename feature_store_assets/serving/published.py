"""The published analytics file as the serving layer sees it: read-only connections and its identity.

Serving never opens the warehouse. It reads FEATURE_STORE_ANALYTICS, which the
pipeline replaces by an atomic rename after each successful run (publish.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from feature_store_assets.core.names import FEATURES_TABLE
from feature_store_assets.warehouse.connections import sql_string, table_exists

CATALOG_TABLE = "features.feature_catalog"
ENTITY = "client_id"
SNAPSHOT_COLUMN = "feature_month"


class ServingError(ValueError):
    """A request the serving layer cannot answer; the message says why (a ValueError, so the CLI reports it)."""


class AnalyticsUnavailable(ServingError):
    """No published analytics file, or one without the feature table."""


class UnknownFeatures(ServingError):
    """Feature names that are not in the catalog; carries the valid names so callers can correct the request."""

    def __init__(self, unknown: list[str], valid: list[str]):
        self.unknown = unknown
        self.valid = valid
        super().__init__(f"unknown features: {', '.join(unknown)}. Valid features: {', '.join(valid)}")


@dataclass(frozen=True)
class FileIdentity:
    """What changes when a new analytics file is swapped in: a rename brings a new inode."""

    inode: int
    mtime_ns: int
    size: int


def file_identity(path: Path) -> FileIdentity | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return FileIdentity(stat.st_ino, stat.st_mtime_ns, stat.st_size)


def published_at(identity: FileIdentity) -> datetime:
    """When the file was published: the rename keeps the staging file's last write time."""
    return datetime.fromtimestamp(identity.mtime_ns / 1e9, tz=UTC)


def not_published(path: Path) -> AnalyticsUnavailable:
    return AnalyticsUnavailable(f"no published analytics file at {path}: run `feature-store materialize` first")


@contextmanager
def open_analytics(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived read-only connection to the published file, whose tables resolve as in the warehouse.

    The file is attached to a private in-memory database: `duckdb.connect(path)` would reuse a cached
    instance while any other connection of this process holds the path open, and so keep reading a
    file that has since been replaced.
    """
    if not path.exists():
        raise not_published(path)
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"attach {sql_string(str(path))} as analytics (read_only)")
        con.execute("use analytics")
        yield con
    finally:
        con.close()


def require_features_table(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    if not table_exists(con, FEATURES_TABLE):
        raise AnalyticsUnavailable(f"{path} has no {FEATURES_TABLE}: materialize at least one month first")
