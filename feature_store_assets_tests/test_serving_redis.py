"""The shared online store in Redis (FEATURE_STORE_ONLINE_STORE), against a real `redis-server`: the publish step
pushes to it, a Redis failure during a publish leaves the store published whole and Redis on its previous snapshot
whole, the next publish pushes again, a reader during a push sees one snapshot whole, and Redis-backed serving
answers what the in-memory store answers, in Python and over HTTP, for clients and clinics."""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import dagster as dg
import pytest
import redis
from pandas.testing import assert_frame_equal

from benchmarks.online_store import redis_server
from feature_store_assets import FeatureStore
from feature_store_assets.cli.main import MaterializationFailed, materialize_months
from feature_store_assets.core.months import parse_month
from feature_store_assets.core.settings import Settings
from feature_store_assets.serving.contract import ContractItem, contract_results
from feature_store_assets.serving.online import OnlineStore
from feature_store_assets.serving.published import AnalyticsUnavailable
from feature_store_assets.serving.redis_online import RedisOnlineStore
from feature_store_assets.store import current_version
from feature_store_assets.store.online import (
    CURRENT,
    SNAPSHOTS,
    OnlineStoreError,
    online_status,
    push_snapshot,
    snapshot_key,
)
from feature_store_assets_tests.conftest import configure
from feature_store_assets_tests.support.serving import (
    analytics_query,
    call_json,
    free_port,
    march_clients,
    serving_process,
)
from feature_store_assets_tests.support.shared import published_copy

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("serving_redis")]

API = "/api/v1/features"
PUBLISH = dg.AssetKey(["publish", "analytics_database"])
FEB, MAR = parse_month("2023-02"), parse_month("2023-03")
FEW = ["tenure_days", "total_revenue_12m", "zip_code", "web_conversion_rate_3m"]
CLINIC_FEW = ["clients_active", "hd_adoption_rate"]


def run(store, first: str, last: str, url: str, assets=None) -> None:
    """`feature-store materialize` (its Python entry) for first..last with the store's settings and the online
    store in the environment, where the publish step reads it."""
    with pytest.MonkeyPatch.context() as patch:
        configure(patch, store.root, store.raw_dir)
        patch.setenv("FEATURE_STORE_ONLINE_STORE", url)
        materialize_months(Settings.from_env(), parse_month(first), parse_month(last), assets=assets)


def served_keys(url: str) -> set[str]:
    return {key.decode() for key in redis.Redis.from_url(url).keys("*")}


@dataclass
class Published:
    """What the module's publishes left, observed at each stage."""

    url: str
    feb_version: int  # pushed by a run of the publish step with nothing new to publish: Redis was behind (empty)
    feb_file: Path  # a copy of the analytics file of that version (its views name the kept version's files)
    failure: str  # the March run's error, its push refused by Redis (out of memory)
    after_failure: dict  # the store and Redis right after it
    mar_version: int


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="module")
def store(tmp_path_factory, small_landing_zone):
    return published_copy(tmp_path_factory, small_landing_zone, "serving_redis", "2023-01", "2023-02")


