"""The feature catalog: one entry per feature of `features.client_features`, found by name, tag or source.

Definitions (description, data type, window, lineage, owner, tags, leakage risk)
come from the dbt yml through the manifest; availability (first and last month,
latest null rate) is computed from the data. The `features.feature_catalog`
asset writes both to the warehouse and publishing copies it, so serving reads
the catalog from the analytics file without dbt.

The keys (client_id, feature_month) are not features, and neither is clinic_id:
it is an identifier (the home clinic, a join key to clinic-level tables), not a
quantity a model should learn from; the clinic's level is served as
clinic_revenue_12m and clinic_revenue_pctl_global_12m.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from feature_store_assets.core.names import FEATURE_MODEL, FEATURES_TABLE
from feature_store_assets.serving.published import (
    CATALOG_TABLE,
    ENTITY,
    SNAPSHOT_COLUMN,
    UnknownFeatures,
    open_analytics,
    require_features_table,
)
from feature_store_assets.warehouse.connections import comment_on_columns, quote, table_exists

NOT_FEATURES = (ENTITY, SNAPSHOT_COLUMN, "clinic_id")
DEFAULT_OWNER = "feature-store"


@dataclass(frozen=True)
class Feature:
    """One catalog entry. Availability fields are None until computed from the data."""

    name: str
    description: str
    data_type: str
    entity: str
    window: str
    source_columns: tuple[str, ...]  # lineage: landing-zone table.column
    owner: str
    tags: tuple[str, ...]
    leakage_risk: str
    leakage_note: str
    first_month: date | None = None
    last_month: date | None = None
    latest_month: date | None = None  # the month latest_null_rate describes: the table's latest
    latest_null_rate: float | None = None

    @property
    def source_tables(self) -> tuple[str, ...]:
        return tuple(sorted({column.split(".")[0] for column in self.source_columns}))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, in field order with source_tables before source_columns: lists, ISO months."""
        entry: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "source_columns":
                entry["source_tables"] = list(self.source_tables)
            value = getattr(self, f.name)
            entry[f.name] = (
                list(value) if isinstance(value, tuple) else value.isoformat() if isinstance(value, date) else value
            )
        return entry


