"""The dbt project as Dagster sees it: the manifest, the layers (dbt folders and Dagster groups), the translator.

Layers are dbt folders (models/filter, models/aggregation, models/features, models/marts) and
Dagster groups of the same names; asset keys are `[schema, model]`, as in DuckDB. Python learns
models from the manifest: their layer, tags, `unique_key` (the month key) and meta.
"""

import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject
from filelock import FileLock

from feature_store_assets.core.months import (
    FEATURE_LOOKBACK_MONTHS,
)
from feature_store_assets.core.paths import DBT_PROJECT_DIR
from feature_store_assets.core.settings import ConfigurationError, Settings
from feature_store_assets.defs.dbt.check_names import check_description
from feature_store_assets.defs.dbt.process import dbt_executable
from feature_store_assets.defs.landing_zone.validation import EVENT_TABLES

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)

MONTHLY_TAG = "monthly"
MONTHLY_SELECTOR = f"tag:{MONTHLY_TAG}"
# The dbt source of the landing zone's tables (models/sources.yml).
LANDING_ZONE_SOURCE = "landing_zone"
# The layers (dbt folders, Dagster groups) from the landing zone's side to the analysts'.
LAYERS = ("filter", "aggregation", "features", "marts")
# The dbt resources that are tables in the warehouse: the models and the seeds (small CSV tables, not monthly).
TABLE_RESOURCE_TYPES = ("model", "seed")
# Layers whose month M reads the aggregation months M-11..M (the history guard; LayerTranslator's metadata).
WINDOWED_LAYERS = ("features", "marts")


def _dbt_sources_mtime() -> float:
    files = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        files += [p for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in files)


class DbtCli(DbtCliResource):
    """dagster-dbt's resource without the in-process dbt adapter it loads before every invocation (the profile,
    the project and dbt's macros: 1 to 2.5 s each time). That adapter only serves `fetch_column_metadata()` and
    `fetch_row_counts()`, which this project does not call: row counts come from the warehouse
    (defs/dbt/planning.py) and column descriptions from the manifest."""

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


def _runs_dbt_environment() -> dict[str, str]:
    """The settings as a run's dbt steps hand them to dbt (absolute paths), or none when they do not resolve.

    Parsing under them makes the parse's profile a run's own: dagster-dbt copies the project's parse into an
    invocation that has none kept for its warehouse (defs/dbt/invocation.py), so the first run on a new warehouse
    (the demo's) re-parses only what changed instead of the whole project."""
    try:
        return Settings.from_env().as_env()
    except ConfigurationError:
        return {}


def parse_project(target_path: Path) -> None:
    """`dbt parse` into target_path (the manifest and dbt's parse), under the settings a run hands dbt."""
    from feature_store_assets.defs.dbt.invocation import environment  # it imports this module

    with environment(_runs_dbt_environment()):
        # dbt beside this interpreter: a venv's scripts are not on PATH unless it is activated
        DbtCli(project_dir=dbt_project, dbt_executable=dbt_executable()).cli(
            ["parse", "--quiet"], target_path=target_path
        ).wait()


def prepare_manifest(force: bool = False) -> Path:
    """Parse the dbt project when its manifest is missing or older than its files (or always, `force`); returns the
    manifest path."""
    manifest_path = dbt_project.manifest_path
    with FileLock(str(DBT_PROJECT_DIR / ".manifest.lock")):
        if force or not manifest_path.exists() or manifest_path.stat().st_mtime < _dbt_sources_mtime():
            parse_project(dbt_project.target_path)
    return manifest_path


@cache
def load_manifest() -> Mapping[str, Any]:
    return json.loads(prepare_manifest().read_text())


def layer_of(props: Mapping[str, Any]) -> str | None:
    fqn = props.get("fqn") or []
    return fqn[1] if props.get("resource_type") == "model" and len(fqn) > 2 else None


