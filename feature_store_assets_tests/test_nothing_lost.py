"""Nothing is lost (issue 12): published state follows accepted state, whatever stops a run.

Real `feature-store materialize` runs (in this process, or a child process killed with SIGKILL), real
dbt on real DuckDB files, a real full disk (a small tmpfs) and a real unusable analytics path. After
each, one invariant (assert_nothing_lost): every accepted month is in the analytics file with the
warehouse's rows, no month that is not accepted replaced what was published, and no published feature
month reads a month that is not accepted.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from feature_store_assets.cli.main import main
from feature_store_assets.core.months import months_needed_by_features, parse_month
from feature_store_assets.defs.dbt.project import dbt_project, load_manifest
from feature_store_assets.defs.publish.analytics import PUBLISHED_SCHEMAS, STAGING_SUFFIX, monthly_tables
from feature_store_assets.store import current_version, list_versions, rebuild_analytics
from feature_store_assets.warehouse.connections import quote, table_exists
from feature_store_assets.warehouse.ledger import ACCEPTED, BLOCKED, FAILED, month_states, months_to_publish
from feature_store_assets_tests.support.operations import (
    alive,
    dbt_build_child,
    digest,
    kill,
    kill_in_dbt,
    months_of,
    starting_with,
    wait_for,
)
from feature_store_assets_tests.support.shared import shared_published_store, store_copy

pytestmark = pytest.mark.e2e

FEB, MAR, APR = date(2023, 2, 1), date(2023, 3, 1), date(2023, 4, 1)


def materialize(first: str, last: str) -> int:
    return main(["materialize", "--from", first, "--to", last])


def start_materialize(month: str) -> subprocess.Popen:
    """`feature-store materialize` of one month in a child process (the test's environment: its store)."""
    return subprocess.Popen(
        [sys.executable, "-m", "feature_store_assets.cli.main", "materialize", "--from", month, "--to", month],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def january(tmp_path_factory, small_landing_zone) -> Path:
    """A store with 2023-01 materialized, accepted and published, built once for the module."""
    return shared_published_store(tmp_path_factory, small_landing_zone, "2023-01", "2023-01")


@pytest.fixture
def store(feature_store, january, monkeypatch):
    """The feature_store fixture (a private landing zone copy) starting from a copy of the published January."""
    return store_copy(january, feature_store.root, feature_store.raw_dir, monkeypatch)


def month_digests(path: Path) -> dict[tuple[str, date], tuple]:
    """(table, month) -> (rows, order-independent content hash) of every published monthly table in a DuckDB file."""
    found = {}
    with duckdb.connect(str(path), read_only=True) as con:
        for (schema, table), (_, column) in monthly_tables(load_manifest()).items():
            if schema in PUBLISHED_SCHEMAS and table_exists(con, f"{schema}.{table}"):
                for month, rows, content in con.execute(
                    f"select {quote(column)}, count(*), sum(hash(t)) from {quote(schema)}.{quote(table)} t group by 1"
                ).fetchall():
                    found[(f"{schema}.{table}", month)] = (rows, content)
    return found


def staging_files(analytics: Path) -> list[Path]:
    return sorted(analytics.parent.glob(f".{analytics.name}.*{STAGING_SUFFIX}*"))


def assert_nothing_lost(store, before: dict, analytics: Path | None = None) -> None:
    """After a run that published: every accepted month is in the analytics file with the warehouse's rows,
    every other month's rows are what was published `before` (month_digests of the file then), and every
    month a published feature month's window reads is accepted. No publish is pending, no staging file left."""
    analytics = analytics or store.settings.analytics
    warehouse = store.settings.warehouse
    accepted = {m for m, s in month_states(warehouse).items() if s.status == ACCEPTED}
    assert accepted, "no month accepted: the invariant would hold vacuously"
    assert months_to_publish(warehouse) == []
    published, built = month_digests(analytics), month_digests(warehouse)
    for key in sorted(published.keys() | built.keys()):
        table, month = key
        if month in accepted:
            assert published.get(key) == built.get(key), f"accepted {month:%Y-%m} of {table} differs from the warehouse"
        else:
            assert published.get(key) == before.get(key), (
                f"{month:%Y-%m} of {table}, not accepted, replaced published rows"
            )
    feature_months = {parse_month(m) for m in months_of(analytics)}
    assert accepted <= feature_months
    start = parse_month(store.settings.start_month)
    for month in feature_months:
        assert set(months_needed_by_features([month], start)) <= accepted, f"{month:%Y-%m} reads a month not accepted"
    assert not staging_files(analytics)


def null_revenue(part: Path, share_in_ten: int) -> None:
    """Rewrite a landing-zone file with revenue NULL on about share_in_ten / 10 of its rows (rejected: null_revenue)."""
    rewritten = part.with_name("rewritten.parquet.tmp")
    duckdb.sql(
        f"copy (select * replace (case when hash(transaction_id) % 10 < {share_in_ten} then null else revenue end as revenue) "
        f"from read_parquet('{part}')) to '{rewritten}' (format parquet)"
    )
    os.replace(rewritten, part)


def test_blocked_month_is_not_published_nor_history_and_is_published_once_fixed(store, capfd):
    before = month_digests(store.settings.analytics)
    part = sorted((store.raw_dir / "transactions_inclinic" / "month=2023-02").glob("*.parquet"))[0]
    good = part.read_bytes()
    null_revenue(part, 3)  # ~30% of February's in-clinic rows rejected: rejected_row_rate > 10% is an ERROR

    assert materialize("2023-02", "2023-02") == 1
    err = capfd.readouterr().err
    assert "held back 2023-02" in err and "rejected_row_rate" in err
    feb = month_states(store.settings.warehouse)[FEB]
    assert feb.status == BLOCKED and "rejected_row_rate" in feb.reason and "null_revenue" in feb.reason
    assert_nothing_lost(store, before)
    assert list(months_of(store.settings.analytics)) == ["2023-01"]

    # March needs February in its window: it fails before dbt, naming February and the check that blocked it
    assert materialize("2023-03", "2023-03") == 1
    err = capfd.readouterr().err
    assert re.search(r"2023-03: its 12-month window needs 2023-02 \(blocked: [^\n]*rejected_row_rate", err), err
    assert "no month of the run was built" in err  # the dbt step stopped before dbt
    assert month_states(store.settings.warehouse)[MAR].status == FAILED
    assert "2023-03" not in months_of(store.settings.warehouse, "filtered.inclinic_transactions", "event_month")
    assert_nothing_lost(store, before)

    part.write_bytes(good)  # the operator fixes February and re-runs it with March
    assert materialize("2023-02", "2023-03") == 0
    assert list(months_of(store.settings.analytics)) == ["2023-01", "2023-02", "2023-03"]
    assert_nothing_lost(store, before)


def test_kill_during_publish_leaves_the_file_and_the_next_run_publishes_the_missed_month(store):
    analytics = store.settings.analytics
    before, published = month_digests(analytics), digest(analytics)
    run = start_materialize("2023-02")
    try:
        staging = wait_for(lambda: staging_files(analytics), timeout=240, interval=0.005, what="the publish step")
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    assert any(path.exists() for path in staging), "the publish finished before the kill: the test would prove nothing"
    assert digest(analytics) == published  # byte for byte
    assert months_to_publish(store.settings.warehouse) == [FEB]  # accepted, not published
    assert current_version(store.settings.published_dir).version == 1  # the killed publish listed no version

    assert materialize("2023-03", "2023-03") == 0  # another month: February goes out with it
    assert list(months_of(analytics)) == ["2023-01", "2023-02", "2023-03"]
    assert not staging_files(analytics)  # the killed publish's copy is gone
    assert_nothing_lost(store, before)


@pytest.fixture
def small_disk(tmp_path):
    """A real small file system (tmpfs, mounted as root): a full disk is a full disk."""
    mount = tmp_path / "small_disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def test_disk_full_during_publish_leaves_the_file_and_the_next_run_publishes_once_space_is_freed(
    store, small_disk, monkeypatch, capfd
):
    analytics, published_dir = small_disk / "analytics.duckdb", small_disk / "published"
    shutil.copytree(store.settings.published_dir, published_dir)  # the store beside it, as by default
    rebuild_analytics(published_dir, analytics)
    monkeypatch.setenv("FEATURE_STORE_ANALYTICS", str(analytics))
    before, published = month_digests(analytics), digest(analytics)
    versions = list_versions(published_dir)
    free = os.statvfs(small_disk)
    filler = small_disk / "filler"
    # leave room for a quarter of the store: the publish (a month's partitions, the small tables) runs out of space
    store_size = sum(path.stat().st_size for path in published_dir.rglob("*") if path.is_file())
    filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - store_size // 4))

    assert materialize("2023-02", "2023-02") == 1
    err = capfd.readouterr().err
    assert "No space left on device" in err
    assert digest(analytics) == published
    assert not staging_files(analytics)  # the half-written copy is removed at once
    assert months_to_publish(store.settings.warehouse) == [FEB]
    assert list_versions(published_dir) == versions  # no half version listed

    filler.unlink()
    assert materialize("2023-03", "2023-03") == 0
    assert list(months_of(analytics)) == ["2023-01", "2023-02", "2023-03"]
    assert_nothing_lost(store, before, analytics)


def test_unusable_analytics_path_fails_naming_it_and_the_next_run_publishes_everything_accepted(
    store, monkeypatch, capfd
):
    analytics = store.settings.analytics
    before, published = month_digests(analytics), digest(analytics)
    not_a_folder = store.root / "not_a_folder"
    not_a_folder.write_text("a file where the analytics folder should be\n")
    bad = not_a_folder / "analytics.duckdb"
    monkeypatch.setenv("FEATURE_STORE_ANALYTICS", str(bad))

    assert materialize("2023-02", "2023-02") == 1
    err = capfd.readouterr().err
    assert f"FEATURE_STORE_ANALYTICS={bad}" in err
    assert months_to_publish(store.settings.warehouse) == [FEB]
    assert digest(analytics) == published

    monkeypatch.setenv("FEATURE_STORE_ANALYTICS", str(analytics))
    assert materialize("2023-03", "2023-03") == 0
    assert list(months_of(analytics)) == ["2023-01", "2023-02", "2023-03"]
    assert_nothing_lost(store, before)


def test_bad_month_fails_alone_earlier_months_go_ahead_later_ones_are_not_built(store, capfd):
    before = month_digests(store.settings.analytics)
    broken = store.raw_dir / "transactions_inclinic" / "month=2023-03" / "part-9.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")

    assert materialize("2023-02", "2023-04") == 1
    err = capfd.readouterr().err
    assert str(broken) in err and "not a valid Parquet file" in err
    assert "2023-04: its 12-month window needs 2023-03, which is not built in this run" in err
    states = month_states(store.settings.warehouse)
    assert [states[m].status if m in states else None for m in (FEB, MAR, APR)] == [ACCEPTED, FAILED, FAILED], err
    assert list(months_of(store.settings.analytics)) == ["2023-01", "2023-02"]
    assert list(months_of(store.settings.warehouse)) == ["2023-01", "2023-02"]  # neither March nor April built
    assert_nothing_lost(store, before)

    broken.unlink()
    assert materialize("2023-03", "2023-04") == 0
    assert list(months_of(store.settings.analytics)) == ["2023-01", "2023-02", "2023-03", "2023-04"]
    assert_nothing_lost(store, before)


