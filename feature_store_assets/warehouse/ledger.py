"""The ledger of materialized months (quality.materialized_months): each (model, month)'s state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from feature_store_assets.core.names import LEDGER
from feature_store_assets.warehouse.connections import connect, table_exists

# A (model, month)'s state in the ledger. A month run writes `built`; the quality checks then judge the run's
# months: `accepted` (every blocking check passed, or an operator accepted it) or `blocked` (the reason names the
# checks). `failed`: the month could not be built (its files break the contract, a month its window needs is
# missing or blocked, or dbt failed); the warehouse's rows of that month are not to be trusted. Publishing copies
# accepted months whose `published_at` is NULL and stamps it; (re)building a month clears it.
BUILT, ACCEPTED, BLOCKED, FAILED = "built", "accepted", "blocked", "failed"


def _ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists quality")
    con.execute(
        f"create table if not exists {LEDGER} (model varchar, month date, row_count bigint, "
        "dagster_run_id varchar, materialized_at timestamp, status varchar, reason varchar, published_at timestamp)"
    )
    for column, kind in (("status", "varchar"), ("reason", "varchar"), ("published_at", "timestamp")):
        con.execute(f"alter table {LEDGER} add column if not exists {column} {kind}")


def _replace_ledger_rows(path: Path, rows: list[tuple]) -> None:
    """rows: (model, month, row_count, run_id, status, reason); each replaces the (model, month) entry."""
    if not rows:
        return
    with connect(path) as con:
        _ensure_ledger(con)
        con.execute("begin transaction")
        con.executemany(f"delete from {LEDGER} where model = ? and month = ?", [(r[0], r[1]) for r in rows])
        con.executemany(
            f"insert into {LEDGER} (model, month, row_count, dagster_run_id, materialized_at, status, reason) "
            "values (?, ?, ?, ?, current_timestamp::timestamp, ?, ?)",
            rows,
        )
        con.execute("commit")


def record_materialized_months(path: Path, model_rows: dict[str, dict[date, int]], run_id: str) -> None:
    """Mark each (model, month) as built by this run, with its row count (not yet judged, not published)."""
    _replace_ledger_rows(
        path,
        [(m, month, n, run_id, BUILT, None) for m, by_month in model_rows.items() for month, n in by_month.items()],
    )


def record_failed_months(path: Path, models: Iterable[str], reasons: Mapping[date, str], run_id: str) -> None:
    """Mark each model's month as failed by this run, with the reason (its rows are not history for later months)."""
    _replace_ledger_rows(
        path, [(m, month, None, run_id, FAILED, why) for m in models for month, why in reasons.items()]
    )


def record_verdicts(path: Path, models: Iterable[str], months: Iterable[date], blocked: Mapping[date, str]) -> None:
    """The quality checks' verdict on the months of the checked models still waiting for one (status built, whichever
    run built them: a check run of its own judges them too): accepted, or blocked with the reason."""
    models = list(models)
    with connect(path) as con:
        _ensure_ledger(con)
        con.executemany(
            f"update {LEDGER} set status = ?, reason = ? where list_contains(?, model) and month = ? and status = ?",
            [(BLOCKED if m in blocked else ACCEPTED, blocked.get(m), models, m, BUILT) for m in months],
        )


def accept_blocked_month(path: Path, month: date, note: str) -> int:
    """An operator accepts a blocked month as it is (the ledger keeps who-said-why in `reason`); rows changed."""
    with connect(path) as con:
        _ensure_ledger(con)
        changed = con.execute(
            f"update {LEDGER} set status = ?, reason = ? where month = ? and status = ? returning model",
            [ACCEPTED, f"accepted by an operator: {note}", month, BLOCKED],
        ).fetchall()
    return len(changed)


@dataclass(frozen=True)
class MonthState:
    """A month over the models the ledger has for it: the least trusted state, and its reasons."""

    status: str
    reason: str | None
    run_id: str | None