@pytest.fixture(scope="module")
def published(store, redis_url, tmp_path_factory) -> Published:
    settings = store.settings
    feb_file = tmp_path_factory.mktemp("feb") / "analytics.duckdb"
    shutil.copy2(settings.analytics, feb_file)
    # 1. a run of the publish step alone: no month to publish (no new version), but Redis is behind (empty), so
    # it pushes the current version
    feb_version = current_version(settings.published_dir).version
    feb_ids = analytics_query(settings, "select distinct client_id from features.client_features").client_id.tolist()
    run(store, "2023-02", "2023-02", redis_url, assets=[PUBLISH])
    assert current_version(settings.published_dir).version == feb_version
    # 2. March, with Redis refusing writes once it holds half a snapshot more than now: the push starts (its id
    # registered), then a write of its rows is refused (out of memory)
    client = redis.Redis.from_url(redis_url)
    served_id = online_status(redis_url)[0]
    half = client.memory_usage(snapshot_key(served_id, "client_features")) // 2
    client.config_set("maxmemory", client.info("memory")["used_memory"] + half)
    client.config_set("maxmemory-policy", "noeviction")
    with pytest.raises(MaterializationFailed) as raised:
        run(store, "2023-03", "2023-03", redis_url)
    version = current_version(settings.published_dir)
    status = online_status(redis_url)
    left = {member.decode() for member in client.smembers(SNAPSHOTS)} - {status[0]}
    after_failure = {
        "version": version.version,
        "months": version.months,
        "latest_file_month": analytics_query(settings, "select max(feature_month) as m from features.client_features")
        .m.iloc[0]
        .date(),
        "published_march": analytics_query(
            settings,
            "select count(*) as n from quality.materialized_months where month = '2023-03-01' "
            "and published_at is not null",
        ).n.iloc[0],
        "redis_version": status[1].store_version,
        "half_written": left,
        # what a reader gets now: February's rows, every one of them, as the in-memory store answers February's file
        "reads": RedisOnlineStore(settings.analytics, redis_url).lookup(feb_ids),
        "feb_rows": OnlineStore(feb_file).lookup(feb_ids),
    }
    # 3. Redis has room again: the next run of the publish step pushes March, with nothing new to publish
    client.config_set("maxmemory", 0)
    run(store, "2023-03", "2023-03", redis_url, assets=[PUBLISH])
    return Published(redis_url, feb_version, feb_file, str(raised.value), after_failure, version.version)


@pytest.fixture(scope="module")
def memory(published, store):
    return OnlineStore(store.settings.analytics)


@pytest.fixture(scope="module")
def shared(published, store):
    return RedisOnlineStore(store.settings.analytics, published.url)


@pytest.fixture(scope="module")
def clinics(store) -> list[int]:
    found = analytics_query(store.settings, "select distinct clinic_id from features.clinic_features order by 1")
    return found["clinic_id"].tolist()


def test_a_redis_failure_during_publish_leaves_the_store_published_and_redis_on_its_snapshot_whole(published):
    state = published.after_failure
    # the run failed naming the Redis URL and saying what happens next
    assert f"FEATURE_STORE_ONLINE_STORE={published.url}" in published.failure
    assert "OOM" in published.failure or "maxmemory" in published.failure
    assert "previous snapshot, whole" in published.failure and "pushes this version again" in published.failure
    # the store was published whole: a new version with March, the file shows March, March is stamped published
    assert state["version"] == published.mar_version and state["months"] == ["2023-03"]
    assert state["latest_file_month"] == MAR and state["published_march"] > 0
    # Redis kept serving February's version (pushed by the first run, with nothing to publish, as Redis was
    # empty); the failed push had started a snapshot of its own, never switched to
    assert state["redis_version"] == published.feb_version
    assert len(state["half_written"]) == 1
    assert state["reads"] == state["feb_rows"] and {r["feature_month"] for r in state["reads"]} == {FEB}


def test_the_next_publish_pushes_again_and_drops_what_the_failure_left(published):
    snapshot_id, meta = online_status(published.url)
    assert meta.store_version == published.mar_version
    views = set(meta.views)
    assert views == {"client_features", "clinic_features"}
    client = redis.Redis.from_url(published.url)
    assert {m.decode() for m in client.smembers(SNAPSHOTS)} == {snapshot_id}
    assert served_keys(published.url) == {CURRENT, SNAPSHOTS, snapshot_key(snapshot_id, "meta")} | {
        snapshot_key(snapshot_id, view) for view in views
    }


