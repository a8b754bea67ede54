"""Publishing the analyst-facing tables to the read-only analytics file (FEATURE_STORE_ANALYTICS).

The pipeline is the only process that opens the warehouse. After each successful
run, the analyst-facing schemas are copied into a new DuckDB file that then
replaces the analytics file in one atomic rename: a reader holding the old file
open keeps reading it undisturbed, and its next connection sees the new month.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import duckdb

from feature_store_assets.resources import WAREHOUSE_POOL, FeatureStoreResource

# Schemas analysts read. The filter layer's event tables stay in the warehouse: they are large and row-level.
PUBLISHED_SCHEMAS = ("features", "aggregation", "quality", "reference", "marts")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def publish_analytics(warehouse: Path, analytics: Path, schemas: tuple[str, ...] = PUBLISHED_SCHEMAS) -> dict[str, int]:
    """Copy every table of the schemas, with column comments, into a new file swapped in for `analytics`.

    Returns rows per published table. Nothing replaces the old file unless the whole copy succeeded.
    """
    analytics.parent.mkdir(parents=True, exist_ok=True)
    staging = analytics.with_name(f".{analytics.name}.{os.getpid()}.publishing")
    staging.unlink(missing_ok=True)
    rows: dict[str, int] = {}
    try:
        with duckdb.connect(str(staging)) as con:
            con.execute(f"attach '{warehouse}' as warehouse (read_only)")
            tables = con.execute(
                "select schema_name, table_name from duckdb_tables() "
                "where database_name = 'warehouse' and list_contains(?, schema_name) order by 1, 2",
                [list(schemas)],
            ).fetchall()
            comments = con.execute(
                "select schema_name, table_name, column_name, comment from duckdb_columns() "
                "where database_name = 'warehouse' and comment is not null and comment != ''"
            ).fetchall()
            for schema in sorted({schema for schema, _ in tables}):
                con.execute(f"create schema {_quote(schema)}")
            for schema, table in tables:
                name = f"{_quote(schema)}.{_quote(table)}"
                con.execute(f"create table {name} as select * from warehouse.{name}")
                rows[f"{schema}.{table}"] = con.execute(f"select count(*) from {name}").fetchone()[0]
            published = set(tables)
            for schema, table, column, comment in comments:
                if (schema, table) in published:
                    literal = "'" + comment.replace("'", "''") + "'"  # COMMENT ON takes no parameters
                    con.execute(f"comment on column {_quote(schema)}.{_quote(table)}.{_quote(column)} is {literal}")
            con.execute("detach warehouse")
            con.execute("checkpoint")
        os.replace(staging, analytics)
    finally:
        staging.unlink(missing_ok=True)
    return rows


@dg.asset(
    key=["publish", "analytics_database"],
    group_name="publish",
    deps=[
        dg.AssetKey(["features", "client_features"]),
        dg.AssetKey(["features", "clinic_features"]),
        dg.AssetKey(["marts", "client_rfm"]),
        dg.AssetKey(["marts", "client_value"]),
        dg.AssetKey(["marts", "client_cohorts"]),
        dg.AssetKey(["marts", "product_affinity"]),
        dg.AssetKey(["features", "feature_catalog"]),
        dg.AssetKey(["aggregation", "client_monthly_financials"]),
        dg.AssetKey(["aggregation", "client_monthly_inclinic_mix"]),
        dg.AssetKey(["aggregation", "client_monthly_web_engagement"]),
        dg.AssetKey(["aggregation", "clinic_monthly_revenue"]),
        dg.AssetKey(["quality", "rejected_rows"]),
        dg.AssetKey(["reference", "client_zip_income"]),
    ],
    pool=WAREHOUSE_POOL,
    kinds={"duckdb"},
    description="The read-only analytics file (FEATURE_STORE_ANALYTICS) analysts and the serving layer open: "
    "the features, aggregation, quality, reference and marts schemas, swapped in atomically after a successful run.",
)
def analytics_database(feature_store: FeatureStoreResource) -> dg.MaterializeResult:
    settings = feature_store.settings
    began = time.perf_counter()
    rows = publish_analytics(settings.warehouse, settings.analytics)
    return dg.MaterializeResult(
        metadata={
            "duration_seconds": round(time.perf_counter() - began, 3),
            "path": dg.MetadataValue.path(str(settings.analytics)),
            "tables": len(rows),
            "client_feature_rows": rows.get("features.client_features", 0),
            **{f"rows/{name}": count for name, count in rows.items()},
        }
    )
