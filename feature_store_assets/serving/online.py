"""Online lookup: each client's latest published features, held in memory, swapped when a new file lands.

A client's latest snapshot is its latest feature_month in the published file
(the same row `get_training_features` gives an event at the present time, with
no max age), so a client no longer eligible keeps its last snapshot and its
older feature_month shows how stale it is. Unknown clients are reported per
entity, never as a failure of the whole lookup.

Memory layout: numeric features in one float64 matrix (NaN for NULL, integer
features converted back on the way out), text features in an object matrix,
and a dict from client_id to row. A lookup is a dict get and one row slice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from feature_store_assets.core.names import FEATURE_MODEL, FEATURES_TABLE, LEDGER
from feature_store_assets.serving.catalog import FeatureCatalog, catalog_from_connection
from feature_store_assets.serving.published import (
    ENTITY,
    SNAPSHOT_COLUMN,
    AnalyticsUnavailable,
    FileIdentity,
    file_identity,
    not_published,
    open_analytics,
    published_at,
)
from feature_store_assets.warehouse.connections import quote, table_exists

UNKNOWN_CLIENT = "unknown client: no published feature snapshot"
_TEXT_TYPES = ("VARCHAR",)
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "HUGEINT")
_NUMBERS = "__numbers"
# Feature lists come from requests: the cache is keyed on the validated, de-duplicated names (at most one
# entry per ordered subset of the catalog's features, each no longer than the catalog), and holds this many.
_PLAN_CACHE_LIMIT = 1024


@dataclass(frozen=True)
class _Slot:
    name: str
    is_text: bool
    column: int  # in the numeric or the text matrix
    is_integer: bool


@dataclass
class OnlineSnapshot:
    """One published file, loaded: immutable once built, replaced whole on refresh."""

    identity: FileIdentity
    catalog: FeatureCatalog
    index: dict[int, int]
    numbers: np.ndarray  # rows x numeric features, float64, NaN for NULL
    texts: np.ndarray  # rows x text features, object, None for NULL
    month_codes: list[int]  # per row, into months
    months: list[tuple[date, datetime | None]]  # (feature_month, computed_at)
    slots: dict[str, _Slot]
    loaded_at: datetime
    load_seconds: float
    ledger: dict[date, datetime] = field(default_factory=dict)  # every materialized month's computed_at
    _plans: dict[tuple[str, ...] | None, list[_Slot]] = field(default_factory=dict, repr=False)

    @property
    def published_at(self) -> datetime:
        return published_at(self.identity)

    @property
    def latest_month(self) -> date | None:
        return max((month for month, _ in self.months), default=None)

    @property
    def clients(self) -> int:
        return len(self.index)

    def plan(self, features: Sequence[str] | None) -> list[_Slot]:
        """Where each requested feature lives; unknown names raise UnknownFeatures listing the valid ones.

        Cached on the canonical list (known names only, duplicates dropped, request order kept), so what
        the cache holds is bounded by the catalog whatever lists arrive: an unknown name is never cached.
        """
        key = None if features is None else tuple(dict.fromkeys(features))
        found = self._plans.get(key)
        if found is None:
            found = [self.slots[name] for name in self.catalog.resolve(key)]
            if len(self._plans) >= _PLAN_CACHE_LIMIT:
                self._plans.clear()
            self._plans[key] = found
        return found

    def entity(self, client_id: Any, plan: list[_Slot]) -> dict[str, Any]:
        row = self.index.get(client_id)
        if row is None:
            return {ENTITY: client_id, "success": False, "message": UNKNOWN_CLIENT}
        numbers = self.numbers[row].tolist()
        texts = self.texts[row].tolist() if self.texts.shape[1] else ()
        values = {}
        for slot in plan:
            if slot.is_text:
                values[slot.name] = texts[slot.column]
            else:
                value = numbers[slot.column]
                values[slot.name] = None if value != value else (int(value) if slot.is_integer else value)
        month, computed_at = self.months[self.month_codes[row]]
        return {
            ENTITY: client_id,
            "success": True,
            SNAPSHOT_COLUMN: month,
            "computed_at": computed_at,
            "features": values,
        }


def _computed_at(con) -> dict[date, datetime]:
    """When each feature month was materialized, from the pipeline's ledger (published with quality)."""
    if not table_exists(con, LEDGER):
        return {}
    return dict(con.execute(f"select month, materialized_at from {LEDGER} where model = ?", [FEATURE_MODEL]).fetchall())


