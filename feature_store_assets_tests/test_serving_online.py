"""Online lookup over really published months, its refresh when a new month is published, and its speed."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from benchmarks.serving import synthetic_analytics
from feature_store_assets.serving.online import UNKNOWN_CLIENT, OnlineStore
from feature_store_assets.serving.published import AnalyticsUnavailable, UnknownFeatures
from feature_store_assets.serving.training import get_training_features
from feature_store_assets_tests.support.serving import (
    analytics_query,
    copy_store,
    materialize,
)
from feature_store_assets_tests.support.shared import published_copy

# one worker per module: its module-scoped materialization runs once
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("serving_online")]

FEB, MAR = date(2023, 2, 1), date(2023, 3, 1)
LATEST_ROWS = """select * from features.client_features
    qualify feature_month = max(feature_month) over (partition by client_id)"""


@pytest.fixture(scope="module")
def store(tmp_path_factory, small_landing_zone):
    return published_copy(tmp_path_factory, small_landing_zone, "serving_online", "2023-01", "2023-02")


@pytest.fixture(scope="module")
def online(store):
    return OnlineStore(store.settings.analytics)


@pytest.fixture(scope="module")
def latest(store) -> pd.DataFrame:
    return analytics_query(store.settings, LATEST_ROWS).set_index("client_id")


def plain(value):
    return None if pd.isna(value) else value


def test_every_client_gets_its_latest_published_row(online, latest):
    names = online.catalog.names
    results = online.lookup(latest.index.tolist())
    assert all(r["success"] for r in results) and len(results) == len(latest) == online.snapshot.clients
    for result in results:
        expected = latest.loc[result["client_id"]]
        assert result["feature_month"] == expected["feature_month"].date()
        assert list(result["features"]) == names
        assert list(result["features"].values()) == pytest.approx([plain(expected[n]) for n in names])


def test_values_keep_their_types(online, latest):
    client = int(latest.index[0])
    features = online.lookup_one(client)["features"]
    assert type(features["tenure_days"]) is int and type(features["total_revenue_12m"]) is float
    assert type(features["zip_income_match"]) is str
    no_sessions = latest[latest["web_sessions_3m"] == 0].index[0]
    assert online.lookup_one(int(no_sessions), ["web_conversion_rate_3m"])["features"] == {
        "web_conversion_rate_3m": None
    }


def test_staleness_is_visible_per_entity_and_per_file(online, store):
    snapshot = online.snapshot
    ledger = analytics_query(
        store.settings, "select month, materialized_at from quality.materialized_months where model = 'client_features'"
    )
    computed = {row.month.date(): row.materialized_at.to_pydatetime() for row in ledger.itertuples()}
    result = online.lookup([next(iter(snapshot.index))])[0]
    assert result["computed_at"] == computed[result["feature_month"]]
    assert snapshot.latest_month == FEB
    mtime = datetime.fromtimestamp(os.stat(store.settings.analytics).st_mtime_ns / 1e9, tz=UTC)
    assert snapshot.published_at == mtime


def test_unknown_clients_are_reported_per_entity_in_request_order(online, latest):
    known = [int(c) for c in latest.index[:2]]
    results = online.lookup([known[0], 424242, known[1], known[0]], ["tenure_days"])
    assert [r["client_id"] for r in results] == [known[0], 424242, known[1], known[0]]
    assert [r["success"] for r in results] == [True, False, True, True]
    assert results[1] == {"client_id": 424242, "success": False, "message": UNKNOWN_CLIENT}
    assert results[0] == results[3]
    assert list(results[0]["features"]) == ["tenure_days"]


def test_unknown_feature_names_fail_the_request_listing_the_valid_ones(online):
    with pytest.raises(UnknownFeatures) as raised:
        online.lookup([1], ["tenure_days", "lifetime_value"])
    assert raised.value.unknown == ["lifetime_value"] and "tenure_days" in raised.value.valid


def test_online_values_are_what_training_gives_an_event_after_the_latest_month(online, store, latest):
    entities = pd.DataFrame({"client_id": latest.index, "event_timestamp": pd.Timestamp("2023-03-01")})
    offline = get_training_features(entities, analytics=store.settings.analytics)
    for row, result in zip(offline.itertuples(index=False), online.lookup(latest.index.tolist())):
        assert row.feature_month.date() == result["feature_month"]
        assert [plain(getattr(row, n)) for n in result["features"]] == pytest.approx(list(result["features"].values()))


def test_a_newly_published_month_is_picked_up(store, tmp_path):
    later = copy_store(store, tmp_path / "later")
    manual = OnlineStore(later.settings.analytics)
    watched = OnlineStore(later.settings.analytics).watch(interval=0.1)
    try:
        assert manual.snapshot.latest_month == watched.snapshot.latest_month == FEB
        assert manual.refresh_if_changed() is False  # nothing new yet
        materialize(later, "2023-03", "2023-03")
        assert manual.refresh_if_changed() is True
        assert manual.snapshot.latest_month == MAR and manual.refresh_if_changed() is False
        march = analytics_query(
            later.settings, "select client_id from features.client_features where feature_month = '2023-03-01'"
        )
        client = int(march["client_id"].iloc[0])
        assert manual.lookup_one(client)["feature_month"] == MAR
        deadline = time.monotonic() + 10
        while watched.snapshot.latest_month != MAR and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watched.lookup_one(client)["feature_month"] == MAR
    finally:
        watched.close()


def test_a_broken_file_keeps_the_current_snapshot_in_service(store, tmp_path):
    path = tmp_path / "analytics.duckdb"
    path.write_bytes(store.settings.analytics.read_bytes())
    online = OnlineStore(path)
    client = next(iter(online.snapshot.index))
    staging = tmp_path / ".staging"
    staging.write_bytes(b"not a duckdb file")
    os.replace(staging, path)
    assert online.refresh_if_changed() is False
    assert "refresh" in online.last_error
    assert online.lookup_one(client)["success"] is True


def test_no_published_file_yet(tmp_path):
    with pytest.raises(AnalyticsUnavailable, match="materialize"):
        OnlineStore(tmp_path / "missing.duckdb")
    waiting = OnlineStore(tmp_path / "missing.duckdb", load=False)
    assert waiting.refresh_if_changed() is False
    with pytest.raises(AnalyticsUnavailable):
        waiting.lookup([1])


def test_200k_clients_load_and_every_lookup_answers(store, tmp_path):
    """At 200,000 clients the snapshot loads whole and lookups answer each client of the latest month; how fast
    (refresh seconds, lookup p99) is measured by the benchmark (`python -m benchmarks.serving`), not asserted here."""
    path = synthetic_analytics(store.settings.analytics, tmp_path / "large.duckdb", clients=200_000, months=3)
    online = OnlineStore(path)
    assert online.snapshot.clients == 200_000
    assert online.refresh().clients == 200_000
    ids = np.random.default_rng(0).integers(0, 200_000, 2_000).tolist()
    answers = [online.lookup_one(client) for client in ids]
    assert len(answers) == len(ids)
    assert {answer["client_id"] for answer in answers} == set(ids)
    assert all(answer["success"] for answer in answers)
