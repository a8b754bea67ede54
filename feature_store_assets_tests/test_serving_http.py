"""The HTTP API, served by `feature-store serve` (real uvicorn, own process) over really published months."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from feature_store_assets.core.months import month_folder, parse_month
from feature_store_assets.defs.landing_zone.validation import EVENT_TABLES
from feature_store_assets.serving.catalog import load_catalog
from feature_store_assets.serving.online import UNKNOWN_CLIENT
from feature_store_assets_tests.support.serving import (
    analytics_query,
    free_port,
    march_clients,
    serving_process,
)
from feature_store_assets_tests.support.shared import published_copy

# one worker per module: its module-scoped materialization runs once
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("serving_http")]

API = "/api/v1/features"


def call(base: str, method: str, path: str, body: object = None, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def store(tmp_path_factory, small_landing_zone):
    return published_copy(tmp_path_factory, small_landing_zone, "serving_http")


@pytest.fixture(scope="module")
def base(store) -> Iterator[str]:
    env = {**os.environ, **store.settings.as_env()}
    with serving_process(store, env, lambda url: call(url, "GET", f"{API}/health")[0] == 200) as (url, _):
        yield url


@pytest.fixture(scope="module")
def clients(store) -> list[int]:
    return march_clients(store)


def test_health_reports_the_latest_month_its_age_and_that_a_landed_month_is_overdue(base, store, clients):
    # 2023-01..2023-03 are served; the landing zone also holds 2023-04, long past due: the store is late
    status, health = call(base, "GET", f"{API}/health")
    assert status == 200 and health["status"] == "stale" and health["stale"] is True
    assert health["freshness"]["state"] == "overdue"
    message = health["freshness"]["message"]
    assert message.startswith("overdue: the analytics file holds 2023-03, but 2023-04 has landed in ")
    assert str(store.raw_dir) in message and "was due at 2023-05-05 06:00 UTC" in message
    assert health["latest_feature_month"] == "2023-03-01"
    assert health["age_days"] == (datetime.now(UTC).date() - date(2023, 4, 1)).days
    assert health["clients"] >= len(clients) and health["features"] == 31


@contextmanager
def app_server(app) -> Iterator[str]:
    """The app on a real uvicorn server in a thread; yields its URL."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def folder_names_only(raw_dir: Path, months: list[str]) -> Path:
    """A landing zone of empty files: freshness reads folder and file names, never the files."""
    for table in EVENT_TABLES:
        for month in months:
            (raw_dir / table / month_folder(parse_month(month))).mkdir(parents=True)
            (raw_dir / table / month_folder(parse_month(month)) / "part-0.parquet").touch()
    return raw_dir


def test_health_says_the_source_is_late_when_the_landing_zone_has_nothing_newer(store, tmp_path):
    from feature_store_assets.serving.api import create_app

    raw_dir = folder_names_only(tmp_path / "raw", ["2023-01", "2023-02", "2023-03"])
    with app_server(create_app(store.settings.analytics, raw_dir=raw_dir)) as url:
        status, health = call(url, "GET", f"{API}/health")
    assert status == 200 and health["status"] == "stale" and health["stale"] is True
    assert health["freshness"]["state"] == "source_late"
    message = health["freshness"]["message"]
    assert message.startswith(
        "source late: the landing zone's newest complete month, 2023-03, is published; 2023-04 was due"
    )
    assert f"{raw_dir}/<table>/month=2023-04/" in message
    assert health["latest_feature_month"] == "2023-03-01"


def test_discovery_lists_and_filters_the_catalog(base, store):
    status, found = call(base, "GET", f"{API}/discovery")
    assert status == 200 and len([f for f in found if f["entity_type"] == "client_id"]) == 31
    assert [f["feature_type"] for f in found] == load_catalog(store.settings.analytics).feature_types
    status, web = call(base, "GET", f"{API}/discovery?tag=web&source_table=web_sessions.orders")
    assert [f["name"] for f in web] == ["web_orders_3m", "web_conversion_rate_3m"]
    status, one = call(base, "GET", f"{API}/discovery/hd_revenue_share_12m")
    assert (
        status == 200 and one["description"] == "hd_revenue_12m / total_revenue_12m; NULL when total_revenue_12m <= 0"
    )
    assert one["window"] == "12m" and one["last_month"] == "2023-03-01" and one["leakage_risk"] == "low"
    status, missing = call(base, "GET", f"{API}/discovery/nope")
    assert status == 404 and "tenure_days" in missing["detail"]["valid_features"]


