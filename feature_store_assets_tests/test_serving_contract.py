"""The four-endpoint contract, keys, limits, metrics and offline docs, against `feature-store serve` in its own process.

The contract client below is written from issue #16's description of the API, not from the code:
`GET /discovery` lists {feature_type, name, description, entity_type, data_type, created_at};
`POST /inference` takes {"feature_type", "entity_id": "123"} and answers {feature_type, entity_id,
feature_value, computed_at, success}; `POST /training` takes {"features": [{feature_type, entity_id}]} and
answers {"results", "total_requested", "total_successful"}, going on past a failed item; `POST /extract`
answers {"message", "features_extracted", "total_features"}.
"""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import psutil
import pytest

from feature_store_assets.operations.runs import acquire, release
from feature_store_assets_tests.support.browser import ARTIFACTS, browser_page
from feature_store_assets_tests.support.serving import analytics_query, march_clients, serving_process
from feature_store_assets_tests.support.shared import published_copy

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("serving_contract")]

API = "/api/v1/features"
KEY = "s3cret-key-for-tests"


def call(base, method, path, body=None, key=KEY, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["x-api-key"] = key
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def call_json(*args, **kwargs):
    status, body = call(*args, **kwargs)
    return status, json.loads(body)


@pytest.fixture(scope="module")
def store(tmp_path_factory, small_landing_zone):
    return published_copy(tmp_path_factory, small_landing_zone, "serving_contract")


@pytest.fixture(scope="module")
def server(store) -> Iterator[tuple[str, psutil.Process]]:
    key_file = store.root / "api.key"
    key_file.write_text(KEY + "\n")
    env = {**os.environ, **store.settings.as_env(), "FEATURE_STORE_API_KEY_FILE": str(key_file)}
    env.pop("FEATURE_STORE_API_KEY", None)
    healthy = lambda url: call(url, "GET", f"{API}/health", key=None)[0] == 200  # noqa: E731
    with serving_process(store, env, healthy) as (url, pid):
        yield url, psutil.Process(pid)


@pytest.fixture(scope="module")
def base(server) -> str:
    return server[0]


@pytest.fixture(scope="module")
def clients(store) -> list[int]:
    return march_clients(store)


def test_a_contract_client_lists_features_and_reads_them_online_and_in_a_batch(base, store, clients):
    status, features = call_json(base, "GET", f"{API}/discovery")
    assert status == 200 and isinstance(features, list)
    for entry in features:
        assert {"feature_type", "name", "description", "entity_type", "data_type", "created_at"} <= set(entry)
        assert entry["entity_type"] in ("client_id", "clinic_id") and entry["description"]
    assert [f["entity_type"] for f in features].count("client_id") == 31
    tenure = next(f for f in features if f["name"] == "tenure_days")
    assert tenure["created_at"] is not None  # when its first month was materialized

    client = str(clients[0])
    status, answer = call_json(base, "POST", f"{API}/inference", {"feature_type": "tenure_days", "entity_id": client})
    expected = analytics_query(
        store.settings,
        f"select tenure_days from features.client_features where client_id = {client} and feature_month = '2023-03-01'",
    )["tenure_days"].iloc[0]
    assert status == 200
    assert {"feature_type", "entity_id", "feature_value", "computed_at", "success"} <= set(answer)
    assert answer["success"] is True and answer["entity_id"] == client and answer["feature_value"] == int(expected)
    assert answer["computed_at"]

    batch = {
        "features": [
            {"feature_type": "tenure_days", "entity_id": client},
            {"feature_type": "tenure_days", "entity_id": "999999999"},  # no such client: the batch goes on
            {"feature_type": "lifetime_value", "entity_id": client},  # no such feature
            {"feature_type": "zip_code", "entity_id": str(clients[1])},
        ]
    }
    status, body = call_json(base, "POST", f"{API}/training", batch)
    assert status == 200 and body["total_requested"] == 4 and body["total_successful"] == 2
    assert [r["success"] for r in body["results"]] == [True, False, False, True]
    assert body["results"][0]["feature_value"] == int(expected)
    assert [r.get("reason") for r in body["results"][1:3]] == ["unknown_entity", "unknown_feature"]


def test_the_richer_bodies_keep_working_on_the_same_paths_with_distinguished_reasons(base, clients):
    status, body = call_json(
        base, "POST", f"{API}/inference", {"client_ids": [clients[0]], "features": ["tenure_days"]}
    )
    assert status == 200 and body["results"][0]["success"] is True
    rows = [
        {"client_id": clients[0], "event_timestamp": "2023-04-01T00:00:00"},
        {"client_id": 31337, "event_timestamp": "2023-04-01T00:00:00"},  # unknown client
        {"client_id": clients[0], "event_timestamp": "2022-06-01T00:00:00"},  # before the first month
    ]
    status, body = call_json(base, "POST", f"{API}/training", {"rows": rows, "features": ["tenure_days"]})
    assert status == 200
    assert [r.get("reason") for r in body["rows"]] == [None, "unknown_entity", "no_snapshot_yet"]


def test_reads_need_the_key_when_one_is_configured(base):
    status, body = call_json(base, "GET", f"{API}/discovery", key=None)
    assert status == 401 and "needs the API key" in body["detail"]["message"]
    status, body = call_json(base, "GET", f"{API}/discovery", key="wrong")
    assert status == 403 and "wrong" in body["detail"]["message"]
    assert call(base, "GET", f"{API}/health", key=None)[0] == 200  # a load balancer's probe needs no key


def test_extract_needs_the_key_and_is_refused_while_a_run_holds_the_warehouse(base, store):
    assert call(base, "POST", f"{API}/extract", {}, key=None)[0] == 401
    assert call(base, "POST", f"{API}/extract", {}, key="wrong")[0] == 403
    acquire(store.settings.warehouse, "run-held-by-the-test")
    try:
        status, body = call_json(base, "POST", f"{API}/extract", {"month": "2023-04"})
    finally:
        release(store.settings.warehouse)
    assert status == 409 and "run-held-by-the-test" in body["detail"]["message"]
    status, body = call_json(base, "POST", f"{API}/extract", {"month": "April"})
    assert status == 422 and "April" not in json.dumps(body)


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("inference", {"client_ids": [True]}, ["body", "client_ids", "client_ids", 0]),
        ("inference", {"client_ids": ["123"]}, ["body", "client_ids", "client_ids", 0]),
        ("inference", {"client_ids": [10**30]}, ["body", "client_ids", "client_ids", 0]),
        ("inference", {"feature_type": "tenure_days", "entity_id": 123}, ["body", "contract", "entity_id"]),
        ("inference", {"feature_type": "tenure_days", "entity_id": "1" * 30}, ["body", "contract", "entity_id"]),
        (
            "inference",
            {"feature_type": "tenure_days", "entity_id": "12", "entity_type": "pet_id"},
            ["body", "contract", "entity_type"],
        ),
        (
            "training",
            {"rows": [{"client_id": 10**30, "event_timestamp": "2023-03-01T00:00:00"}]},
            ["body", "rows", "rows", 0, "client_id"],
        ),
        (
            "training",
            {"rows": [{"client_id": True, "event_timestamp": "2023-03-01T00:00:00"}]},
            ["body", "rows", "rows", 0, "client_id"],
        ),
    ],
)
def test_wrongly_typed_and_out_of_range_ids_are_a_422_naming_the_field(base, path, body, field):
    status, answer = call_json(base, "POST", f"{API}/{path}", body)
    assert status == 422, answer
    assert answer["detail"][0]["loc"] == field
    assert "input" not in answer["detail"][0]


