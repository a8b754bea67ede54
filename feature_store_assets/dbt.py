"""The dbt project as Dagster assets: monthly-partitioned models and the unpartitioned rest.

Layers are dbt folders (models/filter, models/aggregation, models/features) and
Dagster groups of the same names; asset keys are `[schema, model]`, as in DuckDB.
"""


import json
import os
import tempfile
from collections.abc import Mapping
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from filelock import FileLock

from feature_store_assets.landing_zone import EVENT_TABLES, contract_from_manifest, landed_rows, validate_landing_zone
from feature_store_assets.months import (
    FEATURE_LOOKBACK_MONTHS,
    add_months,
    build_chunks,
    dbt_vars,
    describe_months,
    month_range,
    months_needed_by_features,
    parse_month,
)
from feature_store_assets.resources import WAREHOUSE_POOL, FeatureStoreResource
from feature_store_assets.warehouse import (
    materialized_months,
    mirror_spark_tables,
    record_materialized_months,
    rejected_rows_by_table,
    rows_per_month,
)

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_subproject"
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)

MONTHLY_SELECTOR = "tag:monthly"
FEATURE_MODEL = "client_features"


def _dbt_sources_mtime() -> float:
    files = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        files += [p for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in files)


def prepare_manifest() -> Path:
    """Parse the dbt project when its manifest is missing or older than its files; returns the manifest path."""
    manifest_path = dbt_project.manifest_path
    with FileLock(str(DBT_PROJECT_DIR / ".manifest.lock")):
        if not manifest_path.exists() or manifest_path.stat().st_mtime < _dbt_sources_mtime():
            dbt_project.preparer.prepare(dbt_project)
    return manifest_path


@cache
def load_manifest() -> Mapping[str, Any]:
    return json.loads(prepare_manifest().read_text())


def _layer(props: Mapping[str, Any]) -> str | None:
    fqn = props.get("fqn") or []
    return fqn[1] if props.get("resource_type") == "model" and len(fqn) > 2 else None


class LayerTranslator(DagsterDbtTranslator):
    """Keys as [schema, model], groups named after the layer folders, and the features' 12-month lookback."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "model":
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return _layer(dbt_resource_props) or super().get_group_name(dbt_resource_props)

    def get_partition_mapping(
        self, dbt_resource_props: Mapping[str, Any], dbt_parent_resource_props: Mapping[str, Any]
    ) -> dg.PartitionMapping | None:
        # Feature month M reads the aggregates of M-11..M (the 12m window).
        if _layer(dbt_resource_props) == "features" and _layer(dbt_parent_resource_props) == "aggregation":
            return dg.TimeWindowPartitionMapping(
                start_offset=-FEATURE_LOOKBACK_MONTHS, end_offset=0, allow_nonexistent_upstream_partitions=True
            )
        # Mart month M reads its lookback window (at most 12 months) of aggregates.
        if _layer(dbt_resource_props) == "marts" and _layer(dbt_parent_resource_props) == "aggregation":
            return dg.TimeWindowPartitionMapping(
                start_offset=-FEATURE_LOOKBACK_MONTHS, end_offset=0, allow_nonexistent_upstream_partitions=True
            )
        return None


def monthly_models_by_name(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The month-incremental models (the tables a month run replaces), by model name."""
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and "monthly" in node["tags"]
        and node["config"]["materialized"] == "incremental"
    }


def _relation(node: Mapping[str, Any]) -> str:
    return f"{node['schema']}.{node['name']}"


def model_columns(manifest: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, str]]:
    """(schema, table) -> {column: description} of every dbt model, from its .yml (the one source of descriptions)."""
    return {
        (node["schema"], node["name"]): {name: column.get("description", "") for name, column in node["columns"].items()}
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }


# The landing-zone table each filter model keeps rows of.
FILTER_SOURCES = {"inclinic_transactions": "transactions_inclinic", "hd_orders": "transactions", "web_sessions": "web_sessions"}


