"""Feast's own virtual environment: its pins (pandas, pyarrow, SQLAlchemy...) may conflict with this project's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FEAST_REQUIREMENT = "feast[duckdb]==0.67.0"


def feast_python(cache: Path) -> Path:
    """The Python of a virtual environment with Feast installed, created on first use (a few minutes, cached)."""
    venv = cache / "feast-venv"
    python = venv / "bin" / "python"
    marker = venv / f".installed-{FEAST_REQUIREMENT}"
    if not marker.exists():
        print(f"installing {FEAST_REQUIREMENT} into {venv} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", FEAST_REQUIREMENT],
            check=True,
        )
        marker.touch()
    return python