def test_the_fault_trial_keeps_memory_bounded_and_errors_short(server, store, clients):
    base, process = server
    names = [f["name"] for f in call_json(base, "GET", f"{API}/discovery?entity_type=client_id")[1]]
    call_json(base, "POST", f"{API}/inference", {"client_ids": clients[:10]})  # warm
    before = process.memory_info().rss
    for i in range(60):  # each a different list of 20,000 valid names: over the limit, refused short
        features = [names[(i + j * 7) % len(names)] for j in range(20_000)]
        status, body = call(base, "POST", f"{API}/inference", {"client_ids": [clients[0]], "features": features})
        assert status == 422 and len(body) < 2_000
    for i in range(60):  # different orders and repeats of valid lists within the limit: served, cached canonically
        features = [names[(i * 5 + j) % len(names)] for j in range(200)]
        assert call(base, "POST", f"{API}/inference", {"client_ids": [clients[0]], "features": features})[0] == 200
    status, body = call(base, "POST", f"{API}/inference", {"client_ids": list(range(100_000))})
    assert status == 422 and len(body) < 2_000
    rows = [{"client_id": 1, "event_timestamp": "2023-03-01T00:00:00"}] * 100_001
    status, body = call(base, "POST", f"{API}/training", {"rows": rows})
    assert status == 422 and len(body) < 2_000
    growth = process.memory_info().rss - before
    assert growth < 60 * 2**20, f"the server grew by {growth / 2**20:.0f} MB"