def materialization_row_metadata(
    settings,
    manifest: Mapping[str, Any],
    built: dict[str, dict[date, int]],
    months: list[date],
    landed_by_month: Mapping[str, Mapping[date, int]],
) -> dict[str, dict[str, Any]]:
    """Rows in, rows out and rows rejected of each built model over the run's months, as numeric metadata.

    Rows in: landed rows of its landing-zone table for filter models (landed_by_month: table -> month -> rows),
    else its monthly parents' rows.
    """
    landed = {table: sum(landed_by_month[table][month] for month in months) for table in FILTER_SOURCES.values()}
    rejected = rejected_rows_by_table(settings.warehouse, months) if "rejected_rows" in built else {}
    metadata = {}
    for name, by_month in built.items():
        node = manifest["nodes"][f"model.feature_store.{name}"]
        parents = [
            manifest["nodes"][parent]["name"] for parent in node["depends_on"]["nodes"] if parent.startswith("model.")
        ]
        if name in FILTER_SOURCES:
            rows_in = landed[FILTER_SOURCES[name]]
        elif name == "rejected_rows":
            rows_in = sum(landed.values())
        else:
            rows_in = sum(sum(built.get(parent, {}).values()) for parent in parents)
        entry: dict[str, Any] = {
            "rows_out": sum(by_month.values()),
            "rows_in": rows_in,
            "rows_by_month": dg.MetadataValue.json({m.isoformat()[:7]: n for m, n in by_month.items()}),
        }
        if name in FILTER_SOURCES:
            entry["rows_rejected"] = rejected.get(FILTER_SOURCES[name], 0)
        if len(months) == 1:  # one partition: Dagster plots it over partitions
            entry["dagster/row_count"] = entry["rows_out"]
        metadata[name] = entry
    return metadata


MAX_ROWS_ENV = "FEATURE_STORE_MAX_ROWS_PER_DBT_BUILD"
DEFAULT_MAX_ROWS_PER_BUILD = 40_000_000


def max_rows_per_build() -> int:
    """Landed event rows one dbt build may cover (FEATURE_STORE_MAX_ROWS_PER_DBT_BUILD); at least one month per build."""
    value = os.environ.get(MAX_ROWS_ENV) or str(DEFAULT_MAX_ROWS_PER_BUILD)
    if not value.isdigit() or int(value) < 1:
        raise dg.Failure(f"{MAX_ROWS_ENV} must be a positive number of rows, got {value!r}")
    return int(value)


class MergedDbtEvents:
    """The events of one or more dbt builds over consecutive months, as one step's events.

    Dagster takes one output per asset and one result per check in a step: the last build's
    output stands for the run (its row metadata is computed over all months afterwards), and a
    check keeps its first failure, so a test that failed on any month fails the run's check.
    """

    def __init__(self) -> None:
        self._events: dict[Any, Any] = {}
        self._count = 0

    def add(self, events) -> None:
        for event in events:
            if isinstance(event, dg.Output):
                key = ("output", event.output_name)
            elif isinstance(event, dg.AssetCheckResult):
                key = ("check", event.asset_key, event.check_name)
                earlier = self._events.get(key)
                if earlier is not None and not earlier.passed:
                    continue
            else:
                key, self._count = ("event", self._count), self._count + 1
            self._events[key] = event

    def __iter__(self):
        return iter(list(self._events.values()))


class MissingUpstreamMonths(dg.Failure):
    """Feature months were asked for without the aggregation months their windows need."""


def require_feature_history(
    run_months: list[date], start: date, available: set[date], aggregation_models: list[str]
) -> None:
    """Fail, naming the months, when a feature month's 12-month window lacks aggregation months."""
    missing = [m for m in months_needed_by_features(run_months, start) if m not in available]
    if missing:
        raise MissingUpstreamMonths(
            description=(
                f"{FEATURE_MODEL} for {describe_months(run_months)} needs the aggregation months "
                f"{describe_months(months_needed_by_features(run_months, start))}; missing: "
                f"{describe_months(missing)}. Materialize those months first or include them in this run."
            ),
            metadata={"missing_months": describe_months(missing), "aggregation_models": ", ".join(aggregation_models)},
        )


