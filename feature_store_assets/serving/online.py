"""Online lookup: each entity's latest published features, per feature view, held in memory, swapped when a new
file lands.

An entity's latest snapshot is its latest feature_month in its feature view's table (client_features by
client_id, clinic_features by clinic_id): the same row `get_training_features` gives an event at the present
time, with no max age, so a client no longer eligible keeps its last snapshot and its older feature_month shows
how stale it is. Unknown entities are reported per entity, never as a failure of the whole lookup.

Memory layout, per view: numeric features in one float64 matrix (NaN for NULL, integer features converted back
on the way out), text features in an object matrix, and a dict from the entity's id to its row. A lookup is a
dict get and one row slice.

With FEATURE_STORE_ONLINE_STORE set, the rows come from the shared online store in Redis instead
(serving/redis_online.py, store/online.py): `open_online_store` picks. Both answer through `answer`, so an entity's
answer is the same dict whichever holds its row.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from feature_store_assets.core.names import LEDGER
from feature_store_assets.serving.catalog import (
    FeatureCatalog,
    FeatureView,
    Table,
    catalog_from_connection,
    published_tables,
)
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

_TEXT_TYPES = ("VARCHAR",)
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "HUGEINT")
_NUMBERS = "__numbers"
# Feature lists come from requests: the cache is keyed on the entity and the validated, de-duplicated names (at
# most one entry per ordered subset of a view's features, each no longer than the catalog), and holds this many.
_PLAN_CACHE_LIMIT = 1024


def unknown_entity_message(entity: str) -> str:
    """`unknown client: ...` for client_id, `unknown clinic: ...` for clinic_id."""
    return f"unknown {entity.removesuffix('_id')}: no published feature snapshot"


UNKNOWN_CLIENT = unknown_entity_message(ENTITY)


@dataclass(frozen=True)
class _Slot:
    name: str
    is_text: bool
    column: int  # in the numeric or the text matrix
    is_integer: bool


def answer(
    entity: str,
    entity_id: Any,
    numbers: Sequence[float],
    texts: Sequence[str | None],
    slots: Sequence[_Slot],
    month: date,
    computed_at: datetime | None,
) -> dict[str, Any]:
    """One found entity's answer (pure): its month, when it was computed, and the slots' values (NaN is None,
    integer features as int)."""
    values = {}
    for slot in slots:
        if slot.is_text:
            values[slot.name] = texts[slot.column]
        else:
            value = numbers[slot.column]
            values[slot.name] = None if value != value else (int(value) if slot.is_integer else value)
    return {entity: entity_id, "success": True, SNAPSHOT_COLUMN: month, "computed_at": computed_at, "features": values}


def unknown_answer(entity: str, entity_id: Any) -> dict[str, Any]:
    return {entity: entity_id, "success": False, "message": unknown_entity_message(entity)}


@dataclass
class ViewRows:
    """One feature view's latest row per entity, loaded.

    What the serving layer asks of a view's rows (the Redis-backed ones answer the same: redis_online.py):
    `view`, `entity`, `slots`, `months`, `ledger`, `latest_month`, `count`, `answers(ids, slots)`, `known(ids)`.
    """

    view: FeatureView
    index: dict[int, int]  # entity id -> row
    numbers: np.ndarray  # rows x numeric features, float64, NaN for NULL
    texts: np.ndarray  # rows x text features, object, None for NULL
    month_codes: list[int]  # per row, into months
    months: list[tuple[date, datetime | None]]  # (feature_month, computed_at)
    slots: dict[str, _Slot]
    ledger: dict[date, datetime] = field(default_factory=dict)  # every materialized month's computed_at

    @property
    def entity(self) -> str:
        return self.view.entity

    @property
    def latest_month(self) -> date | None:
        return max((month for month, _ in self.months), default=None)

    @property
    def count(self) -> int:
        """Entities with a snapshot."""
        return len(self.index)

    def answer(self, entity_id: Any, slots: Sequence[_Slot]) -> dict[str, Any]:
        row = self.index.get(entity_id)
        if row is None:
            return unknown_answer(self.view.entity, entity_id)
        month, computed_at = self.months[self.month_codes[row]]
        texts = self.texts[row].tolist() if self.texts.shape[1] else ()
        return answer(self.view.entity, entity_id, self.numbers[row].tolist(), texts, slots, month, computed_at)

    def answers(self, entity_ids: Iterable[Any], slots: Sequence[_Slot]) -> list[dict[str, Any]]:
        return [self.answer(entity_id, slots) for entity_id in entity_ids]

    def known(self, entity_ids: Iterable[int]) -> set[int]:
        """Those of the ids that have a snapshot."""
        return {entity_id for entity_id in entity_ids if entity_id in self.index}


class Plan(NamedTuple):
    """Where the requested features live: the view's rows and one slot per feature, in request order."""

    rows: ViewRows  # or the Redis-backed rows of the view (redis_online.RedisViewRows)
    slots: list[_Slot]


