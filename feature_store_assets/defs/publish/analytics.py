"""Publishing the analyst-facing tables: the Dagster asset over the published store (feature_store_assets/store/).

The pipeline is the only process that opens the warehouse. After each run the analyst-facing schemas are
published as one store version (Delta tables under FEATURE_STORE_PUBLISHED_DIR) and the analytics file
(FEATURE_STORE_ANALYTICS) is replaced, in one atomic rename, by views over that version's files: a reader
holding the old file open keeps reading the previous version, and its next connection sees the new months.

What is published follows the ledger (quality.materialized_months, warehouse/ledger.py): a month is published
once the quality checks accepted it, and only then. Each publish writes every accepted month not yet
published, this run's and any an earlier run failed to publish (killed, out of disk, unable to write), and
stamps them published; a month that is blocked or failed is never written, and its earlier published rows stay.
In the monthly tables (the dbt models tagged `monthly`, month key from their `unique_key`) only those months'
partitions are rewritten, so a publish costs the months published, not the history; other tables are small and
rewritten whole. Versions, restore and retention: docs/published-store.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
from deltalake.exceptions import DeltaError

from feature_store_assets.core.months import describe_months
from feature_store_assets.core.names import LEDGER
from feature_store_assets.core.resources import WAREHOUSE_POOL, DuckDBFile, FeatureStoreResource
from feature_store_assets.core.settings import Settings
from feature_store_assets.defs.dbt.project import TABLE_RESOURCE_TYPES, load_manifest, monthly_models_by_name
from feature_store_assets.defs.publish.online import push_to_online_store
from feature_store_assets.store import PUBLISHED_SCHEMAS, StoreVersion, current_version, publish
from feature_store_assets.store.analytics_file import STAGING_SUFFIX
from feature_store_assets.store.publishing import DEFAULT_KEEP_VERSIONS
from feature_store_assets.warehouse.ledger import (
    BLOCKED,
    FAILED,
    mark_published,
    month_states,
    months_to_publish,
    publishable_months,
)

__all__ = [
    "PUBLISHED_SCHEMAS",
    "STAGING_SUFFIX",
    "analytics_database",
    "monthly_tables",
    "publish_analytics",
    "publish_pending",
]

LEDGER_DESCRIPTION = (
    "The ledger of materialized months: each (model, month)'s rows, the Dagster run that built it, its status "
    "(built, accepted, blocked, failed), the reason, and when it was published (docs/quality.md)."
)


def monthly_tables(manifest: Mapping) -> dict[tuple[str, str], tuple[str, str]]:
    """(schema, table) -> (model, month column) of every month-incremental dbt model."""
    return {
        (node["schema"], name): (name, node["config"]["unique_key"])
        for name, node in monthly_models_by_name(manifest).items()
    }


def table_descriptions(manifest: Mapping) -> dict[tuple[str, str], str]:
    """(schema, table) -> the dbt model's or seed's description (the published table's comment), and the ledger's."""
    found = {
        (node["schema"], node["name"]): node["description"].strip()
        for node in manifest["nodes"].values()
        if node["resource_type"] in TABLE_RESOURCE_TYPES and node.get("description", "").strip()
    }
    return {**found, tuple(LEDGER.split(".")): LEDGER_DESCRIPTION}


def publish_analytics(
    warehouse: Path,
    analytics: Path,
    store_dir: Path | None = None,
    months: Iterable[date] | None = None,
    monthly: Mapping[tuple[str, str], tuple[str, Iterable[date] | None]] | None = None,
    run_id: str | None = None,
    keep: int = DEFAULT_KEEP_VERSIONS,
    descriptions: Mapping[tuple[str, str], str] | None = None,
) -> StoreVersion:
    """Publish the warehouse as a new store version (store.publish) with the dbt project's defaults: the store
    beside the analytics file, the month-incremental tables any month may publish, the models' descriptions."""
    manifest = load_manifest()
    if monthly is None:
        monthly = {key: (column, None) for key, (_, column) in monthly_tables(manifest).items()}
    return publish(
        warehouse,
        store_dir or analytics.parent / "published",
        analytics,
        run_id=run_id,
        months=months,
        monthly=monthly,
        descriptions={**(descriptions or {}), **table_descriptions(manifest)},
        keep=keep,
    )


def python_asset_descriptions() -> dict[tuple[str, str], str]:
    """(schema, table) -> description of the Python assets that write published tables (the feature catalog, the
    ZIP income), from their asset definitions."""
    from feature_store_assets.defs.catalog.assets import feature_catalog
    from feature_store_assets.defs.reference.assets import client_zip_income, zip_income

    return {
        tuple(key.path): description
        for assets_def in (feature_catalog, zip_income, client_zip_income)
        for key, description in assets_def.descriptions_by_key.items()
        if description
    }


def publish_pending(settings: Settings, run_id: str | None = None) -> tuple[StoreVersion, list[date]]:
    """Publish what the ledger says is due, as the asset does after a run: every accepted month not yet
    published, each monthly table limited to its model's accepted months. Returns the new version and the
    months; the caller stamps them published in the warehouse (mark_published) once the swap is done."""
    pending = months_to_publish(settings.warehouse)
    accepted = publishable_months(settings.warehouse)
    version = publish_analytics(
        settings.warehouse,
        settings.analytics,
        store_dir=settings.published_dir,
        months=pending,
        monthly={
            key: (column, accepted.get(model, set()))
            for key, (model, column) in monthly_tables(load_manifest()).items()
        },
        run_id=run_id,
        keep=settings.keep_versions,
        descriptions=python_asset_descriptions(),
    )
    return version, pending


class MonthsHeldBack(dg.Failure):
    """Months of the run were not published: blocked by a check, or failed before they could be built."""


def held_back_report(states: Mapping[date, object]) -> str:
    """One line per month the run held back, with its reason (from the ledger)."""
    return "\n".join(
        f"  {month:%Y-%m} {state.status}: {state.reason or 'no reason recorded'}"
        for month, state in sorted(states.items())
    )


def published_models(manifest: Mapping) -> list[dg.AssetKey]:
    """The dbt models and seeds whose tables the analytics file holds (every one in a published schema), as asset
    keys."""
    return sorted(
        (
            dg.AssetKey([node["schema"], node["name"]])
            for node in manifest["nodes"].values()
            if node["resource_type"] in TABLE_RESOURCE_TYPES and node["schema"] in PUBLISHED_SCHEMAS
        ),
        key=lambda key: key.path,
    )


@dg.asset(
    key=["publish", "analytics_database"],
    group_name="publish",
    # every dbt model and seed of the published schemas (from the manifest), and the Python assets that write them
    deps=[
        *published_models(load_manifest()),
        dg.AssetKey(["features", "feature_catalog"]),
        dg.AssetKey(["reference", "zip_income"]),
        dg.AssetKey(["reference", "client_zip_income"]),
    ],
    pool=WAREHOUSE_POOL,
    kinds={"duckdb"},
    description="The published store (Delta tables, one version per publish, FEATURE_STORE_PUBLISHED_DIR) and the "
    "read-only analytics file (FEATURE_STORE_ANALYTICS) analysts and the serving layer open: views over the current "
    "version of the features, aggregation, quality, reference and marts schemas, swapped in atomically after a "
    "successful run.",
)
def analytics_database(context, feature_store: FeatureStoreResource, warehouse: DuckDBFile):
    settings = feature_store.settings
    began = time.perf_counter()
    pending = months_to_publish(settings.warehouse)
    version = current_version(settings.published_dir) if settings.published_dir.is_dir() else None
    # nothing accepted since the last publish: the store and the file stay as they are
    if pending or version is None or not settings.analytics.exists():
        try:
            version, pending = publish_pending(settings, context.run_id)
        except (OSError, duckdb.Error, DeltaError) as error:  # out of disk, an unusable path: the old version stays
            raise dg.Failure(
                description=f"could not publish to FEATURE_STORE_ANALYTICS={settings.analytics} "
                f"(store FEATURE_STORE_PUBLISHED_DIR={settings.published_dir}): {error}\n"
                "The current version and the analytics file are unchanged. Accepted, not yet published: "
                f"{describe_months(pending) or 'none'} (the next successful run publishes them).",
                metadata={"pending_months": describe_months(pending) or "none"},
            ) from error
        with warehouse.connect() as con:  # after the swap: a kill before this re-publishes the months next time
            mark_published(con, pending)
    rows = {name: entry.rows for name, entry in version.tables.items()}
    held = {
        m: s
        for m, s in month_states(settings.warehouse, run_id=context.run_id).items()
        if s.status in (BLOCKED, FAILED)
    }
    # after the swap, so a Redis failure cannot leave the store half-published (defs/publish/online.py)
    online, behind = push_to_online_store(version, settings.analytics)
    yield dg.MaterializeResult(
        metadata={
            "duration_seconds": round(time.perf_counter() - began, 3),
            "published_months": describe_months(pending) or "none",
            "held_back_months": describe_months(held) or "none",
            "path": dg.MetadataValue.path(str(settings.analytics)),
            "store_version": version.version,
            "store_version_run_id": version.run_id or "none",
            "store": dg.MetadataValue.path(str(settings.published_dir)),
            "tables": len(rows),
            "client_feature_rows": rows.get("features.client_features", 0),
            "online_store": online,
            **{f"rows/{name}": count for name, count in rows.items()},
        }
    )
    if held:
        raise MonthsHeldBack(
            description=f"published {describe_months(pending) or 'no new month'}; held back "
            f"{describe_months(held)}, not published:\n{held_back_report(held)}\n"
            "Fix the input and re-run the month, or accept a blocked month as it is: feature-store accept --month YYYY-MM "
            "--reason '...' (docs/quality.md)." + (f"\n{behind.description}" if behind else ""),
            metadata={
                "held_back_months": describe_months(held),
                "published_months": describe_months(pending) or "none",
            },
        )
    if behind:
        raise behind