def load_snapshot(analytics: Path) -> OnlineSnapshot:
    """Read every client's latest feature row from the published file into memory."""
    began = time.perf_counter()
    identity = file_identity(analytics)  # before opening: a publish in between only causes one more reload
    if identity is None:
        raise not_published(analytics)
    with open_analytics(analytics) as con:
        catalog = catalog_from_connection(con, analytics)
        schema_name, table_name = FEATURES_TABLE.split(".")
        types = dict(
            con.execute(
                "select column_name, data_type from duckdb_columns() "
                "where database_name = 'analytics' and schema_name = ? and table_name = ?",
                [schema_name, table_name],
            ).fetchall()
        )
        text_names = [n for n in catalog.names if types[n] in _TEXT_TYPES]
        number_names = [n for n in catalog.names if n not in text_names]
        selected = [ENTITY, SNAPSHOT_COLUMN, *(quote(n) for n in text_names)]
        if number_names:
            # One fixed-size DOUBLE[k] column arrives as a single rows x k matrix, without stacking k columns.
            values = ", ".join(f"coalesce({quote(n)}::double, 'nan'::double)" for n in number_names)
            selected.append(f"[{values}]::double[{len(number_names)}] as {_NUMBERS}")
        table = con.sql(
            f"select {', '.join(selected)} from {FEATURES_TABLE} "
            f"qualify {SNAPSHOT_COLUMN} = max({SNAPSHOT_COLUMN}) over (partition by {ENTITY})"
        ).to_arrow_table()
        computed_at = _computed_at(con)
    rows = table.num_rows
    if number_names:
        flat = table.column(_NUMBERS).combine_chunks().flatten().to_numpy(zero_copy_only=False)
        numbers = flat.reshape(rows, len(number_names))
    else:
        numbers = np.empty((rows, 0))
    texts = np.empty((rows, len(text_names)), dtype=object)
    for j, name in enumerate(text_names):
        texts[:, j] = table.column(name).to_pylist()
    distinct, codes = np.unique(table.column(SNAPSHOT_COLUMN).to_numpy(), return_inverse=True)
    months = [(d, computed_at.get(d)) for d in (m.astype("datetime64[D]").item() for m in distinct)]
    slots = {n: _Slot(n, False, j, types[n] in _INTEGER_TYPES) for j, n in enumerate(number_names)}
    slots |= {n: _Slot(n, True, j, False) for j, n in enumerate(text_names)}
    return OnlineSnapshot(
        identity=identity,
        catalog=catalog,
        index=dict(zip(table.column(ENTITY).to_numpy().tolist(), range(rows))),
        numbers=np.ascontiguousarray(numbers, dtype=np.float64),
        texts=texts,
        month_codes=codes.reshape(-1).tolist(),
        months=months,
        slots=slots,
        loaded_at=datetime.now(UTC),
        load_seconds=time.perf_counter() - began,
        ledger=computed_at,
    )


class OnlineStore:
    """Latest features per client from the published analytics file, refreshed when a new file is published.

    `refresh_if_changed()` compares the file's inode, mtime and size with the loaded snapshot's (a publish is
    a rename, so a new inode); `watch(interval)` does so in a daemon thread. Lookups read whichever snapshot
    is current: a refresh builds the new one aside and swaps it in one assignment.
    """

    def __init__(self, analytics: Path | None = None, *, load: bool = True):
        if analytics is None:
            from feature_store_assets.core.settings import Settings

            analytics = Settings.from_env().analytics
        self.analytics = Path(analytics)
        self._snapshot: OnlineSnapshot | None = None
        self.last_error: str | None = None
        self.reloads = 0  # snapshots loaded since start (the metrics' reload count)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        if load:
            self.refresh()

    @property
    def snapshot(self) -> OnlineSnapshot:
        snapshot = self._snapshot
        if snapshot is None:
            raise AnalyticsUnavailable(self.last_error or f"no features loaded from {self.analytics} yet")
        return snapshot

    @property
    def catalog(self) -> FeatureCatalog:
        return self.snapshot.catalog

    def refresh(self) -> OnlineSnapshot:
        """Load the published file now and serve it."""
        self._snapshot = load_snapshot(self.analytics)
        self.last_error = None
        self.reloads += 1
        return self._snapshot

    def refresh_if_changed(self) -> bool:
        """Reload when a different file has been published since the last load; True when it reloaded.

        A failed load keeps the current snapshot in service and records the error in `last_error`.
        """
        current = self._snapshot
        identity = file_identity(self.analytics)
        if identity is None or (current is not None and identity == current.identity):
            if identity is None and current is None:
                self.last_error = str(not_published(self.analytics))
            return False
        try:
            self.refresh()
        except Exception as error:  # noqa: BLE001 (a bad file must not stop serving the good one)
            self.last_error = f"refresh from {self.analytics} failed: {error}"
            return False
        return True

    def watch(self, interval: float = 1.0) -> OnlineStore:
        """Check for a newly published file every `interval` seconds, in a daemon thread, until close()."""
        if self._watcher is None:
            self._stop.clear()

            def loop() -> None:
                while not self._stop.wait(interval):
                    self.refresh_if_changed()

            self._watcher = threading.Thread(target=loop, name="online-store-watch", daemon=True)
            self._watcher.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def lookup(self, client_ids: Iterable[int], features: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Per client, in request order: success, feature_month, computed_at and the features, or a message."""
        snapshot = self.snapshot
        plan = snapshot.plan(features)
        return [snapshot.entity(client_id, plan) for client_id in client_ids]

    def lookup_one(self, client_id: int, features: Sequence[str] | None = None) -> dict[str, Any]:
        snapshot = self.snapshot
        return snapshot.entity(client_id, snapshot.plan(features))
