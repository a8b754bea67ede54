"""Operating the feature store through Dagster: the shipped instance and `feature-store ui`.

`dagster_home/dagster.yaml` (repository root) configures the instance so that runs that open
the warehouse never overlap (see the file). `feature-store ui` points DAGSTER_HOME at that
folder, sets the warehouse pool's limit, and execs `dagster dev` on the repository's
workspace.yaml, with the FEATURE_STORE_* settings passed on as absolute paths.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from feature_store_assets.logs import run_loggers
from feature_store_assets.resources import WAREHOUSE_POOL
from feature_store_assets.settings import ConfigurationError, Settings

REPO_DIR = Path(__file__).resolve().parent.parent
SHIPPED_DAGSTER_HOME = REPO_DIR / "dagster_home"
WORKSPACE = REPO_DIR / "workspace.yaml"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000


def prepare_instance(dagster_home: Path) -> None:
    """Create the instance's storage and set the warehouse pool's limit before any Dagster process starts.

    Processes that create a new SQLite instance at the same moment can corrupt its schema
    version table; and the daemon lets every queued run through on the first pass that meets
    a pool without a stored limit.
    """
    import dagster as dg

    if not (dagster_home / "dagster.yaml").exists():
        raise ConfigurationError(f"{dagster_home}/dagster.yaml not found: copy {SHIPPED_DAGSTER_HOME}/dagster.yaml there")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)


def ui_command(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> list[str]:
    dagster = Path(sys.executable).parent / "dagster"
    command = [str(dagster) if dagster.exists() else "dagster", "dev", "-w", str(WORKSPACE), "-h", host, "-p", str(port)]
    if run_loggers() is not None:  # FEATURE_STORE_LOG_FORMAT=json: the webserver's and daemon's logs too
        command += ["--log-format", "json"]
    return command


def ui_environment(settings: Settings, dagster_home: Path, env: Mapping[str, str]) -> dict[str, str]:
    """The environment of `dagster dev`: the settings as absolute paths, whatever the code server's folder."""
    return {**env, **settings.as_env(), "DAGSTER_HOME": str(dagster_home.resolve())}


def run_ui(settings: Settings, dagster_home: Path, host: str, port: int) -> None:
    """Replace this process with `dagster dev` (Ctrl-C stops the webserver, the daemon and the runs' code server)."""
    dagster_home = dagster_home.resolve()
    prepare_instance(dagster_home)
    print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={dagster_home}, warehouse {settings.warehouse})", flush=True)
    command = ui_command(host, port)
    os.chdir(REPO_DIR)
    os.execvpe(command[0], command, ui_environment(settings, dagster_home, os.environ))


def cmd_ui(args, settings: Settings) -> int:
    run_ui(settings, Path(args.dagster_home), args.host, args.port)
    return 0  # not reached: run_ui execs dagster dev


def add_ui_command(commands) -> None:
    """`feature-store ui`: the Dagster UI, daemon and schedules on the shipped instance."""
    ui = commands.add_parser("ui", help="start the Dagster UI and daemon (dagster dev) on the shipped instance")
    ui.add_argument(
        "--dagster-home",
        default=str(SHIPPED_DAGSTER_HOME),
        help="instance folder holding a copy of dagster_home/dagster.yaml (default: %(default)s)",
    )
    ui.add_argument("--host", default=DEFAULT_HOST, help="address the webserver binds (default: %(default)s)")
    ui.add_argument("--port", type=int, default=DEFAULT_PORT, help="webserver port (default: %(default)s)")
    ui.set_defaults(run=cmd_ui)
