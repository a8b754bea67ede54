"""The dbt models as Dagster assets: one step that validates, builds and records the run's months, and builds the
unpartitioned models (integrated_clients, the seeds: not monthly) whole in the same dbt invocation."""

import os
import shutil
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource, dbt_assets

from feature_store_assets.core.memory import release_freed_memory
from feature_store_assets.core.months import (
    add_months,
    build_chunks,
    dbt_window_env,
    describe_months,
    month_build_message,
    month_range,
    parse_month,
)
from feature_store_assets.core.resources import WAREHOUSE_POOL, FeatureStoreResource
from feature_store_assets.defs.checks.acceptance import contiguous_runs, months_not_buildable
from feature_store_assets.defs.dbt.check_names import with_readable_test_names
from feature_store_assets.defs.dbt.invocation import environment, keep_parse, new_target
from feature_store_assets.defs.dbt.planning import (
    KEPT_MARKER,
    MergedDbtEvents,
    MonthsNotBuilt,
    clean_dbt_targets,
    materialization_row_metadata,
    month_problems,
    not_built_message,
)
from feature_store_assets.defs.dbt.project import (
    MONTHLY_SELECTOR,
    WINDOWED_LAYERS,
    LayerTranslator,
    dbt_project,
    layer_of,
    load_manifest,
    model_columns,
    monthly_models_by_name,
    relation_of,
)
from feature_store_assets.defs.landing_zone.validation import (
    EVENT_TABLES,
    contract_from_manifest,
    landed_rows,
    landing_zone_report,
)
from feature_store_assets.operations.logs import dbt_error_summary, dbt_log_path
from feature_store_assets.warehouse.connections import connect, rows_per_month
from feature_store_assets.warehouse.ledger import month_states, record_failed_months, record_materialized_months
from feature_store_assets.warehouse.spark import mirror_spark_tables


def dbt_log_args(dbt_log: Path) -> list[str]:
    """dbt's log goes to the run's log folder, as plain text without colour codes: dbt's lines end up in files (the
    run's log, compute logs)."""
    return ["--log-path", str(dbt_log.parent), "--log-format-file", "text", "--no-use-colors"]


def build_dbt_assets(partitions_def: dg.TimeWindowPartitionsDefinition) -> list[dg.AssetsDefinition]:
    manifest = load_manifest()
    translator = LayerTranslator(monthly_partitions=partitions_def)
    contract = contract_from_manifest(manifest)
    target_root = dbt_project.project_dir / "target"
    monthly_models = monthly_models_by_name(manifest)
    aggregation_models = sorted(name for name, node in monthly_models.items() if layer_of(node) == "aggregation")
    windowed_models = {name for name, node in monthly_models.items() if layer_of(node) in WINDOWED_LAYERS}

    @dbt_assets(
        manifest=with_readable_test_names(manifest),  # check names: dagster-dbt reads them from the manifest
        project=dbt_project,
        select="fqn:*",
        dagster_dbt_translator=translator,  # the monthly models partitioned by month, the others not
        backfill_policy=dg.BackfillPolicy.single_run(),
        name="dbt_models",
        pool=WAREHOUSE_POOL,
    )
    def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, feature_store: FeatureStoreResource):
        """Every dbt model a run selects, in one dbt build per group of months (dbt starts once, not once per kind):
        the models that are not monthly (integrated_clients: today's clinics and clients; the seeds), rebuilt whole,
        and the filter, aggregation, feature and mart models for the run's months."""
        # the translator's partitions say which selected models are built by month (the staging views too)
        unpartitioned = {
            k for k in context.selected_asset_keys if context.assets_def.specs_by_key[k].partitions_def is None
        }
        if unpartitioned != context.selected_asset_keys:
            yield from build_months(context, dbt, feature_store.settings, with_unpartitioned=bool(unpartitioned))
            return
        report = landing_zone_report(feature_store.settings.raw_dir, [], contract)
        if report.reference:  # clinics.parquet or clients.parquet: these models read them
            raise report.error([])
        yield from build_current(context, dbt, feature_store.settings)

    def build_current(context: dg.AssetExecutionContext, dbt: DbtCliResource, settings):
        """One dbt build of the selected models that are not monthly, without months (a run of only those, from the
        UI; or a run whose months are all held). The monthly models are excluded, and with them the tests that also
        read one (a relationship from client_segments to the seed), which this build must not run on no month."""
        os.environ.update(settings.as_env())  # dbt runs in its project folder: the settings as absolute paths
        target_root.mkdir(parents=True, exist_ok=True)
        target = new_target(target_root, settings.warehouse)
        dbt_log = dbt_log_path(settings.warehouse, context.run_id)
        release_freed_memory()  # dbt's peak comes on top of this process's resident memory
        args = ["build", "--exclude-resource-type", "unit_test", "--exclude", MONTHLY_SELECTOR]
        try:
            yield from dbt.cli([*args, *dbt_log_args(dbt_log)], target_path=target, context=context).stream()
        except Exception:
            (target / KEPT_MARKER).write_text(f"dbt build of the unpartitioned models, Dagster run {context.run_id}\n")
            raise
        finally:
            keep_parse(target, settings.warehouse)
        shutil.rmtree(target, ignore_errors=True)
        if settings.on_spark:  # the DuckDB warehouse reads Spark's tables through views (docs/spark.md)
            mirror_spark_tables(settings.warehouse, settings.spark_dir, model_columns(manifest))

    def build_months(context: dg.AssetExecutionContext, dbt: DbtCliResource, settings, with_unpartitioned: bool):
        """The run's months, validated, built oldest first and recorded; the selected models that are not monthly are
        built in the same dbt invocations (before the months' models that read them)."""
        window = context.partition_time_window
        first, last = window.start.date(), add_months(window.end.date(), -1)
        months = month_range(first, last)
        selected = {key.path[-1] for key in context.selected_asset_keys}

        target_root.mkdir(parents=True, exist_ok=True)
        clean_dbt_targets(target_root)  # first: a run that builds nothing cleans up after killed ones too
        report = landing_zone_report(settings.raw_dir, months, contract)
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
            if with_unpartitioned:  # the models that are not monthly are built all the same
                yield from build_current(context, dbt, settings)
            # the quality-check step will not run: record the filter models' failed row-count checks here (the contract:
            # "a month with no files: the month's filter assets fail their row-count check")
            for name in selected_monthly:
                if layer_of(monthly_models[name]) == "filter" and monthly_models[name].get("meta", {}).get(
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
        release_freed_memory()  # dbt's peak comes on top of this process's resident memory (the reference steps')
        for chunk in chunks:
            target = new_target(target_root, settings.warehouse)
            context.log.info(month_build_message(chunk[0], chunk[-1]))
            try:
                with environment(dbt_window_env(chunk[0], chunk[-1])):  # the months: dbt reads them as it executes
                    invocation = dbt.cli(
                        ["build", "--exclude-resource-type", "unit_test", *dbt_log_args(dbt_log)],
                        target_path=target,
                        context=context,
                    )
                events.add(invocation.stream())
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
            finally:
                keep_parse(target, settings.warehouse)
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
        with connect(settings.warehouse, read_only=True) as con:  # dbt is done: one connection counts every model
            built = {
                name: rows_per_month(con, relation_of(node), node["config"]["unique_key"], completed)
                for name, node in monthly_models.items()
                if name in selected
            }
            row_metadata = materialization_row_metadata(con, manifest, built, completed, landed)
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

    return [dbt_models]