@dataclass
class OnlineSnapshot:
    """One published file, loaded: immutable once built, replaced whole on refresh."""

    identity: FileIdentity
    catalog: FeatureCatalog
    views: dict[str, ViewRows]  # by feature view name, the default view (client_features) first
    loaded_at: datetime
    load_seconds: float
    tables: list[Table] = field(default_factory=list)  # the marts, listed for discovery (not looked up online)
    # when the rows served were published: the file's mtime, or what the Redis snapshot records of its file
    published: datetime | None = None
    online_store: dict[str, Any] = field(default_factory=lambda: {"kind": "memory"})  # where the rows are (/health)
    _plans: dict[tuple[str | None, tuple[str, ...] | None], Plan] = field(default_factory=dict, repr=False)

    @property
    def published_at(self) -> datetime:
        return self.published or published_at(self.identity)

    @property
    def default(self) -> ViewRows:
        return self.views[self.catalog.default_view.name]

    def rows_of(self, entity: str) -> ViewRows:
        """The rows of the feature view keyed by `entity` (ServingError naming the served entities if none)."""
        return self.views[self.catalog.view_of(entity).name]

    # the default view's (client_features'): what /health and the metrics report as clients
    @property
    def latest_month(self) -> date | None:
        return self.default.latest_month

    @property
    def index(self) -> dict[int, int]:
        return self.default.index

    @property
    def ledger(self) -> dict[date, datetime]:
        return self.default.ledger

    @property
    def clients(self) -> int:
        return self.default.count

    def plan(self, features: Sequence[str] | None, entity: str | None = None) -> Plan:
        """Where each requested feature lives (the catalog's `select` rules: one view, the entity's when given);
        unknown names raise UnknownFeatures listing the valid ones.

        Cached on the entity and the list (duplicates dropped, request order kept) once it resolved, so what
        the cache holds is bounded by the catalog whatever lists arrive: an unknown name is never cached.
        """
        key = (entity, None if features is None else tuple(dict.fromkeys(features)))
        found = self._plans.get(key)
        if found is None:
            selection = self.catalog.select(key[1], entity)
            rows = self.views.get(selection.view.name)
            if rows is None:  # in the file's catalog, not in the Redis snapshot served (pushed before the view was)
                raise AnalyticsUnavailable(
                    f"feature view {selection.view.name} is not in the online snapshot served "
                    f"({self.online_store}): the next publish pushes it"
                )
            found = Plan(rows, [rows.slots[name] for name in selection.names])
            if len(self._plans) >= _PLAN_CACHE_LIMIT:
                self._plans.clear()
            self._plans[key] = found
        return found

    def entity(self, entity_id: Any, plan: Plan) -> dict[str, Any]:
        """One entity's answer, keyed by the plan's entity column (client_id or clinic_id)."""
        return plan.rows.answer(entity_id, plan.slots)

    def lookup(self, entity_ids: Sequence[Any], plan: Plan) -> list[dict[str, Any]]:
        """Each entity's answer, in order (one read of the online store when it is Redis)."""
        return plan.rows.answers(entity_ids, plan.slots)


def _computed_at(con, model: str) -> dict[date, datetime]:
    """When each month of a model was materialized, from the pipeline's ledger (published with quality)."""
    if not table_exists(con, LEDGER):
        return {}
    return dict(con.execute(f"select month, materialized_at from {LEDGER} where model = ?", [model]).fetchall())


def latest_rows_sql(con, view: FeatureView, selected: Sequence[str]) -> str:
    """The SELECT of each entity's latest row of the view, `selected` its columns.

    Two steps, so only the months someone's latest row is in are read in full: each entity's latest month
    from the narrow key columns (a temp table), then the rows of those months (month constants, which prune
    the published store's month partitions) that are an entity's latest. Usually that is the newest month
    alone; a window over every row of every month read all the store's files (6x slower at 24 months)."""
    key = quote(view.entity)
    con.execute(
        f"create or replace temp table __latest as "
        f"select {key}, max({SNAPSHOT_COLUMN}) as {SNAPSHOT_COLUMN} from {view.table} group by {key}"
    )
    months = [month for (month,) in con.execute(f"select distinct {SNAPSHOT_COLUMN} from __latest").fetchall()]
    in_months = ", ".join(f"date '{month.isoformat()}'" for month in months) or "null"
    return (
        f"select {', '.join(selected)} from {view.table} as f semi join __latest as l "
        f"on f.{key} = l.{key} and f.{SNAPSHOT_COLUMN} = l.{SNAPSHOT_COLUMN} "
        f"where f.{SNAPSHOT_COLUMN} in ({in_months})"
    )


