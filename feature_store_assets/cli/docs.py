"""`feature-store docs`: the dbt docs site (every model, seed and column described in the .yml files, the lineage
graph, and the warehouse's tables in the catalog), generated against the warehouse and served on localhost."""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import signal
import subprocess
import sys
from pathlib import Path

from feature_store_assets.core.paths import DBT_PROJECT_DIR
from feature_store_assets.core.settings import Settings

DEFAULT_PORT = 8080
DOCS_FOLDER = "dbt_docs"  # beside the warehouse file


def docs_dir(settings: Settings) -> Path:
    return settings.warehouse.parent / DOCS_FOLDER


def dbt_docs_generate_args(target: Path) -> list[str]:
    """`dbt docs generate` into its own folder; --static also writes static_index.html, one file that opens without a
    server."""
    return ["docs", "generate", "--static", "--target-path", str(target), "--log-path", str(target / "logs")]


def generate_docs(settings: Settings) -> Path:
    """Run `dbt docs generate` against the warehouse (under the run lock: dbt opens the warehouse) and return the
    folder holding index.html, manifest.json and catalog.json."""
    from feature_store_assets.operations.runs import RunInProgress, acquire, release

    if not settings.warehouse.exists():
        raise ValueError(f"no warehouse at {settings.warehouse} yet: run `feature-store materialize` first")
    target = docs_dir(settings)
    try:
        acquire(settings.warehouse, None, command="feature-store docs")
    except RunInProgress as error:
        raise ValueError(f"{error}; generate the docs once it has finished") from None
    try:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "dbt"), *dbt_docs_generate_args(target)],
            cwd=DBT_PROJECT_DIR,
            env={**os.environ, **settings.as_env()},
            capture_output=True,
            text=True,
        )
    finally:
        release(settings.warehouse)
    if result.returncode != 0:
        raise ValueError(f"dbt docs generate failed (log: {target / 'logs'}):\n{result.stdout[-3000:]}")
    return target


def cmd_docs(args: argparse.Namespace, settings: Settings) -> int:
    target = generate_docs(settings)
    print(f"dbt docs generated in {target} (static_index.html opens without a server)")
    if args.no_serve:
        return 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(target))
    with http.server.ThreadingHTTPServer((args.host, args.port), handler) as server:
        # SIGTERM (a supervisor, `kill`, `docker stop`) stops it like Ctrl-C, whatever disposition the process
        # inherited: started from a process where SIGTERM is ignored (Dagster maps SIGTERM to SIGINT's handler, and a
        # script's background job ignores SIGINT), a server would otherwise outlive every polite request to stop.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        print(f"serving the dbt docs on http://{args.host}:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    print("stopped serving the dbt docs", flush=True)
    return 0


def add_docs_command(subparsers: argparse._SubParsersAction) -> None:
    docs = subparsers.add_parser(
        "docs", help="generate the dbt docs site against the warehouse and serve it (every table and column described)"
    )
    docs.add_argument("--no-serve", action="store_true", help="only generate the site and print its folder")
    docs.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s)")
    docs.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to serve on (default: %(default)s)")
    docs.set_defaults(run=cmd_docs)
