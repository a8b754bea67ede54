"""Point-in-time correct training sets: each labelled row gets the features as they were known at its time.

The snapshot of month M is "as of the end of M": it becomes available at
E = the first day of M+1. A row with event_timestamp t gets the latest month M
with E <= t (an ASOF join on the entity and E), so its features never see the
future of t. An event at exactly E sees M; one microsecond earlier sees M-1.

The entity is the feature view's: client_id for client_features, clinic_id for clinic_features (the features
requested pick the view, with the catalog's rules; entity_df's only entity column is the context for bare names).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from feature_store_assets.serving.catalog import REF_SEPARATOR, FeatureCatalog, FeatureView, catalog_from_connection
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
_KEY = "__entity"  # the entity rows' id, whichever entity the feature view has
# E of a snapshot: when it becomes usable, the first day of the month after its feature month.
AVAILABLE_AT_SQL = f"({SNAPSHOT_COLUMN} + interval 1 month)::timestamp"


def entity_rows(entity_df: pd.DataFrame, entity: str = ENTITY) -> pa.Table:
    """The entity rows as DuckDB reads them: input position, the entity's id and a naive µs event timestamp."""
    missing = [c for c in (entity, EVENT_TIMESTAMP) if c not in entity_df.columns]
    if missing:
        raise ServingError(f"entity_df lacks column(s) {', '.join(missing)}: it needs {entity} and {EVENT_TIMESTAMP}")
    try:
        ids = pd.array(entity_df[entity], dtype="Int64")
    except (TypeError, ValueError) as error:
        raise ServingError(f"{entity} must hold integers: {error}") from None
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
            _KEY: pa.array(ids.to_numpy(dtype="int64", na_value=0), mask=np.asarray(ids.isna())),
            EVENT_TIMESTAMP: pa.array(timestamps.to_numpy(), type=pa.timestamp("us"), from_pandas=True),  # NaT as NULL
        }
    )


def snapshot_match_sql(max_age_months: int | None, view: FeatureView) -> str:
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
        select e.{_ROW}, e.{_KEY}, case when s.available_at is not null{fresh} then s.{SNAPSHOT_COLUMN} end as {SNAPSHOT_COLUMN}
        from entity_rows e asof left join (
            select {quote(view.entity)} as {_KEY}, {SNAPSHOT_COLUMN}, {AVAILABLE_AT_SQL} as available_at
            from {view.table}
        ) s on e.{_KEY} = s.{_KEY} and e.{EVENT_TIMESTAMP} >= s.available_at
    """


def snapshot_features_sql(features: Sequence[str], view: FeatureView) -> str:
    """The matched snapshots' features, one row per entity row, in input order.

    DuckDB sorts the joined rows as it hands them over at almost no extra cost; reordering afterwards in
    pandas (a take over 31 nullable columns) was the largest single cost of a 1M-row retrieval.
    """
    columns = ", ".join(f"f.{quote(name)}" for name in features)
    return f"""
        select m.{_ROW}, m.{SNAPSHOT_COLUMN}{", " if features else ""}{columns}
        from matched m left join {view.table} f
            on f.{quote(view.entity)} = m.{_KEY} and f.{SNAPSHOT_COLUMN} = m.{SNAPSHOT_COLUMN}
        order by m.{_ROW}
    """


def training_view(catalog: FeatureCatalog, entity_df: pd.DataFrame, features: Sequence[str] | None):
    """The feature view and bare names an entity_df's request reads (the catalog's `select`).

    References (`view:feature`) name their view. Otherwise entity_df's only entity column (client_id or
    clinic_id) is the context for bare names; with several (a client's rows carrying its clinic_id), the names
    alone decide, and bare names mean client_features."""
    present = [entity for entity in catalog.entities if entity in entity_df.columns]
    referenced = features is not None and any(REF_SEPARATOR in name for name in features)
    selection = catalog.select(features, present[0] if len(present) == 1 and not referenced else None)
    return selection.view, selection.names


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

    entity_df needs the feature view's entity (`client_id` for client_features, `clinic_id` for clinic_features)
    and a naive `event_timestamp`; its other columns (labels) are kept. features: names of one feature view
    (`view:feature`, or bare within entity_df's entity's view; default: every feature of that view, client_features
    when entity_df has client_id). max_age_months: drop snapshots older than that
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
    with open_features(analytics, version) as (con, pinned):
        view, names = training_view(catalog_from_connection(con, analytics), entity_df, features)
        rows = entity_rows(entity_df, view.entity)
        check_clashes(entity_df, names)
        con.register("entity_rows", rows)
        # A temp table gives the optimizer the exact row count, so the hash join builds on the entity side.
        con.execute(f"create temp table matched as {snapshot_match_sql(max_age_months, view)}")
        found = con.sql(snapshot_features_sql(names, view)).to_arrow_table()
    # LEFT joins keep every entity row once, sorted by position: anything else is a bug
    if not np.array_equal(found.column(_ROW).to_numpy(), np.arange(len(entity_df))):
        raise AssertionError(f"point-in-time join returned {found.num_rows} rows for {len(entity_df)}, or out of order")
    return training_frame(entity_df, found.drop_columns([_ROW]), pinned)


def check_clashes(entity_df: pd.DataFrame, names: Sequence[str]) -> None:
    clashes = [c for c in (SNAPSHOT_COLUMN, *names) if c in entity_df.columns]
    if clashes:
        raise ServingError(f"entity_df already has column(s) {', '.join(clashes)}: rename them first")


def training_frame(entity_df: pd.DataFrame, found: pa.Table, version: int | None) -> pd.DataFrame:
    """entity_df with the looked-up columns (`feature_month` and the features, one row per entity row, in order)
    beside it: integers as nullable integers, dates as datetimes; `attrs["feature_store_version"]` = version.

    Consumes `found`: self_destruct frees each Arrow column once converted, so the result is never held twice."""
    looked_up = arrow_frame(found)
    del found
    looked_up.index = entity_df.index
    training = pd.concat([entity_df, looked_up], axis=1)
    training.attrs[VERSION_ATTR] = version
    return training


def arrow_frame(table: pa.Table) -> pd.DataFrame:
    """The pandas types every retrieval answers in: nullable integers (Int32 for INTEGER), float64 with NaN,
    strings, and dates and timestamps as datetime64."""
    return table.to_pandas(
        types_mapper=_NULLABLE_INTEGERS.get, date_as_object=False, split_blocks=True, self_destruct=True
    )
