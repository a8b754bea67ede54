"""The project's side of items 5 and 6: point-in-time training retrieval and online lookup over a published file.

Run by benchmarks.run in child processes, so each measurement has its own peak memory:

    python -m benchmarks.serving training ANALYTICS ENTITIES.parquet OUT.parquet
    python -m benchmarks.serving online ANALYTICS LOOKUPS
    python -m benchmarks.serving http URL LOOKUPS CLIENTS         # the client side; the server is `feature-store serve`

and by hand, for the table of docs/serving.md (a synthetic file of 200,000 clients x 24 months, 4.8M rows,
written in WORKDIR from PUBLISHED, any analytics file `feature-store materialize` published):

    python -m benchmarks.serving table PUBLISHED.duckdb [WORKDIR]

and, on the same rows, training retrieval and the online refresh on the published store against one DuckDB file
of tables (the analytics file's layout before the store), alternating:

    python -m benchmarks.serving compare PUBLISHED.duckdb [WORKDIR]
"""

from __future__ import annotations

import http.client
import json
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import numpy as np
import pandas as pd

from benchmarks.synthetic import value_sql
from feature_store_assets.warehouse.connections import quote, sql_string

START = pd.Timestamp("2022-01-01")  # first snapshot month of the synthetic analytics file
# the table of docs/serving.md: its file's shape, its training rows, and the few features of its "5 features" rows
TABLE_CLIENTS, TABLE_MONTHS, TABLE_ROWS = 200_000, 24, 1_000_000
FEW = ["tenure_days", "total_revenue_12m", "days_since_last_purchase", "zip_avg_agi", "web_sessions_3m"]


def synthetic_analytics(real: Path, out: Path, clients: int, months: int, tables: Path | None = None) -> Path:
    """A published analytics file of synthetic features: the real schema and catalog (from `real`, any published
    analytics file), `clients` x `months` rows of synthetic values (10% NULLs in the double and text columns,
    benchmarks/synthetic.py), months from START. Written as a warehouse and published through the store, as the
    pipeline publishes: Delta tables in `published/` beside `out` (partitioned by month), `out` views over them.
    `tables`: where to keep that warehouse, one DuckDB file of tables (the analytics file's layout before the
    store; in a folder without `published/`, so serving reads it as it is)."""
    from feature_store_assets.defs.publish.analytics import publish_analytics

    warehouse, store_dir = out.with_name(f"{out.stem}-warehouse.duckdb"), out.parent / "published"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    warehouse.unlink(missing_ok=True)
    shutil.rmtree(store_dir, ignore_errors=True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"attach {sql_string(str(real))} as real (read_only)")
        columns = con.execute(
            "select column_name, data_type from duckdb_columns() where database_name = 'real' "
            "and schema_name = 'features' and table_name = 'client_features' order by column_index"
        ).fetchall()
        values = {
            "client_id": "c.id",
            "feature_month": f"(date '{START.date()}' + to_months(m.i::int))::date",
            "clinic_id": "c.id % 400",
        }
        selected = [
            f"{values.get(name) or value_sql(data_type, 'c.id * 1000 + m.i', name, values['feature_month'])} as {quote(name)}"
            for name, data_type in columns
        ]
        con.execute("create schema features")
        con.execute(
            f"create table features.client_features as select {', '.join(selected)} "
            f"from range({clients}) c(id), range({months}) m(i) order by feature_month, client_id"
        )
        con.execute(  # the client features' entries: the file has no clinic_features
            "create table features.feature_catalog as select * from real.features.feature_catalog "
            "where entity = 'client_id'"
        )
    publish_analytics(warehouse, out, store_dir=store_dir)
    if tables is None:
        warehouse.unlink()
    else:
        tables.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(warehouse, tables)
    return out


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
            f"from features.client_features) to {sql_string(str(out))} (format parquet)"
        )
    return out


def training(analytics: Path, entities: Path, out: Path | None, features: list[str] | None = None) -> dict:
    from feature_store_assets.serving import get_training_features

    rows = pd.read_parquet(entities)
    began = time.perf_counter()
    result = get_training_features(rows, features, analytics=analytics)
    seconds = time.perf_counter() - began
    if out is not None:
        result.drop(columns=["event_timestamp"]).to_parquet(out)
    return {"seconds": seconds, "rows_in": len(rows), "rows_out": len(result), "features": result.shape[1] - 4}


def lookup_percentiles(store, lookups: int, features: list[str] | None = None) -> tuple[float, float]:
    """p50 and p99 of `store.lookup_one` (an OnlineStore, in memory or Redis-backed) for random clients, µs."""
    ids = np.random.default_rng(2).integers(0, store.snapshot.clients, lookups).tolist()
    timings = []
    for client in ids:
        began = time.perf_counter()
        store.lookup_one(client, features)
        timings.append(time.perf_counter() - began)
    p50, p99 = np.percentile(np.array(timings) * 1e6, [50, 99])
    return p50, p99


def online(analytics: Path, lookups: int, features: list[str] | None = None) -> dict:
    from feature_store_assets.serving import OnlineStore

    began = time.perf_counter()
    store = OnlineStore(analytics)
    first_load = time.perf_counter() - began
    refreshes = [store.refresh().load_seconds for _ in range(3)]
    p50, p99 = lookup_percentiles(store, lookups, features)
    return {
        "clients": store.snapshot.clients,
        "load_seconds": first_load,
        "refresh_seconds": min(refreshes),
        "lookups": lookups,
        "p50_us": p50,
        "p99_us": p99,
    }


