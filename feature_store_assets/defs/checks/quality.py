"""Quality checks of a run's months, with their numbers, as one Dagster multi-asset check step.

They run after the dbt step (whose dbt tests already stop downstream models
inside the build) and read the warehouse read-only. ERROR checks are blocking:
when one fails, the analytics file is not published for the run, so analysts
keep the previous months exactly as they were.
Thresholds: defaults in rules.py, overridable per model and column in the dbt
.yml under `meta.quality`; null-rate expectations come from the column's dbt tests.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from feature_store_assets.core.months import add_months, describe_months, format_month, month_range, parse_month
from feature_store_assets.core.names import LEDGER
from feature_store_assets.core.resources import WAREHOUSE_POOL, DuckDBFile, FeatureStoreResource
from feature_store_assets.defs.checks import rules
from feature_store_assets.defs.checks.acceptance import blocked_with_windows
from feature_store_assets.defs.dbt.project import (
    WINDOWED_LAYERS,
    load_manifest,
    monthly_models_by_name,
    quality_meta,
    relation_of,
)
from feature_store_assets.defs.landing_zone.validation import EVENT_TABLES, landed_rows
from feature_store_assets.warehouse.connections import quote, table_exists
from feature_store_assets.warehouse.ledger import ACCEPTED, BUILT, FAILED, month_states, record_verdicts

# Rows of a month the drift check compares: at this size, PSI's sampling noise over its quantile bins is about
# 1e-4, far below the 0.25 WARN level; the check holds two months of samples at a time (about 100 MB), not every
# month of a backfill (1M rows x 13 months x 25 features was 2.6 GB, the backfill's peak memory).
DRIFT_SAMPLE_ROWS = 250_000
TOP_OFFENDERS = 5


@dataclass(frozen=True)
class ModelQuality:
    """What the checks need to know of one month-incremental dbt model, from the manifest."""

    name: str
    key: dg.AssetKey
    relation: str
    month_column: str
    layer: str
    quality: Mapping[str, Any]
    max_null_rates: Mapping[str, float] = field(default_factory=dict)
    null_conditions: Mapping[str, str] = field(default_factory=dict)
    # `meta.quality.eligible_clients` names the model of eligible clients; here its relation
    eligible_clients: str | None = None

    @property
    def event_timestamp(self) -> str | None:
        """A filter model's event timestamp (`meta.quality.event_timestamp`): point_in_time checks its month."""
        return self.quality.get("event_timestamp")

    @property
    def sees_future_when(self) -> str | None:
        """A condition true of a row that saw events at or after E (`meta.quality.sees_future_when`): point_in_time."""
        return self.quality.get("sees_future_when")

    @property
    def holds_rejected_rows(self) -> bool:
        """The rejected-rows model (`meta.quality.holds_rejected_rows`): rejected_row_rate."""
        return bool(self.quality.get("holds_rejected_rows"))

    @property
    def feature_drift(self) -> bool:
        """`meta.quality.feature_drift`: feature_drift compares its numeric columns month over month."""
        return bool(self.quality.get("feature_drift"))


