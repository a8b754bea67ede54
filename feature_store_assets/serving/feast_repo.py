"""A Feast feature repository over the published client features: `feature-store feast-repo DIR`.

`feast_repo_files` is pure: the feature catalog in, the repository's files' text out:

- `feature_store.yaml`: project, a local registry file, the SQLite online store and Feast's file offline store;
- `client_features.py`: the `client` entity (join key client_id) and one feature view, `client_features`, whose
  fields, types, descriptions and tags (window, owner, leakage risk) are the catalog's, over a FileSource whose
  event timestamp is E (`available_at`, the first day of feature_month + 1, when the snapshot became usable) and
  without TTL, so Feast's point-in-time join returns what `get_training_features` returns: the latest snapshot
  with E <= the event's time.

The source is a Parquet file of one store version (`data/client_features.parquet`, written by
`write_feast_repo`), not the Delta table itself. Feast 0.67's file offline store reads a FileSource with
`dask.read_parquet(path)`, which ignores `DeltaFormat` and would read every file under the table's folder,
including those a later publish replaced; its DuckDB offline store reads Delta through DuckDB's `delta`
extension, which it downloads on first use. And the Delta table has no E column for `timestamp_field`
(Feast cannot compute one). The repo therefore pins a version, like a training set: re-run the command after
a publish to move Feast to the new current version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from feature_store_assets.core.names import FEATURE_MODEL, FEATURES_TABLE
from feature_store_assets.serving.catalog import Feature, FeatureCatalog, catalog_from_connection
from feature_store_assets.serving.published import ENTITY, SNAPSHOT_COLUMN, ServingError
from feature_store_assets.serving.training import AVAILABLE_AT_SQL, open_features
from feature_store_assets.warehouse.connections import quote, sql_string

PROJECT = "client_feature_store"
ENTITY_NAME = "client"
EVENT_TIMESTAMP_COLUMN = "available_at"  # E: the snapshot's event timestamp in Feast's source
SNAPSHOT_FILE = f"data/{FEATURE_MODEL}.parquet"
DEFINITIONS_FILE = f"{FEATURE_MODEL}.py"

# The catalog's data types (DuckDB's, lower case) as Feast types.
FEAST_TYPES = {
    "tinyint": "Int32",
    "smallint": "Int32",
    "integer": "Int32",
    "int": "Int32",
    "bigint": "Int64",
    "double": "Float64",
    "float": "Float32",
    "real": "Float32",
    "varchar": "String",
    "text": "String",
    "boolean": "Bool",
}


@dataclass(frozen=True)
class FeastRepo:
    """A written repository: its folder, the store version its snapshot file holds, and that file's rows."""

    directory: Path
    version: int | None
    rows: int
    features: int


def feast_type(feature: Feature) -> str:
    try:
        return FEAST_TYPES[feature.data_type.lower()]
    except KeyError:
        raise ServingError(
            f"feature {feature.name}: data type {feature.data_type!r} has no Feast type "
            f"(known: {', '.join(sorted(FEAST_TYPES))})"
        ) from None


def feature_store_yaml() -> str:
    """Paths are relative to the repository, so it can be moved or copied whole."""
    return (
        f"project: {PROJECT}\n"
        "provider: local\n"
        "registry: data/registry.db\n"
        "online_store:\n"
        "  type: sqlite\n"
        "  path: data/online_store.db\n"
        "offline_store:\n"
        "  type: file\n"
        "entity_key_serialization_version: 3\n"
    )


def _field(feature: Feature) -> str:
    tags = {"window": feature.window, "owner": feature.owner, "leakage_risk": feature.leakage_risk}
    if feature.tags:
        tags["tags"] = ", ".join(feature.tags)
    return (
        f"        Field(name={feature.name!r}, dtype={feast_type(feature)}, "
        f"description={feature.description!r}, tags={tags!r}),\n"
    )


def definitions_py(catalog: FeatureCatalog, version: int | None) -> str:
    """The entity, the source and the feature view, as Python `feast apply` imports."""
    if not len(catalog):
        raise ServingError("the feature catalog is empty: there is nothing to give Feast")
    types = sorted({feast_type(f) for f in catalog.features} | {"Int64"})
    pinned = "the current store version" if version is None else f"store version {version}"
    fields = "".join(_field(f) for f in catalog.features)
    version_tag = "" if version is None else f'    tags={{"feature_store_version": "{version}"}},\n'
    return f'''"""Written by `feature-store feast-repo` from the feature catalog of {pinned}: re-run it rather than edit."""

from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import {", ".join(types)}

client = Entity(
    name={ENTITY_NAME!r},
    join_keys=[{ENTITY!r}],
    value_type=ValueType.INT64,
    description="A clinic's client (pet owner), as features.client_features keys it.",
)

client_features_source = FileSource(
    name={FEATURE_MODEL!r},
    path={SNAPSHOT_FILE!r},
    file_format=ParquetFormat(),
    timestamp_field={EVENT_TIMESTAMP_COLUMN!r},
    description="features.client_features of {pinned}; {EVENT_TIMESTAMP_COLUMN} is E, the first day of the month "
    "after {SNAPSHOT_COLUMN}: a snapshot is usable from E on.",
)

client_features = FeatureView(
    name={FEATURE_MODEL!r},
    entities=[client],
    ttl=timedelta(0),  # no TTL: the latest snapshot with E <= the event, as get_training_features
    schema=[
{fields}    ],
    source=client_features_source,
    online=True,
    description="One row per eligible client per feature month (docs/features.md).",
{version_tag})
'''


def feast_repo_files(catalog: FeatureCatalog, version: int | None) -> Mapping[str, str]:
    """The repository's text files, by path relative to its folder."""
    return {
        "feature_store.yaml": feature_store_yaml(),
        DEFINITIONS_FILE: definitions_py(catalog, version),
        ".feastignore": "data/\n",
    }


def snapshot_sql(features: list[str]) -> str:
    """client_features with E as Feast's event timestamp, the columns the feature view reads."""
    columns = "".join(f", {quote(name)}" for name in features)
    return (
        f"select {ENTITY}, {AVAILABLE_AT_SQL} as {EVENT_TIMESTAMP_COLUMN}, {SNAPSHOT_COLUMN}{columns} "
        f"from {FEATURES_TABLE} order by {SNAPSHOT_COLUMN}, {ENTITY}"
    )


def write_feast_repo(directory: Path, analytics: Path, version: int | None = None) -> FeastRepo:
    """Write the repository's files and its snapshot Parquet file of a store version (default: current)."""
    with open_features(analytics, version) as (con, pinned):
        catalog = catalog_from_connection(con, analytics).of_view(FEATURE_MODEL)  # the client feature view
        files = feast_repo_files(catalog, pinned)
        snapshot = directory / SNAPSHOT_FILE
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        staged = snapshot.with_name(f".{snapshot.name}.tmp")
        con.execute(f"copy ({snapshot_sql(catalog.names)}) to {sql_string(str(staged))} (format parquet)")
        rows = con.execute(f"select count(*) from read_parquet({sql_string(str(staged))})").fetchone()[0]
    for name, text in files.items():
        (directory / name).write_text(text)
    staged.replace(snapshot)  # a repo Feast already applied switches to the new snapshot at once
    return FeastRepo(directory=directory, version=pinned, rows=rows, features=len(catalog))
