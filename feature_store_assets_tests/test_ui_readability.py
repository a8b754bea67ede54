"""What the Dagster UI shows: dbt test checks named and described by what they test, each month's own row
count on its materialization (also after one run over several months), staging views apart from the
monthly history, and a check on every monthly asset."""

import re

import dagster as dg
import pytest

from feature_store_assets.cli.main import main
from feature_store_assets.core.settings import Settings
from feature_store_assets.definitions import build_definitions
from feature_store_assets.defs.dbt.check_names import check_description, readable_check_name, with_readable_test_names
from feature_store_assets.defs.dbt.project import load_manifest, monthly_models_by_name, staging_models_by_name
from feature_store_assets.operations.instance import instance_home, open_instance

DBT_UNIQUE_ID = "dagster_dbt/unique_id"


@pytest.fixture(scope="module")
def graph():
    return build_definitions(Settings.from_env({"FEATURE_STORE_START_MONTH": "2023-01"})).resolve_asset_graph()


def dbt_checks(graph, asset: list[str]) -> dict[str, dg.AssetCheckSpec]:
    specs = (graph.get_check_spec(key) for key in graph.asset_check_keys if key.asset_key == dg.AssetKey(asset))
    return {spec.name: spec for spec in specs if DBT_UNIQUE_ID in spec.metadata}


def test_dbt_checks_are_named_by_what_they_test(graph):
    on_features = dbt_checks(graph, ["features", "client_features"])
    assert {
        "not_null_client_id",
        "unique_client_id_and_feature_month",
        "null_exactly_when_hd_revenue_share_12m",
        "between_total_revenue_pctl_global_12m",
        "accepted_values_zip_income_match",
    } <= set(on_features)
    assert "rows_in_every_window_month" in dbt_checks(graph, ["filtered", "inclinic_transactions"])
    for key in graph.asset_check_keys:
        spec = graph.get_check_spec(key)
        if DBT_UNIQUE_ID in spec.metadata:
            # short, a Dagster name, and without the model's name, which the asset already shows
            assert re.fullmatch(r"[A-Za-z0-9_]+", key.name) and len(key.name) <= 72, key
            assert key.asset_key.path[-1] not in key.name, key


def test_every_dbt_check_says_what_it_tests(graph):
    on_features = dbt_checks(graph, ["features", "client_features"])
    assert on_features["not_null_client_id"].description == "client_id is never NULL in the run's months."
    assert on_features["unique_client_id_and_feature_month"].description == (
        "At most one row per (client_id, feature_month) in the run's months."
    )
    assert on_features["null_exactly_when_hd_revenue_share_12m"].description == (
        "hd_revenue_share_12m is NULL exactly when total_revenue_12m <= 0 in the run's months."
    )
    assert on_features["between_tenure_days"].description.startswith("tenure_days is between 1 and 1000000")
    # a description written on the test in the .yml wins
    empty_month = dbt_checks(graph, ["filtered", "inclinic_transactions"])["rows_in_every_window_month"]
    assert empty_month.description.startswith("Every month of the run has in-clinic rows.")
    hd_empty = dbt_checks(graph, ["filtered", "hd_orders"])["rows_in_every_window_month"]
    assert "Warns only" in hd_empty.description and not hd_empty.blocking
    for key in graph.asset_check_keys:
        description = graph.get_check_spec(key).description or ""
        assert description and "No description" not in description, key


def test_readable_names_stay_unique_on_a_model():
    manifest = load_manifest()
    test = next(n for n in manifest["nodes"].values() if n["name"] == "not_null_client_features_client_id")
    twin = {**test, "unique_id": test["unique_id"] + "_twin", "name": test["name"] + "_twin"}
    renamed = with_readable_test_names({**manifest, "nodes": {**manifest["nodes"], twin["unique_id"]: twin}})["nodes"]
    # two tests that would both read not_null_client_id on one model keep dbt's own names
    assert renamed[test["unique_id"]]["name"] == test["name"] and renamed[twin["unique_id"]]["name"] == twin["name"]
    assert with_readable_test_names(manifest)["nodes"][test["unique_id"]]["name"] == "not_null_client_id"
    singular = {"name": "assert_sum_matches", "resource_type": "test", "config": {"severity": "warn"}}
    assert readable_check_name(singular) == "assert_sum_matches"
    assert check_description(singular).startswith("Singular dbt test assert_sum_matches")


