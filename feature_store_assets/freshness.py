"""The freshness check: is the latest complete month in the analytics file, on time?

A month is due once the monthly schedule has had its chance (the 2nd at 06:00 UTC of the
next month) plus FRESHNESS_GRACE_DAYS for a late landing zone or a re-run. The check reads
the published file analysts read (never the warehouse, so it runs beside any run), after
each monthly run and every morning by its own schedule.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from feature_store_assets.months import add_months, format_month
from feature_store_assets.resources import FeatureStoreResource
from feature_store_assets.schedules import SCHEDULE_DAY_OF_MONTH, SCHEDULE_HOUR

FRESHNESS_GRACE_DAYS = 3
FRESHNESS_CHECK = "latest_complete_month_published"
FRESHNESS_JOB = "freshness_check_job"
PUBLISHED_ASSET = dg.AssetKey(["publish", "analytics_database"])


def month_due(month: date) -> datetime:
    """When `month` must be in the analytics file: the schedule's tick after it, plus the grace days."""
    tick = datetime.combine(add_months(month, 1).replace(day=SCHEDULE_DAY_OF_MONTH), time(SCHEDULE_HOUR), UTC)
    return tick + timedelta(days=FRESHNESS_GRACE_DAYS)


def latest_due_month(now: datetime) -> date:
    """The most recent month whose due time has passed at `now`."""
    month = add_months(now.date().replace(day=1), -1)
    return month if month_due(month) <= now else add_months(month, -1)


def freshness_result(latest_published: date | None, now: datetime) -> dg.AssetCheckResult:
    due_month = latest_due_month(now)
    published = format_month(latest_published) if latest_published else "nothing"
    metadata = {
        "latest_published_month": published,
        "latest_due_month": format_month(due_month),
        "due_at": month_due(due_month).isoformat(),
    }
    if latest_published is not None and latest_published >= due_month:
        return dg.AssetCheckResult(
            passed=True, metadata=metadata,
            description=f"the analytics file holds {published}; {format_month(due_month)} was the latest month due",
        )
    first_missing = add_months(latest_published, 1) if latest_published else due_month
    overdue = now - month_due(first_missing)
    metadata["days_overdue"] = overdue.days
    return dg.AssetCheckResult(
        passed=False, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata,
        description=f"overdue: the analytics file holds {published}, but {format_month(first_missing)} was due "
        f"at {month_due(first_missing):%Y-%m-%d %H:%M} UTC ({overdue.days} days ago). "
        "Materialize the missing months (docs/operations.md).",
    )


def latest_published_month(analytics: Path) -> date | None:
    if not analytics.exists():
        return None
    with duckdb.connect(str(analytics), read_only=True) as con:
        found = con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'features' and table_name = 'client_features'"
        ).fetchone()[0]
        return con.execute("select max(feature_month) from features.client_features").fetchone()[0] if found else None


@dg.asset_check(
    asset=PUBLISHED_ASSET,
    name=FRESHNESS_CHECK,
    blocking=False,
    description=f"The latest complete month is in the analytics file: month M is due on the "
    f"{SCHEDULE_DAY_OF_MONTH}nd of M+1 at {SCHEDULE_HOUR:02d}:00 UTC plus {FRESHNESS_GRACE_DAYS} days.",
)
def latest_complete_month_published(feature_store: FeatureStoreResource) -> dg.AssetCheckResult:
    return freshness_result(latest_published_month(feature_store.settings.analytics), datetime.now(UTC))


freshness_check_job = dg.define_asset_job(
    FRESHNESS_JOB,
    selection=dg.AssetSelection.checks(latest_complete_month_published),
    description="Evaluates the freshness check alone (reads the analytics file only).",
)

freshness_check_schedule = dg.ScheduleDefinition(
    name="freshness_check_schedule",
    job=freshness_check_job,
    cron_schedule="0 7 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every morning at 07:00 UTC: is the latest complete month published?",
)