def test_redis_serving_answers_what_memory_answers_for_clients_and_clinics(memory, shared, store, clinics):
    clients = analytics_query(store.settings, "select distinct client_id from features.client_features")
    ids = sorted(clients["client_id"].tolist()) + [424242, -1]
    assert shared.snapshot.clients == memory.snapshot.clients == len(ids) - 2
    for features in (None, FEW, ["zip_code"], ["clinic_revenue_12m"]):
        assert shared.lookup(ids, features) == memory.lookup(ids, features)
    for features in (None, CLINIC_FEW):
        found = shared.lookup([*clinics, 99999], features, entity="clinic_id")
        assert found == memory.lookup([*clinics, 99999], features, entity="clinic_id")
        assert sum(r["success"] for r in found) == len(clinics)
    assert shared.lookup_one(ids[0], ["clinic_features:clients_active"]) is not None
    assert shared.lookup_one(clinics[0], ["clinic_features:clients_active"]) == memory.lookup_one(
        clinics[0], ["clinic_features:clients_active"]
    )
    items = [
        ContractItem(feature_type="tenure_days", entity_id=str(ids[0])),
        ContractItem(feature_type="zip_code", entity_id=str(ids[1])),
        ContractItem(feature_type="tenure_days", entity_id="424242"),
        ContractItem(feature_type="no_such_feature", entity_id=str(ids[0])),
        ContractItem(feature_type="clinic_features:clients_active", entity_id=str(clinics[0])),
        ContractItem(feature_type="hd_adoption_rate", entity_id=str(clinics[1]), entity_type="clinic_id"),
    ]
    assert contract_results(shared.snapshot, items) == contract_results(memory.snapshot, items)
    assert [r["success"] for r in contract_results(shared.snapshot, items)] == [True, True, False, False, True, True]
    assert shared.snapshot.latest_month == memory.snapshot.latest_month == MAR
    assert shared.snapshot.published_at == memory.snapshot.published_at
    assert {name: rows.ledger for name, rows in shared.snapshot.views.items()} == {
        name: rows.ledger for name, rows in memory.snapshot.views.items()
    }


def test_the_python_client_answers_the_same_from_redis(published, store, clinics):
    local = FeatureStore(settings=store.settings)
    from_redis = FeatureStore(settings=replace(store.settings, online_store=published.url))
    ids = march_clients(store)[:300] + [424242]
    assert_frame_equal(
        from_redis.get_online_features({"client_id": ids}, FEW), local.get_online_features({"client_id": ids}, FEW)
    )
    assert_frame_equal(
        from_redis.get_online_features([{"clinic_id": c} for c in clinics], CLINIC_FEW),
        local.get_online_features([{"clinic_id": c} for c in clinics], CLINIC_FEW),
    )
    assert from_redis._online_store().reads_remotely


