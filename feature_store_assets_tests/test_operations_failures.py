"""A run that fails midway or is killed leaves the published data exactly as before; re-running recovers.

Real runs of the CLI (Dagster in-process, dbt in a subprocess) on a small generated landing zone.
"""

import os
import signal
import subprocess
import sys

import dagster as dg
import pytest

import feature_store_assets.defs.dbt.assets
import feature_store_assets.defs.publish.analytics
import feature_store_assets.store.publishing
from feature_store_assets.cli.main import main
from feature_store_assets.store import list_versions
from feature_store_assets_tests.conftest import configure
from feature_store_assets_tests.support.operations import (
    digest,
    duplicate_keys,
    kill,
    kill_in_dbt,
    months_of,
)
from feature_store_assets_tests.support.shared import shared_published_store, store_copy

pytestmark = pytest.mark.e2e


def materialize(first: str, last: str) -> int:
    return main(["materialize", "--from", first, "--to", last])


def assert_recovered(store, months: list[str]) -> None:
    """The month re-ran cleanly: every month published once, no key twice in the warehouse or the analytics file."""
    analytics, warehouse = store.settings.analytics, store.settings.warehouse
    assert list(months_of(analytics)) == months
    assert months_of(analytics) == months_of(warehouse)
    assert set(duplicate_keys(warehouse).values()) == {0}
    assert set(duplicate_keys(analytics).values()) == {0}
    assert "filtered.inclinic_transactions" in duplicate_keys(warehouse)  # the filter layer was checked too
    assert not list(analytics.parent.glob(".*.publishing"))


@pytest.fixture(scope="module")
def two_published_months(tmp_path_factory, small_landing_zone):
    """A store with 2023-01..02 materialized and published, built once for the session."""
    return shared_published_store(tmp_path_factory, small_landing_zone, "2023-01", "2023-02")


@pytest.fixture
def store(two_published_months, tmp_path, small_landing_zone, monkeypatch):
    """A private copy of the two-month store (the landing zone is only read here)."""
    return store_copy(two_published_months, tmp_path, small_landing_zone, monkeypatch)


def test_failures_after_dbt_wrote_or_while_publishing_leave_the_analytics_file_and_a_rerun_recovers(store, monkeypatch):
    analytics = store.settings.analytics
    before = digest(analytics)

    def ledger_fails(*args, **kwargs):
        raise RuntimeError("injected: the run dies after dbt wrote the month")

    with monkeypatch.context() as patch:
        patch.setattr(feature_store_assets.defs.dbt.assets, "record_materialized_months", ledger_fails)
        assert materialize("2023-03", "2023-03") == 1
    # dbt did rewrite March in the warehouse; the analytics file analysts read did not move
    assert "2023-03" in months_of(store.settings.warehouse)
    assert digest(analytics) == before

    real_replace = os.replace

    def swap_fails(src, dst, *args, **kwargs):
        if str(dst) == str(analytics):
            raise OSError("injected: the disk fails at the swap")
        return real_replace(src, dst, *args, **kwargs)

    versions = list_versions(store.settings.published_dir)
    with monkeypatch.context() as patch:  # the warehouse now has March: publishing it fails at the swap
        patch.setattr(feature_store_assets.store.publishing.os, "replace", swap_fails)
        with pytest.raises(OSError, match="injected"):
            feature_store_assets.defs.publish.analytics.publish_analytics(store.settings.warehouse, analytics)
    assert digest(analytics) == before
    assert not list(analytics.parent.glob(".*.publishing"))  # the half-written copy is gone
    assert list_versions(store.settings.published_dir) == versions  # and its version is not listed

    assert materialize("2023-03", "2023-03") == 0
    assert_recovered(store, ["2023-01", "2023-02", "2023-03"])


def test_killed_run_takes_its_dbt_with_it_and_a_rerun_recovers(store):
    """...and the re-run, starting, marks the killed run failed in the instance (it stayed STARTED)."""
    before = digest(store.settings.analytics)
    run = subprocess.Popen(
        [sys.executable, "-m", "feature_store_assets.cli.main", "materialize", "--from", "2023-03", "--to", "2023-03"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        killed = kill_in_dbt(run, store.settings.warehouse)
    finally:
        kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)

    assert digest(store.settings.analytics) == before
    with dg.DagsterInstance.from_config(os.environ["DAGSTER_HOME"]) as instance:
        assert instance.get_run_by_id(killed).status == dg.DagsterRunStatus.STARTED  # nobody told Dagster
    assert materialize("2023-03", "2023-03") == 0  # at once: no lock left behind
    assert_recovered(store, ["2023-01", "2023-02", "2023-03"])
    with dg.DagsterInstance.from_config(os.environ["DAGSTER_HOME"]) as instance:
        assert instance.get_run_by_id(killed).status == dg.DagsterRunStatus.FAILURE
        [failure] = instance.all_logs(killed, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert f"(pid {run.pid} on " in failure.message and "is gone" in failure.message


def test_dbt_failing_before_it_builds_anything_is_the_error_reported(tmp_path, small_landing_zone, monkeypatch, capfd):
    """A first run whose dbt dies at start-up (here: an unknown profile target) reports dbt's failure,
    not the missing tables the row counts after dbt would then trip over."""
    configure(monkeypatch, tmp_path, small_landing_zone)
    monkeypatch.setenv("FEATURE_STORE_DBT_TARGET", "no_such_target")
    assert materialize("2023-01", "2023-01") == 1
    err = capfd.readouterr().err
    assert "DagsterDbtCliRuntimeError" in err and "dbt" in err
    assert "Catalog Error" not in err
    assert not tmp_path.joinpath("analytics.duckdb").exists()
