"""Planning and reporting one monthly dbt step, as functions the asset calls: which months to build, in which
builds, the builds' events merged into one step's, and each month's row counts.
"""

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from feature_store_assets.core.months import describe_months, format_month, month_folder
from feature_store_assets.defs.dbt.project import (
    STAGING_MONTH_COLUMN,
    filter_landing_tables,
    quality_meta,
    rejected_rows_model,
    relation_of,
    staging_models_by_name,
)
from feature_store_assets.warehouse.connections import rejected_rows_by_table, rows_per_month


@dataclass(frozen=True)
class RowMetadata:
    """A built model's row counts: `run` goes on its dbt output (so on every partition's materialization),
    `by_month` on each built month's own materialization (partition-scoped, overriding `run`'s keys), so
    Dagster's plot of `dagster/row_count` across partitions shows each month's rows, also after a
    multi-month run."""

    run: dict[str, Any]
    by_month: dict[date, dict[str, Any]]


def materialization_row_metadata(
    con: duckdb.DuckDBPyConnection,
    manifest: Mapping[str, Any],
    built: dict[str, dict[date, int]],
    months: list[date],
    landed_by_month: Mapping[str, Mapping[date, int]],
) -> dict[str, RowMetadata]:
    """Rows in, rows out (`dagster/row_count` too) and rows rejected of each built model, per built month,
    and the run's rows by month; staging views get each month they read (the last dbt build's) counted.

    Rows in: landed rows of its landing-zone tables for filter models (filter_landing_tables, from lineage;
    landed_by_month: table -> month -> rows), else its monthly parents' rows; rows rejected: the rejected-rows
    model's rows of those tables (the filter models but the rejected-rows model itself).
    """
    landing = filter_landing_tables(manifest)
    rejected_model = rejected_rows_model(manifest)
    rejected = (
        {month: rejected_rows_by_table(con, relation_of(rejected_model), [month]) for month in months}
        if rejected_model is not None and rejected_model["name"] in built
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
            if name in landing:
                rows_in = sum(landed_by_month[table][month] for table in landing[name])
            else:
                rows_in = sum(built.get(parent, {}).get(month, 0) for parent in parents)
            rows_out = by_month.get(month, 0)
            entry: dict[str, Any] = {"rows_out": rows_out, "rows_in": rows_in, "dagster/row_count": rows_out}
            if name in landing and not quality_meta(node).get("holds_rejected_rows"):
                entry["rows_rejected"] = sum(rejected.get(month, {}).get(table, 0) for table in landing[name])
            per_month[month] = entry
        run = {"rows_by_month": dg.MetadataValue.json({format_month(m): n for m, n in by_month.items()})}
        metadata[name] = RowMetadata(run=run, by_month=per_month)
    for name, node in staging_models_by_name(manifest).items():
        # rebuilt by every dbt build: only the last build's months are in the table, the others are not counted
        held = {m: n for m, n in rows_per_month(con, relation_of(node), STAGING_MONTH_COLUMN, months).items() if n}
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
        found += [f"{table} has no file for {month_folder(month)}" for table in report.empty_tables.get(month, [])]
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