def test_http_answers_are_the_same_from_redis_and_from_memory(published, store, clinics):
    clients = march_clients(store)
    env = {**os.environ, **store.settings.as_env()}
    env.pop("FEATURE_STORE_ONLINE_STORE", None)

    def healthy(url):
        return call_json(url, "GET", f"{API}/health")[0] == 200

    requests = [
        ("POST", "/inference", {"client_ids": [*clients[:500], 424242]}),
        ("POST", "/inference", {"client_ids": clients[:50], "features": FEW}),
        ("POST", "/inference", {"clinic_ids": [*clinics, 99999], "features": CLINIC_FEW}),
        ("POST", "/inference", {"feature_type": "tenure_days", "entity_id": str(clients[0])}),
        ("POST", "/inference", {"feature_type": "clinic_features:clients_active", "entity_id": str(clinics[0])}),
        ("POST", "/inference", {"feature_type": "tenure_days", "entity_id": "424242"}),
        (
            "POST",
            "/training",
            {
                "features": [
                    {"feature_type": "total_revenue_12m", "entity_id": str(c)} for c in [*clients[:100], 424242]
                ]
                + [{"feature_type": "nope", "entity_id": "1"}]
            },
        ),
        (
            "POST",
            "/training",
            {
                "rows": [
                    {"client_id": c, "event_timestamp": t}
                    for c in [clients[0], clients[1], 424242]
                    for t in ("2023-03-01T00:00:00", "2022-06-01T00:00:00", "2023-04-01T00:00:00")
                ],
                "features": FEW,
            },
        ),
        ("POST", "/training", {"rows": [{"clinic_id": clinics[0], "event_timestamp": "2023-04-01T00:00:00"}]}),
        ("GET", "/discovery?entity_type=clinic_id", None),
        ("POST", "/inference", {"client_ids": [1], "features": ["lifetime_value"]}),
    ]
    answers = {}
    for label, extra in (("memory", {}), ("redis", {"FEATURE_STORE_ONLINE_STORE": published.url})):
        with serving_process(store, {**env, **extra}, healthy) as (url, _):
            answers[label] = [call_json(url, method, API + path, body) for method, path, body in requests]
            status, health = call_json(url, "GET", f"{API}/health")
            answers[label + "_health"] = health
    assert answers["redis"] == answers["memory"]
    assert [status for status, _ in answers["redis"]] == [200] * 10 + [400]
    assert sum(r["success"] for r in answers["redis"][0][1]["results"]) == len(clients[:500])
    memory_health, redis_health = answers["memory_health"], answers["redis_health"]
    assert memory_health.pop("online_store") == {"kind": "memory"}
    online = redis_health.pop("online_store")
    assert online["kind"] == "redis" and online["store_version"] == published.mar_version
    assert online["url"] == published.url
    for health in (memory_health, redis_health):
        health.pop("loaded_at")
    assert redis_health == memory_health


def test_a_reader_during_a_push_sees_one_snapshot_whole(published, store, clinics):
    """Pushes of February's and March's files, one after the other, while a reader asks for the same clients
    over and over: every answer is all February's or all March's, as the in-memory store answers each file."""
    feb_clients = set(
        analytics_query(
            store.settings, "select client_id from features.client_features where feature_month = '2023-02-01'"
        ).client_id
    )
    ids = [c for c in march_clients(store) if c in feb_clients][:2_000]
    expected = {
        "feb": OnlineStore(published.feb_file).lookup(ids),
        "mar": OnlineStore(store.settings.analytics).lookup(ids),
    }
    assert {r["feature_month"] for r in expected["feb"]} == {FEB}
    assert {r["feature_month"] for r in expected["mar"]} == {MAR}
    reader = RedisOnlineStore(store.settings.analytics, published.url)
    seen = {"feb": 0, "mar": 0, "mixed": 0}
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            answers = reader.lookup(ids)
            label = next((name for name, rows in expected.items() if answers == rows), "mixed")
            seen[label] += 1

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for _ in range(4):
            push_snapshot(published.url, published.feb_file, published.feb_version)
            push_snapshot(published.url, store.settings.analytics, published.mar_version)
    finally:
        done.set()
        thread.join()
    assert seen["mixed"] == 0, seen
    assert seen["feb"] > 0 and seen["mar"] > 0, seen
    assert reader.lookup(ids) == expected["mar"]  # the last push
    assert online_status(published.url)[1].store_version == published.mar_version


def test_an_unreachable_online_store_is_named_and_its_password_masked(store):
    port = free_port()  # nothing listens there
    url = f"redis://:hunter2@127.0.0.1:{port}/0"
    with pytest.raises(OnlineStoreError) as raised:
        push_snapshot(url, store.settings.analytics, 1)
    message = str(raised.value)
    assert "hunter2" not in message
    assert f"to the online store FEATURE_STORE_ONLINE_STORE=redis://:***@127.0.0.1:{port}/0: ConnectionError" in message
    with pytest.raises(AnalyticsUnavailable, match="cannot be read") as raised:
        RedisOnlineStore(store.settings.analytics, url)
    assert "hunter2" not in str(raised.value)
    waiting = RedisOnlineStore(store.settings.analytics, url, load=False)
    assert waiting.refresh_if_changed() is False and "redis://:***@" in waiting.last_error
