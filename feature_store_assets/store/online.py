"""The shared online store in Redis (FEATURE_STORE_ONLINE_STORE=redis://host:port/db): each entity's latest
published row, pushed after each publish, read by `feature-store serve` instead of its in-memory copy
(serving/redis_online.py). docs/serving.md, "A shared online store in Redis".

Layout, in the URL's database:

    feature_store:current             the id of the snapshot served, `v<store version>-<random>`
    feature_store:snapshots           a set: every id a push started (the current one, and any a failed push left)
    feature_store:snap:<id>:meta      JSON (SnapshotMeta): the store version, when its analytics file was
                                      published, and per feature view its entity, its numeric, integer and text
                                      features in order, its months [(feature_month, computed_at)], its ledger
                                      and how many entities it holds
    feature_store:snap:<id>:<view>    a hash: entity id -> that entity's latest row, packed (`pack_rows`): the
                                      month's code (uint32), the numeric features (float64, NaN for NULL), then
                                      the text features as a JSON list; little-endian

A push (`push_snapshot`) reads the rows the in-memory store would load (serving/online.py `load_snapshot`,
the same latest row per entity), writes them under a new id, pipelined (HSET of 1,000 fields a command), then
the meta, checks every hash's length, and only then switches `current` with one SET: the switch is atomic.
The other snapshots' keys are UNLINKed afterwards (and before, what a failed push left, so Redis needs room
for two snapshots, not three). A reader reads `current` and the rows it asks for in one Lua script
(READ_SCRIPT), which Redis runs atomically, so it sees one snapshot whole, the old one or the new one.

A push that fails anywhere leaves `current` on the previous snapshot, whole, and raises OnlineStoreError
naming the URL (its password masked). Pushes run under the warehouse's run lock (the publish step, `restore`,
`feature-store online push`): one writer at a time.
"""

from __future__ import annotations

import json
import secrets
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import redis

from feature_store_assets.core.settings import redacted_url

PREFIX = "feature_store:"
CURRENT = f"{PREFIX}current"
SNAPSHOTS = f"{PREFIX}snapshots"
META_FORMAT = 1
FIELDS_PER_COMMAND = 1_000
COMMANDS_PER_ROUND_TRIP = 20
CONNECT_SECONDS, READ_SECONDS = 5.0, 30.0

# KEYS[1]: CURRENT. ARGV[1]: PREFIX, ARGV[2]: the snapshot id the reader knows, ARGV[3]: the feature view,
# ARGV[4..]: entity ids. Returns false when nothing was pushed, else {id, its meta when it is not the one the
# reader knows (else false), the rows (false for an unknown id)}. Atomic on the server: a push's switch
# happens before or after it, never during. HMGET takes the ids in parts: Lua's unpack has a stack limit.
READ_SCRIPT = """
local id = redis.call('GET', KEYS[1])
if not id then return false end
local prefix = ARGV[1] .. 'snap:' .. id .. ':'
local meta = false
if id ~= ARGV[2] then meta = redis.call('GET', prefix .. 'meta') end
local rows = {}
local last = #ARGV
for first = 4, last, 1000 do
  local part = redis.call('HMGET', prefix .. ARGV[3], unpack(ARGV, first, math.min(first + 999, last)))
  for j = 1, #part do rows[#rows + 1] = part[j] end
end
return {id, meta, rows}
"""


class OnlineStoreError(RuntimeError):
    """The online store could not be read or written; the message names its URL (password masked)."""


def snapshot_key(snapshot_id: str, part: str) -> str:
    """`feature_store:snap:<id>:<part>`: `meta`, or a feature view's hash."""
    return f"{PREFIX}snap:{snapshot_id}:{part}"


def connect(url: str, timeout: float = READ_SECONDS) -> redis.Redis:
    """A client of the URL's database (no round trip yet)."""
    return redis.Redis.from_url(url, socket_connect_timeout=CONNECT_SECONDS, socket_timeout=timeout)