def test_sigterm_during_dbt_stops_the_run_and_its_dbt_and_the_month_runs_again(store):
    """A supervisor's SIGTERM, to a run a script started in the background (SIGINT ignored): the run stops within
    seconds, says it was interrupted, takes its dbt build with it and releases the warehouse; nothing is published."""
    before = month_digests(store.settings.analytics)
    run = subprocess.Popen(
        [sys.executable, "-m", "feature_store_assets.cli.main", "materialize", "--from", "2023-02", "--to", "2023-02"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=starting_with(signal.SIG_IGN, signal.SIGINT),  # a script's background job
    )
    try:
        dbt = wait_for(lambda: dbt_build_child(run.pid), timeout=240, interval=0.1, what="the run's dbt build")
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) == 1
        err = run.stderr.read()
    finally:
        kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    assert "dbt models (23 assets) failed: interrupted (SIGTERM or Ctrl-C)" in err, err
    wait_for(lambda: not alive(dbt), timeout=10, what="dbt to stop with its run")
    assert month_states(store.settings.warehouse)[FEB].status == FAILED
    assert list(months_of(store.settings.analytics)) == ["2023-01"]
    assert_nothing_lost(store, before)

    assert materialize("2023-02", "2023-02") == 0  # the lock is free and the month builds
    assert list(months_of(store.settings.analytics)) == ["2023-01", "2023-02"]
    assert_nothing_lost(store, before)