_TRUST = {ACCEPTED: 0, BUILT: 1, BLOCKED: 2, FAILED: 3}


def month_states(path: Path, models: Iterable[str] | None = None, run_id: str | None = None) -> dict[date, MonthState]:
    """Each month's state in the ledger over the given models (every model when None), or over what one run recorded."""
    if not path.exists():
        return {}
    with connect(path, read_only=True) as con:
        if not table_exists(con, LEDGER):
            return {}
        rows = con.execute(
            f"select month, model, coalesce(status, ?), reason, dagster_run_id from {LEDGER} order by month, model",
            [ACCEPTED],
        ).fetchall()
    wanted = None if models is None else set(models)
    states: dict[date, MonthState] = {}
    for month, model, status, reason, row_run_id in rows:
        if (wanted is not None and model not in wanted) or (run_id is not None and row_run_id != run_id):
            continue
        earlier = states.get(month)
        if earlier is None or _TRUST[status] > _TRUST[earlier.status]:
            states[month] = MonthState(status, reason, row_run_id)
    return states


def accepted_months(path: Path, models: Iterable[str]) -> set[date]:
    """Months for which every one of the models is in the ledger and accepted."""
    models = list(models)
    if not path.exists():
        return set()
    with connect(path, read_only=True) as con:
        if not table_exists(con, LEDGER):
            return set()
        found = con.execute(
            f"select month from {LEDGER} where list_contains(?, model) group by month "
            "having count(distinct model) = ? and bool_and(coalesce(status, ?) = ?)",
            [models, len(models), ACCEPTED, ACCEPTED],
        ).fetchall()
    return {row[0] for row in found}


def publishable_months(path: Path) -> dict[str, set[date]]:
    """model -> its accepted months (the only months of a monthly table the analytics file may hold)."""
    with connect(path, read_only=True) as con:
        if not table_exists(con, LEDGER):
            return {}
        rows = con.execute(
            f"select model, month from {LEDGER} where coalesce(status, ?) = ?", [ACCEPTED, ACCEPTED]
        ).fetchall()
    found: dict[str, set[date]] = {}
    for model, month in rows:
        found.setdefault(model, set()).add(month)
    return found


def months_to_publish(path: Path) -> list[date]:
    """Accepted months not published since they were built: this run's, and any an earlier run failed to publish."""
    if not path.exists():
        return []
    with connect(path, read_only=True) as con:
        if not table_exists(con, LEDGER):
            return []
        _has_status = {
            row[0]
            for row in con.execute(
                "select column_name from duckdb_columns() where schema_name = ? and table_name = ?", LEDGER.split(".")
            ).fetchall()
        } >= {"status", "published_at"}
        if not _has_status:  # a ledger from before months were judged: everything it holds
            return [row[0] for row in con.execute(f"select distinct month from {LEDGER} order by 1").fetchall()]
        found = con.execute(
            f"select distinct month from {LEDGER} where coalesce(status, ?) = ? and published_at is null order by 1",
            [ACCEPTED, ACCEPTED],
        ).fetchall()
    return [row[0] for row in found]


def mark_published(con: duckdb.DuckDBPyConnection, months: Iterable[date], ledger: str = LEDGER) -> None:
    """Stamp the accepted months as published (in the warehouse's ledger, and in the published copy of it)."""
    con.execute(
        f"update {ledger} set published_at = current_timestamp::timestamp "
        "where list_contains(?, month) and coalesce(status, ?) = ?",
        [list(months), ACCEPTED, ACCEPTED],
    )


def months_materialized_since(con: duckdb.DuckDBPyConnection, model: str, since: datetime | None) -> list[date]:
    """Months the ledger says the model was materialized in after `since` (every month when None)."""
    if not table_exists(con, LEDGER):
        return []
    found = con.execute(
        f"select distinct month from {LEDGER} where model = ? and (?::timestamp is null or materialized_at > ?) order by 1",
        [model, since, since],
    ).fetchall()
    return [row[0] for row in found]
