"""The feature catalog: one entry per feature of each feature view, found by name, tag, source or entity.

A feature view is a model of the features layer whose yml names its entity (`meta.entity`): client_features
(entity client_id, the default view) and clinic_features (clinic_id), learnt from the dbt manifest. Definitions
(description, data type, window, lineage, owner, tags, leakage risk) come from the dbt yml through the manifest;
availability (first and last month, latest null rate) is computed from the data. The `features.feature_catalog`
asset writes both to the warehouse and publishing copies it, so serving reads the catalog from the analytics
file without dbt.

A feature is named `view:feature` (Feast's feature reference, `clinic_features:clients_active`) or by its bare
name within a view: the view of the request's entity, else the default view (client_features), else the one view
that has it. `feature_type` (what discovery lists and requests take) is the bare name for the default view's
features and the reference for the others'. The keys (every view's entity, feature_month) are not features:
clinic_id in client_features is an identifier (the home clinic, the key of clinic_features), not a quantity a
model should learn from; the clinic's level is served as clinic_revenue_12m and clinic_revenue_pctl_global_12m.

The marts are listed too, as tables an analyst queries with SQL (`published_tables`), not as online features.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from feature_store_assets.core.names import FEATURE_MODEL, FEATURES_SCHEMA, MARTS_SCHEMA
from feature_store_assets.serving.published import (
    CATALOG_TABLE,
    SNAPSHOT_COLUMN,
    ServingError,
    UnknownFeatures,
    open_analytics,
    require_features_table,
)
from feature_store_assets.warehouse.connections import comment_on_columns, quote, table_exists

DEFAULT_OWNER = "feature-store"
REF_SEPARATOR = ":"  # view:feature, as Feast spells a feature reference


def feature_type(view: str, name: str) -> str:
    """The name requests take without an entity: bare for the default view's features, `view:feature` else."""
    return name if view == FEATURE_MODEL else f"{view}{REF_SEPARATOR}{name}"


@dataclass(frozen=True)
class FeatureVersion:
    """One version of a feature's definition: its number, the first feature month built with it (it applies from
    there on) and the hash of the definition (yml entry and SQL lineage: defs/catalog/definitions.py)."""

    version: int
    first_month: date | None
    definition: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "first_month": self.first_month.isoformat() if self.first_month else None,
            "definition": self.definition,
        }

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> FeatureVersion:
        month = entry["first_month"]
        return cls(
            int(entry["version"]), date.fromisoformat(month) if isinstance(month, str) else month, entry["definition"]
        )


@dataclass(frozen=True)
class Feature:
    """One catalog entry. Availability fields are None until computed from the data; version fields until the
    catalog asset recorded the definition (the catalog built from the manifest alone has none)."""

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
    latest_month: date | None = None  # the month latest_null_rate describes: the view's latest
    latest_null_rate: float | None = None
    feature_view: str = FEATURE_MODEL  # the dbt model (table features.<feature_view>) the feature is a column of
    versions: tuple[FeatureVersion, ...] = ()  # every version of its definition, oldest first

    @property
    def version(self) -> int | None:
        """The current definition's version (1, then one more per change); None when not recorded."""
        return self.versions[-1].version if self.versions else None

    @property
    def version_first_month(self) -> date | None:
        """The first feature month built with the current version: it applies from there on."""
        return self.versions[-1].first_month if self.versions else None

    @property
    def definition(self) -> str | None:
        return self.versions[-1].definition if self.versions else None

    @property
    def source_tables(self) -> tuple[str, ...]:
        return tuple(sorted({column.split(".")[0] for column in self.source_columns}))

    @property
    def ref(self) -> str:
        """The full reference, `view:feature`."""
        return f"{self.feature_view}{REF_SEPARATOR}{self.name}"

    @property
    def feature_type(self) -> str:
        return feature_type(self.feature_view, self.name)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, in field order with source_tables before source_columns: lists, ISO months."""
        entry: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "source_columns":
                entry["source_tables"] = list(self.source_tables)
            if f.name == "versions":
                month = self.version_first_month
                entry |= {
                    "version": self.version,
                    "version_first_month": month.isoformat() if month else None,
                    "definition": self.definition,
                    "versions": [v.as_dict() for v in self.versions],
                }
                continue
            value = getattr(self, f.name)
            entry[f.name] = (
                list(value) if isinstance(value, tuple) else value.isoformat() if isinstance(value, date) else value
            )
        return entry


def feature_views(manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The feature views' model nodes: the features schema's models whose yml names an entity (meta.entity),
    the default view (client_features) first, then by name."""
    models = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["schema"] == FEATURES_SCHEMA
        and (node.get("meta") or {}).get("entity")
    ]
    return sorted(models, key=lambda node: (node["name"] != FEATURE_MODEL, node["name"]))