class LayerTranslator(DagsterDbtTranslator):
    """Keys as [schema, model], groups named after the layer folders (or `meta.dagster.group`: the staging
    tables), the windowed layers' 12-month lookback as metadata, and dbt test checks described by what they test (dbt_checks)."""

    def __init__(self, monthly_partitions: dg.PartitionsDefinition | None = None) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self._monthly_partitions = monthly_partitions

    def get_partitions_def(self, dbt_resource_props: Mapping[str, Any]) -> dg.PartitionsDefinition | None:
        # the monthly models (tag `monthly`) by month; the others (integrated_clients, the seeds) unpartitioned
        return self._monthly_partitions if MONTHLY_TAG in dbt_resource_props.get("tags", []) else None

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in TABLE_RESOURCE_TYPES:
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return super().get_group_name(dbt_resource_props) or layer_of(dbt_resource_props)

    def get_asset_check_spec(
        self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        return spec and spec._replace(description=check_description(manifest["nodes"][unique_id]))

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        # Month M of the windowed layers reads the aggregation months M-11..M. Not a partition mapping: Dagster plans a
        # backfill forward along its mappings, so a 12-month lookback would turn a backfill of months 1..6 into features
        # and marts for 1..17. The monthly step's history guard enforces the window (docs/architecture.md).
        metadata = dict(super().get_metadata(dbt_resource_props))
        if layer_of(dbt_resource_props) in WINDOWED_LAYERS:
            metadata["reads_aggregation_months"] = f"M-{FEATURE_LOOKBACK_MONTHS}..M"
        return metadata


def monthly_models_by_name(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The month-incremental models (the tables a month run replaces), by model name."""
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and MONTHLY_TAG in node["tags"]
        and node["config"]["materialized"] == "incremental"
    }


def monthly_lineage(manifest: Mapping[str, Any], model: str) -> list[tuple[str, str]]:
    """(relation, month column) of the filter layer's monthly tables and of the monthly models `model` is built
    from, and its own, in layer order (LAYERS; then by relation): the tables the demo counts rows of, month by month."""
    monthly = monthly_models_by_name(manifest)
    lineage, todo = set(), [f"model.feature_store.{model}"]
    while todo:
        node = manifest["nodes"][todo.pop()]
        lineage.add(node["name"])
        todo += [p for p in node["depends_on"]["nodes"] if p.startswith("model.")]
    chosen = [n for name, n in monthly.items() if name in lineage or layer_of(n) == "filter"]

    def order(node: Mapping[str, Any]) -> tuple[int, str]:
        layer = layer_of(node)
        return (LAYERS.index(layer) if layer in LAYERS else len(LAYERS), relation_of(node))

    return [(relation_of(n), n["config"]["unique_key"]) for n in sorted(chosen, key=order)]


STAGING_TAG = "staging"
STAGING_MONTH_COLUMN = "event_month"


def staging_models_by_name(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The staging views (tag `staging`): the run's months only, replaced by every dbt build."""
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and STAGING_TAG in node["tags"]
    }


def relation_of(node: Mapping[str, Any]) -> str:
    return f"{node['schema']}.{node['name']}"


def model_columns(manifest: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, str]]:
    """(schema, table) -> {column: description} of every dbt model and seed, from its .yml (the one source of
    descriptions)."""
    return {
        (node["schema"], node["name"]): {
            name: column.get("description", "") for name, column in node["columns"].items()
        }
        for node in manifest["nodes"].values()
        if node["resource_type"] in TABLE_RESOURCE_TYPES
    }


def quality_meta(node: Mapping[str, Any]) -> Mapping[str, Any]:
    """The model's `meta.quality` from its .yml: the checks' thresholds and which checks apply (docs/quality.md)."""
    return node.get("meta", {}).get("quality", {})


def filter_landing_tables(manifest: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """{monthly filter model: the landing zone's event tables it keeps rows of}, from lineage: the event tables its
    staging parents read (inclinic_transactions: transactions_inclinic; rejected_rows: all three), in contract order."""
    staging = {node["unique_id"] for node in staging_models_by_name(manifest).values()}
    tables = {}
    for name, node in monthly_models_by_name(manifest).items():
        if layer_of(node) != "filter":
            continue
        read = {
            manifest["sources"][source]["name"]
            for parent in node["depends_on"]["nodes"]
            if parent in staging
            for source in manifest["nodes"][parent]["depends_on"]["nodes"]
            if source in manifest["sources"] and manifest["sources"][source]["source_name"] == LANDING_ZONE_SOURCE
        }
        if read & set(EVENT_TABLES):
            tables[name] = tuple(t for t in EVENT_TABLES if t in read)
    return tables


def rejected_rows_model(manifest: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The model listing every rejected row with its table and reason (`meta.quality.holds_rejected_rows`)."""
    found = [n for n in monthly_models_by_name(manifest).values() if quality_meta(n).get("holds_rejected_rows")]
    if len(found) > 1:
        raise ValueError(
            f"meta.quality.holds_rejected_rows is set on more than one model: {[n['name'] for n in found]}"
        )
    return found[0] if found else None
