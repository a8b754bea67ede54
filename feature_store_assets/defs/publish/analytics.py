"""Publishing the analyst-facing tables to the read-only analytics file (FEATURE_STORE_ANALYTICS).

The pipeline is the only process that opens the warehouse. After each run, the analyst-facing
schemas are copied into a new DuckDB file that then replaces the analytics file in one atomic
rename: a reader holding the old file open keeps reading it undisturbed, and its next connection
sees the new months.

What is published follows the ledger (quality.materialized_months, warehouse.py): a month is
published once the quality checks accepted it, and only then. Each publish copies every accepted
month not yet published, this run's and any an earlier run failed to publish (blocked by nothing,
but killed, out of disk, unable to attach), and stamps them published; a month that is blocked or
failed is never copied, and its earlier published version stays as it was. The new file starts as a
copy of the published one and only those months are replaced in the monthly tables (the dbt models
tagged `monthly`, month key from their `unique_key`), so publishing a month costs a file copy and
that month's rows, not a re-insert of the whole history. Other tables, and tables whose columns
changed, are copied whole (monthly ones restricted to their accepted months).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from feature_store_assets.core.months import describe_months
from feature_store_assets.core.names import LEDGER
from feature_store_assets.core.resources import WAREHOUSE_POOL, FeatureStoreResource
from feature_store_assets.defs.dbt.project import load_manifest, monthly_models_by_name
from feature_store_assets.warehouse.connections import comment_on_columns, connect, limit_memory, quote, sql_string
from feature_store_assets.warehouse.ledger import (
    BLOCKED,
    FAILED,
    mark_published,
    month_states,
    months_to_publish,
    publishable_months,
)

# Schemas analysts read. The filter layer's event tables stay in the warehouse: they are large and row-level.
PUBLISHED_SCHEMAS = ("features", "aggregation", "quality", "reference", "marts")
STAGING_SUFFIX = ".publishing"


def monthly_tables(manifest: Mapping) -> dict[tuple[str, str], tuple[str, str]]:
    """(schema, table) -> (model, month column) of every month-incremental dbt model."""
    return {
        (node["schema"], name): (name, node["config"]["unique_key"])
        for name, node in monthly_models_by_name(manifest).items()
    }


def _staging_path(analytics: Path, pid: int) -> Path:
    return analytics.with_name(f".{analytics.name}.{pid}{STAGING_SUFFIX}")


def remove_abandoned_staging(analytics: Path) -> list[Path]:
    """Delete the half-written copies (and their WAL) of publishes whose process is gone (killed, disk full)."""
    removed = []
    for path in analytics.parent.glob(f".{analytics.name}.*{STAGING_SUFFIX}*"):
        pid = path.name.removeprefix(f".{analytics.name}.").split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and Path(f"/proc/{pid}").exists():
            continue  # a publish in progress in another process
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


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
    monthly: Mapping[tuple[str, str], tuple[str, Iterable[date] | None]] | None = None,
) -> dict[str, int]:
    """Publish every table of the schemas, with column comments, into a new file swapped in for `analytics`.

    `monthly`: (schema, table) -> (month column, the months it may publish; None for any) of the monthly
    tables (default: the dbt project's month-incremental tables, any month). `months`: the months to
    (re)place. Given, and with a published file to start from, only those months of the monthly tables
    are replaced; otherwise everything is copied. The ledger's copy in the new file marks `months` published. Returns rows per published table. Nothing replaces the old file
    unless the whole copy succeeded.
    """
    analytics.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(analytics)
    staging = _staging_path(analytics, os.getpid())
    staging.unlink(missing_ok=True)
    months = sorted(set(months)) if months is not None else None
    if monthly is None:
        monthly = {key: (column, None) for key, (_, column) in monthly_tables(load_manifest()).items()}
    monthly = {
        key: (column, None if allowed is None else sorted(set(allowed))) for key, (column, allowed) in monthly.items()
    }
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
                month_column, allowed = monthly.get((schema, table), (None, None))
                if month_column is None:
                    con.execute(f"create or replace table {name} as select * from warehouse.{name}")
                elif incremental and published_columns.get((schema, table)) == source_columns[(schema, table)]:
                    replace = [m for m in months if allowed is None or m in allowed]
                    con.execute(f"delete from {name} where list_contains(?, {quote(month_column)})", [replace])
                    con.execute(
                        f"insert into {name} select * from warehouse.{name} where list_contains(?, {quote(month_column)})",
                        [replace],
                    )
                elif allowed is None:
                    con.execute(f"create or replace table {name} as select * from warehouse.{name}")
                else:
                    con.execute(
                        f"create or replace table {name} as select * from warehouse.{name} "
                        f"where list_contains(?, {quote(month_column)})",
                        [allowed],
                    )
                rows[f"{schema}.{table}"] = con.execute(f"select count(*) from {name}").fetchone()[0]
            for schema, table, column, comment in comments:
                if (schema, table) in published:
                    comment_on_columns(con, f"{quote(schema)}.{quote(table)}", {column: comment})
            if months and tuple(LEDGER.split(".")) in published:
                mark_published(con, months)
            con.execute("detach warehouse")
            con.execute("checkpoint")
        os.replace(staging, analytics)
    finally:
        staging.unlink(missing_ok=True)
    return rows


class MonthsHeldBack(dg.Failure):
    """Months of the run were not published: blocked by a check, or failed before they could be built."""


def held_back_report(states: Mapping[date, object]) -> str:
    """One line per month the run held back, with its reason (from the ledger)."""
    return "\n".join(
        f"  {month:%Y-%m} {state.status}: {state.reason or 'no reason recorded'}"
        for month, state in sorted(states.items())
    )


def published_models(manifest: Mapping) -> list[dg.AssetKey]:
    """The dbt models whose tables the analytics file holds (every model in a published schema), as asset keys."""
    return sorted(
        (
            dg.AssetKey([node["schema"], node["name"]])
            for node in manifest["nodes"].values()
            if node["resource_type"] == "model" and node["schema"] in PUBLISHED_SCHEMAS
        ),
        key=lambda key: key.path,
    )


@dg.asset(
    key=["publish", "analytics_database"],
    group_name="publish",
    # every dbt model of the published schemas (from the manifest), and the Python assets that write them
    deps=[
        *published_models(load_manifest()),
        dg.AssetKey(["features", "feature_catalog"]),
        dg.AssetKey(["reference", "zip_income"]),
        dg.AssetKey(["reference", "client_zip_income"]),
    ],
    pool=WAREHOUSE_POOL,
    kinds={"duckdb"},
    description="The read-only analytics file (FEATURE_STORE_ANALYTICS) analysts and the serving layer open: "
    "the features, aggregation, quality, reference and marts schemas, swapped in atomically after a successful run.",
)
def analytics_database(context, feature_store: FeatureStoreResource):
    settings = feature_store.settings
    began = time.perf_counter()
    tables = monthly_tables(load_manifest())
    pending = months_to_publish(settings.warehouse)
    accepted = publishable_months(settings.warehouse)
    rows: dict[str, int] = {}
    if pending or not settings.analytics.exists():  # nothing accepted since the last publish: the file stays as it is
        try:
            rows = publish_analytics(
                settings.warehouse,
                settings.analytics,
                months=pending,
                monthly={key: (column, accepted.get(model, set())) for key, (model, column) in tables.items()},
            )
        except (OSError, duckdb.Error) as error:  # out of disk, a path that cannot hold the file: the old file stays
            raise dg.Failure(
                description=f"could not publish to FEATURE_STORE_ANALYTICS={settings.analytics}: {error}\n"
                f"The analytics file is unchanged. Accepted, not yet published: {describe_months(pending) or 'none'} "
                "(the next successful run publishes them).",
                metadata={"pending_months": describe_months(pending) or "none"},
            ) from error
        with connect(settings.warehouse) as con:  # after the swap: a kill before this re-publishes the months next time
            mark_published(con, pending)
    held = {
        m: s
        for m, s in month_states(settings.warehouse, run_id=context.run_id).items()
        if s.status in (BLOCKED, FAILED)
    }
    yield dg.MaterializeResult(
        metadata={
            "duration_seconds": round(time.perf_counter() - began, 3),
            "published_months": describe_months(pending) or "none",
            "held_back_months": describe_months(held) or "none",
            "path": dg.MetadataValue.path(str(settings.analytics)),
            "tables": len(rows),
            "client_feature_rows": rows.get("features.client_features", 0),
            **{f"rows/{name}": count for name, count in rows.items()},
        }
    )
    if held:
        raise MonthsHeldBack(
            description=f"published {describe_months(pending) or 'no new month'}; held back "
            f"{describe_months(held)}, not published:\n{held_back_report(held)}\n"
            "Fix the input and re-run the month, or accept a blocked month as it is: feature-store accept --month YYYY-MM "
            "--reason '...' (docs/quality.md).",
            metadata={
                "held_back_months": describe_months(held),
                "published_months": describe_months(pending) or "none",
            },
        )
