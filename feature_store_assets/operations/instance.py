"""Operating the feature store through Dagster: the one instance and `feature-store ui`.

`dagster_home/dagster.yaml` (repository root) configures the instance so that runs that open
the warehouse never overlap (see the file). The CLI's runs, `feature-store ui` (webserver and
daemon) and the schedules all use one instance: `--dagster-home`, else DAGSTER_HOME, else the
repository's `dagster_home/` (`instance_home`), created and given the warehouse pool's limit on
first use (`open_instance`). `feature-store ui` execs `dagster dev` on the repository's
workspace.yaml with DAGSTER_HOME set to it and the FEATURE_STORE_* settings as absolute paths.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from feature_store_assets.core.paths import REPO_DIR, SHIPPED_DAGSTER_HOME, WORKSPACE
from feature_store_assets.core.resources import WAREHOUSE_POOL
from feature_store_assets.core.settings import ConfigurationError, Settings
from feature_store_assets.operations.logs import run_loggers

if TYPE_CHECKING:
    import dagster as dg

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000


def instance_home(override: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The instance folder every command uses: `override` (--dagster-home), else DAGSTER_HOME, else dagster_home/."""
    env = os.environ if env is None else env
    return Path(override or env.get("DAGSTER_HOME") or SHIPPED_DAGSTER_HOME).resolve()


def open_instance(dagster_home: Path) -> dg.DagsterInstance:
    """The instance in `dagster_home`, its storage created and the warehouse pool's limit set on first use,
    and runs whose process is gone marked failed (runs.reap_dead_runs).

    Processes that create a new SQLite instance at the same moment can corrupt its schema
    version table (hence the lock around it); and the daemon lets every queued run through on
    the first pass that meets a pool without a stored limit.
    """
    import dagster as dg

    from feature_store_assets.operations.runs import reap_dead_runs

    if not (dagster_home / "dagster.yaml").exists():
        raise ConfigurationError(
            f"{dagster_home}/dagster.yaml not found: copy {SHIPPED_DAGSTER_HOME}/dagster.yaml there"
        )
    with open(dagster_home / ".prepare.lock", "a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        instance = dg.DagsterInstance.from_config(str(dagster_home))
        limits = {pool.name: pool.limit for pool in instance.event_log_storage.get_pool_limits()}
        if limits.get(WAREHOUSE_POOL) != 1:
            instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
    for run_id in reap_dead_runs(instance):
        print(f"marked run {run_id} failed: its process is gone", file=sys.stderr)
    return instance


def prepare_instance(dagster_home: Path) -> None:
    """Create the instance's storage and set the warehouse pool's limit before any Dagster process starts."""
    with open_instance(dagster_home):
        pass


def ui_command(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> list[str]:
    dagster = Path(sys.executable).parent / "dagster"
    command = [
        str(dagster) if dagster.exists() else "dagster",
        "dev",
        "-w",
        str(WORKSPACE),
        "-h",
        host,
        "-p",
        str(port),
    ]
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
    print(
        f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={dagster_home}, warehouse {settings.warehouse})", flush=True
    )
    command = ui_command(host, port)
    os.chdir(REPO_DIR)
    # `dagster dev` gives SIGTERM whatever SIGINT does. Started where SIGINT is ignored (a script's background job,
    # `feature-store ui &`), it would ignore SIGTERM too and outlive `kill` and supervisors: SIGINT gets its default.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.execvpe(command[0], command, ui_environment(settings, dagster_home, os.environ))


def cmd_ui(args, settings: Settings) -> int:
    run_ui(settings, instance_home(args.dagster_home), args.host, args.port)
    return 0  # not reached: run_ui execs dagster dev


def add_dagster_home_option(command) -> None:
    command.add_argument(
        "--dagster-home",
        help="the Dagster instance's folder, holding a copy of dagster_home/dagster.yaml "
        f"(default: DAGSTER_HOME, else {SHIPPED_DAGSTER_HOME}); the CLI, the UI and the schedules share it",
    )


def add_ui_command(commands) -> None:
    """`feature-store ui`: the Dagster UI, daemon and schedules on the instance the CLI's runs use too."""
    ui = commands.add_parser("ui", help="start the Dagster UI and daemon (dagster dev) on the feature store's instance")
    add_dagster_home_option(ui)
    ui.add_argument("--host", default=DEFAULT_HOST, help="address the webserver binds (default: %(default)s)")
    ui.add_argument("--port", type=int, default=DEFAULT_PORT, help="webserver port (default: %(default)s)")
    ui.set_defaults(run=cmd_ui)
