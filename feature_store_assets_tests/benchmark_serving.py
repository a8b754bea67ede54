"""Serving benchmark behind the numbers in docs/serving.md (not a test: run it by hand).

    python -m feature_store_assets_tests.benchmark_serving PUBLISHED.duckdb [WORKDIR]

PUBLISHED is any analytics file published by `feature-store materialize` (its schema and catalog are
reused); the benchmark writes a synthetic one of 200,000 clients x 24 months (4.8M rows) in WORKDIR.
"""

from __future__ import annotations

import http.client
import json
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from feature_store_assets.serving import OnlineStore, get_training_features
from feature_store_assets_tests.support.serving import synthetic_analytics

CLIENTS, MONTHS, ROWS = 200_000, 24, 1_000_000
FEW = ["tenure_days", "total_revenue_12m", "days_since_last_purchase", "zip_avg_agi", "web_sessions_3m"]


def percentiles(seconds: list[float], scale: float) -> str:
    p50, p99 = np.percentile(np.array(seconds) * scale, [50, 99])
    return f"p50 {p50:.2f} p99 {p99:.2f}"


def training(path: Path) -> None:
    rng = np.random.default_rng(1)
    entities = pd.DataFrame(
        {
            "client_id": rng.integers(0, int(CLIENTS * 1.05), ROWS),  # 5% unknown clients
            "event_timestamp": pd.Timestamp("2022-01-01")
            + pd.to_timedelta(rng.integers(0, 26 * 30 * 86400, ROWS), unit="s"),
            "label": rng.integers(0, 2, ROWS),
        }
    )
    for features in (None, None, None, FEW, FEW):
        began = time.perf_counter()
        rows = get_training_features(entities, features, analytics=path)
        print(f"training {ROWS:,} rows x {rows.shape[1] - 4} features: {time.perf_counter() - began:.2f} s")
        del rows
    print(f"training peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def online(path: Path) -> OnlineStore:
    store = OnlineStore(path)
    for _ in range(3):
        print(f"refresh of {store.snapshot.clients:,} clients: {store.refresh().load_seconds:.2f} s")
    ids = np.random.default_rng(2).integers(0, CLIENTS, 100_000).tolist()
    for label, features in (("31 features", None), ("5 features", FEW)):
        timings = []
        for client in ids:
            began = time.perf_counter()
            store.lookup_one(client, features)
            timings.append(time.perf_counter() - began)
        print(f"in-process lookup, 1 client, {label}: {percentiles(timings, 1e6)} µs")
    return store


def over_http(path: Path) -> None:
    import socket

    import uvicorn

    from feature_store_assets.serving.api import PREFIX, create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(path), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    connection = http.client.HTTPConnection("127.0.0.1", port)  # one kept-alive connection, like a service's pool
    ids = np.random.default_rng(3).integers(0, CLIENTS, 3_000).tolist()
    cases = {
        "1 client, 31 features": lambda c: {"client_ids": [c]},
        "1 client, 5 features": lambda c: {"client_ids": [c], "features": FEW},
        "100 clients, 31 features": lambda c: {"client_ids": list(range(c, c + 100))},
    }
    for label, body in cases.items():
        timings = []
        for client in ids:
            payload = json.dumps(body(client)).encode()
            began = time.perf_counter()
            connection.request("POST", f"{PREFIX}/inference", payload, {"content-type": "application/json"})
            response = connection.getresponse()
            response.read()
            timings.append(time.perf_counter() - began)
            assert response.status == 200
        print(f"HTTP inference, {label}: {percentiles(timings, 1e3)} ms")
    rows = [{"client_id": c, "event_timestamp": "2023-06-15T12:00:00"} for c in ids * 4][:10_000]
    began = time.perf_counter()
    connection.request(
        "POST", f"{PREFIX}/training", json.dumps({"rows": rows}).encode(), {"content-type": "application/json"}
    )
    response = connection.getresponse()
    response.read()
    print(f"HTTP training, 10,000 rows x 31 features: {time.perf_counter() - began:.2f} s (status {response.status})")
    server.should_exit = True
    thread.join()


def main() -> None:
    published = Path(sys.argv[1])
    workdir = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix="serving-benchmark-"))
    path = workdir / "analytics.duckdb"
    if not path.exists():
        synthetic_analytics(published, path, CLIENTS, MONTHS)
    print(f"synthetic analytics file: {path} ({CLIENTS:,} clients x {MONTHS} months)")
    training(path)
    online(path)
    over_http(path)


if __name__ == "__main__":
    main()
