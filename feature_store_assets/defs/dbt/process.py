"""The dbt executable Dagster starts: dbt that dies with the run that started it.

DuckDB allows one writing process per file. If a run's process is killed (SIGKILL, out of
memory) while its dbt subprocess is writing, an orphaned dbt would go on holding the
warehouse lock, and the operator's re-run would fail with "Could not set lock on file".
`feature-store-dbt` asks Linux to kill it when its parent dies, then becomes dbt.
"""

from __future__ import annotations

import ctypes
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


def main() -> None:
    _die_with_parent()
    # FEATURE_STORE_DBT_EXECUTABLE stands in for dbt in tests of the wrapper itself
    dbt = os.environ.get("FEATURE_STORE_DBT_EXECUTABLE") or _real_dbt()
    os.execvp(dbt, [dbt, *sys.argv[1:]])
