"""Production storage: the daemon launches the monthly schedule's run on a PostgreSQL-backed instance.

A real PostgreSQL server (`.ci/run` installs and starts Debian's package and exports the
DAGSTER_PG_* connection settings), a fresh database per test, and a real dagster-webserver and
dagster-daemon over dagster_home/dagster.postgres.yaml. The schedule is turned on through the
UI's GraphQL mutation while the daemon is down, with its start set back to just before its most
recent tick (as if it had been on since then); the daemon then catches up that tick the way it
does after a restart, and the scheduled run materializes the month the tick targets. The
generated landing zone ends at that month, whatever today's date.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml

from feature_store_assets.core.months import add_months, format_month
from feature_store_assets.core.paths import SHIPPED_DAGSTER_HOME
from feature_store_assets.core.settings import SAMPLE_ZIP_INCOME
from feature_store_assets.defs.schedules.monthly import MONTHLY_JOB, monthly_job, monthly_schedule
from feature_store_assets.generator import generate_landing_zone
from feature_store_assets_tests.conftest import SMALL_ZONE
from feature_store_assets_tests.support.operations import DagsterServers, months_of, wait_for

POSTGRES_YAML = SHIPPED_DAGSTER_HOME / "dagster.postgres.yaml"
CONNECTION = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
START_POSTGRES = (
    "This test needs a PostgreSQL server: install and start it as .ci/run does "
    "(apt-get install -y postgresql; pg_ctlcluster <version> main start; a role with LOGIN CREATEDB and "
    "a database it owns), then export " + ", ".join(CONNECTION) + " (see docs/production.md)"
)
SCHEDULE = "monthly_feature_schedule"
RUN_TIMEOUT = 300  # seconds for the scheduled run, on a loaded 2-core machine

START_SCHEDULE = """
mutation($selector: ScheduleSelector!) { startSchedule(scheduleSelector: $selector) {
  __typename ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message }
  ... on UnauthorizedError { message } } }"""
SCHEDULED_RUNS = """
query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
  runId status tags { key value } } } } }"""


def latest_tick(now: datetime) -> tuple[datetime, date]:
    """The monthly schedule's most recent tick at or before `now`, and the month that tick materializes."""
    from dagster._utils.schedules import get_latest_completed_cron_tick

    schedule = monthly_schedule(monthly_job(dg.MonthlyPartitionsDefinition(start_date="2000-01-01")))
    tick = get_latest_completed_cron_tick(schedule.cron_schedule, now, schedule.execution_timezone or "UTC")
    return tick, add_months(tick.date().replace(day=1), -1)  # the last month complete before the tick


def test_latest_tick_targets_the_month_before_it():
    assert latest_tick(datetime(2026, 12, 1, 19, 30, tzinfo=UTC)) == (
        datetime(2026, 11, 2, 6, tzinfo=UTC),
        date(2026, 10, 1),
    )
    assert latest_tick(datetime(2026, 12, 2, 6, 0, 1, tzinfo=UTC)) == (
        datetime(2026, 12, 2, 6, tzinfo=UTC),
        date(2026, 11, 1),
    )
    assert latest_tick(datetime(2027, 1, 5, tzinfo=UTC))[1] == date(2026, 12, 1)


def test_postgres_instance_has_the_shipped_settings_and_reads_the_connection_from_the_environment():
    shipped = yaml.safe_load((SHIPPED_DAGSTER_HOME / "dagster.yaml").read_text())
    production = yaml.safe_load(POSTGRES_YAML.read_text())
    storage = production.pop("storage")
    assert production == {k: v for k, v in shipped.items() if k != "storage"}
    assert storage["postgres"]["postgres_db"] == {
        "scheme": "postgresql+psycopg2",
        **{
            field: {"env": name}
            for field, name in zip(("hostname", "port", "username", "password", "db_name"), CONNECTION)
        },
    }


