"""Which months a run may build, and which of its months are history for later months.

A month is history for the feature and mart windows of later months (M-11..M) only once the
quality checks accepted it (warehouse.py, the ledger's `status`): a month that is missing,
failed or blocked is not, so a later month that needs it is not built, and says which month
and why. Pure functions over months and ledger states; the dbt step and the checks call them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from feature_store_assets.core.months import add_months, format_month, months_needed_by_features
from feature_store_assets.warehouse.ledger import ACCEPTED, MonthState


def _why(month: date, state: MonthState | None) -> str:
    if state is None:
        return f"{format_month(month)} (never materialized)"
    return f"{format_month(month)} ({state.status}: {state.reason or 'no reason recorded'})"


def months_not_buildable(
    run_months: Sequence[date],
    start: date,
    bad: Mapping[date, str],
    history: Mapping[date, MonthState],
    windows: bool,
    run_builds_history: bool,
) -> dict[date, str]:
    """Run months that must not be built, with the reason: their own files are bad (`bad`), or (`windows`:
    the run builds windowed models) their 12-month window needs a month that is neither built by this run
    (`run_builds_history`: the run builds the aggregation models) nor accepted in the ledger (`history`)."""
    held = dict(bad)
    in_run = set(run_months)
    for month in sorted(run_months):
        if month in held or not windows:
            continue
        for needed in months_needed_by_features([month], start):
            if needed in in_run and run_builds_history:
                if needed in held:
                    held[month] = (
                        f"its 12-month window needs {format_month(needed)}, which is not built in this run: {held[needed]}"
                    )
                    break
            elif history.get(needed) is None or history[needed].status != ACCEPTED:
                held[month] = f"its 12-month window needs {_why(needed, history.get(needed))}"
                break
    return held


def blocked_with_windows(run_months: Iterable[date], start: date, blocked: Mapping[date, str]) -> dict[date, str]:
    """Blocked months of a run, plus the run's later months whose window includes one of them (their
    features and marts read its rows)."""
    result = dict(blocked)
    for month in sorted(run_months):
        if month in result:
            continue
        earlier = [m for m in months_needed_by_features([month], start) if m in blocked and m != month]
        if earlier:
            result[month] = f"its 12-month window includes {format_month(earlier[-1])}, blocked: {blocked[earlier[-1]]}"
    return result


def contiguous_runs(months: Iterable[date]) -> list[list[date]]:
    """Months grouped into runs of consecutive months (one dbt build covers a consecutive range)."""
    groups: list[list[date]] = []
    for month in sorted(months):
        if groups and add_months(groups[-1][-1], 1) == month:
            groups[-1].append(month)
        else:
            groups.append([month])
    return groups
