"""The project's side of items 5 and 6: point-in-time training retrieval and online lookup over a published file.

Run by benchmarks.run in child processes, so each measurement has its own peak memory:

    python -m benchmarks.serving training ANALYTICS ENTITIES.parquet OUT.parquet
    python -m benchmarks.serving online ANALYTICS LOOKUPS
    python -m benchmarks.serving http URL LOOKUPS CLIENTS         # the client side; the server is `feature-store serve`
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import numpy as np
import pandas as pd

START = pd.Timestamp("2022-01-01")  # first snapshot month of the synthetic analytics file


def synthetic_store(real_analytics: Path, out: Path, clients: int, months: int) -> Path:
    """A published-like analytics file: the real schema and catalog, clients x months rows of random values."""
    from feature_store_assets_tests.support.serving import synthetic_analytics

    return synthetic_analytics(real_analytics, out, clients, months)


def entity_rows(clients: int, months: int, rows: int, seed: int = 1) -> pd.DataFrame:
    """Labelled rows for training retrieval: 5% unknown clients, timestamps from the first snapshot month to 2 months after the last."""
    rng = np.random.default_rng(seed)
    span = (START + pd.DateOffset(months=months + 2) - START).total_seconds()
    return pd.DataFrame(
        {
            "row_id": np.arange(rows, dtype=np.int64),
            "client_id": rng.integers(0, int(clients * 1.05), rows),
            "event_timestamp": (START + pd.to_timedelta(rng.integers(0, int(span), rows), unit="s")).astype(
                "datetime64[us]"
            ),
        }
    )


def export_snapshots(analytics: Path, out: Path) -> Path:
    """The feature table as Feast reads it: one file, with available_at = E (first day of M+1) as its timestamp."""
    with duckdb.connect(str(analytics), read_only=True) as con:
        con.execute(
            f"copy (select * exclude (feature_month), (feature_month + interval 1 month)::timestamp as available_at "
            f"from features.client_features) to '{out}' (format parquet)"
        )
    return out


def training(analytics: Path, entities: Path, out: Path) -> dict:
    from feature_store_assets.serving import get_training_features

    rows = pd.read_parquet(entities)
    began = time.perf_counter()
    result = get_training_features(rows, analytics=analytics)
    seconds = time.perf_counter() - began
    result.drop(columns=["event_timestamp"]).to_parquet(out)
    return {"seconds": seconds, "rows_in": len(rows), "rows_out": len(result), "features": result.shape[1] - 4}


def online(analytics: Path, lookups: int) -> dict:
    from feature_store_assets.serving import OnlineStore

    began = time.perf_counter()
    store = OnlineStore(analytics)
    first_load = time.perf_counter() - began
    refreshes = [store.refresh().load_seconds for _ in range(3)]
    ids = np.random.default_rng(2).integers(0, store.snapshot.clients, lookups).tolist()
    timings = []
    for client in ids:
        began = time.perf_counter()
        store.lookup_one(client)
        timings.append(time.perf_counter() - began)
    p50, p99 = np.percentile(np.array(timings) * 1e6, [50, 99])
    return {
        "clients": store.snapshot.clients,
        "load_seconds": first_load,
        "refresh_seconds": min(refreshes),
        "lookups": lookups,
        "p50_us": p50,
        "p99_us": p99,
    }


def over_http(url: str, lookups: int, clients: int) -> dict:
    from feature_store_assets.serving.api import PREFIX

    target = urlparse(url)
    connection = http.client.HTTPConnection(
        target.hostname, target.port
    )  # one kept-alive connection, like a service's pool
    ids = np.random.default_rng(3).integers(0, clients, lookups).tolist()
    timings = []
    for client in ids:
        payload = json.dumps({"client_ids": [client]}).encode()
        began = time.perf_counter()
        connection.request("POST", f"{PREFIX}/inference", payload, {"content-type": "application/json"})
        response = connection.getresponse()
        response.read()
        timings.append(time.perf_counter() - began)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status} for client {client}")
    p50, p99 = np.percentile(np.array(timings) * 1e3, [50, 99])
    return {"lookups": lookups, "p50_ms": p50, "p99_ms": p99}


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "training":
        report = training(Path(args[0]), Path(args[1]), Path(args[2]))
    elif command == "online":
        report = online(Path(args[0]), int(args[1]))
    elif command == "http":
        report = over_http(args[0], int(args[1]), int(args[2]))
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
