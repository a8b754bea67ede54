"""The Python client: `FeatureStore()` on the local published files and `FeatureStore(url=...)` on a real
`feature-store serve` give equal answers, for clients and clinics; the README's example runs against the store."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from feature_store_assets import FeatureStore
from feature_store_assets.client import contiguous, entity_ids
from feature_store_assets.core.months import parse_month
from feature_store_assets.serving import ServingError, UnknownFeatures
from feature_store_assets_tests.support.serving import (
    analytics_query,
    call_json,
    march_clients,
    serving_process,
)
from feature_store_assets_tests.support.shared import published_copy

pytestmark = pytest.mark.xdist_group("client")

README = Path(__file__).resolve().parents[1] / "README.md"
KEY = "client-test-key"
API = "/api/v1/features"


def readme_example() -> str:
    """The README's Python client example: the first python block under its `## Python client` heading."""
    section = README.read_text().split("\n## Python client\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_months_and_entities_a_call_takes():
    months = [parse_month(m) for m in ("2023-01", "2023-02", "2023-04", "2023-05", "2023-07")]
    assert contiguous(months) == [(months[0], months[1]), (months[2], months[3]), (months[4], months[4])]
    assert entity_ids({"clinic_id": [103, 104]}) == ("clinic_id", [103, 104])
    assert entity_ids([{"client_id": 1}, {"client_id": 2}]) == ("client_id", [1, 2])
    with pytest.raises(ServingError, match="one entity"):
        entity_ids([{"client_id": 1}, {"clinic_id": 2}])
    assert "store.materialize(" in readme_example() and "FeatureStore()" in readme_example()


@pytest.fixture(scope="module")
def store(tmp_path_factory, small_landing_zone):
    return published_copy(tmp_path_factory, small_landing_zone, "client")


@pytest.fixture(scope="module")
def base(store):
    env = {**os.environ, **store.settings.as_env(), "FEATURE_STORE_API_KEY": KEY}
    env.pop("FEATURE_STORE_API_KEY_FILE", None)
    with serving_process(store, env, lambda url: call_json(url, "GET", f"{API}/health")[0] == 200) as (url, _):
        yield url


@pytest.fixture(scope="module")
def local(store) -> FeatureStore:
    return FeatureStore(store.settings.analytics, settings=store.settings)


@pytest.fixture(scope="module")
def remote(base) -> FeatureStore:
    return FeatureStore(url=base, api_key=KEY)


@pytest.fixture(scope="module")
def clinics(store) -> list[int]:
    found = analytics_query(store.settings, "select distinct clinic_id from features.clinic_features order by 1")
    return found["clinic_id"].tolist()


@pytest.mark.e2e
def test_the_catalog_and_the_tables_are_the_same_locally_and_over_http(local, remote):
    listed = local.list_features()
    assert listed == remote.list_features() and {f.entity for f in listed} == {"client_id", "clinic_id"}
    for filters in ({"entity": "clinic_id"}, {"tag": "web"}, {"text": "revenue", "entity": "client_id"}):
        assert local.list_features(**filters) == remote.list_features(**filters) != []
    assert local.list_tables() == remote.list_tables() and local.list_tables()[0].table.startswith("marts.")


@pytest.mark.e2e
def test_training_features_are_equal_for_client_and_clinic_rows(local, remote, store, clients_and_labels, clinics):
    clients = clients_and_labels
    for features in (None, ["tenure_days", "zip_code", "total_revenue_12m"]):
        ours, theirs = local.get_training_features(clients, features), remote.get_training_features(clients, features)
        assert_frame_equal(ours, theirs)
        assert ours.attrs == theirs.attrs and ours.attrs["feature_store_version"] is not None
    assert remote.get_training_features(clients, version=1).attrs["feature_store_version"] == 1

    rows = pd.DataFrame(
        {
            "clinic_id": [clinics[0], clinics[0], clinics[-1], 424242],
            "event_timestamp": pd.to_datetime(
                ["2023-03-01", "2023-02-28 23:59:59.999999", "2023-04-20", "2023-03-01"], format="ISO8601"
            ),
        }
    )
    ours = local.get_training_features(rows, ["clients_active", "practice_type", "hd_adoption_rate"], max_age_months=0)
    assert_frame_equal(
        ours,
        remote.get_training_features(rows, ["clients_active", "practice_type", "hd_adoption_rate"], max_age_months=0),
    )
    expected = analytics_query(
        store.settings,
        f"select clients_active from features.clinic_features where clinic_id = {clinics[0]} and feature_month = '2023-02-01'",
    )
    assert ours["clients_active"].iloc[0] == expected["clients_active"].iloc[0]
    assert ours["feature_month"].isna().tolist() == [False, False, False, True]


@pytest.fixture(scope="module")
def clients_and_labels(store) -> pd.DataFrame:
    """Labelled client rows: boundaries at E, duplicates, an unknown client, an index of its own."""
    known = march_clients(store)[:3]
    return pd.DataFrame(
        {
            "client_id": [known[0], known[0], known[1], known[2], 31337, known[1]],
            "event_timestamp": pd.to_datetime(
                [
                    "2023-03-01",
                    "2023-02-28 23:59:59.999999",
                    "2023-04-15 12:00",
                    "2023-02-01",
                    "2023-03-01",
                    "2023-04-15 12:00",
                ],
                format="ISO8601",
            ),
            "churned": [0, 1, 0, 1, 0, 0],
        },
        index=[7, 3, 3, 10, 11, 12],
    )


@pytest.mark.e2e
def test_online_features_are_equal_for_clients_and_clinics(local, remote, store, clinics):
    clients = march_clients(store)[:5] + [42]
    for entities, features in (
        ({"client_id": clients}, None),
        ({"client_id": clients}, ["tenure_days", "zip_code"]),
        ({"clinic_id": [*clinics, 424242]}, None),
        ([{"clinic_id": c} for c in clinics], ["clinic_features:clients_active", "clinic_features:practice_type"]),
    ):
        ours = local.get_online_features(entities, features)
        assert_frame_equal(ours, remote.get_online_features(entities, features))
    latest = analytics_query(
        store.settings,
        "select clinic_id, clients_active from features.clinic_features where feature_month = '2023-03-01' order by 1",
    )
    assert ours["clients_active"].tolist() == latest["clients_active"].tolist()
    assert list(ours.columns) == ["clinic_id", "feature_month", "computed_at", "clients_active", "practice_type"]

    for client in (local, remote):  # the same errors both ways
        with pytest.raises(UnknownFeatures) as unknown:
            client.get_online_features({"clinic_id": clinics}, ["tenure_days"])
        assert unknown.value.unknown == ["tenure_days"] and "clients_active" in unknown.value.valid
        with pytest.raises(ServingError, match="several feature views"):
            client.get_online_features({"client_id": [1]}, ["tenure_days", "clinic_features:clients_active"])


@pytest.mark.e2e
def test_the_readme_example_runs_and_materializes_as_the_service_does(store, local, remote, monkeypatch):
    over_http = remote.materialize("2023-04")  # POST /extract on the service, polled until the run ends
    april = analytics_query(
        store.settings,
        "select count(*) as clients, count(zip_avg_agi) as with_agi from features.client_features "
        "where feature_month = '2023-04-01'",
    ).iloc[0]
    assert over_http["2023-04"]["tenure_days"] == april["clients"] > 0
    assert over_http["2023-04"]["zip_avg_agi"] == april["with_agi"]
    assert over_http["2023-04"]["clinic_features:clients_active"] > 0

    deadline = time.monotonic() + 30  # the service reloads the newly published file within its refresh interval
    while call_json(remote.url, "GET", f"{API}/health")[1]["latest_feature_month"] != "2023-04-01":
        assert time.monotonic() < deadline, "the service did not load the published April"
        time.sleep(0.5)
    clients = {"client_id": march_clients(store)[:5]}
    assert_frame_equal(local.get_online_features(clients), remote.get_online_features(clients))

    for name, value in store.settings.as_env().items():  # FeatureStore() reads the environment, as in the README
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(store.root / "dagster_home"))
    namespace: dict = {}
    exec(compile(readme_example(), str(README), "exec"), namespace)
    assert namespace["counts"] == over_http  # the local materialize path counts what the service reported
    assert len(namespace["training"]) == 2 and "tenure_days" in namespace["training"]
    assert {f.entity for f in namespace["clinic_features"]} == {"clinic_id"}
    assert list(namespace["online"].columns[:1]) == ["clinic_id"]
