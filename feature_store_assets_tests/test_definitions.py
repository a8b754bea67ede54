"""The Dagster graph as a whole: a snapshot of its assets, groups, partitions, checks, jobs, schedules and sensors."""

import time
from datetime import datetime

import dagster as dg
import pytest
from dagster._core.execution.asset_backfill import AssetBackfillData  # what a UI backfill plans

from feature_store_assets.core.settings import Settings
from feature_store_assets.definitions import build_definitions
from feature_store_assets.defs.checks.freshness import FRESHNESS_CHECK
from feature_store_assets.defs.schedules.monthly import MONTHLY_JOB
from feature_store_assets_tests.support.snapshots import UPDATE_ENV, assert_matches_snapshot, definitions_snapshot


@pytest.fixture(scope="module")
def defs():
    return build_definitions(Settings.from_env({"FEATURE_STORE_START_MONTH": "2023-01"}))


def test_definitions_match_their_snapshot(defs):
    """Every asset (group, partitions, each dependency's partition mapping), check, job, schedule and sensor, against
    snapshots/definitions.json. After a change to the graph: FEATURE_STORE_UPDATE_SNAPSHOTS=1 (docs/testing.md)."""
    assert_matches_snapshot("definitions", definitions_snapshot(defs))


def test_the_snapshot_names_the_layers_as_groups(defs):
    snapshot = definitions_snapshot(defs)
    groups = {asset["group"] for asset in snapshot["assets"].values()}
    assert groups == {"landing_zone", "reference", "filter", "staging", "aggregation", "features", "marts", "publish"}
    # same-month dependencies only: the 12-month lookback is metadata, so backfills keep to their months
    assert snapshot["assets"]["features/client_features"]["deps"]["aggregation/client_monthly_financials"] == (
        "TimeWindowPartitionMapping(start_offset=0, end_offset=0, allow_nonexistent_upstream_partitions=False)"
    )
    assert snapshot["checks"][f"publish/analytics_database:{FRESHNESS_CHECK}"] == {"blocking": False}
    assert snapshot["schedules"]["monthly_feature_schedule"]["job"] == MONTHLY_JOB


def test_a_changed_graph_fails_with_a_diff_naming_what_changed(tmp_path, monkeypatch):
    monkeypatch.delenv(UPDATE_ENV, raising=False)
    (tmp_path / "graph.json").write_text('{\n  "assets": {\n    "a": "monthly"\n  }\n}\n')
    with pytest.raises(AssertionError) as failure:
        assert_matches_snapshot("graph", {"assets": {"a": "unpartitioned"}}, folder=tmp_path)
    message = str(failure.value)
    assert f"{tmp_path / 'graph.json'} differs" in message and UPDATE_ENV in message
    assert '-    "a": "monthly"' in message and '+    "a": "unpartitioned"' in message
    monkeypatch.setenv(UPDATE_ENV, "1")
    assert_matches_snapshot("graph", {"assets": {"a": "unpartitioned"}}, folder=tmp_path)
    assert "unpartitioned" in (tmp_path / "graph.json").read_text()
    with pytest.raises(AssertionError, match="no snapshot yet"):
        monkeypatch.delenv(UPDATE_ENV)
        assert_matches_snapshot("missing", {}, folder=tmp_path)


def test_monthly_assets_share_partitions_from_the_start_month(defs):
    graph = defs.resolve_asset_graph()
    features = graph.get(dg.AssetKey(["features", "client_features"]))
    assert features.partitions_def.get_first_partition_key() == "2023-01-01"
    assert graph.get(dg.AssetKey(["filtered", "integrated_clients"])).partitions_def is None  # not monthly
    assert graph.get(dg.AssetKey(["reference", "zip_income"])).partitions_def is None
    assert graph.get(dg.AssetKey(["landing_zone", "transactions"])).partitions_def == features.partitions_def


def test_a_six_month_backfill_of_everything_plans_exactly_those_six_months(defs):
    """What the UI's "Materialize all" over six partitions asks the backfill daemon for: no monthly asset gets a
    month outside them (a 12-month lookback mapping would have planned features and marts for 17 months), and the
    unpartitioned assets once."""
    graph = defs.resolve_asset_graph()
    selection = [key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable]
    months = [f"2023-{m:02d}-01" for m in range(1, 7)]
    with dg.DagsterInstance.ephemeral() as instance:
        plan = AssetBackfillData.from_asset_partitions(graph, months, selection, instance, time.time(), False)
    planned = {
        key.to_user_string(): sorted(s.get_partition_keys())
        for key, s in plan.target_subset.partitions_subsets_by_asset_key.items()
    }
    monthly = {key.to_user_string() for key in selection if graph.get(key).is_partitioned}
    assert set(planned) == monthly and all(keys == months for keys in planned.values())
    assert "filtered/integrated_clients" not in monthly  # not monthly: today's clinics and clients
    assert {"filtered/integrated_clients", "publish/analytics_database"} <= {
        key.to_user_string() for key in plan.target_subset.non_partitioned_asset_keys
    }


