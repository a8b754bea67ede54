"""The `features.feature_catalog` asset: the catalog written to the warehouse, so publishing copies it.

Kept apart from catalog.py so that serving processes read the catalog without importing Dagster.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg
import pandas as pd

from feature_store_assets.core.resources import WAREHOUSE_POOL, DuckDBFile
from feature_store_assets.defs.catalog.definitions import (
    definition_hashes,
    read_versions,
    with_versions,
    write_versions,
)
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
    hashes = definition_hashes(manifest)
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