def models_from_manifest(manifest: Mapping[str, Any]) -> list[ModelQuality]:
    """Month-incremental models with their thresholds: not_null tests cap a column's null rate at 0,
    null_exactly_when tests fix it to the condition's share, and `meta.quality.max_null_rate` caps the rest."""
    tests_by_model: dict[str, list[Mapping[str, Any]]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "test" and node.get("attached_node"):
            tests_by_model.setdefault(node["attached_node"], []).append(node)
    models = []
    nodes_by_name = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    for name, node in sorted(monthly_models_by_name(manifest).items()):
        quality = quality_meta(node)
        eligible = quality.get("eligible_clients")
        if eligible is not None and eligible not in nodes_by_name:
            raise ValueError(f"{name}: meta.quality.eligible_clients names {eligible!r}, which is not a dbt model")
        max_null_rates = {
            column: column_node["meta"]["quality"]["max_null_rate"]
            for column, column_node in node["columns"].items()
            if "max_null_rate" in column_node.get("meta", {}).get("quality", {})
        }
        null_conditions = {}
        for test in tests_by_model.get(node["unique_id"], []):
            metadata = test.get("test_metadata") or {}
            column = metadata.get("kwargs", {}).get("column_name")
            if metadata.get("name") == "not_null" and column:
                max_null_rates.setdefault(column, 0.0)
            elif metadata.get("name") == "null_exactly_when" and column:
                null_conditions[column] = metadata["kwargs"]["condition"]
        models.append(
            ModelQuality(
                name=name,
                key=dg.AssetKey([node["schema"], name]),
                relation=f"{node['schema']}.{name}",
                month_column=node["config"]["unique_key"],
                layer=node["fqn"][1],
                quality=quality,
                max_null_rates=max_null_rates,
                null_conditions=null_conditions,
                eligible_clients=relation_of(nodes_by_name[eligible]) if eligible else None,
            )
        )
    return models


Severity = dg.AssetCheckSeverity


class Judgement:
    """The check results of a run, and each month's blocking failures (an ERROR failure of any check holds the
    month back from publishing). `warn` mode (FEATURE_STORE_QUALITY_MODE) reports everything as WARN."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.results: list[dg.AssetCheckResult] = []
        self.blocking: dict[date, list[str]] = {}

    def add(
        self,
        model: ModelQuality,
        check: str,
        verdicts: Mapping[date, rules.Verdict],
        severity: Severity | Mapping[date, Severity] = Severity.ERROR,
        extra: dict | None = None,
    ) -> None:
        by_month = severity if isinstance(severity, Mapping) else dict.fromkeys(verdicts, severity)
        if self.mode == "warn":
            by_month = dict.fromkeys(verdicts, Severity.WARN)
        failed = {month: v for month, v in verdicts.items() if not v.passed}
        for month, verdict in failed.items():
            if by_month.get(month, Severity.ERROR) == Severity.ERROR:
                self.blocking.setdefault(month, []).append(f"{model.key.to_user_string()} {check}: {verdict.summary}")
        worst = (
            Severity.ERROR if any(by_month.get(m, Severity.ERROR) == Severity.ERROR for m in failed) else Severity.WARN
        )
        metadata: dict[str, Any] = {
            f"{format_month(month)}": dg.MetadataValue.json(v.metadata | {"summary": v.summary})
            for month, v in verdicts.items()
        }
        if len(verdicts) == 1:  # a single month: flat numbers Dagster plots over partitions
            (verdict,) = verdicts.values()
            metadata |= {
                k: v for k, v in verdict.metadata.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            }
        metadata["failed_months"] = ", ".join(format_month(m) for m in sorted(failed)) or "none"
        metadata |= extra or {}
        self.results.append(
            dg.AssetCheckResult(
                asset_key=model.key,
                check_name=check,
                passed=not failed,
                severity=worst,
                metadata=metadata,
                description="; ".join(f"{format_month(m)}: {v.summary}" for m, v in sorted(failed.items())) or None,
            )
        )


def _configured_blocking(model: ModelQuality, check: str) -> Severity:
    """A statistical check warns unless the model's yml lists it under meta.quality.blocking_checks."""
    return Severity.ERROR if check in model.quality.get("blocking_checks", []) else Severity.WARN


def row_count_rule(model: ModelQuality) -> rules.RowCountRule:
    q = model.quality
    return rules.RowCountRule(
        tolerance=q.get("row_count_tolerance", rules.DEFAULT_ROW_COUNT_TOLERANCE),
        growth=q.get("row_count_growth", rules.DEFAULT_ROW_COUNT_GROWTH),
        min_history=q.get("row_count_min_history", rules.DEFAULT_ROW_COUNT_MIN_HISTORY),
        min_rows=q.get("row_count_min_rows", rules.DEFAULT_ROW_COUNT_MIN_ROWS),
    )


def row_count_results(
    con: duckdb.DuckDBPyConnection,
    models: Iterable[ModelQuality],
    months: list[date],
    judgement: Judgement,
    not_built: Mapping[date, str] | None = None,
) -> None:
    """A month without rows is an integrity failure (ERROR; `meta.quality.allow_empty_month` for models whose month
    may legitimately be empty); a change against the trailing months is statistical (WARN unless blocking_checks
    says so). History: the ledger's counts of months built or accepted, never of blocked or failed ones.
    `not_built`: months of the run the dbt step could not build, with the reason: they fail with it."""
    not_built = not_built or {}
    for model in models:
        if not model.quality.get("row_count_check", True):
            continue
        lookback = model.quality.get("row_count_lookback", rules.DEFAULT_ROW_COUNT_LOOKBACK)
        history = dict(
            con.execute(
                f"select month, row_count from {LEDGER} where model = ? and row_count is not null "
                "and coalesce(status, ?) in (?, ?) order by month",
                [model.name, ACCEPTED, ACCEPTED, BUILT],
            ).fetchall()
        )
        verdicts, severity = {}, {}
        for month in months:
            if month in not_built:
                verdicts[month], severity[month] = (
                    rules.Verdict(False, f"not built: {not_built[month]}", {"rows": 0}),
                    Severity.ERROR,
                )
                continue
            previous = [count for m, count in sorted(history.items()) if m < month][-lookback:]
            verdict = rules.row_count_verdict(history.get(month, 0), previous, row_count_rule(model))
            empty = verdict.metadata.get("empty", False)
            verdicts[month] = verdict
            if empty:
                severity[month] = Severity.WARN if model.quality.get("allow_empty_month") else Severity.ERROR
            else:
                severity[month] = _configured_blocking(model, "row_count")
        judgement.add(model, "row_count", verdicts, severity)


def null_rate_results(
    con: duckdb.DuckDBPyConnection, models: Iterable[ModelQuality], months: list[date], judgement: Judgement
) -> None:
    for model in models:
        columns = [row[0] for row in con.execute(f"select column_name from (describe {model.relation})").fetchall()]
        counted = ", ".join(f"count({quote(c)})" for c in columns)
        conditions = ", ".join(f"count(*) filter (where {cond})" for cond in model.null_conditions.values()) or "0"
        rows = con.execute(
            f"select {model.month_column}, count(*), {counted}, {conditions} from {model.relation} "
            f"where list_contains(?, {model.month_column}) group by 1",
            [months],
        ).fetchall()
        by_month = {row[0]: row for row in rows}
        verdicts, offenders, severity = {}, [], {}
        min_rows = model.quality.get("rate_min_rows", rules.DEFAULT_RATE_MIN_ROWS)
        for month in months:
            row = by_month.get(month)
            total = row[1] if row else 0
            non_null = dict(zip(columns, row[2 : 2 + len(columns)])) if row else {c: 0 for c in columns}
            condition_counts = dict(zip(model.null_conditions, row[2 + len(columns) :])) if row else {}
            column_verdicts = []
            for column in columns:
                expected = condition_counts[column] / total if column in model.null_conditions and total else None
                column_verdicts.append(
                    rules.null_rate_verdict(
                        column, total - non_null[column], total, model.max_null_rates.get(column), expected
                    )
                )
            failing = [v for v in column_verdicts if not v.passed]
            offenders += [v.summary for v in failing]
            # a key's NULL (a not_null test) and an exact expectation are integrity; a ceiling is statistical, so a
            # rate over fewer than min_rows rows warns (a handful of rows gives a rate anything by chance)
            exact = [
                v for v in failing if v.metadata.get("max_null_rate", 1) == 0 or "expected_null_rate" in v.metadata
            ]
            severity[month] = Severity.ERROR if exact or total >= min_rows else Severity.WARN
            rates = {v.metadata["column"]: round(v.metadata["null_rate"], 6) for v in column_verdicts}
            verdicts[month] = rules.Verdict(
                passed=not failing,
                summary="; ".join(v.summary for v in failing) or f"{len(columns)} columns within thresholds",
                metadata={
                    "rows": total,
                    "null_rates": rates,
                    "max_null_rates": dict(model.max_null_rates),
                    "null_exactly_when": dict(model.null_conditions),
                },
            )
        judgement.add(
            model,
            "null_rates",
            verdicts,
            severity,
            extra={"top_offenders": ", ".join(offenders[:TOP_OFFENDERS]) or "none"},
        )


def rejected_rate_result(
    con: duckdb.DuckDBPyConnection, model: ModelQuality, months: list[date], raw_dir: Path, judgement: Judgement
) -> None:
    warn = model.quality.get("rejected_warn_rate", rules.DEFAULT_REJECTED_WARN_RATE)
    error = model.quality.get("rejected_error_rate", rules.DEFAULT_REJECTED_ERROR_RATE)
    rejected = con.execute(
        f"select event_month, table_name, reason, count(*) from {model.relation} "
        "where list_contains(?, event_month) group by all",
        [months],
    ).fetchall()
    min_rows = model.quality.get("rate_min_rows", rules.DEFAULT_RATE_MIN_ROWS)
    verdicts, severity = {}, {}
    for month in months:
        rates, landed_by_key = {}, {}
        for table in EVENT_TABLES:
            landed = landed_rows(raw_dir, table, month)
            for m, t, reason, count in rejected:
                if m == month and t == table:
                    rates[f"{table}/{reason}"] = count / landed if landed else 1.0
                    landed_by_key[f"{table}/{reason}"] = landed
        # above the error rate is an ERROR once the table's month has min_rows landed rows; on fewer, a WARN
        severities = {
            key: "WARN"
            if rules.rejection_severity(rate, warn, error) == "ERROR" and landed_by_key[key] < min_rows
            else rules.rejection_severity(rate, warn, error)
            for key, rate in rates.items()
        }
        flagged = {k: s for k, s in severities.items() if s}
        severity[month] = Severity.ERROR if "ERROR" in flagged.values() else Severity.WARN
        verdicts[month] = rules.Verdict(
            passed=not flagged,
            summary=", ".join(f"{k} {rates[k]:.2%} ({s})" for k, s in sorted(flagged.items()))
            or "rejection rates acceptable",
            metadata={
                "rejected_rate": {k: round(v, 6) for k, v in sorted(rates.items())},
                "warn_above": warn,
                "error_above": error,
            },
        )
    judgement.add(model, "rejected_row_rate", verdicts, severity)


def point_in_time_results(
    con: duckdb.DuckDBPyConnection, models: Iterable[ModelQuality], months: list[date], judgement: Judgement
) -> None:
    """No event at or after E feeds month M: filter rows sit inside their month (`event_timestamp`); no feature row
    meets its `sees_future_when` condition (client_features: negative recency or tenure)."""
    models = list(models)
    for model in (m for m in models if m.event_timestamp):
        ts_column, month_column = quote(model.event_timestamp), quote(model.month_column)
        verdicts = {}
        for month in months:
            (outside,) = con.execute(
                f"select count(*) from {model.relation} where {month_column} = ? "
                f"and ({ts_column} < ? or {ts_column} >= ?)",
                [month, month, add_months(month, 1)],
            ).fetchone()
            verdicts[month] = rules.Verdict(
                outside == 0, f"{outside} rows outside their month", {"rows_outside_month": outside}
            )
        judgement.add(model, "point_in_time", verdicts)
    for model in (m for m in models if m.sees_future_when):
        verdicts = {}
        for month in months:
            (future,) = con.execute(
                f"select count(*) from {model.relation} where {quote(model.month_column)} = ? "
                f"and ({model.sees_future_when})",
                [month],
            ).fetchone()
            verdicts[month] = rules.Verdict(
                future == 0, f"{future} rows see events at or after E", {"rows_seeing_the_future": future}
            )
        judgement.add(model, "point_in_time", verdicts)


def eligibility_result(
    con: duckdb.DuckDBPyConnection, model: ModelQuality, months: list[date], judgement: Judgement
) -> None:
    """Every featured client exists, belongs to a complete clinic and was created before E."""
    verdicts = {}
    for month in months:
        offenders = [
            row[0]
            for row in con.execute(
                f"select f.client_id from {model.relation} f left join {model.eligible_clients} c using (client_id) "
                f"where f.{quote(model.month_column)} = ? and (c.client_id is null or c.created_at >= ? or c.clinic_id != f.clinic_id) "
                "order by 1 limit 1000",
                [month, add_months(month, 1)],
            ).fetchall()
        ]
        verdicts[month] = rules.Verdict(
            not offenders,
            f"{len(offenders)} featured clients not eligible",
            {"ineligible_clients": len(offenders), "sample_client_ids": offenders[:TOP_OFFENDERS]},
        )
    judgement.add(model, "eligible_clients_only", verdicts)


def drift_result(con: duckdb.DuckDBPyConnection, model: ModelQuality, months: list[date], judgement: Judgement) -> None:
    """Population stability index of each numeric feature, month M against M-1; a WARN unless the yml makes it blocking.
    Not compared: the month key and `meta.quality.drift_excluded_columns` (keys, and values with few distinct values)."""
    threshold = model.quality.get("psi_warn", rules.DEFAULT_PSI_WARN)
    excluded = {model.month_column, *model.quality.get("drift_excluded_columns", [])}
    features = [
        name
        for name, dtype in con.execute(f"select column_name, column_type from (describe {model.relation})").fetchall()
        if name not in excluded and dtype in ("DOUBLE", "INTEGER", "BIGINT")
    ]
    columns = ", ".join(features)
    samples: dict[date, dict] = {}

    def sample(month: date) -> dict:
        """A month's feature values: all of them up to DRIFT_SAMPLE_ROWS rows, else a block sample of about that many.

        Read once per month (M's values serve as M+1's baseline). The former reservoir sample was
        taken over the whole table before the month filter: its cost grew with history.
        """
        if month not in samples:
            (rows,) = con.execute(
                f"select count(*) from {model.relation} where {quote(model.month_column)} = ?", [month]
            ).fetchone()
            clause = (
                ""
                if rows <= DRIFT_SAMPLE_ROWS
                else f" using sample {100 * DRIFT_SAMPLE_ROWS / rows:.4f} percent (system, 42)"
            )
            # the sample applies to the month's rows (a subquery): after FROM, it would apply before WHERE, to every month
            samples[month] = con.execute(
                f"select * from (select {columns} from {model.relation} where {quote(model.month_column)} = ?){clause}",
                [month],
            ).fetchnumpy()
        return samples[month]

    verdicts = {}
    for month in sorted(months):
        samples.pop(add_months(month, -2), None)  # M-1's values serve as M+1's baseline, older ones never again
        before, after = sample(add_months(month, -1)), sample(month)
        if len(before[features[0]]) == 0:
            verdicts[month] = rules.Verdict(True, "no previous month to compare with", {})
            continue
        psi = {f: rules.population_stability_index(_floats(before[f]), _floats(after[f])) for f in features}
        drifted = sorted((f for f in psi if psi[f] > threshold), key=psi.get, reverse=True)
        top = sorted(psi, key=psi.get, reverse=True)[:TOP_OFFENDERS]
        verdicts[month] = rules.Verdict(
            not drifted,
            ", ".join(f"{f} PSI {psi[f]:.3f}" for f in drifted[:TOP_OFFENDERS]) or "no feature drifted",
            {
                "psi": {f: round(v, 5) for f, v in psi.items()},
                "psi_warn_above": threshold,
                "most_drifted": [f"{f} {psi[f]:.3f}" for f in top],
                "max_psi": round(max(psi.values()), 5),
            },
        )
    judgement.add(model, "feature_drift", verdicts, _configured_blocking(model, "feature_drift"))


def _floats(values):
    import numpy as np

    return (
        np.ma.filled(np.ma.asarray(values, dtype="float64"), np.nan)
        if np.ma.isMaskedArray(values)
        else np.asarray(values, dtype="float64")
    )


ACCEPTANCE_CHECK = "month_accepted"


def check_specs(models: list[ModelQuality]) -> list[dg.AssetCheckSpec]:
    """Every check is reported per run with its severity; which months are held back is decided per month (an ERROR
    failure of any check of the month) and recorded in the ledger, so a bad month never stops the good ones.
    Dagster's `blocking` is set on `month_accepted` only: it makes everything downstream (publishing) wait for this
    step, and never fails it (a held-back month is a WARN there: the publish step names it and fails the run)."""
    specs = []
    for model in models:
        specs.append(
            dg.AssetCheckSpec(
                ACCEPTANCE_CHECK,
                asset=model.key,
                blocking=True,
                description="Each run month is accepted for publishing (no ERROR check failed on any model that month, and "
                "its 12-month window holds no blocked month), or held back with the reasons; recorded in quality.materialized_months.",
            )
        )
        specs += [
            dg.AssetCheckSpec(name, asset=model.key, description=description)
            for name, applies, description in (
                (
                    "row_count",
                    model.quality.get("row_count_check", True),
                    "Rows of each run month. No rows: "
                    + ("WARN (an empty month is valid here)" if model.quality.get("allow_empty_month") else "ERROR")
                    + ". Against the trailing months' median: WARN on a drop below half or growth above 3x, once 3 "
                    "earlier months with a median of at least 500 rows are known (docs/quality.md).",
                ),
                ("null_rates", True, "ERROR when a column's null rate breaks its threshold from the dbt .yml."),
                (
                    "point_in_time",
                    model.event_timestamp or model.sees_future_when,
                    "ERROR when an event at or after E (the first day of M+1) contributes to month M.",
                ),
                (
                    "rejected_row_rate",
                    model.holds_rejected_rows,
                    "Rejected rows per landed rows, by table and reason: WARN above 1%, ERROR above 10%.",
                ),
                (
                    "eligible_clients_only",
                    model.eligible_clients,
                    "ERROR unless every featured client exists, belongs to a complete clinic and was created before E.",
                ),
                (
                    "feature_drift",
                    model.feature_drift,
                    "Population stability index of each feature against the previous month (WARN).",
                ),
            )
            if applies
        ]
    return specs


def acceptance_results(
    models: Iterable[ModelQuality], months: list[date], held: Mapping[date, str]
) -> list[dg.AssetCheckResult]:
    """The month_accepted check of each model: which run months are accepted, which held back and why."""
    summary = "; ".join(f"{format_month(m)}: {why}" for m, why in sorted(held.items())) or None
    metadata = {
        "accepted_months": describe_months(m for m in months if m not in held) or "none",
        "held_back_months": describe_months(held) or "none",
    }
    return [
        dg.AssetCheckResult(
            asset_key=model.key,
            check_name=ACCEPTANCE_CHECK,
            passed=not held,
            severity=dg.AssetCheckSeverity.WARN,
            metadata=metadata,
            description=summary,
        )
        for model in models
    ]


def build_quality_checks() -> dg.AssetChecksDefinition:
    models = models_from_manifest(load_manifest())
    windowed = {m.name for m in models if m.layer in WINDOWED_LAYERS}

    @dg.multi_asset_check(specs=check_specs(models), name="quality_checks", can_subset=True, pool=WAREHOUSE_POOL)
    def quality_checks(
        context: dg.AssetCheckExecutionContext, feature_store: FeatureStoreResource, warehouse: DuckDBFile
    ):
        window = context.op_execution_context.partition_time_window
        run_months = month_range(window.start.date(), add_months(window.end.date(), -1))
        selected = {(key.asset_key, key.name) for key in context.selected_asset_check_keys}
        settings = feature_store.settings
        checked_keys = {asset_key for asset_key, _ in selected}
        # what the dbt step of this run recorded: the months it built, and those it could not build (with why)
        run_id = context.op_execution_context.run_id
        states = month_states(settings.warehouse, run_id=run_id)
        not_built = {m: s.reason or "not built" for m, s in states.items() if s.status == FAILED and m in run_months}
        months = [m for m in run_months if m not in not_built]
        judgement = Judgement(settings.quality_mode)
        with warehouse.connect(read_only=True) as con:
            if not table_exists(con, LEDGER):
                raise dg.Failure("No month has been materialized yet: run the monthly job first.")
            present = [m for m in models if m.key in checked_keys and table_exists(con, m.relation)]
            present_by_name = {m.name: m for m in present}
            row_count_results(con, present, run_months, judgement, not_built)
            if months:
                null_rate_results(con, present, months, judgement)
                point_in_time_results(con, present, months, judgement)
                for model in (m for m in present if m.holds_rejected_rows):
                    rejected_rate_result(con, model, months, settings.raw_dir, judgement)
                for model in (m for m in present if m.eligible_clients):
                    eligibility_result(con, model, months, judgement)
                for model in (m for m in present if m.feature_drift):
                    drift_result(con, model, months, judgement)
        missing = {key for key, _ in selected} - {m.key for m in present}
        blocked = {m: "; ".join(reasons) for m, reasons in judgement.blocking.items() if m in months}
        if present_by_name.keys() & windowed:  # a later month's features read a blocked month's rows
            blocked = blocked_with_windows(months, parse_month(settings.start_month), blocked)
        record_verdicts(settings.warehouse, [m.name for m in present], months, blocked)
        held = {**not_built, **blocked}
        for result in judgement.results + acceptance_results(present, run_months, held):
            if (result.asset_key, result.check_name) in selected:
                yield result
        for asset_key, check_name in sorted(selected, key=str):
            if asset_key in missing:  # dbt should have built it: say so rather than pass silently
                yield dg.AssetCheckResult(
                    asset_key=asset_key,
                    check_name=check_name,
                    passed=False,
                    severity=dg.AssetCheckSeverity.WARN
                    if check_name == ACCEPTANCE_CHECK
                    else dg.AssetCheckSeverity.ERROR,
                    description=f"{asset_key.to_user_string()} does not exist in the warehouse",
                )

    return quality_checks
