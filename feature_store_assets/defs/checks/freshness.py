"""The freshness check: is the latest complete month in the analytics file, and if not, whose delay is it?

A month is due once the monthly schedule has had its chance (the 2nd at 06:00 UTC of the
next month) plus FRESHNESS_GRACE_DAYS for a late landing zone or a re-run. A month has
*landed* when every event table has at least one Parquet file under `month=YYYY-MM`, and
it is over: a folder of the current month (UTC) or later is still filling and never counts.

`freshness` tells the two delays apart:

- `fresh` (passes): the analytics file holds the latest month due.
- `overdue` (ERROR): the store is late. A month has landed, is past its due time and is not
  published; materialize it.
- `source_late` (WARN): the source is late. The landing zone's newest complete month is
  published; the next one is due and has not landed. Nothing to do here but wait or ask.
- `unpublished`: nothing is published yet; ERROR once a landed month is past due, else WARN.

The check reads the published file analysts read and the landing zone's folder names (never
the warehouse, so it runs beside any run). It runs every morning by its own schedule and on
demand in the UI, never inside a materialization; `/health` reports the same state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from feature_store_assets.core.months import add_months, folder_month, format_month, month_folder
from feature_store_assets.core.names import FEATURES_TABLE
from feature_store_assets.core.resources import DuckDBFile, FeatureStoreResource
from feature_store_assets.defs.landing_zone.validation import EVENT_TABLES, landing_files
from feature_store_assets.defs.schedules.monthly import SCHEDULE_DAY_OF_MONTH, SCHEDULE_HOUR
from feature_store_assets.warehouse.connections import table_exists

FRESHNESS_GRACE_DAYS = 3
FRESHNESS_CHECK = "latest_complete_month_published"
FRESHNESS_JOB = "freshness_check_job"
PUBLISHED_ASSET = dg.AssetKey(["publish", "analytics_database"])

FRESH, SOURCE_LATE, OVERDUE, UNPUBLISHED = "fresh", "source_late", "overdue", "unpublished"


@dataclass(frozen=True)
class Freshness:
    """One evaluation: `state` (FRESH, SOURCE_LATE, OVERDUE, UNPUBLISHED), severity WARN/ERROR unless fresh."""

    state: str
    description: str
    severity: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.state == FRESH


def month_due(month: date) -> datetime:
    """When `month` must be in the analytics file: the schedule's tick after it, plus the grace days."""
    tick = datetime.combine(add_months(month, 1).replace(day=SCHEDULE_DAY_OF_MONTH), time(SCHEDULE_HOUR), UTC)
    return tick + timedelta(days=FRESHNESS_GRACE_DAYS)


def latest_due_month(now: datetime) -> date:
    """The most recent month whose due time has passed at `now`."""
    month = add_months(now.date().replace(day=1), -1)
    return month if month_due(month) <= now else add_months(month, -1)


def _due(month: date, now: datetime) -> str:
    late = now - month_due(month)
    return f"was due at {month_due(month):%Y-%m-%d %H:%M} UTC ({late.days} days ago)"


def freshness(latest_published: date | None, latest_landed: date | None, now: datetime, source: Path) -> Freshness:
    """The state of the analytics file holding `latest_published`, with `latest_landed` the newest complete month in `source`."""
    due_month = latest_due_month(now)
    published = format_month(latest_published) if latest_published else "nothing"
    landed = format_month(latest_landed) if latest_landed else "none"
    metadata: dict[str, Any] = {
        "latest_published_month": published,
        "latest_landed_month": landed,
        "latest_due_month": format_month(due_month),
        "landing_zone": str(source),
    }
    if latest_published is None:
        if latest_landed is None:
            return Freshness(
                UNPUBLISHED,
                f"nothing is published, and the landing zone {source} holds no complete month yet.",
                "WARN",
                metadata,
            )
        overdue = month_due(latest_landed) <= now
        when = _due(latest_landed, now) if overdue else f"is due at {month_due(latest_landed):%Y-%m-%d %H:%M} UTC"
        return Freshness(
            UNPUBLISHED,
            f"nothing is published; the landing zone {source} holds complete months up to {landed}, which {when}. "
            "Materialize from FEATURE_STORE_START_MONTH (docs/operations.md).",
            "ERROR" if overdue else "WARN",
            {**metadata, "due_at": month_due(latest_landed).isoformat()},
        )
    if latest_published >= due_month:
        pending = ""
        if latest_landed and latest_landed > latest_published:
            pending = (
                f"; {format_month(add_months(latest_published, 1))} has landed and is due at "
                f"{month_due(add_months(latest_published, 1)):%Y-%m-%d %H:%M} UTC"
            )
        return Freshness(
            FRESH,
            f"the analytics file holds {published}; {format_month(due_month)} was the latest month due{pending}",
            metadata=metadata,
        )
    awaited = add_months(latest_published, 1)  # due: awaited <= due_month
    metadata |= {
        "awaited_month": format_month(awaited),
        "due_at": month_due(awaited).isoformat(),
        "days_late": (now - month_due(awaited)).days,
    }
    if latest_landed is not None and latest_landed > latest_published:
        return Freshness(
            OVERDUE,
            f"overdue: the analytics file holds {published}, but {format_month(awaited)} has landed in {source} and "
            f"{_due(awaited, now)}; the landing zone holds complete months up to {landed}. "
            "Materialize the missing months (docs/operations.md).",
            "ERROR",
            metadata,
        )
    newest = (
        f"the landing zone's newest complete month, {landed}, is published"
        if latest_landed
        else f"the landing zone {source} holds no complete month"
    )
    return Freshness(
        SOURCE_LATE,
        f"source late: {newest}; {format_month(awaited)} {_due(awaited, now)} and has not landed in "
        f"{source}/<table>/{month_folder(awaited)}/ (tables: {', '.join(EVENT_TABLES)}). "
        "Nothing to materialize until it lands.",
        "WARN",
        metadata,
    )


