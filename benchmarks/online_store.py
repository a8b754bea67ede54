"""The shared online store in Redis against the in-memory one (docs/serving.md, "A shared online store in Redis"):
refresh time for 200,000 clients and lookup latency, in process and over HTTP, printed side by side with their
ratios (Redis / memory).

    python -m benchmarks.online_store PUBLISHED.duckdb [WORKDIR]

PUBLISHED is any analytics file `feature-store materialize` published (its schema and catalog); the benchmark
writes benchmarks/serving.py's synthetic file of 200,000 clients x 24 months (4.8M rows) in WORKDIR, starts a
`redis-server` of its own there (Debian's package: apt-get install -y redis-server) and serves the file with
`feature-store serve`'s app, once from memory and once from Redis, in this process.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from benchmarks.run import free_port
from benchmarks.serving import FEW, TABLE_CLIENTS, TABLE_MONTHS, lookup_percentiles, over_http, synthetic_analytics

LOOKUPS, HTTP_LOOKUPS, REFRESHES = 20_000, 3_000, 3


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """`redis-server --port N --save '' --appendonly no` in `folder`, on a free loopback port; yields its URL
    (database 0) once it answers PING, and stops it afterwards. Its log is redis.log in `folder`. The tests of
    the shared online store start theirs with it too."""
    import redis

    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server is not installed: apt-get install -y redis-server (.ci/run installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = folder / "redis.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--dir", str(folder)],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=1)
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.ping():
                        break
                except redis.ConnectionError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not come up: {log_path.read_text()}")
                time.sleep(0.05)
            client.close()
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


@contextmanager
def served(path: Path, online_store: str) -> Iterator[str]:
    """`feature-store serve`'s app over `path` in a thread (uvicorn), from memory or from Redis; yields its URL."""
    import uvicorn

    from feature_store_assets.core.settings import Settings
    from feature_store_assets.serving.api import create_app

    settings = replace(Settings.from_env(), analytics=path, online_store=online_store)
    port = free_port()
    app = create_app(path, settings=settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


def compare(published: Path, workdir: Path) -> list[tuple[str, float, float, str]]:
    """(what, in memory, from Redis, unit) rows, measured on the synthetic file in `workdir`."""
    import redis

    from feature_store_assets.serving.online import OnlineStore
    from feature_store_assets.serving.redis_online import RedisOnlineStore
    from feature_store_assets.store.online import push_snapshot

    path = workdir / "analytics.duckdb"
    if not path.exists():
        synthetic_analytics(published, path, TABLE_CLIENTS, TABLE_MONTHS)
    rows = []
    with redis_server(workdir / "redis") as url:
        memory = OnlineStore(path)
        loads = [memory.refresh().load_seconds for _ in range(REFRESHES)]
        pushes = [push_snapshot(url, path, version).seconds for version in range(1, REFRESHES + 1)]
        rows.append(("refresh: load (memory) or push (Redis) 200,000 clients", min(loads), min(pushes), "s"))
        shared = RedisOnlineStore(path, url)
        reloads = [shared.refresh().load_seconds for _ in range(REFRESHES)]
        rows.append(("a server's reload after a publish", min(loads), min(reloads), "s"))
        used = redis.Redis.from_url(url).info("memory")["used_memory"] / 2**20
        print(f"Redis holds one snapshot of {shared.snapshot.clients:,} clients in {used:.0f} MB", flush=True)
        for label, features in (("31 features", None), ("5 features", FEW)):
            (m50, m99), (r50, r99) = (
                lookup_percentiles(memory, LOOKUPS, features),
                lookup_percentiles(shared, LOOKUPS, features),
            )
            rows.append((f"in-process lookup_one, {label}: p50", m50, r50, "µs"))
            rows.append((f"in-process lookup_one, {label}: p99", m99, r99, "µs"))
        http = {}
        for kind, online in (("memory", ""), ("redis", url)):
            with served(path, online) as base:
                for label, per_request, features in (
                    ("1 client, 31 features", 1, None),
                    ("1 client, 5 features", 1, FEW),
                    ("100 clients, 31 features", 100, None),
                ):
                    http[kind, label] = over_http(base, HTTP_LOOKUPS, TABLE_CLIENTS, per_request, features)
        for label in ("1 client, 31 features", "1 client, 5 features", "100 clients, 31 features"):
            for stat in ("p50", "p99"):
                memory_ms, redis_ms = http["memory", label][f"{stat}_ms"], http["redis", label][f"{stat}_ms"]
                rows.append((f"HTTP POST /inference, {label}: {stat}", memory_ms, redis_ms, "ms"))
    return rows


def main(argv: list[str]) -> int:
    published, *rest = argv
    workdir = Path(rest[0]) if rest else Path(tempfile.mkdtemp(prefix="online-store-benchmark-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = compare(Path(published), workdir)
    width = max(len(what) for what, *_ in rows)
    print(f"{'':<{width}}  {'memory':>10}  {'Redis':>10}  Redis/memory")
    for what, memory, shared, unit in rows:
        print(f"{what:<{width}}  {memory:>8.2f}{unit:>2}  {shared:>8.2f}{unit:>2}  {shared / memory:>6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