def _feature_model(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model" and node["name"] == FEATURE_MODEL:
            return node
    raise KeyError(f"the dbt manifest has no model {FEATURE_MODEL}")


def feature_definitions(manifest: Mapping[str, Any]) -> list[Feature]:
    """The features of client_features as its yml declares them, in column order."""
    model = _feature_model(manifest)
    model_meta = model.get("meta") or {}
    features = []
    for name, column in model["columns"].items():
        if name in NOT_FEATURES:
            continue
        meta = (column.get("meta") or {}).get("feature") or {}
        features.append(
            Feature(
                name=name,
                description=column.get("description") or "",
                data_type=column.get("data_type") or "",
                entity=model_meta.get("entity", ENTITY),
                window=meta.get("window", ""),
                source_columns=tuple(meta.get("derived_from") or ()),
                owner=meta.get("owner") or model_meta.get("owner") or DEFAULT_OWNER,
                tags=tuple(meta.get("tags") or ()),
                leakage_risk=meta.get("leakage_risk", "unknown"),
                leakage_note=meta.get("leakage_note", ""),
            )
        )
    return features


# Per feature month: its rows and each feature's non-null values. The catalog's availability is computed from
# this small table, which each catalog build updates for the months materialized since the previous one only
# (feature_store_assets/defs/catalog/assets.py): a month's cost, whatever the history
# (recomputing it over all of client_features took 40 s at 24 months of 2M clients).
MONTH_VALUES_TABLE = "features.feature_month_values"
MONTH_VALUES_COLUMNS = {
    SNAPSHOT_COLUMN: ("date", "the feature month"),
    "feature_name": ("varchar", "the feature"),
    "month_rows": ("bigint", "rows (clients) of the feature month"),
    "non_null_rows": ("bigint", "rows of the month where the feature is not NULL"),
}


def month_values(
    con: duckdb.DuckDBPyConnection, names: Sequence[str], months: Sequence[date] | None = None
) -> pd.DataFrame:
    """MONTH_VALUES_COLUMNS for the given months of client_features (default: all), one pass over them."""
    counts = "".join(f", count({quote(name)})" for name in names)
    where, params = ("", []) if months is None else (f" where list_contains(?, {SNAPSHOT_COLUMN})", [list(months)])
    found = con.execute(
        f"select {SNAPSHOT_COLUMN}, count(*){counts} from {FEATURES_TABLE}{where} group by 1", params
    ).fetchall()
    return _month_values_frame([(row[0], name, row[1], row[2 + i]) for row in found for i, name in enumerate(names)])


def _month_values_frame(rows: Iterable[tuple]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(MONTH_VALUES_COLUMNS))


def availability(features: Sequence[Feature], values: pd.DataFrame) -> list[Feature]:
    """The features with their first and last month with a value, the latest month and its null rate (pure)."""
    if values.empty:
        return [
            replace(f, first_month=None, last_month=None, latest_month=None, latest_null_rate=None) for f in features
        ]
    latest = values[SNAPSHOT_COLUMN].max()
    with_values = values[values["non_null_rows"] > 0].groupby("feature_name")[SNAPSHOT_COLUMN].agg(["min", "max"])
    at_latest = values[values[SNAPSHOT_COLUMN] == latest].set_index("feature_name")
    found = []
    for f in features:
        first, last = (
            (with_values.loc[f.name, "min"], with_values.loc[f.name, "max"])
            if f.name in with_values.index
            else (None, None)
        )
        rows, non_null = (
            (int(v) for v in at_latest.loc[f.name, ["month_rows", "non_null_rows"]])
            if f.name in at_latest.index
            else (0, 0)
        )
        found.append(
            replace(
                f,
                first_month=first,
                last_month=last,
                latest_month=latest,
                latest_null_rate=float(1 - non_null / rows) if rows else None,
            )
        )
    return found


def with_availability(features: Sequence[Feature], con: duckdb.DuckDBPyConnection) -> list[Feature]:
    """The features with their availability, computed from all of the connection's client_features."""
    return availability(features, month_values(con, [f.name for f in features])) if features else []


def update_month_values(con: duckdb.DuckDBPyConnection, names: Sequence[str], months: Sequence[date]) -> pd.DataFrame:
    """Recount the given months in MONTH_VALUES_TABLE and return the whole table.

    Counted over all months when the table is new or its features are not `names` (a feature was added).
    """
    stored = set()
    if table_exists(con, MONTH_VALUES_TABLE):
        stored = {row[0] for row in con.execute(f"select distinct feature_name from {MONTH_VALUES_TABLE}").fetchall()}
    if stored and stored == set(names):
        con.execute(f"delete from {MONTH_VALUES_TABLE} where list_contains(?, {SNAPSHOT_COLUMN})", [list(months)])
        fresh = month_values(con, names, months)
    else:
        columns = ", ".join(f"{quote(name)} {sql_type}" for name, (sql_type, _) in MONTH_VALUES_COLUMNS.items())
        con.execute("create schema if not exists features")
        con.execute(f"create or replace table {MONTH_VALUES_TABLE} ({columns})")
        comment_on_columns(
            con, MONTH_VALUES_TABLE, {name: comment for name, (_, comment) in MONTH_VALUES_COLUMNS.items()}
        )
        fresh = month_values(con, names)
    con.register("fresh_month_values", fresh)
    con.execute(f"insert into {MONTH_VALUES_TABLE} select * from fresh_month_values")
    con.unregister("fresh_month_values")
    return _month_values_frame(con.execute(f"select * from {MONTH_VALUES_TABLE}").fetchall())


# The catalog table: one row per feature, lists as VARCHAR[]; `window` is quoted in SQL (a keyword).
CATALOG_COLUMNS = {
    "feature_name": ("varchar", "the feature: a column of features.client_features"),
    "position": ("integer", "the column's position among the features"),
    "description": ("varchar", "definition, from the dbt yml (docs/features.md word for word)"),
    "data_type": ("varchar", "DuckDB type"),
    "entity": ("varchar", "the key the feature describes"),
    "window": ("varchar", "1m, 3m, 12m (months ending at E), all (all history before E) or static (not versioned)"),
    "source_tables": ("varchar[]", "landing-zone tables the feature derives from"),
    "source_columns": ("varchar[]", "landing-zone columns the feature derives from (table.column)"),
    "owner": ("varchar", "who answers for the feature"),
    "tags": ("varchar[]", "search tags"),
    "leakage_risk": ("varchar", "low, medium or high: can a snapshot hold information from after E?"),
    "leakage_note": ("varchar", "why the risk is what it is"),
    "first_month": ("date", "first feature month with a non-null value"),
    "last_month": ("date", "last feature month with a non-null value"),
    "latest_month": ("date", "the latest feature month of the table"),
    "latest_null_rate": ("double", "share of NULLs in the latest feature month"),
    "built_at": ("timestamp", "when the catalog was computed"),
}


def catalog_frame(features: Sequence[Feature], built_at: datetime) -> pd.DataFrame:
    rows = [
        {
            **f.as_dict(),
            "feature_name": f.name,
            "position": i + 1,
            "source_tables": list(f.source_tables),
            "built_at": built_at,
        }
        for i, f in enumerate(features)
    ]
    return pd.DataFrame(rows, columns=list(CATALOG_COLUMNS))


def write_catalog(con: duckdb.DuckDBPyConnection, features: Sequence[Feature], built_at: datetime) -> None:
    """Replace the catalog table, with column comments (publishing copies them)."""
    con.register("catalog_rows", catalog_frame(features, built_at))
    columns = ", ".join(
        f"{quote(name)}::{sql_type} as {quote(name)}" for name, (sql_type, _) in CATALOG_COLUMNS.items()
    )
    con.execute("create schema if not exists features")
    con.execute(f"create or replace table {CATALOG_TABLE} as select {columns} from catalog_rows order by position")
    con.unregister("catalog_rows")
    comment_on_columns(con, CATALOG_TABLE, {name: comment for name, (_, comment) in CATALOG_COLUMNS.items()})


def read_catalog(con: duckdb.DuckDBPyConnection) -> list[Feature]:
    columns = ", ".join(
        quote(name) for name in CATALOG_COLUMNS if name not in ("position", "source_tables", "built_at")
    )
    cursor = con.execute(f"select {columns} from {CATALOG_TABLE} order by position")
    names = [d[0] for d in cursor.description]
    features = []
    for row in cursor.fetchall():
        entry = dict(zip(names, row))
        entry["name"] = entry.pop("feature_name")
        for key in ("source_columns", "tags"):
            entry[key] = tuple(entry[key] or ())
        features.append(Feature(**entry))
    return features


class FeatureCatalog:
    """The features, listed in column order and searchable by name, tag or source table."""

    def __init__(self, features: Iterable[Feature]):
        self.features = tuple(features)
        self._by_name = {f.name: f for f in self.features}

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def __len__(self) -> int:
        return len(self.features)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> Feature:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownFeatures([name], self.names) from None

    def resolve(self, names: Sequence[str] | None) -> list[str]:
        """The requested feature names (all when None), checked all at once; duplicates dropped."""
        if names is None:
            return self.names
        unknown = [n for n in names if n not in self._by_name]
        if unknown:
            raise UnknownFeatures(unknown, self.names)
        return list(dict.fromkeys(names))

    def search(self, text: str | None = None, tag: str | None = None, source_table: str | None = None) -> list[Feature]:
        """Features matching every filter given: text in the name or description (case-insensitive),
        an exact tag, a source table (`transactions`) or source column (`transactions.revenue`)."""
        found = []
        for f in self.features:
            if text and text.lower() not in f.name.lower() and text.lower() not in f.description.lower():
                continue
            if tag and tag.lower() not in f.tags:
                continue
            if source_table and source_table not in f.source_tables and source_table not in f.source_columns:
                continue
            found.append(f)
        return found


def catalog_from_connection(con: duckdb.DuckDBPyConnection, path: Path) -> FeatureCatalog:
    require_features_table(con, path)
    if table_exists(con, CATALOG_TABLE):
        return FeatureCatalog(read_catalog(con))
    # A file published before the catalog asset existed: build the catalog from the manifest instead.
    from feature_store_assets.defs.dbt.project import load_manifest

    return FeatureCatalog(with_availability(feature_definitions(load_manifest()), con))


def load_catalog(analytics: Path | None = None) -> FeatureCatalog:
    """The catalog of the published analytics file (default: FEATURE_STORE_ANALYTICS)."""
    if analytics is None:
        from feature_store_assets.core.settings import Settings

        analytics = Settings.from_env().analytics
    with open_analytics(analytics) as con:
        return catalog_from_connection(con, analytics)