@dataclass(frozen=True)
class ViewLayout:
    """How one feature view's rows are packed in its hash, and what the hash holds."""

    entity: str
    numbers: tuple[str, ...]  # the numeric features, in their order in a row
    integers: tuple[str, ...]  # those of them that are integers
    texts: tuple[str, ...]  # the text features, in the row's JSON list
    months: tuple[tuple[str, str | None], ...]  # per month code: (feature_month, computed_at), ISO
    ledger: dict[str, str]  # every materialized month's computed_at, ISO
    entities: int

    @property
    def row_struct(self) -> struct.Struct:
        return struct.Struct(f"<I{len(self.numbers)}d")


@dataclass(frozen=True)
class SnapshotMeta:
    """What `feature_store:snap:<id>:meta` holds."""

    format: int
    store_version: int | None
    published_at: str  # the analytics file's publish time (its mtime, UTC), ISO
    pushed_at: str
    views: dict[str, ViewLayout]

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> SnapshotMeta:
        raw = json.loads(text)
        if raw.get("format") != META_FORMAT:
            raise OnlineStoreError(f"online snapshot meta of format {raw.get('format')!r}, not {META_FORMAT}")
        views = {
            name: ViewLayout(
                entity=view["entity"],
                numbers=tuple(view["numbers"]),
                integers=tuple(view["integers"]),
                texts=tuple(view["texts"]),
                months=tuple((month, computed) for month, computed in view["months"]),
                ledger=dict(view["ledger"]),
                entities=int(view["entities"]),
            )
            for name, view in raw["views"].items()
        }
        return cls(raw["format"], raw["store_version"], raw["published_at"], raw["pushed_at"], views)


@dataclass(frozen=True)
class PushReport:
    url: str  # masked
    snapshot_id: str
    store_version: int | None
    entities: dict[str, int]  # per feature view
    seconds: float
    replaced: str | None  # the id served before

    def describe(self) -> str:
        counts = ", ".join(f"{count:,} {name}" for name, count in self.entities.items())
        return (
            f"pushed store version {self.store_version} to the online store {self.url} as {self.snapshot_id} "
            f"({counts}) in {self.seconds:.2f} s"
        )


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def layout_of(rows) -> ViewLayout:
    """A loaded view's (serving/online.py ViewRows) layout in the meta (pure)."""
    numbers = sorted((s for s in rows.slots.values() if not s.is_text), key=lambda s: s.column)
    texts = sorted((s for s in rows.slots.values() if s.is_text), key=lambda s: s.column)
    return ViewLayout(
        entity=rows.view.entity,
        numbers=tuple(s.name for s in numbers),
        integers=tuple(s.name for s in numbers if s.is_integer),
        texts=tuple(s.name for s in texts),
        months=tuple((_iso(month), _iso(computed)) for month, computed in rows.months),
        ledger={_iso(month): _iso(computed) for month, computed in rows.ledger.items()},
        entities=rows.count,
    )


def pack_rows(numbers: np.ndarray, texts: np.ndarray, month_codes: Sequence[int]) -> Iterator[bytes]:
    """Each row packed as the hash holds it (pure): month code, the numbers, the texts' JSON list if any."""
    count, width = numbers.shape
    record = np.empty(count, dtype=[("month", "<u4"), ("numbers", "<f8", (width,))])
    record["month"] = month_codes
    record["numbers"] = numbers
    blob = record.tobytes()
    size = record.dtype.itemsize
    if texts.shape[1] == 0:
        for i in range(count):
            yield blob[i * size : (i + 1) * size]
        return
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    for i, row in enumerate(texts.tolist()):
        yield blob[i * size : (i + 1) * size] + dumps(row).encode()


def unpack_row(layout_struct: struct.Struct, has_texts: bool, value: bytes) -> tuple[int, tuple, list]:
    """(month code, numbers, texts) of a packed row (pure)."""
    code, *numbers = layout_struct.unpack_from(value)
    texts = json.loads(value[layout_struct.size :]) if has_texts else []
    return code, numbers, texts


def current_meta(client: redis.Redis) -> tuple[str | None, SnapshotMeta | None]:
    """The id served and its meta; (None, None) before the first push."""
    snapshot_id = client.get(CURRENT)
    if snapshot_id is None:
        return None, None
    snapshot_id = snapshot_id.decode()
    meta = client.get(snapshot_key(snapshot_id, "meta"))
    return snapshot_id, None if meta is None else SnapshotMeta.from_json(meta)