def feature_definitions(manifest: Mapping[str, Any], model: str = FEATURE_MODEL) -> list[Feature]:
    """The features of one feature view (default: client_features) as its yml declares them, in column order.

    Every view's entity and feature_month are keys, not features."""
    views = feature_views(manifest)
    node = next((view for view in views if view["name"] == model), None)
    if node is None:
        found = ", ".join(view["name"] for view in views) or "none"
        raise KeyError(
            f"the dbt manifest has no feature view {model} (models with meta.entity in {FEATURES_SCHEMA}: {found})"
        )
    keys = {SNAPSHOT_COLUMN, *(view["meta"]["entity"] for view in views)}
    model_meta = node["meta"]
    features = []
    for name, column in node["columns"].items():
        if name in keys:
            continue
        meta = (column.get("meta") or {}).get("feature") or {}
        features.append(
            Feature(
                name=name,
                description=column.get("description") or "",
                data_type=column.get("data_type") or "",
                entity=model_meta["entity"],
                window=meta.get("window", ""),
                source_columns=tuple(meta.get("derived_from") or ()),
                owner=meta.get("owner") or model_meta.get("owner") or DEFAULT_OWNER,
                tags=tuple(meta.get("tags") or ()),
                leakage_risk=meta.get("leakage_risk", "unknown"),
                leakage_note=meta.get("leakage_note", ""),
                feature_view=node["name"],
            )
        )
    return features


def catalog_definitions(manifest: Mapping[str, Any]) -> list[Feature]:
    """Every feature view's features, the default view's first: what the catalog lists."""
    return [f for view in feature_views(manifest) for f in feature_definitions(manifest, view["name"])]


def view_table(view: str) -> str:
    """The relation of a feature view."""
    return f"{FEATURES_SCHEMA}.{view}"


# Per feature month of each feature view: its rows and each feature's non-null values, the feature named by its
# feature_type (bare for client_features). The catalog's availability is computed from this small table, which
# each catalog build updates for the months materialized since the previous one only
# (feature_store_assets/defs/catalog/assets.py): a month's cost, whatever the history
# (recomputing it over all of client_features took 40 s at 24 months of 2M clients).
MONTH_VALUES_TABLE = "features.feature_month_values"
MONTH_VALUES_COLUMNS = {
    SNAPSHOT_COLUMN: ("date", "the feature month"),
    "feature_name": ("varchar", "the feature, as requests name it (feature_type: view:feature beyond client_features)"),
    "month_rows": ("bigint", "rows (entities) of the feature month"),
    "non_null_rows": ("bigint", "rows of the month where the feature is not NULL"),
}
MONTH_VALUES_VIEW = ("feature_view", "varchar", "the feature view (features.<feature_view>) the feature is a column of")


