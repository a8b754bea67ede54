"""Point-in-time correct training sets: each labelled row gets the features as they were known at its time.

The snapshot of month M is "as of the end of M": it becomes available at
E = the first day of M+1. A row with event_timestamp t gets the latest month M
with E <= t (an ASOF join on client_id and E), so its features never see the
future of t. An event at exactly E sees M; one microsecond earlier sees M-1.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from feature_store_assets.core.names import FEATURES_TABLE
from feature_store_assets.serving.catalog import catalog_from_connection
from feature_store_assets.serving.published import (
    ENTITY,
    SNAPSHOT_COLUMN,
    ServingError,
    open_analytics,
)
from feature_store_assets.warehouse.connections import quote

EVENT_TIMESTAMP = "event_timestamp"
VERSION_ATTR = "feature_store_version"  # df.attrs key: the store version a training set was read from
_ROW = "__row"
# E of a snapshot: when it becomes usable, the first day of the month after its feature month.
AVAILABLE_AT_SQL = f"({SNAPSHOT_COLUMN} + interval 1 month)::timestamp"


def entity_rows(entity_df: pd.DataFrame) -> pa.Table:
    """The entity rows as DuckDB reads them: input position, client_id and a naive µs event timestamp."""
    missing = [c for c in (ENTITY, EVENT_TIMESTAMP) if c not in entity_df.columns]
    if missing:
        raise ServingError(f"entity_df lacks column(s) {', '.join(missing)}: it needs {ENTITY} and {EVENT_TIMESTAMP}")
    try:
        client_ids = pd.array(entity_df[ENTITY], dtype="Int64")
    except (TypeError, ValueError) as error:
        raise ServingError(f"{ENTITY} must hold integers: {error}") from None
    try:
        timestamps = pd.to_datetime(entity_df[EVENT_TIMESTAMP], format="ISO8601")
    except (TypeError, ValueError) as error:
        raise ServingError(f"{EVENT_TIMESTAMP} must hold timestamps: {error}") from None
    if timestamps.dt.tz is not None:
        raise ServingError(
            f"{EVENT_TIMESTAMP} must be naive: the store's months are naive calendar months, as its events"
        )
    # DuckDB rounds nanoseconds when it casts to µs; flooring here cannot move a time across E (a whole µs).
    timestamps = timestamps.dt.floor("us").astype("datetime64[us]")
    return pa.table(
        {
            _ROW: pa.array(np.arange(len(entity_df), dtype=np.int64)),
            ENTITY: pa.array(client_ids.to_numpy(dtype="int64", na_value=0), mask=np.asarray(client_ids.isna())),
            EVENT_TIMESTAMP: pa.array(timestamps.to_numpy(), type=pa.timestamp("us"), from_pandas=True),  # NaT as NULL
        }
    )


def snapshot_match_sql(max_age_months: int | None) -> str:
    """Per entity row, the snapshot month it may see: the latest with E <= event_timestamp (an ASOF join).

    Narrow on purpose (keys only): sorting the wide rows for the ASOF join would cost several times more.
    Age is counted in calendar months from E to the event's month: 0 for the freshest snapshot possible
    (E in the event's month), 1 for the one before, and so on; older than max_age_months gives NULL.
    """
    fresh = (
        ""
        if max_age_months is None
        else f" and datediff('month', s.available_at, e.{EVENT_TIMESTAMP}) <= {int(max_age_months)}"
    )
    return f"""
        select e.{_ROW}, e.{ENTITY}, case when s.available_at is not null{fresh} then s.{SNAPSHOT_COLUMN} end as {SNAPSHOT_COLUMN}
        from entity_rows e asof left join (
            select {ENTITY}, {SNAPSHOT_COLUMN}, {AVAILABLE_AT_SQL} as available_at
            from {FEATURES_TABLE}
        ) s on e.{ENTITY} = s.{ENTITY} and e.{EVENT_TIMESTAMP} >= s.available_at
    """


def snapshot_features_sql(features: Sequence[str]) -> str:
    """The matched snapshots' features, one row per entity row, in input order.

    DuckDB sorts the joined rows as it hands them over at almost no extra cost; reordering afterwards in
    pandas (a take over 31 nullable columns) was the largest single cost of a 1M-row retrieval.
    """
    columns = ", ".join(f"f.{quote(name)}" for name in features)
    return f"""
        select m.{_ROW}, m.{SNAPSHOT_COLUMN}{", " if features else ""}{columns}
        from matched m left join {FEATURES_TABLE} f
            on f.{ENTITY} = m.{ENTITY} and f.{SNAPSHOT_COLUMN} = m.{SNAPSHOT_COLUMN}
        order by m.{_ROW}
    """


_NULLABLE_INTEGERS = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
}


def store_dir_of(analytics: Path) -> Path:
    """The published store the analytics file shows: FEATURE_STORE_PUBLISHED_DIR for the configured analytics
    file, the default `published/` beside any other."""
    from dataclasses import replace

    from feature_store_assets.core.settings import Settings

    settings = Settings.from_env()
    if Path(analytics).resolve() == settings.analytics.resolve():
        return settings.published_dir
    return replace(settings, analytics=Path(analytics), published_dir=None).published_dir


@contextmanager
def open_features(
    analytics: Path, version: int | None = None
) -> Iterator[tuple[duckdb.DuckDBPyConnection, int | None]]:
    """A read-only connection whose published tables are those of a store version (default: the current one),
    and that version's number.

    Reads the version's exact Parquet files (the record names them), so a publish or restore meanwhile
    changes nothing; a store without versions (a file published before the store existed) is read as is.
    """
    from feature_store_assets.store.analytics_file import view_sql
    from feature_store_assets.store.versions import StoreError, current_version, read_version

    store_dir = store_dir_of(analytics)
    try:
        record = current_version(store_dir) if version is None else read_version(store_dir, version)
    except StoreError as error:
        raise ServingError(str(error)) from None
    if record is None:
        with open_analytics(analytics) as con:
            yield con, None
        return
    con = duckdb.connect(":memory:")
    try:
        for schema in sorted({entry.schema for entry in record.tables.values()}):
            con.execute(f"create schema {quote(schema)}")
        for entry in record.tables.values():
            con.execute(f"create view {quote(entry.schema)}.{quote(entry.table)} as {view_sql(store_dir, entry)}")
        yield con, record.version
    finally:
        con.close()


def get_training_features(
    entity_df: pd.DataFrame,
    features: Sequence[str] | None = None,
    max_age_months: int | None = None,
    *,
    analytics: Path | None = None,
    version: int | None = None,
) -> pd.DataFrame:
    """entity_df with `feature_month` and the features added, one row per input row, in input order.

    entity_df needs `client_id` and a naive `event_timestamp`; its other columns (labels) are kept.
    features: names from the catalog (default: all). max_age_months: drop snapshots older than that
    many months (0 = only the freshest possible); dropped and missing snapshots give NULLs and a NULL
    feature_month. Reads store version `version` (default: the current one) of the published store
    beside the analytics file (default: FEATURE_STORE_ANALYTICS); the result's
    `attrs["feature_store_version"]` names the version, so the same set can be rebuilt after later publishes.
    """
    if analytics is None:
        from feature_store_assets.core.settings import Settings

        analytics = Settings.from_env().analytics
    if max_age_months is not None and (not isinstance(max_age_months, int | np.integer) or max_age_months < 0):
        raise ServingError(f"max_age_months must be a whole number of months >= 0, got {max_age_months!r}")
    rows = entity_rows(entity_df)
    with open_features(analytics, version) as (con, pinned):
        names = catalog_from_connection(con, analytics).resolve(features)
        clashes = [c for c in (SNAPSHOT_COLUMN, *names) if c in entity_df.columns]
        if clashes:
            raise ServingError(f"entity_df already has column(s) {', '.join(clashes)}: rename them first")
        con.register("entity_rows", rows)
        # A temp table gives the optimizer the exact row count, so the hash join builds on the entity side.
        con.execute(f"create temp table matched as {snapshot_match_sql(max_age_months)}")
        found = con.sql(snapshot_features_sql(names)).to_arrow_table()
    # LEFT joins keep every entity row once, sorted by position: anything else is a bug
    if not np.array_equal(found.column(_ROW).to_numpy(), np.arange(len(entity_df))):
        raise AssertionError(f"point-in-time join returned {found.num_rows} rows for {len(entity_df)}, or out of order")
    found = found.drop_columns([_ROW])
    # self_destruct frees each Arrow column once converted: the result is never held twice
    looked_up = found.to_pandas(
        types_mapper=_NULLABLE_INTEGERS.get, date_as_object=False, split_blocks=True, self_destruct=True
    )
    del found
    looked_up.index = entity_df.index
    training = pd.concat([entity_df, looked_up], axis=1)
    training.attrs[VERSION_ATTR] = pinned
    return training