def connection_settings() -> dict[str, str]:
    missing = [name for name in CONNECTION if not os.environ.get(name)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not set. {START_POSTGRES}", pytrace=False)
    return {name: os.environ[name] for name in CONNECTION}


def connect(settings: dict[str, str]):
    import psycopg2

    try:
        return psycopg2.connect(
            host=settings["DAGSTER_PG_HOST"],
            port=int(settings["DAGSTER_PG_PORT"]),
            user=settings["DAGSTER_PG_USER"],
            password=settings["DAGSTER_PG_PASSWORD"],
            dbname=settings["DAGSTER_PG_DB"],
            connect_timeout=10,
        )
    except psycopg2.OperationalError as error:
        where = f"{settings['DAGSTER_PG_USER']}@{settings['DAGSTER_PG_HOST']}:{settings['DAGSTER_PG_PORT']}/{settings['DAGSTER_PG_DB']}"
        pytest.fail(f"cannot connect to PostgreSQL as {where}: {str(error).strip()}. {START_POSTGRES}", pytrace=False)


@pytest.fixture
def postgres_database(monkeypatch):
    """A fresh database for this test on the DAGSTER_PG_* server, dropped afterwards; its settings are in the environment."""
    from psycopg2 import sql

    settings = connection_settings()
    name = f"feature_store_test_{uuid.uuid4().hex[:12]}"
    admin = connect(settings)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    monkeypatch.setenv("DAGSTER_PG_DB", name)  # this process opens the instance too
    try:
        yield {**settings, "DAGSTER_PG_DB": name}
    finally:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        admin.close()


def scheduled_runs(servers: DagsterServers) -> list[dict]:
    found = servers.gql(SCHEDULED_RUNS, {"filter": {"tags": [{"key": "dagster/schedule_name", "value": SCHEDULE}]}})
    runs = found["runsOrError"]["results"]
    for run in runs:
        run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
    return runs


def backdate_schedule_start(instance: dg.DagsterInstance, timestamp: float) -> None:
    """Record the running schedule as started at `timestamp`, so the daemon catches up the ticks since then."""
    from dagster._core.scheduler.instigation import InstigatorType, ScheduleInstigatorData

    [state] = [
        s
        for s in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
        if s.instigator_name == SCHEDULE
    ]
    assert state.is_running, state
    instance.update_instigator_state(
        state.with_data(ScheduleInstigatorData(state.instigator_data.cron_schedule, start_timestamp=timestamp))
    )


def run_failures(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [
        e.message for e in instance.all_logs(run_id) if e.is_dagster_event and e.dagster_event.is_failure and e.message
    ]


@pytest.mark.e2e
def test_daemon_launches_the_scheduled_month_on_postgres_storage(tmp_path, postgres_database):
    tick, month = latest_tick(datetime.now(UTC))
    zone = dataclasses.replace(SMALL_ZONE, start_month=format_month(add_months(month, 1 - SMALL_ZONE.months)))
    generate_landing_zone(tmp_path / "raw", zone, zip_income_csv=SAMPLE_ZIP_INCOME)  # 4 months, the last the tick's
    env = {
        **os.environ,
        **postgres_database,
        "FEATURE_STORE_RAW_DIR": str(tmp_path / "raw"),
        "FEATURE_STORE_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "FEATURE_STORE_ANALYTICS": str(tmp_path / "analytics.duckdb"),
        "FEATURE_STORE_START_MONTH": format_month(
            month
        ),  # the store starts at the scheduled month: no history to backfill
        "FEATURE_STORE_ZIP_INCOME": str(SAMPLE_ZIP_INCOME),
    }
    env.pop("FEATURE_STORE_LOG_FORMAT", None)
    servers = DagsterServers(tmp_path, env, instance_yaml=POSTGRES_YAML)
    try:
        servers.start(daemon=False)
        selector = {
            "repositoryLocationName": servers.location,
            "repositoryName": "__repository__",
            "scheduleName": SCHEDULE,
        }
        started = servers.gql(START_SCHEDULE, {"selector": selector})["startSchedule"]
        assert started["__typename"] == "ScheduleStateResult" and started["scheduleState"]["status"] == "RUNNING", (
            started
        )
        with dg.DagsterInstance.from_config(str(servers.home)) as instance:
            backdate_schedule_start(instance, tick.timestamp() - 60)
            servers.start_daemon()

            def finished_run():
                runs = scheduled_runs(servers)
                return runs if runs and all(r["status"] in {"SUCCESS", "FAILURE", "CANCELED"} for r in runs) else None

            runs = wait_for(
                finished_run,
                timeout=RUN_TIMEOUT,
                interval=2,
                what=f"the daemon to launch and finish a run of {SCHEDULE}",
            )
            assert len(runs) == 1, runs
            [run] = runs
            assert run["status"] == "SUCCESS", run_failures(instance, run["runId"])
            assert run["tags"]["dagster/partition"] == month.isoformat()
            assert run["tags"]["dagster/schedule_name"] == SCHEDULE

            # The daemon's tick launched it: the schedule's tick at the scheduled time, with this run.
            remote = [s for s in instance.all_instigator_state() if s.instigator_name == SCHEDULE][0]
            ticks = instance.get_ticks(remote.instigator_origin_id, remote.selector_id)
            assert [(t.timestamp, t.status.value, t.run_ids) for t in ticks] == [
                (tick.timestamp(), "SUCCESS", [run["runId"]])
            ]
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    finally:
        servers.stop()

    # The run, its tags and its event log are rows in the test's PostgreSQL database; no SQLite storage was made.
    database = connect(postgres_database)
    try:
        with database.cursor() as cursor:
            cursor.execute("select pipeline_name, status from runs where run_id = %s", (run["runId"],))
            assert cursor.fetchall() == [(MONTHLY_JOB, "SUCCESS")]
            cursor.execute(
                "select value from run_tags where run_id = %s and key = 'dagster/schedule_name'", (run["runId"],)
            )
            assert cursor.fetchall() == [(SCHEDULE,)]
            cursor.execute(
                "select dagster_event_type, count(*) from event_logs where run_id = %s group by 1", (run["runId"],)
            )
            events = dict(cursor.fetchall())
    finally:
        database.close()
    success, materialization = dg.DagsterEventType.RUN_SUCCESS.value, dg.DagsterEventType.ASSET_MATERIALIZATION.value
    assert events.get(success) == 1 and events.get(materialization, 0) > 10, events
    assert not [p for p in servers.home.rglob("*.db")], (
        "an SQLite storage file was created beside the PostgreSQL instance"
    )

    # The month is published.
    published = months_of(Path(env["FEATURE_STORE_ANALYTICS"]))
    assert list(published) == [format_month(month)] and published[format_month(month)] > 0, published
