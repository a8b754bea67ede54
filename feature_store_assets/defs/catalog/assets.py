"""The `features.feature_catalog` asset: the catalog written to the warehouse, so publishing copies it.

Kept apart from catalog.py so that serving processes read the catalog without importing Dagster.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from feature_store_assets.core.resources import WAREHOUSE_POOL, DuckDBFile
from feature_store_assets.defs.catalog.definitions import (
    Lineages,
    definition_hashes,
    feature_lineages,
    read_versions,
    with_versions,
    write_versions,
)
from feature_store_assets.defs.dbt.invocation import parse_cache
from feature_store_assets.defs.dbt.project import load_manifest
from feature_store_assets.serving.catalog import (
    availability,
    by_view,
    catalog_definitions,
    feature_views,
    update_month_values,
    write_catalog,
)
from feature_store_assets.serving.published import CATALOG_TABLE, SNAPSHOT_COLUMN
from feature_store_assets.warehouse.connections import table_exists
from feature_store_assets.warehouse.ledger import months_materialized_since

LINEAGE_CACHE_NAME = "feature_lineage.json"


def lineage_cache(warehouse: Path) -> Path:
    """Where the feature views' lineage is kept between runs: beside the warehouse's kept dbt parse."""
    return parse_cache(warehouse).with_name(f"{warehouse.name}.{LINEAGE_CACHE_NAME}")


def kept_lineages(manifest: Mapping[str, Any], cache: Path) -> Lineages:
    """feature_lineages, with what the last run traced read from `cache` and this run's written there (a cache:
    unreadable, it is traced again; unwritable, the next run traces again)."""
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    lineages = feature_lineages(manifest, known if isinstance(known, dict) else {})
    if lineages != known:
        partial = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(lineages))
            os.replace(partial, cache)
        except OSError:
            partial.unlink(missing_ok=True)
    return lineages


@dg.asset(
    key=["features", "feature_catalog"],
    group_name="features",
    # every feature view (from the manifest: the features models whose yml names an entity)
    deps=[dg.AssetKey([view["schema"], view["name"]]) for view in feature_views(load_manifest())],
    pool=WAREHOUSE_POOL,
    kinds={"duckdb"},
    description="One row per feature of each feature view (the features models whose yml names an entity: "
    "client_features, clinic_features): description, data type, entity, window, lineage, owner, tags and leakage "
    "risk from the dbt yml; first and last month available and the latest null rate from the data; the version of "
    "each feature's definition (yml entry and SQL, from the manifest) and the first month built with it "
    "(features.feature_versions).",
)
def feature_catalog(warehouse: DuckDBFile) -> dg.MaterializeResult:
    manifest = load_manifest()
    definitions = catalog_definitions(manifest)
    hashes = definition_hashes(manifest, kept_lineages(manifest, lineage_cache(warehouse.path)))
    with warehouse.connect() as con:
        # availability from per-month counts, recounted for every month of each feature view materialized since
        # the catalog was last built (from the ledger): this run's months, and any a run without the catalog built.
        built_at = (
            con.execute(f"select max(built_at) from {CATALOG_TABLE}").fetchone()[0]
            if table_exists(con, CATALOG_TABLE)
            else None
        )
        features, built, first_months = [], {}, {}
        for view, members in by_view(definitions).items():
            built[view] = months_materialized_since(con, view, built_at)
            values = update_month_values(con, [f.name for f in members], built[view], view)
            features += availability(members, values)
            mine = values[values["feature_name"].isin([f.feature_type for f in members])][SNAPSHOT_COLUMN]
            first_months[view] = pd.Timestamp(mine.min()).date() if len(mine) else None
        # each feature's version: a new one when its definition changed, from the first month built with it
        features = with_versions(features, read_versions(con), hashes, built, first_months)
        now = datetime.now()
        write_versions(con, features, now)
        write_catalog(con, features, built_at=now)
    latest = features[0].latest_month if features else None
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(features),
            "latest_month": latest.isoformat() if latest else "none",
            "features_without_values": ", ".join(f.feature_type for f in features if f.last_month is None) or "none",
            "features_with_a_new_version": ", ".join(
                f"{f.feature_type} v{f.version} from {f.version_first_month}"
                for f in features
                if f.version and f.version > 1 and f.version_first_month in built.get(f.feature_view, ())
            )
            or "none",
        }
    )