def test_inference_flags_each_entity(base, store, clients):
    status, body = call(
        base,
        "POST",
        f"{API}/inference",
        {"client_ids": [clients[0], -5, clients[1]], "features": ["tenure_days", "zip_code"]},
    )
    assert status == 200
    assert body["latest_feature_month"] == "2023-03-01" and body["published_at"]
    first, unknown, second = body["results"]
    assert unknown == {"client_id": -5, "success": False, "message": UNKNOWN_CLIENT, "reason": "unknown_entity"}
    expected = analytics_query(
        store.settings,
        f"select tenure_days, zip_code from features.client_features where client_id = {clients[0]} and feature_month = '2023-03-01'",
    ).iloc[0]
    assert first["success"] is True and first["feature_month"] == "2023-03-01" and first["computed_at"]
    assert first["features"] == {"tenure_days": int(expected["tenure_days"]), "zip_code": expected["zip_code"]}
    assert (
        second["client_id"] == clients[1]
        and len(call(base, "POST", f"{API}/inference", {"client_ids": [clients[1]]})[1]["results"][0]["features"]) == 31
    )


def test_unknown_features_are_a_400_listing_the_valid_ones(base, clients):
    status, body = call(
        base, "POST", f"{API}/inference", {"client_ids": [clients[0]], "features": ["tenure_days", "ltv"]}
    )
    assert status == 400
    assert body["detail"]["unknown_features"] == ["ltv"] and "tenure_days" in body["detail"]["valid_features"]
    status, body = call(
        base,
        "POST",
        f"{API}/training",
        {"rows": [{"client_id": 1, "event_timestamp": "2023-03-01T00:00:00"}], "features": ["ltv"]},
    )
    assert status == 400 and body["detail"]["unknown_features"] == ["ltv"]


@pytest.mark.parametrize(
    "path, body",
    [
        ("inference", {"client_ids": "17"}),
        ("inference", {"client_ids": []}),
        ("inference", {"client_ids": ["seventeen"]}),
        ("inference", {"client_ids": [1], "feature": ["tenure_days"]}),  # misspelt field
        ("inference", {}),
        ("training", {"rows": [{"client_id": 1}]}),
        ("training", {"rows": [{"client_id": 1, "event_timestamp": "yesterday"}]}),
        ("training", {"rows": [{"client_id": 1, "event_timestamp": "2023-03-01T00:00:00+02:00"}]}),
        ("training", {"rows": [{"client_id": 1, "event_timestamp": "2023-03-01T00:00:00"}], "max_age_months": -1}),
    ],
)
def test_malformed_bodies_are_a_422(base, path, body):
    status, answer = call(base, "POST", f"{API}/{path}", body)
    assert status == 422, answer
    assert answer["detail"][0]["loc"][0] == "body"


def test_broken_json_is_a_422(base):
    assert call(base, "POST", f"{API}/inference", raw=b'{"client_ids": [1,')[0] == 422


def test_training_rows_are_point_in_time_correct(base, store, clients):
    client = clients[0]
    months = analytics_query(
        store.settings, f"select feature_month from features.client_features where client_id = {client} order by 1"
    )
    assert months["feature_month"].dt.date.tolist()[-2:] == [date(2023, 2, 1), date(2023, 3, 1)]
    rows = [
        {"client_id": client, "event_timestamp": "2023-04-01T00:00:00"},
        {"client_id": client, "event_timestamp": "2023-03-31T23:59:59.999999"},
        {"client_id": 31337, "event_timestamp": "2023-04-01T00:00:00"},
        {"client_id": client, "event_timestamp": "2023-07-01T00:00:00"},
    ]
    status, body = call(base, "POST", f"{API}/training", {"rows": rows, "features": ["tenure_days"]})
    assert status == 200
    assert [r.get("feature_month") for r in body["rows"]] == ["2023-03-01", "2023-02-01", None, "2023-03-01"]
    assert [r["success"] for r in body["rows"]] == [True, True, False, True]
    assert body["rows"][2]["reason"] == "unknown_entity" and body["rows"][2]["message"] == UNKNOWN_CLIENT
    assert body["rows"][0]["event_timestamp"] == "2023-04-01T00:00:00"
    status, aged = call(
        base, "POST", f"{API}/training", {"rows": rows, "features": ["tenure_days"], "max_age_months": 1}
    )
    assert [r["success"] for r in aged["rows"]] == [True, True, False, False]
    assert "max_age_months=1" in aged["rows"][3]["message"]


def test_openapi_document_is_served(base):
    status, document = call(base, "GET", f"{API}/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    assert {f"{API}/discovery", f"{API}/inference", f"{API}/training", f"{API}/health"} <= set(document["paths"])
    assert set(document["paths"][f"{API}/inference"]) == {"post"}
    with urllib.request.urlopen(base + f"{API}/docs", timeout=30) as docs:
        assert docs.status == 200 and b"swagger" in docs.read().lower()


def test_before_anything_is_published_the_api_says_503_and_starts_anyway(tmp_path):
    from feature_store_assets.serving.api import create_app

    raw_dir = folder_names_only(tmp_path / "raw", ["2023-01"])
    with app_server(create_app(tmp_path / "missing.duckdb", raw_dir=raw_dir)) as url:
        status, health = call(url, "GET", f"{API}/health")
        assert status == 503 and health["status"] == "unavailable" and "materialize" in health["message"]
        assert health["freshness"]["state"] == "unpublished"
        assert "nothing is published; the landing zone" in health["freshness"]["message"]
        assert call(url, "POST", f"{API}/inference", {"client_ids": [1]})[0] == 503
