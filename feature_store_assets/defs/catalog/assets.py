"""The `features.feature_catalog` asset: the catalog written to the warehouse, so publishing copies it.

Kept apart from catalog.py so that serving processes read the catalog without importing Dagster.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from feature_store_assets.core.resources import WAREHOUSE_POOL, DuckDBFile
from feature_store_assets.defs.dbt.project import load_manifest
from feature_store_assets.serving.catalog import (
    availability,
    by_view,
    catalog_definitions,
    feature_views,
    update_month_values,
    write_catalog,
)
from feature_store_assets.serving.published import CATALOG_TABLE
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
    "risk from the dbt yml; first and last month available and the latest null rate from the data.",
)
def feature_catalog(warehouse: DuckDBFile) -> dg.MaterializeResult:
    definitions = catalog_definitions(load_manifest())
    with warehouse.connect() as con:
        # availability from per-month counts, recounted for every month of each feature view materialized since
        # the catalog was last built (from the ledger): this run's months, and any a run without the catalog built.
        built_at = (
            con.execute(f"select max(built_at) from {CATALOG_TABLE}").fetchone()[0]
            if table_exists(con, CATALOG_TABLE)
            else None
        )
        features = []
        for view, members in by_view(definitions).items():
            months = months_materialized_since(con, view, built_at)
            values = update_month_values(con, [f.name for f in members], months, view)
            features += availability(members, values)
        write_catalog(con, features, built_at=datetime.now())
    latest = features[0].latest_month if features else None
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(features),
            "latest_month": latest.isoformat() if latest else "none",
            "features_without_values": ", ".join(f.feature_type for f in features if f.last_month is None) or "none",
        }
    )