def test_killed_dbt_build_is_not_history_leaves_no_target_folder_and_a_failed_build_keeps_its_log(
    store, monkeypatch, capfd
):
    before = month_digests(store.settings.analytics)
    target_root = dbt_project.project_dir / "target"
    run = start_materialize("2023-02")
    try:
        kill_in_dbt(run, store.settings.warehouse)
    finally:
        kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    killed = list(target_root.glob(f"run-{run.pid}-*"))
    assert killed, "the killed build left no target folder: the test would prove nothing"
    feb = month_states(store.settings.warehouse)[FEB]  # half built: not history for later months
    assert feb.status == FAILED and "did not finish" in feb.reason

    assert materialize("2023-03", "2023-03") == 1  # fails before dbt, and cleans up after the killed run
    assert re.search(
        r"2023-03: its 12-month window needs 2023-02 \(failed: its dbt build [^\n]* did not finish",
        capfd.readouterr().err,
    )
    assert not any(folder.exists() for folder in killed)

    monkeypatch.setenv("FEATURE_STORE_DBT_TARGET", "no_such_target")  # dbt itself fails
    assert materialize("2023-02", "2023-02") == 1
    err = capfd.readouterr().err
    logs = re.findall(r"(/[^\s()]+\.log)\b", err)  # the logs the error points at are there to read
    assert logs and all(Path(log).exists() for log in logs), err
    # dbt fails in the unpartitioned models' build, which runs first: February stays failed, never history
    assert month_states(store.settings.warehouse)[FEB].status == FAILED

    monkeypatch.delenv("FEATURE_STORE_DBT_TARGET")
    assert materialize("2023-02", "2023-02") == 0
    assert list(months_of(store.settings.analytics)) == ["2023-01", "2023-02"]
    assert_nothing_lost(store, before)
