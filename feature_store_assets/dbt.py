"""The dbt project as Dagster assets: monthly-partitioned models and the unpartitioned rest.

Layers are dbt folders (models/filter, models/aggregation, models/features) and
Dagster groups of the same names; asset keys are `[schema, model]`, as in DuckDB.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from filelock import FileLock

from feature_store_assets.acceptance import contiguous_runs, months_not_buildable
from feature_store_assets.dbt_checks import check_description, with_readable_test_names
from feature_store_assets.dbt_process import dbt_executable
from feature_store_assets.landing_zone import EVENT_TABLES, contract_from_manifest, landed_rows, landing_zone_report
from feature_store_assets.logs import dbt_error_summary, dbt_log_path
from feature_store_assets.months import (
    FEATURE_LOOKBACK_MONTHS,
    add_months,
    build_chunks,
    dbt_vars,
    describe_months,
    format_month,
    month_range,
    parse_month,
)
from feature_store_assets.resources import WAREHOUSE_POOL, FeatureStoreResource
from feature_store_assets.warehouse import (
    mirror_spark_tables,
    month_states,
    record_failed_months,
    record_materialized_months,
    rejected_rows_by_table,
    rows_per_month,
)

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_subproject"
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)

MONTHLY_SELECTOR = "tag:monthly"
# The layers (dbt folders, Dagster groups) from the landing zone's side to the analysts'.
LAYERS = ("filter", "aggregation", "features", "marts")
# Layers whose month M reads the aggregation months M-11..M (LayerTranslator's partition mapping).
WINDOWED_LAYERS = ("features", "marts")


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
            # dbt beside this interpreter: a venv's scripts are not on PATH unless it is activated
            DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()).cli(
                ["parse", "--quiet"], target_path=dbt_project.target_path
            ).wait()
    return manifest_path


@cache
def load_manifest() -> Mapping[str, Any]:
    return json.loads(prepare_manifest().read_text())


def _layer(props: Mapping[str, Any]) -> str | None:
    fqn = props.get("fqn") or []
    return fqn[1] if props.get("resource_type") == "model" and len(fqn) > 2 else None


class LayerTranslator(DagsterDbtTranslator):
    """Keys as [schema, model], groups named after the layer folders (or `meta.dagster.group`: the staging
    tables), the features' 12-month lookback, and dbt test checks described by what they test (dbt_checks)."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "model":
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return super().get_group_name(dbt_resource_props) or _layer(dbt_resource_props)

    def get_asset_check_spec(
        self, asset_spec: dg.AssetSpec, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        return spec and spec._replace(description=check_description(manifest["nodes"][unique_id]))

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


def monthly_lineage(manifest: Mapping[str, Any], model: str) -> list[tuple[str, str]]:
    """(relation, month column) of the filter layer's monthly tables and of the monthly models `model` is built
    from, and its own, in layer order (LAYERS; then by relation): the tables the demo counts rows of, month by month."""
    monthly = monthly_models_by_name(manifest)
    lineage, todo = set(), [f"model.feature_store.{model}"]
    while todo:
        node = manifest["nodes"][todo.pop()]
        lineage.add(node["name"])
        todo += [p for p in node["depends_on"]["nodes"] if p.startswith("model.")]
    chosen = [n for name, n in monthly.items() if name in lineage or _layer(n) == "filter"]

    def order(node: Mapping[str, Any]) -> tuple[int, str]:
        layer = _layer(node)
        return (LAYERS.index(layer) if layer in LAYERS else len(LAYERS), _relation(node))

    return [(_relation(n), n["config"]["unique_key"]) for n in sorted(chosen, key=order)]


STAGING_TAG = "staging"
STAGING_MONTH_COLUMN = "event_month"


def staging_models_by_name(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The staging tables (tag `staging`): the run's months only, rebuilt by every dbt build."""
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and STAGING_TAG in node["tags"]
    }


def _relation(node: Mapping[str, Any]) -> str:
    return f"{node['schema']}.{node['name']}"


def model_columns(manifest: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, str]]:
    """(schema, table) -> {column: description} of every dbt model, from its .yml (the one source of descriptions)."""
    return {
        (node["schema"], node["name"]): {
            name: column.get("description", "") for name, column in node["columns"].items()
        }
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }


# The landing-zone table each filter model keeps rows of.
FILTER_SOURCES = {
    "inclinic_transactions": "transactions_inclinic",
    "hd_orders": "transactions",
    "web_sessions": "web_sessions",
}


@dataclass(frozen=True)
class RowMetadata:
    """A built model's row counts: `run` goes on its dbt output (so on every partition's materialization),
    `by_month` on each built month's own materialization (partition-scoped, overriding `run`'s keys), so
    Dagster's plot of `dagster/row_count` across partitions shows each month's rows, also after a
    multi-month run."""

    run: dict[str, Any]
    by_month: dict[date, dict[str, Any]]


def materialization_row_metadata(
    settings,
    manifest: Mapping[str, Any],
    built: dict[str, dict[date, int]],
    months: list[date],
    landed_by_month: Mapping[str, Mapping[date, int]],
) -> dict[str, RowMetadata]:
    """Rows in, rows out (`dagster/row_count` too) and rows rejected of each built model, per built month,
    and the run's rows by month; staging tables get each month they hold (the last dbt build's) counted.

    Rows in: landed rows of its landing-zone table for filter models (landed_by_month: table -> month -> rows),
    else its monthly parents' rows.
    """
    rejected = (
        {month: rejected_rows_by_table(settings.warehouse, [month]) for month in months}
        if "rejected_rows" in built
        else {}
    )
    metadata = {}
    for name, by_month in built.items():
        node = manifest["nodes"][f"model.feature_store.{name}"]
        parents = [
            manifest["nodes"][parent]["name"] for parent in node["depends_on"]["nodes"] if parent.startswith("model.")
        ]
        per_month = {}
        for month in months:
            if name in FILTER_SOURCES:
                rows_in = landed_by_month[FILTER_SOURCES[name]][month]
            elif name == "rejected_rows":
                rows_in = sum(landed_by_month[table][month] for table in FILTER_SOURCES.values())
            else:
                rows_in = sum(built.get(parent, {}).get(month, 0) for parent in parents)
            rows_out = by_month.get(month, 0)
            entry: dict[str, Any] = {"rows_out": rows_out, "rows_in": rows_in, "dagster/row_count": rows_out}
            if name in FILTER_SOURCES:
                entry["rows_rejected"] = rejected.get(month, {}).get(FILTER_SOURCES[name], 0)
            per_month[month] = entry
        run = {"rows_by_month": dg.MetadataValue.json({format_month(m): n for m, n in by_month.items()})}
        metadata[name] = RowMetadata(run=run, by_month=per_month)
    for name, node in staging_models_by_name(manifest).items():
        # rebuilt by every dbt build: only the last build's months are in the table, the others are not counted
        held = {
            m: n
            for m, n in rows_per_month(settings.warehouse, _relation(node), STAGING_MONTH_COLUMN, months).items()
            if n
        }
        by_month = {m: {"rows_out": n, "dagster/row_count": n} for m, n in held.items()}
        metadata[name] = RowMetadata(
            run={"months_held": describe_months(list(held)) if held else "none"}, by_month=by_month
        )
    return metadata


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


class MonthsNotBuilt(dg.Failure):
    """No month of the run could be built: every one has bad files, or lacks an accepted month its window needs."""


def not_built_message(held: Mapping[date, str]) -> str:
    return "no month of the run was built:\n" + "\n".join(f"  {m:%Y-%m}: {why}" for m, why in sorted(held.items()))


def month_problems(report, months: list[date]) -> dict[date, str]:
    """Each month's pre-flight verdict: its bad files, and its event tables without any file."""
    problems = {}
    for month in months:
        found = list(report.by_month.get(month, []))
        found += [f"{table} has no file for month={month:%Y-%m}" for table in report.empty_tables.get(month, [])]
        if found:
            problems[month] = "; ".join(found)
    return problems


RUN_TARGET_PREFIX = "run-"
KEPT_MARKER = (
    "KEEP"  # a failed build's target folder (compiled SQL, run_results.json); dbt's log is in the run's log folder
)
KEPT_FAILED_BUILDS = 5