def test_features_and_marts_say_which_aggregation_months_they_read(defs):
    graph = defs.resolve_asset_graph()
    features = dg.AssetKey(["features", "client_features"])
    for key in (features, dg.AssetKey(["marts", "client_rfm"]), dg.AssetKey(["marts", "product_affinity"])):
        assert graph.get(key).metadata["reads_aggregation_months"] == "M-11..M"
    assert (
        "reads_aggregation_months" not in graph.get(dg.AssetKey(["aggregation", "client_monthly_financials"])).metadata
    )
    assert dg.AssetKey(["reference", "client_zip_income"]) in graph.get(features).parent_keys


def test_dbt_tests_are_asset_checks(defs):
    check_keys = defs.resolve_asset_graph().asset_check_keys
    on_features = {c.name for c in check_keys if c.asset_key == dg.AssetKey(["features", "client_features"])}
    assert {"unique_client_id_and_feature_month", "null_exactly_when_hd_revenue_share_12m"} <= on_features
    on_filter = {c.name for c in check_keys if c.asset_key == dg.AssetKey(["filtered", "inclinic_transactions"])}
    assert "rows_in_every_window_month" in on_filter
    # the staging views keep no rows: their rows are checked where they are kept
    assert not {c for c in check_keys if c.asset_key == dg.AssetKey(["filtered", "stg_web_sessions"])}
    on_rejected = {c.name for c in check_keys if c.asset_key == dg.AssetKey(["quality", "rejected_rows"])}
    assert "accepted_values_reason" in on_rejected


def test_feature_descriptions_come_from_the_dbt_yml(defs):
    spec = defs.resolve_asset_graph().get(dg.AssetKey(["features", "client_features"]))
    columns = {c.name: c.description for c in spec.metadata["dagster/column_schema"].columns}
    assert columns["hd_revenue_share_12m"] == "hd_revenue_12m / total_revenue_12m; NULL when total_revenue_12m <= 0"
    assert len(columns) == 34


def test_monthly_job_covers_every_layer(defs):
    job = defs.resolve_job_def(MONTHLY_JOB)
    assert job.partitions_def.get_first_partition_key() == "2023-01-01"
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert "features/client_features" in selected and "reference/zip_income" in selected
    assert not any(k.startswith("landing_zone/") for k in selected)
    # every check of those layers but the freshness check, which has its own schedule (freshness.py)
    checks = job.asset_layer.asset_graph.asset_check_keys
    assert dg.AssetCheckKey(dg.AssetKey(["filtered", "inclinic_transactions"]), "rows_in_every_window_month") in checks
    assert "filtered/stg_inclinic_transactions" in selected
    assert dg.AssetCheckKey(dg.AssetKey(["publish", "analytics_database"]), FRESHNESS_CHECK) not in checks


def test_schedule_runs_the_previous_month_on_the_second_at_six(defs):
    schedule = defs.resolve_schedule_def("monthly_feature_schedule")
    assert schedule.cron_schedule == "0 6 2 * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    with dg.build_schedule_context(scheduled_execution_time=datetime(2024, 3, 2, 6, 0)) as context:
        run_requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in run_requests] == ["2024-02-01"]


@pytest.mark.e2e
def test_models_selected_alone_build_without_a_month_or_for_their_month(feature_store):
    """What the UI does with a few of the dbt assets selected: integrated_clients and the seed alone are one dbt build
    of those two (and their tests), unpartitioned; a staging view alone (partitioned, though not a monthly history)
    is built for the chosen month, in the step that builds every dbt model."""
    defs = build_definitions(feature_store.settings)
    graph = defs.resolve_asset_graph()
    assets = [graph.get(key).assets_def for key in graph.get_all_asset_keys() if graph.get(key).is_materializable]
    alone = [dg.AssetKey(["filtered", "integrated_clients"]), dg.AssetKey(["marts", "segment_actions"])]
    staging = dg.AssetKey(["filtered", "stg_web_sessions"])
    assert graph.get(alone[0]).assets_def is graph.get(staging).assets_def
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(assets, selection=alone, instance=instance)
        assert result.success
        built = result.get_asset_materialization_events()
        assert sorted(e.asset_key for e in built) == sorted(alone)
        assert all(e.partition is None for e in built)
        assert {c.asset_key for c in result.get_asset_check_evaluations()} == set(alone)
        tables = set(
            feature_store.query("select table_schema || '.' || table_name as t from information_schema.tables")["t"]
        )
        assert {"filtered.integrated_clients", "marts.segment_actions"} <= tables
        assert "filtered.inclinic_transactions" not in tables  # no month was built

        result = dg.materialize(assets, selection=[staging], partition_key="2023-01-01", instance=instance)
    assert result.success
    assert [(e.asset_key, e.partition) for e in result.get_asset_materialization_events()] == [(staging, "2023-01-01")]
    assert feature_store.scalar("select count(*) from filtered.stg_web_sessions where event_month = '2023-01-01'") > 0
