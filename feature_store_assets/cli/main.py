"""The `feature-store` command: generate a landing zone, materialize months, run the demo."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path

import dagster as dg

from feature_store_assets.cli.docs import add_docs_command
from feature_store_assets.cli.progress import RunProgress, captured_output, run_header
from feature_store_assets.cli.serving import add_serving_commands
from feature_store_assets.cli.store import add_store_commands
from feature_store_assets.core.months import (
    add_months,
    describe_months,
    folder_month,
    format_month,
    month_range,
    parse_month,
)
from feature_store_assets.core.names import FEATURE_MODEL
from feature_store_assets.core.settings import ConfigurationError, Settings
from feature_store_assets.operations.instance import (
    add_dagster_home_option,
    add_ui_command,
    instance_home,
    open_instance,
)
from feature_store_assets.operations.logs import (
    RUN_LOG_NAME,
    dbt_error_summary,
    dbt_log_path,
    prune_run_logs,
    run_log_dir,
    run_loggers,
)
from feature_store_assets.operations.runs import RunInProgress, acquire, process_tags, release

DEMO_OPTIONS = {"months": 12, "clinics": 40, "clients": 10_000, "inclinic_rows_per_month": 100_000}
ANALYST_QUERY = """select feature_month, count(*) as clients, round(avg(total_revenue_12m), 2) as avg_revenue_12m,
       round(avg(hd_revenue_share_12m), 3) as avg_hd_share
from features.client_features group by feature_month order by feature_month;"""


class MaterializationFailed(RuntimeError):
    """A run failed; the message names the failed steps and their errors."""


def _instance(dagster_home: str | None = None) -> dg.DagsterInstance:
    # The instance `feature-store ui` and the schedules use too, so the run, its materializations and
    # checks show in the UI (operations.instance_home); runs whose process died are marked failed on the way.
    return open_instance(instance_home(dagster_home))


def materialize_months(
    settings: Settings,
    first: date,
    last: date,
    log_level: str | None = None,
    dagster_home: str | None = None,
    assets: Sequence[dg.AssetKey] | None = None,
    verbose: bool = False,
) -> dg.ExecuteInProcessResult:
    """Run the monthly job over months first..last as one run (one dbt build for all of them); `assets`: only those.

    A landing zone or setting that is not there fails first, in one line, before anything is created.
    The run holds the warehouse's run lock (runs.py) from before the definitions load until it
    ends: a second run on the same warehouse is refused at once, naming this one. While it goes the
    terminal shows the progress view (progress.py); what the run prints (dbt's lines, Dagster's console
    log at `log_level`, default DEBUG: every event) goes to the run's log folder (logs.py), and with `verbose` to the terminal too.
    """
    from feature_store_assets.defs.schedules.monthly import MONTHLY_JOB

    start = parse_month(settings.start_month)
    if first < start:
        raise ConfigurationError(
            f"{format_month(first)} is before FEATURE_STORE_START_MONTH={settings.start_month}: no such partition"
        )
    if last < first:
        raise ConfigurationError(f"--to {format_month(last)} is before --from {format_month(first)}")
    settings.require_inputs()
    run_id = str(uuid.uuid4())  # known before the run exists: the lock names it
    try:
        acquire(settings.warehouse, run_id)  # first: a second run is refused before it opens anything
    except RunInProgress as error:
        raise MaterializationFailed(str(error)) from None
    months, out, err = month_range(first, last), sys.stdout, sys.stderr
    dbt_log, run_log = dbt_log_path(settings.warehouse, run_id), run_log_dir(settings.warehouse, run_id) / RUN_LOG_NAME
    progress: RunProgress | None = None
    try:
        prune_run_logs(settings.warehouse)
        print(run_header(run_id, months), file=out, flush=True)
        json_logs = run_loggers() is not None  # stderr is Dagster's JSON log, for a collector: the view keeps to stdout
        with (
            _instance(dagster_home) as instance,
            captured_output(
                run_log,
                lambda line: progress and progress.on_dbt_line(line),
                echo_stdout=verbose,
                echo_stderr=verbose or json_logs,
            ),
        ):
            from feature_store_assets.definitions import build_definitions

            defs = build_definitions(settings)
            job = defs.resolve_job_def(MONTHLY_JOB)
            asset_graph = defs.resolve_asset_graph()
            assets_by_step = {
                assets_def.node_def.name: assets_def.keys
                for assets_def in asset_graph.assets_defs
                if assets_def.is_executable
            }
            progress = RunProgress(
                out, out if json_logs else err, months, step_labels(assets_by_step), show_bar=not verbose
            )
            instance.add_event_listener(run_id, progress.on_event)
            result = job.execute_in_process(
                instance=instance,
                run_id=run_id,
                asset_selection=assets,
                run_config={"loggers": {"console": {"config": {"log_level": log_level or "DEBUG"}}}},
                tags={
                    "dagster/asset_partition_range_start": first.isoformat(),
                    "dagster/asset_partition_range_end": last.isoformat(),
                    **process_tags(),  # if this process is killed, the next start-up marks the run failed
                },
                raise_on_error=False,
            )
    finally:
        if progress is not None:
            progress.close()
        release(settings.warehouse)
    logs = logs_line(dbt_log, run_log)
    descriptions = {
        spec.key: spec.description for assets_def in asset_graph.assets_defs for spec in assets_def.check_specs
    }
    if not result.success:
        raise MaterializationFailed(_failure_report(result, assets_by_step, descriptions) + "\n" + logs)
    print(logs, file=out)
    for line in failed_checks(result, descriptions):  # warnings only: an ERROR would have failed the run
        print(f"warning: {line}", file=err)
    return result


def step_labels(assets_by_step: Mapping[str, Iterable[dg.AssetKey]]) -> dict[str, str]:
    """How the progress view names a step: its asset, or its name and how many assets it holds."""
    labels = {}
    for step, keys in assets_by_step.items():
        keys = list(keys)
        named = step.replace("_", " ")
        labels[step] = (
            keys[0].to_user_string() if len(keys) == 1 else f"{named} ({len(keys)} assets)" if keys else named
        )
    return labels


def logs_line(dbt_log: Path, run_log: Path) -> str:
    """Where the run's logs are: dbt's full log (when dbt ran) and everything else the run printed."""
    shown = f"dbt log: {dbt_log} (all of dbt's output); " if dbt_log.exists() else ""
    return f"{shown}run log: {run_log} (what --verbose shows)"


# Metadata that says why a check failed, when its evaluation has no description.
REASON_METADATA = ("failed_months", "top_offenders", "most_drifted", "failures")
DBT_FAILED_ROWS = "dagster_dbt/failed_row_count"


def check_reason(description: str | None, metadata: Mapping[str, object], tests: str | None = None) -> str:
    """Why a check failed: its evaluation's description, else what its metadata says; then what the check tests."""
    values = {key: getattr(value, "value", value) for key, value in metadata.items()}
    reason = (description or "").strip() or ", ".join(
        f"{key}={values[key]}" for key in REASON_METADATA if key in values
    )
    if not reason and DBT_FAILED_ROWS in values:
        rows = values[DBT_FAILED_ROWS]
        reason = f"dbt test {values.get('status', 'failed')}: {rows} failing row{'s' * (rows != 1)}"
    if not reason:
        reason = f"failed ({', '.join(f'{k}={v}' for k, v in values.items()) or 'no details recorded'})"
    tests = (tests or "").strip()
    return reason + (f"; the check: {tests}" if tests and tests not in reason else "")