def over_http(url: str, lookups: int, clients: int, per_request: int = 1, features: list[str] | None = None) -> dict:
    """POST /inference `lookups` times for `per_request` clients from a random one on, timed one by one."""
    from feature_store_assets.serving.api import PREFIX

    target = urlparse(url)
    connection = http.client.HTTPConnection(
        target.hostname, target.port
    )  # one kept-alive connection, like a service's pool
    ids = np.random.default_rng(3).integers(0, clients, lookups).tolist()
    timings = []
    for client in ids:
        body: dict = {"client_ids": list(range(client, client + per_request))}
        if features is not None:
            body["features"] = features
        payload = json.dumps(body).encode()
        began = time.perf_counter()
        connection.request("POST", f"{PREFIX}/inference", payload, {"content-type": "application/json"})
        response = connection.getresponse()
        response.read()
        timings.append(time.perf_counter() - began)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status} for client {client}")
    p50, p99 = np.percentile(np.array(timings) * 1e3, [50, 99])
    return {"lookups": lookups, "p50_ms": p50, "p99_ms": p99}


def table(published: Path, workdir: Path) -> None:
    """Print the figures of docs/serving.md's table, measured on a synthetic file written in `workdir`."""
    import uvicorn

    from feature_store_assets.serving.api import PREFIX, create_app

    path = workdir / "analytics.duckdb"
    if not path.exists():
        synthetic_analytics(published, path, TABLE_CLIENTS, TABLE_MONTHS)
    print(f"synthetic analytics file: {path} ({TABLE_CLIENTS:,} clients x {TABLE_MONTHS} months)")
    entities = workdir / "entities.parquet"
    entity_rows(TABLE_CLIENTS, TABLE_MONTHS, TABLE_ROWS).to_parquet(entities)
    for features in (None, None, None, FEW, FEW):
        result = training(path, entities, None, features)
        print(f"training {TABLE_ROWS:,} rows x {result['features']} features: {result['seconds']:.2f} s")
    print(f"training peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    for label, features in (("31 features", None), ("5 features", FEW)):
        result = online(path, 100_000, features)
        print(
            f"in-process lookup, 1 client, {label}: p50 {result['p50_us']:.2f} p99 {result['p99_us']:.2f} µs "
            f"(refresh of {result['clients']:,} clients: {result['refresh_seconds']:.2f} s)"
        )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(path), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    for label, per_request, features in (("1 client, 31 features", 1, None), ("1 client, 5 features", 1, FEW)) + (
        ("100 clients, 31 features", 100, None),
    ):
        result = over_http(url, 3_000, TABLE_CLIENTS, per_request, features)
        print(f"HTTP inference, {label}: p50 {result['p50_ms']:.2f} p99 {result['p99_ms']:.2f} ms")
    ids = np.random.default_rng(3).integers(0, TABLE_CLIENTS, 10_000).tolist()
    rows = [{"client_id": client, "event_timestamp": "2023-06-15T12:00:00"} for client in ids]
    connection = http.client.HTTPConnection("127.0.0.1", port)
    began = time.perf_counter()
    connection.request(
        "POST", f"{PREFIX}/training", json.dumps({"rows": rows}).encode(), {"content-type": "application/json"}
    )
    response = connection.getresponse()
    response.read()
    print(f"HTTP training, 10,000 rows x 31 features: {time.perf_counter() - began:.2f} s (status {response.status})")
    server.should_exit = True
    thread.join()


def compare(published: Path, workdir: Path, rounds: int = 3) -> None:
    """Training retrieval (1M rows x 31 features) and the online refresh on the same synthetic features in both
    layouts, alternating so both see the same load: the published store (views over Delta files, as now) and one
    DuckDB file of tables (the analytics file before the store). Prints each layout's best times and the ratios."""
    store_file, tables_file = workdir / "analytics.duckdb", workdir / "tables" / "analytics.duckdb"
    if not (store_file.exists() and tables_file.exists()):
        synthetic_analytics(published, store_file, TABLE_CLIENTS, TABLE_MONTHS, tables=tables_file)
    entities = workdir / "entities.parquet"
    entity_rows(TABLE_CLIENTS, TABLE_MONTHS, TABLE_ROWS).to_parquet(entities)
    layouts = {"Delta store": store_file, "DuckDB tables": tables_file}
    seconds: dict[str, dict[str, list[float]]] = {name: {"training": [], "refresh": []} for name in layouts}
    for _ in range(rounds):
        for name, path in layouts.items():
            seconds[name]["training"].append(training(path, entities, None)["seconds"])
            seconds[name]["refresh"].append(online(path, 1)["refresh_seconds"])
    best = {name: {what: min(values) for what, values in kinds.items()} for name, kinds in seconds.items()}
    for what in ("training", "refresh"):
        store, tables = best["Delta store"][what], best["DuckDB tables"][what]
        print(f"{what}: Delta store {store:.2f} s, DuckDB tables {tables:.2f} s, store / tables {store / tables:.2f}x")
    print(json.dumps({"best_seconds": best, "seconds": seconds}))


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "training":
        report = training(Path(args[0]), Path(args[1]), Path(args[2]))
    elif command == "online":
        report = online(Path(args[0]), int(args[1]))
    elif command == "http":
        report = over_http(args[0], int(args[1]), int(args[2]))
    elif command == "compare":
        compare(Path(args[0]), Path(args[1]) if len(args) > 1 else Path(tempfile.mkdtemp(prefix="serving-benchmark-")))
        return 0
    elif command == "table":
        table(Path(args[0]), Path(args[1]) if len(args) > 1 else Path(tempfile.mkdtemp(prefix="serving-benchmark-")))
        return 0
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