def latest_complete_month(landed: Mapping[str, Iterable[date]], before: date) -> date | None:
    """The newest month before `before` that every event table has landed, given {table: months with files}."""
    complete = set.intersection(*(set(landed.get(table, ())) for table in EVENT_TABLES))
    return max((month for month in complete if month < before), default=None)


def landed_months(raw_dir: Path) -> dict[str, set[date]]:
    """{event table: months whose `month=YYYY-MM` folder holds a Parquet file}, from folder and file names only.

    A folder whose name is not `month=` and a month is not a month folder of the contract: it is skipped.
    """
    landed: dict[str, set[date]] = {}
    for table in EVENT_TABLES:
        months = landed.setdefault(table, set())
        folder = raw_dir / table
        for child in folder.iterdir() if folder.is_dir() else ():
            month = folder_month(child.name)
            if month is not None and landing_files(raw_dir, table, month):
                months.add(month)
    return landed


def current_freshness(latest_published: date | None, raw_dir: Path, now: datetime) -> Freshness:
    """The freshness of a store that publishes `latest_published` from the landing zone `raw_dir`, at `now`."""
    latest_landed = latest_complete_month(landed_months(raw_dir), before=now.date().replace(day=1))
    return freshness(latest_published, latest_landed, now, raw_dir)


def freshness_result(state: Freshness) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=state.passed,
        severity=dg.AssetCheckSeverity(state.severity or "ERROR"),
        description=state.description,
        metadata={"state": state.state, **state.metadata},
    )


def latest_published_month(analytics: DuckDBFile) -> date | None:
    if not analytics.path.exists():
        return None
    with analytics.connect(read_only=True) as con:
        if not table_exists(con, FEATURES_TABLE):
            return None
        return con.execute(f"select max(feature_month) from {FEATURES_TABLE}").fetchone()[0]


@dg.asset_check(
    asset=PUBLISHED_ASSET,
    name=FRESHNESS_CHECK,
    blocking=False,
    description=f"The latest complete month is in the analytics file: month M is due on the "
    f"{SCHEDULE_DAY_OF_MONTH}nd of M+1 at {SCHEDULE_HOUR:02d}:00 UTC plus {FRESHNESS_GRACE_DAYS} days. "
    "ERROR when a landed month is overdue; WARN when the landing zone has not delivered the month due.",
)
def latest_complete_month_published(feature_store: FeatureStoreResource, analytics: DuckDBFile) -> dg.AssetCheckResult:
    return freshness_result(
        current_freshness(latest_published_month(analytics), feature_store.settings.raw_dir, datetime.now(UTC))
    )


freshness_check_job = dg.define_asset_job(
    FRESHNESS_JOB,
    selection=dg.AssetSelection.checks(latest_complete_month_published),
    description="Evaluates the freshness check alone (reads the analytics file and the landing zone's folder names).",
)

freshness_check_schedule = dg.ScheduleDefinition(
    name="freshness_check_schedule",
    job=freshness_check_job,
    cron_schedule="0 7 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every morning at 07:00 UTC: is the latest complete month published, or is the source late?",
)
