"""Online lookup from the shared online store in Redis (FEATURE_STORE_ONLINE_STORE), instead of each process's
in-memory copy: many `feature-store serve` replicas read one copy, pushed once per publish (store/online.py).

A RedisOnlineStore is an OnlineStore whose snapshot takes its catalog and tables from the published file, as
before, and its rows from Redis: each view's `RedisViewRows` answers a request with one round trip, the
READ_SCRIPT, which reads the snapshot served and the requested rows atomically. When a publish has switched
snapshots since, the answer comes whole from the new one (decoded with the new one's layout, which the same
read returns) and the store reloads its snapshot's metadata; a reader never gets rows of two snapshots.
The watcher (`watch`) reloads when the pointer or the file changes. Redis unreachable, or empty, is
AnalyticsUnavailable naming the URL: the API's 503.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from feature_store_assets.core.settings import redacted_url
from feature_store_assets.serving.catalog import FeatureView, catalog_from_connection, published_tables
from feature_store_assets.serving.online import (
    OnlineSnapshot,
    OnlineStore,
    _Slot,
    answer,
    unknown_answer,
)
from feature_store_assets.serving.published import (
    AnalyticsUnavailable,
    file_identity,
    not_published,
    open_analytics,
)
from feature_store_assets.store.online import (
    CURRENT,
    PREFIX,
    READ_SCRIPT,
    SnapshotMeta,
    ViewLayout,
    connect,
    parse_iso,
)

READ_TIMEOUT_SECONDS = 2.0  # a request waits at most this for Redis, then answers 503
_LAYOUTS_KEPT = 4


@dataclass
class RedisViewRows:
    """One feature view's rows in one Redis snapshot: its layout here, its rows there."""

    store: RedisOnlineStore
    snapshot_id: str
    view: FeatureView
    layout: ViewLayout
    slots: dict[str, _Slot] = field(init=False)
    months: list = field(init=False)  # per month code: (feature_month, computed_at)
    ledger: dict = field(init=False)

    def __post_init__(self) -> None:
        integers = set(self.layout.integers)
        self.slots = {n: _Slot(n, False, j, n in integers) for j, n in enumerate(self.layout.numbers)}
        self.slots |= {n: _Slot(n, True, j, False) for j, n in enumerate(self.layout.texts)}
        self.months = [(parse_iso(month), parse_iso(computed)) for month, computed in self.layout.months]
        self.ledger = {parse_iso(month): parse_iso(computed) for month, computed in self.layout.ledger.items()}
        self._struct = self.layout.row_struct
        self._has_texts = bool(self.layout.texts)

    @property
    def entity(self) -> str:
        return self.view.entity

    @property
    def latest_month(self):
        return max((month for month, _ in self.months), default=None)

    @property
    def count(self) -> int:
        return self.layout.entities

    def decode(self, entity_id: Any, value: bytes | None, slots: Sequence[_Slot]) -> dict[str, Any]:
        if value is None:
            return unknown_answer(self.view.entity, entity_id)
        code, *numbers = self._struct.unpack_from(value)
        texts = json.loads(value[self._struct.size :]) if self._has_texts else ()
        month, computed_at = self.months[code]
        return answer(self.view.entity, entity_id, numbers, texts, slots, month, computed_at)

    def answers(self, entity_ids: Sequence[Any], slots: Sequence[_Slot]) -> list[dict[str, Any]]:
        entity_ids = list(entity_ids)
        rows, values = self.store.read(self, entity_ids)
        if rows is not self:  # a newer snapshot answered: its layout, the same features by name
            slots = [rows.slot(s.name) for s in slots]
        return [rows.decode(entity_id, value, slots) for entity_id, value in zip(entity_ids, values)]

    def answer(self, entity_id: Any, slots: Sequence[_Slot]) -> dict[str, Any]:
        return self.answers([entity_id], slots)[0]

    def known(self, entity_ids: Iterable[int]) -> set[int]:
        entity_ids = list(entity_ids)
        _, values = self.store.read(self, entity_ids)
        return {entity_id for entity_id, value in zip(entity_ids, values) if value is not None}

    def slot(self, name: str) -> _Slot:
        found = self.slots.get(name)
        if found is None:
            raise AnalyticsUnavailable(
                f"feature {name} of {self.view.name} is not in the online snapshot {self.snapshot_id} of "
                f"{self.store.shown_url}: the next publish pushes it"
            )
        return found


