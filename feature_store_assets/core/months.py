"""Month arithmetic shared by the partitions, the window of each dbt build and the dependency guard.

Months are `YYYY-MM` strings at the edges (CLI, folders) and `datetime.date`
first-of-month values inside.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime

# A month as settings and options spell it: YYYY-MM (use fullmatch).
MONTH_PATTERN = re.compile(r"\d{4}-(0[1-9]|1[0-2])")

# A month's folder of an event table in the landing zone: `month=YYYY-MM` (docs/data-contract.md).
MONTH_FOLDER_PREFIX = "month="

# A feature month reads aggregates of itself and the 11 months before it (the 12m window).
FEATURE_LOOKBACK_MONTHS = 11


def parse_month(value: str) -> date:
    """`2024-03` or `2024-03-01` → date(2024, 3, 1); anything else is an error naming the value."""
    for fmt in ("%Y-%m", "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        if parsed.day == 1:
            return parsed
    raise ValueError(f"not a month (expected YYYY-MM): {value!r}")


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_range(first: date, last: date) -> list[date]:
    """Every month from first to last, both included."""
    months = []
    current = first
    while current <= last:
        months.append(current)
        current = add_months(current, 1)
    return months


def format_month(month: date) -> str:
    return month.strftime("%Y-%m")


def month_folder(month: date) -> str:
    """The landing zone's folder name of a month: `month=2024-03`."""
    return f"{MONTH_FOLDER_PREFIX}{format_month(month)}"


def folder_month(name: str) -> date | None:
    """The month of a `month=YYYY-MM` folder name; None for any other name (not a month folder of the contract)."""
    value = name.removeprefix(MONTH_FOLDER_PREFIX)
    if value == name or not MONTH_PATTERN.fullmatch(value):
        return None
    return parse_month(value)


# The window of a dbt build, as dbt reads it while it executes (macros/run_months.sql): environment variables rather
# than --vars, which would make dbt re-parse the whole project at every build (docs/performance.md).
RUN_WINDOW_ENV = {"min_date": "FEATURE_STORE_RUN_MIN_DATE", "max_date": "FEATURE_STORE_RUN_MAX_DATE"}
_RUN_WINDOW_LOGGED = re.compile(
    rf"{RUN_WINDOW_ENV['min_date']}=(\d{{4}}-\d{{2}})-01 {RUN_WINDOW_ENV['max_date']}=(\d{{4}}-\d{{2}})-01"
)


def dbt_window_env(first: date, last: date) -> dict[str, str]:
    """The window of a dbt build over months first..last: min_date inclusive, max_date exclusive (E of the last month)."""
    window = {"min_date": first.isoformat(), "max_date": add_months(last, 1).isoformat()}
    return {RUN_WINDOW_ENV[name]: value for name, value in window.items()}


def month_build_message(first: date, last: date) -> str:
    """What a monthly step logs before each dbt build: its months, and how to run the same build by hand."""
    env = " ".join(f"{name}={value}" for name, value in dbt_window_env(first, last).items())
    return f"dbt build of {describe_months(month_range(first, last))}: {env}"


def month_build_months(message: str) -> list[date] | None:
    """The months of a dbt build, from its `month_build_message` (None for any other message)."""
    match = _RUN_WINDOW_LOGGED.search(message)
    if not match:
        return None
    return month_range(parse_month(match[1]), add_months(parse_month(match[2]), -1))


def months_needed_by_features(run_months: Iterable[date], start: date) -> list[date]:
    """Aggregation months that feature months need: M-11..M for each M, none before the start."""
    needed = set()
    for month in run_months:
        first = max(start, add_months(month, -FEATURE_LOOKBACK_MONTHS))
        needed.update(month_range(first, month))
    return sorted(needed)


def describe_months(months: Iterable[date]) -> str:
    """Months as compact ranges: `2023-02..2023-04, 2023-07`."""
    months = sorted(months)
    ranges: list[tuple[date, date]] = []
    for month in months:
        if ranges and add_months(ranges[-1][1], 1) == month:
            ranges[-1] = (ranges[-1][0], month)
        else:
            ranges.append((month, month))
    return ", ".join(format_month(a) if a == b else f"{format_month(a)}..{format_month(b)}" for a, b in ranges)


def build_chunks(months: Sequence[date], rows: Mapping[date, int], max_rows: int) -> list[list[date]]:
    """Consecutive months grouped so each group's landed rows stay within max_rows.

    One dbt build per group: a long backfill of large months is built a few months at a
    time (DuckDB's memory stays bounded), small months share one build (one start-up).
    A month larger than max_rows gets a group of its own.
    """
    chunks: list[list[date]] = []
    total = 0
    for month in months:
        if chunks and total + rows.get(month, 0) <= max_rows:
            chunks[-1].append(month)
            total += rows.get(month, 0)
        else:
            chunks.append([month])
            total = rows.get(month, 0)
    return chunks
