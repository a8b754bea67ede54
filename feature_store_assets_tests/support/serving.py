"""Helpers for the serving tests: a really materialized and published store (the large synthetic one is
benchmarks/serving.py's synthetic_analytics)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest

from feature_store_assets.core.settings import Settings
from feature_store_assets_tests.conftest import FeatureStore, configure


def materialize(store: FeatureStore, first: str, last: str) -> None:
    """Run `feature-store materialize` for months first..last with the store's settings in the environment."""
    from feature_store_assets.cli.main import main

    # Module-scoped fixtures cannot take the function-scoped monkeypatch.
    with pytest.MonkeyPatch.context() as patch:
        configure(patch, store.root, store.raw_dir)
        assert main(["materialize", "--from", first, "--to", last]) == 0, f"materialize {first}..{last} failed"


def published_store(root: Path, raw_dir: Path, first: str = "2023-01", last: str = "2023-03") -> FeatureStore:
    """A feature store in `root` over the (unmodified) landing zone, with months first..last published."""
    root.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        store = configure(patch, root, raw_dir)
    materialize(store, first, last)
    return store


def copy_store(store: FeatureStore, root: Path) -> FeatureStore:
    """The same warehouse and analytics file under another root, to publish more months without touching `store`."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(store.settings.warehouse, root / "warehouse.duckdb")
    shutil.copy2(store.settings.analytics, root / "analytics.duckdb")
    with pytest.MonkeyPatch.context() as patch:
        return configure(patch, root, store.raw_dir)


def analytics_query(settings: Settings, sql: str):
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"attach '{settings.analytics}' as analytics (read_only)")
        con.execute("use analytics")
        return con.sql(sql).df()
    finally:
        con.close()


def call_json(base: str, method: str, path: str, body: object = None, headers: dict | None = None) -> tuple[int, Any]:
    """One HTTP request with a JSON body (if any); its status and its JSON answer, error statuses included."""
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving_process(store: FeatureStore, env: dict[str, str], healthy) -> Iterator[tuple[str, int]]:
    """`feature-store serve` on a free loopback port in its own process, with `env`; yields (base url, pid) once
    `healthy(url)` holds, and stops the server afterwards. Its output goes to serve.log in the store's folder."""
    import subprocess
    import sys
    import time

    port = free_port()
    log_path = store.root / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "feature_store_assets.cli.main", "serve", "--host", "127.0.0.1"]
            + ["--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if healthy(url):
                        break
                except OSError:
                    pass
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
            yield url, process.pid
        finally:
            process.terminate()
            process.wait(timeout=30)


def march_clients(store: FeatureStore) -> list[int]:
    """The clients of the store's 2023-03 feature snapshot, in id order."""
    march = analytics_query(
        store.settings, "select client_id from features.client_features where feature_month = '2023-03-01' order by 1"
    )
    return march["client_id"].tolist()
