"""Publishing the analyst-facing tables to the read-only analytics file (FEATURE_STORE_ANALYTICS).

The pipeline is the only process that opens the warehouse. After each successful
run, the analyst-facing schemas are copied into a new DuckDB file that then
replaces the analytics file in one atomic rename: a reader holding the old file
open keeps reading it undisturbed, and its next connection sees the new month.

The new file starts as a copy of the published one, and only the months the run
built are replaced in the monthly tables, so publishing a month costs a file copy
and that month's rows, not a re-insert of the whole history. Tables without a month
column, and tables whose columns changed, are copied whole.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from feature_store_assets.resources import WAREHOUSE_POOL, FeatureStoreResource
from feature_store_assets.warehouse import comment_on_columns, limit_memory, months_built_by_run, quote, sql_string

# Schemas analysts read. The filter layer's event tables stay in the warehouse: they are large and row-level.
PUBLISHED_SCHEMAS = ("features", "aggregation", "quality", "reference", "marts")
# The month key of a monthly table: the first of these columns it has.
MONTH_COLUMNS = ("feature_month", "activity_month", "event_month", "snapshot_month")


def _columns(con: duckdb.DuckDBPyConnection, database: str) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(schema, table) -> its ordered (column, type) list, for the tables of a database."""
    columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, data_type in con.execute(
        "select schema_name, table_name, column_name, data_type from duckdb_columns() "
        "where database_name = ? order by schema_name, table_name, column_index",
        [database],
    ).fetchall():
        columns.setdefault((schema, table), []).append((column, data_type))
    return columns


def publish_analytics(
    warehouse: Path,
    analytics: Path,
    schemas: tuple[str, ...] = PUBLISHED_SCHEMAS,
    months: Iterable[date] | None = None,
) -> dict[str, int]:
    """Publish every table of the schemas, with column comments, into a new file swapped in for `analytics`.

    `months`: the months that changed since the last publish. Given, and with a published file to start
    from, only those months of the monthly tables are replaced; otherwise everything is copied.
    Returns rows per published table. Nothing replaces the old file unless the whole copy succeeded.
    """
    analytics.parent.mkdir(parents=True, exist_ok=True)
    staging = analytics.with_name(f".{analytics.name}.{os.getpid()}.publishing")
    staging.unlink(missing_ok=True)
    months = sorted(set(months)) if months is not None else None
    rows: dict[str, int] = {}
    try:
        incremental = months is not None and analytics.exists()
        if incremental:
            shutil.copyfile(analytics, staging)
        with limit_memory(duckdb.connect(str(staging))) as con:
            con.execute(f"attach {sql_string(str(warehouse))} as warehouse (read_only)")
            # views too: with the Spark target, the warehouse reads dbt's tables through views (warehouse.py)
            tables = con.execute(
                "select schema_name, table_name from duckdb_tables() "
                "where database_name = 'warehouse' and list_contains(?, schema_name) "
                "union select schema_name, view_name from duckdb_views() "
                "where database_name = 'warehouse' and list_contains(?, schema_name) and not internal order by 1, 2",
                [list(schemas), list(schemas)],
            ).fetchall()
            staging_database = con.execute("select current_database()").fetchone()[0]
            source_columns = _columns(con, "warehouse")
            published_columns = _columns(con, staging_database) if incremental else {}
            comments = con.execute(
                "select schema_name, table_name, column_name, comment from duckdb_columns() "
                "where database_name = 'warehouse' and comment is not null and comment != ''"
            ).fetchall()
            for schema in sorted({schema for schema, _ in tables}):
                con.execute(f"create schema if not exists {quote(schema)}")
            published = set(tables)
            for schema, table in set(published_columns) - published:  # gone from the warehouse
                con.execute(f"drop table if exists {quote(schema)}.{quote(table)}")
            for schema, table in tables:
                name = f"{quote(schema)}.{quote(table)}"
                columns = source_columns[(schema, table)]
                month_column = next((c for c in MONTH_COLUMNS if c in dict(columns)), None)
                if incremental and month_column and published_columns.get((schema, table)) == columns:
                    con.execute(f"delete from {name} where list_contains(?, {quote(month_column)})", [months])
                    con.execute(
                        f"insert into {name} select * from warehouse.{name} where list_contains(?, {quote(month_column)})",
                        [months],
                    )
                else:
                    con.execute(f"create or replace table {name} as select * from warehouse.{name}")
                rows[f"{schema}.{table}"] = con.execute(f"select count(*) from {name}").fetchone()[0]
            for schema, table, column, comment in comments:
                if (schema, table) in published:
                    comment_on_columns(con, f"{quote(schema)}.{quote(table)}", {column: comment})
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
        dg.AssetKey(["aggregation", "category_pair_monthly_visits"]),
        dg.AssetKey(["quality", "rejected_rows"]),
        dg.AssetKey(["reference", "client_zip_income"]),
    ],
    pool=WAREHOUSE_POOL,
    kinds={"duckdb"},
    description="The read-only analytics file (FEATURE_STORE_ANALYTICS) analysts and the serving layer open: "
    "the features, aggregation, quality, reference and marts schemas, swapped in atomically after a successful run.",
)
def analytics_database(context, feature_store: FeatureStoreResource) -> dg.MaterializeResult:
    settings = feature_store.settings
    began = time.perf_counter()
    # The months this run built (the dbt step's ledger); a run that built none publishes everything.
    months = months_built_by_run(settings.warehouse, context.run_id) or None
    mode = "months of this run" if months and settings.analytics.exists() else "full copy"
    rows = publish_analytics(settings.warehouse, settings.analytics, months=months)
    return dg.MaterializeResult(
        metadata={
            "duration_seconds": round(time.perf_counter() - began, 3),
            "mode": mode,
            "months": ", ".join(f"{m:%Y-%m}" for m in months or []),
            "path": dg.MetadataValue.path(str(settings.analytics)),
            "tables": len(rows),
            "client_feature_rows": rows.get("features.client_features", 0),
            **{f"rows/{name}": count for name, count in rows.items()},
        }
    )
