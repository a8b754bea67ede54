"""Measuring a step: wall time and the peak resident set of its whole process tree, and the machine it ran on."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

GIB = 1024**3
PACKAGES = (
    "dagster",
    "dagster-dbt",
    "dbt-core",
    "dbt-duckdb",
    "duckdb",
    "pandas",
    "pyarrow",
    "numpy",
    "fastapi",
    "uvicorn",
)


@dataclass
class Measured:
    """A finished step: seconds from start to exit, peak RSS of the process tree, and what it printed."""

    seconds: float
    peak_rss_bytes: int
    stdout: str
    report: dict = field(default_factory=dict)  # the JSON line the step printed last, if any
    peak_by_process: dict[str, int] = field(default_factory=dict)  # at the peak: resident bytes per process of the tree

    @property
    def peak_breakdown_gib(self) -> dict[str, float]:
        return {name: round(rss / GIB, 2) for name, rss in self.peak_by_process.items()}

    @property
    def peak_rss_gib(self) -> float:
        return self.peak_rss_bytes / GIB


def _role(member: psutil.Process) -> str:
    """What a process of the tree is, for the peak's breakdown: dbt, or the step's own Python (Dagster)."""
    try:
        command = " ".join(member.cmdline()[:3])
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "gone"
    return "dbt" if "dbt" in command else "step"


def tree_rss(process: psutil.Process) -> dict[str, int]:
    """Resident bytes of a process and all its descendants (dbt subprocesses, DuckDB threads included), per role."""
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    by_role: dict[str, int] = {}
    for member in members:
        try:
            rss = member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
        role = "step" if member.pid == process.pid else _role(member)
        by_role[role] = by_role.get(role, 0) + rss
    return by_role


def run_measured(
    command: list[str], env: dict[str, str] | None = None, interval: float = 0.1, cwd: Path | None = None
) -> Measured:
    """Run `command` to completion, sampling the RSS of its process tree every `interval` seconds.

    The step's own report is the last stdout line that parses as a JSON object. A non-zero exit raises,
    with the step's output, so a failed step is never reported as a time.
    """
    began = time.perf_counter()
    process = subprocess.Popen(
        [str(part) for part in command],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watched = psutil.Process(process.pid)
    peak, peak_by_process = 0, {}
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    while process.poll() is None:
        by_role = tree_rss(watched)
        if sum(by_role.values()) > peak:
            peak, peak_by_process = sum(by_role.values()), by_role
        time.sleep(interval)
    seconds = time.perf_counter() - began
    reader.join()
    stdout = "".join(output)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}:\n{stdout[-4000:]}")
    report = {}
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                report = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
    return Measured(seconds=seconds, peak_rss_bytes=peak, stdout=stdout, report=report, peak_by_process=peak_by_process)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *map(str, args)]


def machine() -> dict:
    """The machine and software the numbers were measured on."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    cpu_model = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    return {
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu_model,
        "memory_gib": round(psutil.virtual_memory().total / GIB, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
    }