def failed_checks(
    result: dg.ExecuteInProcessResult, descriptions: Mapping[dg.AssetCheckKey, str | None] | None = None
) -> list[str]:
    """Each failed asset check as `asset check name (SEVERITY, run from M): why it failed; the check: what it tests`."""
    months = result.dagster_run.tags.get("dagster/asset_partition_range_start", "")[:7]
    descriptions = descriptions or {}
    lines = []
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            reason = check_reason(
                evaluation.description, evaluation.metadata, descriptions.get(evaluation.asset_check_key)
            )
            lines.append(
                f"{evaluation.asset_key.to_user_string()} check {evaluation.check_name} "
                f"({evaluation.severity.value}, run from {months}): {reason}"
            )
    return lines


def describe_error(error) -> str:
    """A step's error in a few lines: `Class: message` of the error that matters (not Dagster's wrapper around it),
    dbt's own errors without the dbt command line."""
    while error.cause is not None and error.cls_name in WRAPPER_ERRORS:
        error = error.cause
    if error.cls_name == INTERRUPTED_ERROR:  # Dagster's message is only its class name
        return "interrupted (SIGTERM or Ctrl-C): run its months again"
    message = re.sub(rf"^[\w.]*\b{re.escape(error.cls_name)}: ", "", error.message.strip())
    return f"{error.cls_name}: {dbt_error_summary(message)}"


WRAPPER_ERRORS = ("DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError")
INTERRUPTED_ERROR = "DagsterExecutionInterruptedError"