class RedisOnlineStore(OnlineStore):
    """The latest features per entity from the online store at `url`; catalog and tables from `analytics`."""

    reads_remotely = True

    def __init__(self, analytics: Path, url: str, *, load: bool = True, timeout: float = READ_TIMEOUT_SECONDS):
        self.url = url
        self.shown_url = redacted_url(url)
        self._client = connect(url, timeout=timeout)
        self._script = self._client.register_script(READ_SCRIPT)
        self._layouts: dict[str, dict[str, RedisViewRows]] = {}  # by snapshot id: its views' rows
        self._lock = threading.Lock()
        self._served_id: str | None = None
        super().__init__(analytics, load=load)

    def _unreachable(self, error: Exception) -> AnalyticsUnavailable:
        return AnalyticsUnavailable(
            f"the online store {self.shown_url} cannot be read: {type(error).__name__}: {error}"
        )

    def _nothing_pushed(self) -> AnalyticsUnavailable:
        return AnalyticsUnavailable(
            f"the online store {self.shown_url} holds no snapshot yet: publish with FEATURE_STORE_ONLINE_STORE set "
            "(`feature-store materialize`) or push the published one (`feature-store online push`)"
        )

    def _views_of(self, snapshot_id: str, meta: SnapshotMeta, catalog) -> dict[str, RedisViewRows]:
        with self._lock:
            views = self._layouts.get(snapshot_id)
            if views is None:
                views = {
                    name: RedisViewRows(self, snapshot_id, catalog.views[name], layout)
                    for name, layout in meta.views.items()
                    if name in catalog.views
                }
                while len(self._layouts) >= _LAYOUTS_KEPT:
                    self._layouts.pop(next(iter(self._layouts)))
                self._layouts[snapshot_id] = views
            return views

    def _current(self) -> tuple[str, SnapshotMeta]:
        """The snapshot served and its meta, in one atomic read (the script with no ids)."""
        try:
            found = self._script(keys=[CURRENT], args=[PREFIX, "", ""])
        except redis.RedisError as error:
            raise self._unreachable(error) from error
        if not found:
            raise self._nothing_pushed()
        snapshot_id, meta, _ = found
        return snapshot_id.decode(), SnapshotMeta.from_json(meta)

    def refresh(self) -> OnlineSnapshot:
        """The file's catalog and tables, and the Redis snapshot served now."""
        began = time.perf_counter()
        identity = file_identity(self.analytics)
        if identity is None:
            raise not_published(self.analytics)
        with open_analytics(self.analytics) as con:
            catalog = catalog_from_connection(con, self.analytics)
            tables = published_tables(con)
        snapshot_id, meta = self._current()
        default = catalog.default_view.name
        views = self._views_of(snapshot_id, meta, catalog)
        views = dict(sorted(views.items(), key=lambda item: item[0] != default))  # the default view first
        self._snapshot = OnlineSnapshot(
            identity=identity,
            catalog=catalog,
            views=views,
            loaded_at=datetime.now(UTC),
            load_seconds=time.perf_counter() - began,
            tables=tables,
            published=datetime.fromisoformat(meta.published_at),
            online_store={
                "kind": "redis",
                "url": self.shown_url,
                "snapshot": snapshot_id,
                "store_version": meta.store_version,
                "pushed_at": meta.pushed_at,
            },
        )
        self._served_id = snapshot_id
        self.last_error = None
        self.reloads += 1
        return self._snapshot

    def refresh_if_changed(self) -> bool:
        """Reload when another file was published or Redis serves another snapshot; True when it reloaded. A
        failure keeps the current snapshot (and Redis's answers) in service and records it in `last_error`."""
        identity = file_identity(self.analytics)
        if identity is None:
            if self._snapshot is None:
                self.last_error = str(not_published(self.analytics))
            return False
        try:
            served = self._client.get(CURRENT)
        except redis.RedisError as error:
            self.last_error = str(self._unreachable(error))
            return False
        current = self._snapshot
        if served is None:
            self.last_error = str(self._nothing_pushed())
            return False
        if current is not None and identity == current.identity and served.decode() == self._served_id:
            return False
        try:
            self.refresh()
        except Exception as error:  # noqa: BLE001 (a bad file or snapshot must not stop serving the good one)
            self.last_error = f"refresh from {self.analytics} and {self.shown_url} failed: {error}"
            return False
        return True

    def read(self, rows: RedisViewRows, entity_ids: Sequence[Any]) -> tuple[RedisViewRows, list[bytes | None]]:
        """The packed rows of `entity_ids` in the snapshot served now, and that snapshot's rows of the view (`rows`
        itself unless a publish switched snapshots since it was loaded)."""
        try:
            found = self._script(keys=[CURRENT], args=[PREFIX, rows.snapshot_id, rows.view.name, *entity_ids])
        except redis.RedisError as error:
            raise self._unreachable(error) from error
        if not found:
            raise self._nothing_pushed()
        snapshot_id, meta, values = found
        snapshot_id = snapshot_id.decode()
        if snapshot_id == rows.snapshot_id:
            return rows, values
        views = self._views_of(snapshot_id, SnapshotMeta.from_json(meta), self.snapshot.catalog)
        newer = views.get(rows.view.name)
        if newer is None:
            raise AnalyticsUnavailable(
                f"feature view {rows.view.name} is not in the online snapshot {snapshot_id} of {self.shown_url}"
            )
        return newer, values
