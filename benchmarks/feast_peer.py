"""Feast's side of items 5 and 6, run by the Python of Feast's own virtual environment (see feast_env.py).

Standalone on purpose: it imports Feast, pandas and pyarrow only, never this project.

    python feast_peer.py offline --store file|duckdb --repo DIR --features F.parquet --entities E.parquet --out R.parquet
    python feast_peer.py online --repo DIR --features F.parquet --lookups N

F holds the feature snapshots (client_id, available_at = E of the snapshot month, the features); E the
entity rows (row_id, client_id, event_timestamp). Each command prints one JSON line with its timings.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

KEYS = ("client_id", "available_at", "feature_month")


def feature_store(repo: Path, features: Path, offline_store: str):
    """A Feast repository over the snapshot file: entity `client` (client_id), one feature view without TTL."""
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Bool, Float64, Int32, Int64, String

    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        f"project: benchmark\nregistry: {repo}/registry.db\nprovider: local\n"
        f"offline_store:\n  type: {offline_store}\n"
        f"online_store:\n  type: sqlite\n  path: {repo}/online.db\n"
        "entity_key_serialization_version: 3\n"
    )
    types = {
        pa.float64(): Float64,
        pa.int64(): Int64,
        pa.int32(): Int32,
        pa.string(): String,
        pa.large_string(): String,
        pa.bool_(): Bool,
    }
    fields = [Field(name=f.name, dtype=types[f.type]) for f in pq.read_schema(features) if f.name not in KEYS]
    client = Entity(name="client", join_keys=["client_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name="client_features",
        entities=[client],
        ttl=timedelta(0),  # no TTL: the latest snapshot at or before the event, as the project's retrieval
        schema=fields,
        source=FileSource(path=str(features), timestamp_field="available_at"),
        online=True,
    )
    store = FeatureStore(repo_path=str(repo))
    store.apply([client, view])
    return store, [f"client_features:{f.name}" for f in fields]


def offline(args: argparse.Namespace) -> dict:
    store, references = feature_store(Path(args.repo), Path(args.features), args.store)
    entities = pd.read_parquet(args.entities)
    began = time.perf_counter()
    training = store.get_historical_features(entity_df=entities, features=references).to_df()
    seconds = time.perf_counter() - began
    training.drop(columns=["event_timestamp"]).to_parquet(args.out)
    return {"seconds": seconds, "rows_in": len(entities), "rows_out": len(training), "features": len(references)}


def online(args: argparse.Namespace) -> dict:
    store, references = feature_store(Path(args.repo), Path(args.features), "dask")
    snapshots = pd.read_parquet(args.features, columns=["client_id", "available_at"])
    began = time.perf_counter()
    store.materialize(
        start_date=snapshots["available_at"].min().to_pydatetime() - timedelta(days=1),
        end_date=snapshots["available_at"].max().to_pydatetime() + timedelta(days=1),
    )
    materialize_seconds = time.perf_counter() - began
    clients = np.random.default_rng(4).choice(snapshots["client_id"].unique(), args.lookups).tolist()
    timings = []
    for client in clients:
        began = time.perf_counter()
        store.get_online_features(features=references, entity_rows=[{"client_id": int(client)}]).to_dict()
        timings.append(time.perf_counter() - began)
    p50, p99 = np.percentile(np.array(timings) * 1e3, [50, 99])
    return {
        "materialize_seconds": materialize_seconds,
        "lookups": len(clients),
        "p50_ms": p50,
        "p99_ms": p99,
        "clients": int(snapshots["client_id"].nunique()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    off = commands.add_parser("offline")
    off.add_argument("--store", choices=["file", "duckdb"], required=True)
    off.add_argument("--repo", required=True)
    off.add_argument("--features", required=True)
    off.add_argument("--entities", required=True)
    off.add_argument("--out", required=True)
    on = commands.add_parser("online")
    on.add_argument("--repo", required=True)
    on.add_argument("--features", required=True)
    on.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    report = offline(args) if args.command == "offline" else online(args)
    import feast

    print(json.dumps({**report, "feast": feast.__version__, "at": datetime.now().isoformat(timespec="seconds")}))


if __name__ == "__main__":
    main()