def clean_dbt_targets(target_root: Path) -> None:
    """Remove the target folders of builds whose process is gone (a killed run), and all but the newest
    failed builds' folders (kept for their compiled SQL and run_results.json)."""
    kept = []
    for folder in target_root.glob(f"{RUN_TARGET_PREFIX}*"):
        pid = folder.name.removeprefix(RUN_TARGET_PREFIX).split("-")[0]
        if (folder / KEPT_MARKER).exists():
            kept.append(folder)
        elif not (pid.isdigit() and Path(f"/proc/{pid}").exists()):
            shutil.rmtree(folder, ignore_errors=True)
    for folder in sorted(kept, key=lambda f: f.stat().st_mtime)[:-KEPT_FAILED_BUILDS]:
        shutil.rmtree(folder, ignore_errors=True)


def build_dbt_assets(partitions_def: dg.TimeWindowPartitionsDefinition) -> list[dg.AssetsDefinition]:
    manifest = load_manifest()
    translator = LayerTranslator()
    monthly_models = monthly_models_by_name(manifest)
    aggregation_models = sorted(name for name, node in monthly_models.items() if _layer(node) == "aggregation")
    windowed_models = {name for name, node in monthly_models.items() if _layer(node) in WINDOWED_LAYERS}

    @dbt_assets(
        manifest=with_readable_test_names(manifest),  # check names: dagster-dbt reads them from the manifest
        project=dbt_project,
        select=MONTHLY_SELECTOR,
        partitions_def=partitions_def,
        dagster_dbt_translator=translator,
        backfill_policy=dg.BackfillPolicy.single_run(),
        name="monthly_dbt_models",
        pool=WAREHOUSE_POOL,
    )
    def monthly_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, feature_store: FeatureStoreResource):
        """Filter, aggregation and feature models for the run's months, in one dbt build."""
        settings = feature_store.settings
        window = context.partition_time_window
        first, last = window.start.date(), add_months(window.end.date(), -1)
        months = month_range(first, last)
        selected = {key.path[-1] for key in context.selected_asset_keys}

        target_root = (
            dbt_project.project_dir / "target"
        )  # first: a run that builds nothing cleans up after killed ones too
        target_root.mkdir(parents=True, exist_ok=True)
        clean_dbt_targets(target_root)
        report = landing_zone_report(settings.raw_dir, months, contract_from_manifest(manifest))
        if report.reference:  # clinics.parquet or clients.parquet: every month reads them
            raise report.error([])
        held = months_not_buildable(
            months,
            parse_month(settings.start_month),
            month_problems(report, months),
            month_states(settings.warehouse, aggregation_models),
            windows=bool(selected & windowed_models),
            run_builds_history=selected.issuperset(aggregation_models),
        )
        to_build = [m for m in months if m not in held]
        selected_monthly = sorted(name for name in monthly_models if name in selected)
        if held:
            record_failed_months(settings.warehouse, selected_monthly, held, context.run_id)
            context.log.warning("not built:\n" + "\n".join(f"  {m:%Y-%m}: {why}" for m, why in sorted(held.items())))
        if not to_build:
            # the quality-check step will not run: record the filter models' failed row-count checks here (the contract:
            # "a month with no files: the month's filter assets fail their row-count check")
            for name in selected_monthly:
                if _layer(monthly_models[name]) == "filter" and monthly_models[name].get("meta", {}).get(
                    "quality", {}
                ).get("row_count_check", True):
                    context.instance.report_runless_asset_event(
                        dg.AssetCheckEvaluation(
                            asset_key=dg.AssetKey([monthly_models[name]["schema"], name]),
                            check_name="row_count",
                            passed=False,
                            severity=dg.AssetCheckSeverity.ERROR,
                            description="; ".join(f"{m:%Y-%m}: not built: {why}" for m, why in sorted(held.items())),
                            metadata={"failed_months": describe_months(held), "dagster_run_id": context.run_id},
                        )
                    )
            raise MonthsNotBuilt(description=not_built_message(held), metadata={"months": describe_months(held)})

        # dbt runs in its project folder: hand it the settings as absolute paths.
        os.environ.update(settings.as_env())
        # A long backfill of large months is built a few months per dbt build, so DuckDB's memory stays
        # bounded; small months share one build. Builds run oldest first: each finds the history it reads.
        landed = {
            t: {m: landed_rows(settings.raw_dir, t, m) for m in to_build} for t in EVENT_TABLES
        }  # a held month's files may be unreadable
        rows_by_month = {m: sum(landed[t][m] for t in EVENT_TABLES) for m in to_build}
        chunks = [
            c
            for run in contiguous_runs(to_build)
            for c in build_chunks(run, rows_by_month, settings.max_rows_per_dbt_build)
        ]
        # dbt holds the warehouse's write lock while it builds: collect its events, count rows once it is done
        events, failure, completed = MergedDbtEvents(), None, []
        dbt_log = dbt_log_path(settings.warehouse, context.run_id)  # dbt's full log of the run, kept (logs.py)
        # not history until its build finishes: a run killed inside dbt leaves its months failed, not accepted
        record_failed_months(
            settings.warehouse,
            selected_monthly,
            dict.fromkeys(to_build, f"its dbt build (run {context.run_id}) did not finish: re-run the month"),
            context.run_id,
        )
        for chunk in chunks:
            # each invocation gets its own target folder, removed afterwards unless the build failed (dbt's error names its log)
            target = Path(tempfile.mkdtemp(dir=target_root, prefix=f"{RUN_TARGET_PREFIX}{os.getpid()}-"))
            try:
                events.add(
                    dbt.cli(
                        [
                            "build",
                            "--exclude-resource-type",
                            "unit_test",
                            "--vars",
                            json.dumps(dbt_vars(chunk[0], chunk[-1])),
                            # plain text without colour codes: dbt's lines end up in files (the run's log, compute logs)
                            "--log-path",
                            str(dbt_log.parent),
                            "--log-format-file",
                            "text",
                            "--no-use-colors",
                        ],
                        target_path=target,
                        context=context,
                    ).stream()
                )
            except Exception as error:  # report what dbt did build, then fail the step
                target.mkdir(parents=True, exist_ok=True)
                (target / KEPT_MARKER).write_text(
                    f"dbt build of {describe_months(chunk)}, Dagster run {context.run_id}\n"
                )
                events.add(getattr(error, "events", []))
                failure = error
                try:
                    record_failed_months(
                        settings.warehouse,
                        selected_monthly,
                        dict.fromkeys(
                            chunk, f"dbt build failed (dbt log: {dbt_log}): {dbt_error_summary(str(error))[:300]}"
                        ),
                        context.run_id,
                    )
                except duckdb.Error as ledger_error:  # never hide dbt's error behind the ledger's
                    context.log.error(
                        f"could not record {describe_months(chunk)} as failed in the ledger: {ledger_error}"
                    )
                break
            shutil.rmtree(target, ignore_errors=True)
            completed += chunk
        if len(chunks) > 1:
            context.log.info(
                f"built {describe_months(to_build)} in {len(chunks)} dbt builds: {[describe_months(c) for c in chunks]}"
            )

        if settings.on_spark:  # the DuckDB warehouse reads Spark's tables through views (docs/spark.md)
            not_yet = mirror_spark_tables(settings.warehouse, settings.spark_dir, model_columns(manifest))
            if not_yet:
                context.log.info(f"no Parquet file on Spark yet, so no view: {', '.join(not_yet)}")
        built = {
            name: rows_per_month(settings.warehouse, _relation(node), node["config"]["unique_key"], completed)
            for name, node in monthly_models.items()
            if name in selected
        }
        row_metadata = materialization_row_metadata(settings, manifest, built, completed, landed)
        for event in events:
            key = context.asset_key_for_output(event.output_name) if isinstance(event, dg.Output) else None
            if key is not None and key.path[-1] in row_metadata:
                rows = row_metadata[key.path[-1]]
                event = event.with_metadata({**event.metadata, **rows.run})
                for month, metadata in rows.by_month.items():  # each month's materialization gets its own counts
                    context.add_asset_metadata(
                        metadata, asset_key=key, partition_key=month.strftime(partitions_def.fmt)
                    )
            yield event
        # the months of the builds that succeeded are complete, even when a later build failed
        record_materialized_months(settings.warehouse, built, context.run_id)
        if failure is not None:
            raise failure

    return [monthly_dbt_models]