def build_dbt_assets(partitions_def: dg.TimeWindowPartitionsDefinition) -> list[dg.AssetsDefinition]:
    manifest = load_manifest()
    translator = LayerTranslator()
    monthly_models = monthly_models_by_name(manifest)
    aggregation_models = sorted(name for name, node in monthly_models.items() if _layer(node) == "aggregation")

    @dbt_assets(
        manifest=manifest,
        project=dbt_project,
        select=MONTHLY_SELECTOR,
        partitions_def=partitions_def,
        dagster_dbt_translator=translator,
        backfill_policy=dg.BackfillPolicy.single_run(),
        name="monthly_dbt_models",
        pool=WAREHOUSE_POOL,
    )
    def monthly_dbt_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, feature_store: FeatureStoreResource
    ):
        """Filter, aggregation and feature models for the run's months, in one dbt build."""
        settings = feature_store.settings
        window = context.partition_time_window
        first, last = window.start.date(), add_months(window.end.date(), -1)
        months = month_range(first, last)
        selected = {key.path[-1] for key in context.selected_asset_keys}

        validate_landing_zone(settings.raw_dir, months, contract_from_manifest(manifest))
        if FEATURE_MODEL in selected:
            available = set(months) if selected.issuperset(aggregation_models) else set()
            available |= materialized_months(settings.warehouse, aggregation_models)
            require_feature_history(months, parse_month(settings.start_month), available, aggregation_models)

        # dbt runs in its project folder: hand it the settings as absolute paths.
        os.environ.update(settings.as_env())
        # A long backfill of large months is built a few months per dbt build, so DuckDB's memory stays
        # bounded; small months share one build. Builds run oldest first: each finds the history it reads.
        landed = {t: {m: landed_rows(settings.raw_dir, t, m) for m in months} for t in EVENT_TABLES}
        chunks = build_chunks(months, {m: sum(landed[t][m] for t in EVENT_TABLES) for m in months}, max_rows_per_build())
        # dbt holds the warehouse's write lock while it builds: collect its events, count rows once it is done
        events, failure, completed = MergedDbtEvents(), None, []
        for chunk in chunks:
            # each invocation gets its own target folder; remove it afterwards so runs leave no litter
            with tempfile.TemporaryDirectory(dir=dbt_project.project_dir / "target", prefix="run-") as target:
                try:
                    events.add(
                        dbt.cli(
                            ["build", "--exclude-resource-type", "unit_test", "--vars", json.dumps(dbt_vars(chunk[0], chunk[-1]))],
                            target_path=Path(target),
                            context=context,
                        ).stream()
                    )
                except Exception as error:  # report what dbt did build, then fail the step
                    events.add(getattr(error, "events", []))
                    failure = error
                    break
            completed += chunk
        if len(chunks) > 1:
            context.log.info(f"built {describe_months(months)} in {len(chunks)} dbt builds: {[describe_months(c) for c in chunks]}")

        if settings.on_spark:  # the DuckDB warehouse reads Spark's tables through views (README, Scaling out)
            not_yet = mirror_spark_tables(settings.warehouse, settings.spark_dir, model_columns(manifest))
            if not_yet:
                context.log.info(f"no Parquet file on Spark yet, so no view: {', '.join(not_yet)}")
        built = {
            name: rows_per_month(settings.warehouse, _relation(node), node["config"]["unique_key"], months)
            for name, node in monthly_models.items()
            if name in selected
        }
        row_metadata = materialization_row_metadata(settings, manifest, built, months, landed)
        for event in events:
            if isinstance(event, dg.Output):
                name = context.asset_key_for_output(event.output_name).path[-1]
                event = event.with_metadata({**event.metadata, **row_metadata.get(name, {})})
            yield event
        # the months of the builds that succeeded are complete, even when a later build failed
        record_materialized_months(
            settings.warehouse,
            {name: {m: rows for m, rows in by_month.items() if m in completed} for name, by_month in built.items()},
            context.run_id,
        )
        if failure is not None:
            raise failure

    return [monthly_dbt_models]
