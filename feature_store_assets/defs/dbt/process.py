"""The dbt executable Dagster starts: dbt that dies with the run that started it.

DuckDB allows one writing process per file. If a run's process is killed (SIGKILL, out of
memory) while its dbt subprocess is writing, an orphaned dbt would go on holding the
warehouse lock, and the operator's re-run would fail with "Could not set lock on file".
`feature-store-dbt` asks Linux to kill it when its parent dies, then becomes dbt.

`feature-store-dbt --version` answers from the installed packages' metadata instead: dagster-dbt asks it once
per run, and dbt itself takes seconds to start only to print its version.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import shutil
import signal
import sys
from pathlib import Path

WRAPPER_NAME = "feature-store-dbt"
PR_SET_PDEATHSIG = 1


def dbt_executable() -> str:
    """The wrapper when installed beside this interpreter (pip install -e .), else plain dbt."""
    wrapper = Path(sys.executable).parent / WRAPPER_NAME
    return str(wrapper) if wrapper.exists() else "dbt"


def _real_dbt() -> str:
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not fatal: dbt then runs as it always did
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def version_text() -> str:
    """What `dbt --version` says of dbt-core and the adapters this project uses (without dbt's check for a newer
    release, which needs the network)."""
    lines = ["Core:", f"  - installed: {importlib.metadata.version('dbt-core')}", "", "Plugins:"]
    for adapter in ("dbt-duckdb", "dbt-spark"):
        try:
            lines.append(f"  - {adapter.removeprefix('dbt-')}: {importlib.metadata.version(adapter)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return "\n".join(lines)


def main() -> None:
    # FEATURE_STORE_DBT_EXECUTABLE stands in for dbt in tests of the wrapper itself
    override = os.environ.get("FEATURE_STORE_DBT_EXECUTABLE")
    if sys.argv[1:] == ["--version"] and not override:
        print(version_text())
        return
    _die_with_parent()
    dbt = override or _real_dbt()
    os.execvp(dbt, [dbt, *sys.argv[1:]])