def test_staging_views_are_apart_and_say_they_read_the_last_build_only(graph):
    for name in staging_models_by_name(load_manifest()):
        node = graph.get(dg.AssetKey(["filtered", name]))
        assert node.group_name == "staging"
        assert node.description.startswith(
            "Staging, not history: a view over the files of the months of the last dbt build"
        )
    assert graph.get(dg.AssetKey(["filtered", "inclinic_transactions"])).group_name == "filter"


def test_every_monthly_table_has_a_check(graph):
    monthly = [key for key in graph.materializable_asset_keys if graph.get(key).partitions_def is not None]
    checked = {key.asset_key for key in graph.asset_check_keys}
    # every month-incremental and staging dbt model (from the manifest), and nothing else: integrated_clients is not
    # monthly
    manifest = load_manifest()
    staging = {dg.AssetKey([node["schema"], name]) for name, node in staging_models_by_name(manifest).items()}
    expected = {dg.AssetKey([node["schema"], name]) for name, node in monthly_models_by_name(manifest).items()}
    assert len(expected) >= 18 and set(monthly) == expected | staging
    assert graph.get(dg.AssetKey(["filtered", "integrated_clients"])).partitions_def is None
    # the staging views keep no rows (their rows are checked in the event tables and quality.rejected_rows)
    assert [key.to_user_string() for key in monthly if key not in checked and key not in staging] == []


def test_each_month_of_a_multi_month_run_has_its_own_row_count(feature_store, capsys):
    assert main(["materialize", "--from", "2023-01", "--to", "2023-02"]) == 0
    capsys.readouterr()
    manifest = load_manifest()
    tables = {name: node["config"]["unique_key"] for name, node in monthly_models_by_name(manifest).items()}
    tables |= dict.fromkeys(staging_models_by_name(manifest), "event_month")
    with open_instance(instance_home()) as instance:  # the instance the CLI ran in (DAGSTER_HOME of the store)
        (run,) = instance.get_runs()
        for name, month_column in tables.items():
            schema = manifest["nodes"][f"model.feature_store.{name}"]["schema"]
            records = instance.fetch_materializations(dg.AssetKey([schema, name]), limit=10).records
            by_partition = {r.partition_key: r.asset_materialization for r in records if r.run_id == run.run_id}
            assert sorted(by_partition) == ["2023-01-01", "2023-02-01"] and len(records) == 2, name  # once per month
            counts = dict(
                feature_store.query(
                    f"select strftime({month_column}, '%Y-%m-%d') as month, count(*) as n from {schema}.{name} group by 1"
                ).itertuples(index=False)
            )
            if name in staging_models_by_name(manifest):  # rebuilt by every build: it holds the run's months
                assert set(counts) == {"2023-01-01", "2023-02-01"}
            for partition, materialization in by_partition.items():
                assert materialization.metadata["dagster/row_count"].value == counts.get(partition, 0), (
                    name,
                    partition,
                )
        january, february = (
            instance.fetch_materializations(
                dg.AssetRecordsFilter(dg.AssetKey(["filtered", "inclinic_transactions"]), asset_partitions=[p]), limit=1
            )
            .records[0]
            .asset_materialization.metadata
            for p in ("2023-01-01", "2023-02-01")
        )
        assert january["rows_in"].value > january["rows_out"].value > 0 and january["rows_rejected"].value > 0
        assert january["rows_out"].value != february["rows_out"].value  # not the run's total on both
        assert set(january["rows_by_month"].value) == {"2023-01", "2023-02"}
        # the dbt tests' results arrive under the readable names (not as observations)
        evaluations = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey(["features", "client_features"]), "unique_client_id_and_feature_month"),
            limit=5,
        )
        assert [e.status.value for e in evaluations] == ["SUCCEEDED"]