def test_a_body_over_the_limit_is_a_413_before_it_is_read(base):
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            f"POST {API}/inference HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"x-api-key: {KEY}\r\nContent-Length: 50000000\r\n\r\n".encode()
        )
        answer = b""
        while b"}}" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413") and "request body over 8,388,608 bytes" in answer


def test_metrics_count_what_was_sent(base, clients):
    def scrape() -> str:
        return call(base, "GET", "/metrics", key=None)[1].decode()

    def value(text: str, name: str, **labels) -> float:
        wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
        selector = re.escape(f"{{{wanted}}}") if labels else ""
        match = re.search(rf"^{name}{selector} (\S+)$", text, re.M)
        return float(match.group(1)) if match else 0.0

    before = scrape()
    for _ in range(3):
        call(base, "POST", f"{API}/inference", {"client_ids": [clients[0], clients[1], -5]})
    call(base, "POST", f"{API}/inference", {"client_ids": "x"})
    after = scrape()
    endpoint = f"{API}/inference"
    ok = {"endpoint": endpoint, "method": "POST", "status": "200"}
    assert (
        value(after, "feature_store_http_requests_total", **ok)
        - value(before, "feature_store_http_requests_total", **ok)
        == 3
    )
    assert (
        value(after, "feature_store_http_request_duration_seconds_count", **ok)
        - value(before, "feature_store_http_request_duration_seconds_count", **ok)
        == 3
    )
    bad = {"endpoint": endpoint, "status": "422"}
    assert (
        value(after, "feature_store_http_errors_total", **bad) - value(before, "feature_store_http_errors_total", **bad)
        == 1
    )
    assert (
        value(after, "feature_store_online_lookups_total", result="hit")
        - value(before, "feature_store_online_lookups_total", result="hit")
        == 6
    )
    assert (
        value(after, "feature_store_online_lookups_total", result="miss")
        - value(before, "feature_store_online_lookups_total", result="miss")
        == 3
    )
    assert value(after, "feature_store_reloads_total") >= 1
    assert value(after, "feature_store_snapshot_age_seconds") > 0


def test_docs_are_served_from_installed_files_with_no_cdn(base):
    for path in ("/docs", f"{API}/docs"):
        status, page = call(base, "GET", path, key=None)
        assert status == 200 and b"swagger" in page.lower()
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.decode())
        assert assets and all(a.startswith(f"{API}/docs-assets/") for a in assets), assets
        for asset in assets:
            status, content = call(base, "GET", asset, key=None)
            assert status == 200 and len(content) > 100, asset
    status, document = call_json(base, "GET", f"{API}/openapi.json", key=None)
    assert {f"{API}/discovery", f"{API}/inference", f"{API}/training", f"{API}/extract", f"{API}/health"} <= set(
        document["paths"]
    )
    assert "Two request shapes" in document["info"]["description"]


def test_docs_and_redoc_render_in_a_browser_that_reaches_nothing_but_the_server(base):
    """The issue's "renders offline": chromium loads /docs and /redoc, every request it makes goes to the
    server, and the pages show the API's endpoints."""
    with browser_page() as page:
        requested = []
        page.on("request", lambda request: requested.append(request.url))
        for path, endpoint in (("/docs", f"{API}/discovery"), ("/redoc", "discovery")):
            page.goto(base + path)
            page.get_by_text(endpoint, exact=False).first.wait_for()
            assert "Client feature store" in page.title()
            page.screenshot(path=ARTIFACTS / f"api{path.replace('/', '-')}.png")
        outside = [url for url in requested if not url.startswith((base, "data:", "blob:"))]
        assert requested and outside == [], outside