def load_view(con, view: FeatureView) -> ViewRows:
    """Every entity's latest row of one feature view into memory."""
    schema_name, table_name = view.table.split(".")
    types = dict(
        con.execute(
            "select column_name, data_type from duckdb_columns() "
            "where database_name = current_database() and schema_name = ? and table_name = ?",
            [schema_name, table_name],
        ).fetchall()
    )
    text_names = [n for n in view.names if types[n] in _TEXT_TYPES]
    number_names = [n for n in view.names if n not in text_names]
    key = quote(view.entity)
    selected = [key, SNAPSHOT_COLUMN, *(quote(n) for n in text_names)]
    if number_names:
        # One fixed-size DOUBLE[k] column arrives as a single rows x k matrix, without stacking k columns.
        values = ", ".join(f"coalesce({quote(n)}::double, 'nan'::double)" for n in number_names)
        selected.append(f"[{values}]::double[{len(number_names)}] as {_NUMBERS}")
    table = con.sql(latest_rows_sql(con, view, selected)).to_arrow_table()
    computed_at = _computed_at(con, view.name)
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
    return ViewRows(
        view=view,
        index=dict(zip(table.column(view.entity).to_numpy().tolist(), range(rows))),
        numbers=np.ascontiguousarray(numbers, dtype=np.float64),
        texts=texts,
        month_codes=codes.reshape(-1).tolist(),
        months=months,
        slots=slots,
        ledger=computed_at,
    )


def load_snapshot(analytics: Path) -> OnlineSnapshot:
    """Read every entity's latest feature row of each feature view from the published file into memory."""
    began = time.perf_counter()
    identity = file_identity(analytics)  # before opening: a publish in between only causes one more reload
    if identity is None:
        raise not_published(analytics)
    with open_analytics(analytics) as con:
        catalog = catalog_from_connection(con, analytics)
        views = {name: load_view(con, view) for name, view in catalog.views.items()}
        tables = published_tables(con)
    return OnlineSnapshot(
        identity=identity,
        catalog=catalog,
        views=views,
        tables=tables,
        loaded_at=datetime.now(UTC),
        load_seconds=time.perf_counter() - began,
    )


class OnlineStore:
    """Latest features per entity (client, clinic) from the published analytics file, refreshed on each publish.

    `refresh_if_changed()` compares the file's inode, mtime and size with the loaded snapshot's (a publish is
    a rename, so a new inode); `watch(interval)` does so in a daemon thread. Lookups read whichever snapshot
    is current: a refresh builds the new one aside and swaps it in one assignment.
    """

    reads_remotely = False  # the Redis-backed store's lookups are round trips (the API runs them off its loop)

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

    def lookup(
        self, entity_ids: Iterable[int], features: Sequence[str] | None = None, entity: str | None = None
    ) -> list[dict[str, Any]]:
        """Per entity, in request order: success, feature_month, computed_at and the features, or a message.

        `entity` (client_id, clinic_id) picks the feature view; without it the features do (bare names: the
        default view, client_features), and every feature of client_features when they are None too."""
        snapshot = self.snapshot
        return snapshot.lookup(list(entity_ids), snapshot.plan(features, entity))

    def lookup_one(
        self, entity_id: int, features: Sequence[str] | None = None, entity: str | None = None
    ) -> dict[str, Any]:
        snapshot = self.snapshot
        return snapshot.entity(entity_id, snapshot.plan(features, entity))


def open_online_store(analytics: Path, online_store: str = "", *, load: bool = True) -> OnlineStore:
    """The online store to serve `analytics` from: in memory, or the shared one in Redis when `online_store`
    (FEATURE_STORE_ONLINE_STORE, a redis:// URL) is set."""
    if not online_store:
        return OnlineStore(analytics, load=load)
    from feature_store_assets.serving.redis_online import RedisOnlineStore

    return RedisOnlineStore(analytics, online_store, load=load)