def online_status(url: str) -> tuple[str | None, SnapshotMeta | None]:
    """What the online store at `url` serves: (snapshot id, meta), (None, None) when nothing was pushed."""
    try:
        return current_meta(connect(url))
    except redis.RedisError as error:
        raise OnlineStoreError(f"could not read the online store {redacted_url(url)}: {error}") from error


def drop_snapshots(client: redis.Redis, keep: str | None) -> int:
    """UNLINK every snapshot but `keep` (the one served), whole or half-written; returns how many."""
    dropped = 0
    for member in client.smembers(SNAPSHOTS):
        snapshot_id = member.decode()
        if snapshot_id == keep:
            continue
        keys = list(client.scan_iter(match=snapshot_key(snapshot_id, "*"), count=1_000))
        if keys:
            client.unlink(*keys)
        client.srem(SNAPSHOTS, snapshot_id)
        dropped += 1
    return dropped


def push_snapshot(url: str, analytics: Path, store_version: int | None) -> PushReport:
    """Push the latest row of every entity of each feature view of `analytics` to the online store at `url`, as
    a new snapshot, and switch readers to it at once; returns what was pushed. Raises OnlineStoreError naming
    the URL; the snapshot served before then stays served, whole."""
    from feature_store_assets.serving.online import load_snapshot

    began = time.perf_counter()
    shown = redacted_url(url)
    loaded = load_snapshot(analytics)  # the rows the in-memory store serves, so both answer the same
    snapshot_id = f"v{store_version if store_version is not None else 0}-{secrets.token_hex(4)}"
    meta = SnapshotMeta(
        format=META_FORMAT,
        store_version=store_version,
        published_at=loaded.published_at.isoformat(),
        pushed_at=datetime.now(UTC).isoformat(),
        views={name: layout_of(rows) for name, rows in loaded.views.items()},
    )
    client = connect(url)
    try:
        served = client.get(CURRENT)
        served = served.decode() if served is not None else None
        drop_snapshots(client, keep=served)  # what a failed push left: room for the new snapshot
        client.sadd(SNAPSHOTS, snapshot_id)  # before any row, so a failure's rows are found and dropped
        pipe = client.pipeline(transaction=False)
        for name, rows in loaded.views.items():
            key = snapshot_key(snapshot_id, name)
            ids = list(rows.index)
            packed = pack_rows(rows.numbers, rows.texts, rows.month_codes)
            queued = 0
            for start in range(0, len(ids), FIELDS_PER_COMMAND):
                chunk = ids[start : start + FIELDS_PER_COMMAND]
                pipe.hset(key, mapping={entity_id: next(packed) for entity_id in chunk})
                queued += 1
                if queued == COMMANDS_PER_ROUND_TRIP:
                    pipe.execute()
                    queued = 0
            pipe.execute()
        client.set(snapshot_key(snapshot_id, "meta"), meta.to_json())
        lengths = {name: client.hlen(snapshot_key(snapshot_id, name)) for name in loaded.views}
        expected = {name: layout.entities for name, layout in meta.views.items()}
        if lengths != expected:
            raise OnlineStoreError(
                f"the online store {shown} holds {lengths} rows of snapshot {snapshot_id}, not {expected}: "
                "another writer? Not switched; the snapshot served stays"
            )
        client.set(CURRENT, snapshot_id)  # the switch: readers see the new snapshot from their next read
        drop_snapshots(client, keep=snapshot_id)
    except redis.RedisError as error:
        raise OnlineStoreError(
            f"could not push store version {store_version} to the online store FEATURE_STORE_ONLINE_STORE="
            f"{shown}: {type(error).__name__}: {error}"
        ) from error
    finally:
        client.close()
    return PushReport(shown, snapshot_id, store_version, expected, time.perf_counter() - began, served)


def parse_iso(value: str | None) -> Any:
    """A meta's ISO date or timestamp back as date / datetime (None stays None)."""
    if value is None:
        return None
    return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)


def sync_online_store(url: str, analytics: Path, store_version: int | None) -> PushReport | None:
    """Push `analytics` (store version `store_version`) unless the online store serves that version already
    (None then): after a publish, and on the next one when the push failed. OnlineStoreError names the URL."""
    _, meta = online_status(url)
    if meta is not None and store_version is not None and meta.store_version == store_version:
        return None
    return push_snapshot(url, analytics, store_version)