def _failure_report(
    result: dg.ExecuteInProcessResult,
    assets_by_step: Mapping[str, Iterable[dg.AssetKey]],
    descriptions: Mapping[dg.AssetCheckKey, str | None] | None = None,
) -> str:
    labels = step_labels(assets_by_step)
    lines = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            message = describe_error(error) if error else "unknown error"
            lines.append(f"{labels.get(event.step_key or '', event.step_key)} failed: {message}")
    lines += [f"failed check: {line}" for line in failed_checks(result, descriptions)]
    return "\n".join(lines) or "the run failed before any step ran"


def layer_row_counts(settings: Settings, tables: Sequence[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """Rows per month ('YYYY-MM') and table, for the tables (relation, month column) that exist."""
    from feature_store_assets.warehouse.connections import connect, table_exists

    counts: dict[str, dict[str, int]] = {}
    with connect(settings.warehouse, read_only=True) as con:
        for relation, month_column in tables:
            if table_exists(con, relation):
                query = f"select {month_column}, count(*) from {relation} group by 1 order by 1"
                for month, count in con.execute(query).fetchall():
                    counts.setdefault(format_month(month), {})[relation] = count
    return counts


def format_row_counts(counts: dict[str, dict[str, int]], tables: Sequence[tuple[str, str]]) -> str:
    """One line a month, one column a table (named without its schema), as wide as its name or its counts."""
    relations = [relation for relation, _ in tables]
    widths = [max(len(relation.split(".")[1]), 9) + 2 for relation in relations]
    names = [relation.split(".")[1] for relation in relations]
    lines = ["month  " + "".join(f"{name:>{width}}" for name, width in zip(names, widths))]
    for month, by_table in sorted(counts.items()):
        lines.append(
            f"{month}" + "".join(f"{by_table.get(relation, 0):>{width},}" for relation, width in zip(relations, widths))
        )
    return "\n".join(lines)


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from feature_store_assets.generator import GeneratorOptions, generate_landing_zone

    options = GeneratorOptions(
        start_month=args.start_month or settings.start_month,
        months=args.months,
        clinics=args.clinics,
        clients=args.clients,
        inclinic_rows_per_month=args.inclinic_rows,
        seed=args.seed,
    )
    out = Path(args.out).resolve() if args.out else settings.raw_dir
    began = time.perf_counter()
    counts = generate_landing_zone(out, options, zip_income_csv=settings.zip_income)
    print(f"landing zone written to {out} in {time.perf_counter() - began:.1f}s")
    for table, count in counts.items():
        print(f"  {table:<24}{count:>14,} rows")
    return 0


def cmd_materialize(args: argparse.Namespace, settings: Settings) -> int:
    first, last = parse_month(args.first), parse_month(args.last)
    began = time.perf_counter()
    materialize_months(
        settings, first, last, log_level=args.log_level, dagster_home=args.dagster_home, verbose=args.verbose
    )
    months = month_range(first, last)
    print(f"materialized {describe_months(months)} in {time.perf_counter() - began:.1f}s into {settings.warehouse}")
    return 0


def cmd_accept(args: argparse.Namespace, settings: Settings) -> int:
    """Accept a blocked month as it is (the reason goes to the ledger), then publish it in a run of the publish asset."""
    from feature_store_assets.defs.checks.freshness import PUBLISHED_ASSET
    from feature_store_assets.warehouse.ledger import BLOCKED, accept_blocked_month, month_states

    month = parse_month(args.month)
    state = month_states(settings.warehouse).get(month)
    if state is None or state.status != BLOCKED:
        now = f"is {state.status} ({state.reason or 'no reason recorded'})" if state else "was never materialized"
        raise ConfigurationError(
            f"{format_month(month)} {now} in {settings.warehouse}: only a blocked month can be accepted"
            + (
                "; a failed month's tables may be partial: fix its input and re-run it"
                if state and state.status != "accepted"
                else ""
            )
        )
    models = accept_blocked_month(settings.warehouse, month, args.reason)
    print(f"accepted {format_month(month)} ({models} models): {args.reason}")
    materialize_months(
        settings, month, month, dagster_home=args.dagster_home, assets=[PUBLISHED_ASSET], verbose=args.verbose
    )
    print(f"published into {settings.analytics}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    import duckdb

    from feature_store_assets.generator import GeneratorOptions, generate_landing_zone

    began = time.perf_counter()
    first = parse_month(settings.start_month)
    last = add_months(first, DEMO_OPTIONS["months"] - 1)
    if not (settings.raw_dir / "clients.parquet").exists():
        print(f"generating a small landing zone in {settings.raw_dir} ...")
        generate_landing_zone(
            settings.raw_dir,
            GeneratorOptions(start_month=settings.start_month, **DEMO_OPTIONS),
            zip_income_csv=settings.zip_income,
        )
    else:
        folders = (settings.raw_dir / "transactions_inclinic").glob("*")
        months_present = sorted(m for m in (folder_month(f.name) for f in folders) if m)
        if months_present:
            last = months_present[-1]
    print(f"materializing {describe_months(month_range(first, last))} through Dagster ...")
    materialize_months(settings, first, last, verbose=args.verbose)

    from feature_store_assets.defs.dbt.project import load_manifest, monthly_lineage

    tables = monthly_lineage(load_manifest(), FEATURE_MODEL)
    print("\nrows per month, from the filter layer to the features:")
    print(format_row_counts(layer_row_counts(settings, tables), tables))
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        print("\na few feature rows of the latest month:")
        print(
            con.sql(
                "select client_id, clinic_id, tenure_days, total_revenue_12m, hd_revenue_share_12m, "
                "days_since_last_purchase, total_revenue_pctl_global_12m, zip_income_match "
                "from features.client_features "
                "where feature_month = (select max(feature_month) from features.client_features) "
                "order by client_id limit 5"
            )
        )
    print(
        f"demo finished in {time.perf_counter() - began:.1f}s. Next, as an analyst, on the published read-only copy (DuckDB CLI, or Python):"
    )
    # shell-quoted: the commands can be pasted whatever the path holds (spaces, quotes)
    print(f"  duckdb -readonly {shlex.quote(str(settings.analytics))}")
    print("  " + ANALYST_QUERY.replace("\n", "\n  "))
    one_line = " ".join(ANALYST_QUERY.split())
    python_line = f"import duckdb; print(duckdb.connect({json.dumps(str(settings.analytics))}, read_only=True).sql({json.dumps(one_line)}))"
    print(f"  python -c {shlex.quote(python_line)}")
    return 0


def add_verbose_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--verbose",
        action="store_true",
        help="print everything the run prints (dbt's lines, Dagster's console log) instead of the progress view; "
        "it is in the run's log files either way",
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="feature-store",
        description="Monthly client feature store for veterinary clinics (Dagster + dbt + DuckDB). "
        "Paths come from the FEATURE_STORE_* environment variables (see README).",
    )
    commands = root.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write a synthetic raw landing zone")
    generate.add_argument("--out", help="landing zone folder (default: FEATURE_STORE_RAW_DIR)")
    generate.add_argument("--start-month", help="first month YYYY-MM (default: FEATURE_STORE_START_MONTH)")
    generate.add_argument("--months", type=int, default=12)
    generate.add_argument("--clinics", type=int, default=40)
    generate.add_argument("--clients", type=int, default=4000)
    generate.add_argument("--inclinic-rows", type=int, default=20_000, help="in-clinic rows per month")
    generate.add_argument("--seed", type=int, default=42)
    generate.set_defaults(run=cmd_generate)

    materialize = commands.add_parser("materialize", help="run the whole graph for a range of months, as one run")
    materialize.add_argument("--from", dest="first", required=True, metavar="YYYY-MM")
    materialize.add_argument("--to", dest="last", required=True, metavar="YYYY-MM")
    materialize.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Dagster's console log level, in the run log (and on the terminal with --verbose); default DEBUG (every event)",
    )
    add_verbose_option(materialize)
    add_dagster_home_option(materialize)
    materialize.set_defaults(run=cmd_materialize)

    accept = commands.add_parser(
        "accept", help="publish a month the quality checks blocked, as it is, with a reason (docs/quality.md)"
    )
    accept.add_argument("--month", required=True, metavar="YYYY-MM")
    accept.add_argument("--reason", required=True, help="why the month is right as it is (kept in the ledger)")
    add_verbose_option(accept)
    add_dagster_home_option(accept)
    accept.set_defaults(run=cmd_accept)

    demo = commands.add_parser(
        "demo", help="generate a small landing zone if absent, materialize every month, show the result"
    )
    add_verbose_option(demo)
    demo.set_defaults(run=cmd_demo)
    add_serving_commands(commands)
    add_store_commands(commands)
    add_docs_command(commands)
    add_ui_command(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return args.run(args, settings)
    except (MaterializationFailed, ConfigurationError, ValueError) as error:
        print(f"feature-store {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
