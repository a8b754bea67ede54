"""The Dagster graph as a whole: a snapshot of its assets, groups, partitions, checks, job and schedule."""

from datetime import datetime

import dagster as dg
import pytest

from feature_store_assets.core.settings import Settings
from feature_store_assets.definitions import build_definitions
from feature_store_assets.defs.checks.freshness import FRESHNESS_CHECK
from feature_store_assets.defs.schedules.monthly import MONTHLY_JOB

EXPECTED_ASSETS = {
    "landing_zone": ["clients", "clinics", "transactions", "transactions_inclinic", "web_sessions"],
    "reference": ["client_zip_income", "zip_income"],
    "filter": [
        "filtered/hd_orders",
        "filtered/inclinic_transactions",
        "filtered/integrated_clients",
        "filtered/web_sessions",
        "quality/rejected_rows",
    ],
    # the run's months only, rebuilt by every dbt build: apart from the monthly history (docs/architecture.md, Layers)
    "staging": ["filtered/stg_inclinic_transactions", "filtered/stg_online_orders", "filtered/stg_web_sessions"],
    "aggregation": [
        "aggregation/category_pair_monthly_visits",
        "aggregation/client_monthly_financials",
        "aggregation/client_monthly_inclinic_mix",
        "aggregation/client_monthly_web_engagement",
        "aggregation/clinic_monthly_revenue",
    ],
    "features": ["features/client_features", "features/clinic_features", "features/feature_catalog"],
    "marts": ["marts/client_cohorts", "marts/client_rfm", "marts/client_value", "marts/product_affinity"],
    "publish": ["publish/analytics_database"],
}


@pytest.fixture(scope="module")
def defs():
    return build_definitions(Settings.from_env({"FEATURE_STORE_START_MONTH": "2023-01"}))


def test_asset_graph_snapshot_groups_are_the_layers(defs):
    graph = defs.resolve_asset_graph()
    by_group: dict[str, list[str]] = {}
    for key in graph.get_all_asset_keys():
        group = graph.get(key).group_name
        name = key.to_user_string()
        by_group.setdefault(group, []).append(
            name.removeprefix(f"{group}/") if group in ("landing_zone", "reference") else name
        )
    assert {g: sorted(v) for g, v in by_group.items()} == EXPECTED_ASSETS


def test_monthly_assets_share_partitions_from_the_start_month(defs):
    graph = defs.resolve_asset_graph()
    features = graph.get(dg.AssetKey(["features", "client_features"]))
    assert features.partitions_def.get_first_partition_key() == "2023-01-01"
    assert graph.get(dg.AssetKey(["filtered", "integrated_clients"])).partitions_def == features.partitions_def
    assert graph.get(dg.AssetKey(["reference", "zip_income"])).partitions_def is None
    assert graph.get(dg.AssetKey(["landing_zone", "transactions"])).partitions_def == features.partitions_def


def test_features_depend_on_twelve_months_of_aggregates(defs):
    graph = defs.resolve_asset_graph()
    features = dg.AssetKey(["features", "client_features"])
    financials = dg.AssetKey(["aggregation", "client_monthly_financials"])
    subset = graph.get_parent_partition_keys_for_child(
        partition_key="2024-03-01", parent_asset_key=financials, child_asset_key=features
    ).partitions_subset
    assert sorted(subset.get_partition_keys()) == [
        f"{y}-{m:02d}-01" for y, m in [(2023, m) for m in range(4, 13)] + [(2024, m) for m in range(1, 4)]
    ]
    early = graph.get_parent_partition_keys_for_child(
        partition_key="2023-02-01", parent_asset_key=financials, child_asset_key=features
    ).partitions_subset
    assert sorted(early.get_partition_keys()) == ["2023-01-01", "2023-02-01"]
    # the features also read the client ZIP incomes and the integrated clients
    assert dg.AssetKey(["reference", "client_zip_income"]) in graph.get(features).parent_keys


def test_dbt_tests_are_asset_checks(defs):
    check_keys = defs.resolve_asset_graph().asset_check_keys
    on_features = {c.name for c in check_keys if c.asset_key == dg.AssetKey(["features", "client_features"])}
    assert {"unique_client_id_and_feature_month", "null_exactly_when_hd_revenue_share_12m"} <= on_features
    on_filter = {c.name for c in check_keys if c.asset_key == dg.AssetKey(["filtered", "inclinic_transactions"])}
    assert "rows_in_every_window_month" in on_filter
    on_staging = {c.name for c in check_keys if c.asset_key == dg.AssetKey(["filtered", "stg_web_sessions"])}
    assert on_staging == {"accepted_values_rejection_reason", "not_null_copy_number"}


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