def month_values(
    con: duckdb.DuckDBPyConnection,
    names: Sequence[str],
    months: Sequence[date] | None = None,
    view: str = FEATURE_MODEL,
) -> pd.DataFrame:
    """MONTH_VALUES_COLUMNS for the given months of a feature view (default: all months), one pass over them."""
    counts = "".join(f", count({quote(name)})" for name in names)
    keys = [feature_type(view, name) for name in names]
    where, params = ("", []) if months is None else (f" where list_contains(?, {SNAPSHOT_COLUMN})", [list(months)])
    found = con.execute(
        f"select {SNAPSHOT_COLUMN}, count(*){counts} from {view_table(view)}{where} group by 1", params
    ).fetchall()
    return _month_values_frame([(row[0], key, row[1], row[2 + i]) for row in found for i, key in enumerate(keys)])


def _month_values_frame(rows: Iterable[tuple]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(MONTH_VALUES_COLUMNS))


def availability(features: Sequence[Feature], values: pd.DataFrame) -> list[Feature]:
    """The features with their first and last month with a value, their view's latest month and its null rate
    (pure). `values` may hold other views' counts too: only these features' rows are read."""
    values = values[values["feature_name"].isin([f.feature_type for f in features])]
    if values.empty:
        return [
            replace(f, first_month=None, last_month=None, latest_month=None, latest_null_rate=None) for f in features
        ]
    latest = values[SNAPSHOT_COLUMN].max()
    with_values = values[values["non_null_rows"] > 0].groupby("feature_name")[SNAPSHOT_COLUMN].agg(["min", "max"])
    at_latest = values[values[SNAPSHOT_COLUMN] == latest].set_index("feature_name")
    found = []
    for f in features:
        key = f.feature_type
        first, last = (
            (with_values.loc[key, "min"], with_values.loc[key, "max"]) if key in with_values.index else (None, None)
        )
        rows, non_null = (
            (int(v) for v in at_latest.loc[key, ["month_rows", "non_null_rows"]]) if key in at_latest.index else (0, 0)
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


def by_view(features: Iterable[Feature]) -> dict[str, list[Feature]]:
    """The features grouped by feature view, in order of first appearance."""
    grouped: dict[str, list[Feature]] = {}
    for f in features:
        grouped.setdefault(f.feature_view, []).append(f)
    return grouped


def with_availability(features: Sequence[Feature], con: duckdb.DuckDBPyConnection) -> list[Feature]:
    """The features with their availability, computed from all months of the connection's feature views."""
    return [
        found
        for view, members in by_view(features).items()
        for found in availability(members, month_values(con, [f.name for f in members], view=view))
    ]


def _month_values_current(con: duckdb.DuckDBPyConnection) -> bool:
    """The table exists with its feature_view column (a warehouse built before clinic features had none)."""
    if not table_exists(con, MONTH_VALUES_TABLE):
        return False
    schema, table = MONTH_VALUES_TABLE.split(".")
    found = con.execute(
        "select count(*) from information_schema.columns where table_schema = ? and table_name = ? and column_name = ?",
        [schema, table, MONTH_VALUES_VIEW[0]],
    ).fetchall()
    return bool(found[0][0])


def update_month_values(
    con: duckdb.DuckDBPyConnection, names: Sequence[str], months: Sequence[date], view: str = FEATURE_MODEL
) -> pd.DataFrame:
    """Recount the given months of a feature view in MONTH_VALUES_TABLE and return the whole table (every view).

    The view is counted over all months when the table is new or the view's stored features are not `names`
    (a feature was added or removed); other views' rows stay.
    """
    view_column, view_type, view_comment = MONTH_VALUES_VIEW
    if not _month_values_current(con):
        columns = ", ".join(
            f"{quote(name)} {sql_type}"
            for name, sql_type in [(view_column, view_type), *((n, t) for n, (t, _) in MONTH_VALUES_COLUMNS.items())]
        )
        con.execute(f"create schema if not exists {FEATURES_SCHEMA}")
        con.execute(f"create or replace table {MONTH_VALUES_TABLE} ({columns})")
        comment_on_columns(
            con,
            MONTH_VALUES_TABLE,
            {view_column: view_comment, **{name: comment for name, (_, comment) in MONTH_VALUES_COLUMNS.items()}},
        )
    keys = {feature_type(view, name) for name in names}
    stored = {
        row[0]
        for row in con.execute(
            f"select distinct feature_name from {MONTH_VALUES_TABLE} where {view_column} = ?", [view]
        ).fetchall()
    }
    if stored and stored == keys:
        con.execute(
            f"delete from {MONTH_VALUES_TABLE} where {view_column} = ? and list_contains(?, {SNAPSHOT_COLUMN})",
            [view, list(months)],
        )
        fresh = month_values(con, names, months, view)
    else:
        con.execute(f"delete from {MONTH_VALUES_TABLE} where {view_column} = ?", [view])
        fresh = month_values(con, names, view=view)
    selected = ", ".join(quote(name) for name in MONTH_VALUES_COLUMNS)
    con.register("fresh_month_values", fresh)
    con.execute(
        f"insert into {MONTH_VALUES_TABLE} ({view_column}, {selected}) select ?, {selected} from fresh_month_values",
        [view],
    )
    con.unregister("fresh_month_values")
    return _month_values_frame(con.execute(f"select {selected} from {MONTH_VALUES_TABLE}").fetchall())


# The catalog table: one row per feature, lists as VARCHAR[]; `window` is quoted in SQL (a keyword).
CATALOG_COLUMNS = {
    "feature_name": ("varchar", "the feature: a column of its feature view's table, features.<feature_view>"),
    "position": ("integer", "the feature's position in the catalog (client_features first, in column order)"),
    "description": ("varchar", "definition, from the dbt yml (docs/features.md word for word)"),
    "data_type": ("varchar", "DuckDB type"),
    "entity": ("varchar", "the key the feature describes (client_id, clinic_id): its view's meta.entity"),
    "feature_view": ("varchar", "the dbt model whose column the feature is (client_features, clinic_features)"),
    "window": ("varchar", "1m, 3m, 12m (months ending at E), all (all history before E) or static (not versioned)"),
    "source_tables": ("varchar[]", "landing-zone tables the feature derives from"),
    "source_columns": ("varchar[]", "landing-zone columns the feature derives from (table.column)"),
    "owner": ("varchar", "who answers for the feature"),
    "tags": ("varchar[]", "search tags"),
    "leakage_risk": ("varchar", "low, medium or high: can a snapshot hold information from after E?"),
    "leakage_note": ("varchar", "why the risk is what it is"),
    "first_month": ("date", "first feature month with a non-null value"),
    "last_month": ("date", "last feature month with a non-null value"),
    "latest_month": ("date", "the latest feature month of the feature view"),
    "latest_null_rate": ("double", "share of NULLs in the latest feature month"),
    "version": ("integer", "the definition's version: 1, then one more each time its yml entry or SQL changed"),
    "version_first_month": ("date", "the first feature month built with this version: it applies from there on"),
    "definition": ("varchar", "hash of this version's definition: the yml entry and the SQL lineage of the column"),
    "versions": (
        "struct(version integer, first_month date, definition varchar)[]",
        "every version, oldest first, with the first feature month built with it",
    ),
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
    con.execute(f"create schema if not exists {FEATURES_SCHEMA}")
    con.execute(f"create or replace table {CATALOG_TABLE} as select {columns} from catalog_rows order by position")
    con.unregister("catalog_rows")
    comment_on_columns(con, CATALOG_TABLE, {name: comment for name, (_, comment) in CATALOG_COLUMNS.items()})


def read_catalog(con: duckdb.DuckDBPyConnection) -> list[Feature]:
    """The catalog table's features; a catalog published before it had feature_view holds client_features only."""
    schema, table = CATALOG_TABLE.split(".")
    present = {
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }
    derived = ("position", "source_tables", "built_at", "version", "version_first_month", "definition")
    columns = ", ".join(quote(name) for name in CATALOG_COLUMNS if name in present and name not in derived)
    cursor = con.execute(f"select {columns} from {CATALOG_TABLE} order by position")
    names = [d[0] for d in cursor.description]
    features = []
    for row in cursor.fetchall():
        entry = dict(zip(names, row))
        entry["name"] = entry.pop("feature_name")
        for key in ("source_columns", "tags"):
            entry[key] = tuple(entry[key] or ())
        entry["versions"] = tuple(FeatureVersion.from_dict(v) for v in entry.get("versions") or ())
        features.append(Feature(**entry))
    return features


@dataclass(frozen=True)
class FeatureView:
    """One feature view: a table of features keyed by an entity and feature_month (Feast's feature view)."""

    name: str
    entity: str
    features: tuple[Feature, ...]

    @property
    def table(self) -> str:
        return view_table(self.name)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]


@dataclass(frozen=True)
class Selection:
    """A request's features: one feature view and the bare names of the features wanted from it."""

    view: FeatureView
    names: list[str]


class FeatureCatalog:
    """The features of every feature view, listed in catalog order and searchable by name, tag, source or entity.

    Names are `view:feature` or bare (within the request's entity's view, else the default view client_features,
    else the one view that has the name); `feature_types` lists them all, `names` the default view's.
    """

    def __init__(self, features: Iterable[Feature]):
        self.features = tuple(features)
        self.views = {
            view: FeatureView(view, members[0].entity, tuple(members))
            for view, members in by_view(self.features).items()
        }
        self._by_type = {f.feature_type: f for f in self.features}
        self._by_ref = {f.ref: f for f in self.features}

    @property
    def names(self) -> list[str]:
        """The default view's (client_features') feature names, in column order."""
        return self.default_view.names if self.views else []

    @property
    def feature_types(self) -> list[str]:
        """Every feature as requests name it without an entity (bare, or `view:feature`), in catalog order."""
        return [f.feature_type for f in self.features]

    @property
    def entities(self) -> list[str]:
        return [view.entity for view in self.views.values()]

    def __len__(self) -> int:
        return len(self.features)

    def __contains__(self, name: object) -> bool:
        return name in self._by_type or name in self._by_ref

    @property
    def default_view(self) -> FeatureView:
        return self.views.get(FEATURE_MODEL) or next(iter(self.views.values()))

    def view_of(self, entity: str) -> FeatureView:
        """The feature view keyed by `entity`."""
        found = next((view for view in self.views.values() if view.entity == entity), None)
        if found is None:
            raise ServingError(
                f"no feature view is keyed by {entity!r}: the entities served are {', '.join(self.entities)}"
            )
        return found

    def of_view(self, view: str) -> FeatureCatalog:
        """The catalog of one feature view."""
        return FeatureCatalog(self.views[view].features)

    def get(self, name: str, entity: str | None = None) -> Feature:
        found = self._find(name, None if entity is None else self.view_of(entity))
        if found is None:
            raise UnknownFeatures([name], self._valid(entity))
        return found

    def _find(self, name: str, context: FeatureView | None) -> Feature | None:
        if REF_SEPARATOR in name:
            return self._by_ref.get(name)
        views = [context] if context is not None else list(self.views.values())  # the default view first
        return next((f for view in views for f in view.features if f.name == name), None)

    def _valid(self, entity: str | None) -> list[str]:
        return self.feature_types if entity is None else self.view_of(entity).names

    def select(self, names: Sequence[str] | None = None, entity: str | None = None) -> Selection:
        """The requested features (every feature of the entity's view when None, default client_features), checked
        all at once, duplicates dropped; all of one feature view, and of the view of `entity` when given."""
        context = None if entity is None else self.view_of(entity)
        if names is None:
            view = context or self.default_view
            return Selection(view, view.names)
        found: list[Feature] = []
        unknown = []
        for name in dict.fromkeys(names):
            feature = self._find(name, context)
            if feature is None:
                unknown.append(name)
            else:
                found.append(feature)
        if unknown:
            raise UnknownFeatures(unknown, self._valid(entity))
        views = by_view(found)
        if len(views) > 1:
            listed = "; ".join(f"{view}: {', '.join(f.name for f in members)}" for view, members in views.items())
            raise ServingError(f"features of several feature views ({listed}): request one view at a time")
        view = self.views[next(iter(views))] if views else context or self.default_view
        if context is not None and view is not context:
            raise ServingError(
                f"{', '.join(f.ref for f in found)}: feature view {view.name} is keyed by {view.entity}, not {entity}"
            )
        return Selection(view, list(dict.fromkeys(f.name for f in found)))

    def resolve(self, names: Sequence[str] | None, entity: str | None = None) -> list[str]:
        """The requested features' bare names (select's rules)."""
        return self.select(names, entity).names

    def search(
        self,
        text: str | None = None,
        tag: str | None = None,
        source_table: str | None = None,
        entity: str | None = None,
    ) -> list[Feature]:
        """Features matching every filter given: text in the name or description (case-insensitive),
        an exact tag, a source table (`transactions`) or source column (`transactions.revenue`), an entity."""
        found = []
        for f in self.features:
            if text and text.lower() not in f.name.lower() and text.lower() not in f.description.lower():
                continue
            if tag and tag.lower() not in f.tags:
                continue
            if source_table and source_table not in f.source_tables and source_table not in f.source_columns:
                continue
            if entity and f.entity != entity:
                continue
            found.append(f)
        return found


def catalog_from_connection(con: duckdb.DuckDBPyConnection, path: Path) -> FeatureCatalog:
    require_features_table(con, path)
    if table_exists(con, CATALOG_TABLE):
        return FeatureCatalog(read_catalog(con))
    # A file published before the catalog asset existed: build the catalog from the manifest instead.
    from feature_store_assets.defs.dbt.project import load_manifest

    definitions = [f for f in catalog_definitions(load_manifest()) if table_exists(con, view_table(f.feature_view))]
    return FeatureCatalog(with_availability(definitions, con))


def load_catalog(analytics: Path | None = None) -> FeatureCatalog:
    """The catalog of the published analytics file (default: FEATURE_STORE_ANALYTICS)."""
    if analytics is None:
        from feature_store_assets.core.settings import Settings

        analytics = Settings.from_env().analytics
    with open_analytics(analytics) as con:
        return catalog_from_connection(con, analytics)


# ---------------------------------------------------------------- tables analysts query (not online features)


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    description: str


@dataclass(frozen=True)
class Table:
    """A published table an analyst queries with SQL on the analytics file (a mart): not served online."""

    table: str  # schema.table, as SQL names it
    description: str
    columns: tuple[Column, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "table",
            "table": self.table,
            "description": self.description,
            "query": f"select * from {self.table}",
            "columns": [{"name": c.name, "data_type": c.data_type, "description": c.description} for c in self.columns],
        }


def published_tables(con: duckdb.DuckDBPyConnection, schema: str = MARTS_SCHEMA) -> list[Table]:
    """The schema's tables of the published file, with the descriptions publishing copied from the dbt yml
    (the table's and each column's comment), by name."""
    relations = con.execute(
        "select table_name, comment from ("
        "  select table_name, comment, database_name, schema_name from duckdb_tables()"
        "  union all select view_name, comment, database_name, schema_name from duckdb_views() where not internal"
        ") where database_name = current_database() and schema_name = ? order by 1",
        [schema],
    ).fetchall()
    columns: dict[str, list[Column]] = {}
    for table, name, data_type, comment in con.execute(
        "select table_name, column_name, data_type, comment from duckdb_columns() "
        "where database_name = current_database() and schema_name = ? order by table_name, column_index",
        [schema],
    ).fetchall():
        columns.setdefault(table, []).append(Column(name, data_type, comment or ""))
    return [
        Table(f"{schema}.{table}", (comment or "").strip(), tuple(columns.get(table, ())))
        for table, comment in relations
    ]
