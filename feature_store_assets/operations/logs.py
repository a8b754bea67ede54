"""The runs' console log format: text (Dagster's default) or one JSON object a line.

FEATURE_STORE_LOG_FORMAT=json swaps the jobs' console logger for Dagster's JSON console logger,
for log collectors. Dagster uses a job's console logger when the run's config names it, as
`feature-store materialize` always does (on stderr; dagster-dbt echoes dbt's own progress
lines to stdout as dbt prints them); a run launched from the UI without logger config
keeps Dagster's default text console (its structured event log is in the UI either way), and
`feature-store ui` switches the webserver's and daemon's own logs to JSON.

dbt's full log of a run (every line dbt prints, and its debug lines) goes to one file per run,
`<warehouse's folder>/logs/<run id>/dbt.log` (`dbt_log_path`), whoever launched the run; the CLI
prints its path at the end of a run, success or failure, and keeps the newest KEPT_RUN_LOGS runs' logs.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from feature_store_assets.core.settings import setting_from_env

RUN_LOGS_FOLDER = "logs"
DBT_LOG_NAME = "dbt.log"
RUN_LOG_NAME = "run.log"  # the rest of what the run printed: Dagster's console log, warnings, dbt's echoed lines
KEPT_RUN_LOGS = 30
DBT_ERRORS_MARKER = "Errors parsed from dbt logs:"  # in dagster-dbt's DagsterDbtCliRuntimeError
_DBT_RESULT_LINE = re.compile(r"^\s*\d+ of \d+ (ERROR|FAIL|WARN)\b")
_DBT_COMMAND = re.compile(r"The dbt CLI process with command\s+`[^`]*`\s+failed with exit code `?(\d+)`?\.?")


def run_loggers(env: Mapping[str, str] | None = None) -> dict[str, dg.LoggerDefinition] | None:
    """Loggers for the Definitions: None keeps Dagster's default (colored text) console logger."""
    if setting_from_env("log_format", env) == "text":
        return None
    return {"console": dg.json_console_logger}


def run_log_dir(warehouse: Path, run_id: str) -> Path:
    """The folder of a run's logs: beside the warehouse, so each warehouse keeps its own runs' logs."""
    return Path(warehouse).parent / RUN_LOGS_FOLDER / run_id


def dbt_log_path(warehouse: Path, run_id: str) -> Path:
    """dbt's full log of a run (dbt's --log-path is the run's log folder)."""
    return run_log_dir(warehouse, run_id) / DBT_LOG_NAME


def prune_run_logs(warehouse: Path, keep: int = KEPT_RUN_LOGS) -> list[Path]:
    """Remove all but the newest `keep` runs' log folders; returns the folders removed."""
    root = Path(warehouse).parent / RUN_LOGS_FOLDER
    folders = (
        sorted((f for f in root.glob("*") if f.is_dir()), key=lambda f: f.stat().st_mtime) if root.is_dir() else []
    )
    removed = folders[: max(len(folders) - keep, 0)]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def dbt_error_summary(message: str) -> str:
    """dagster-dbt's error for a failed dbt build, without the dbt command line (every model selected, many lines)
    nor its pointer to Dagster's compute logs: the exit code and the errors dbt printed, each once."""
    command = _DBT_COMMAND.search(message)
    if not command:
        return message
    summary = f"dbt failed (exit code {command[1]})"
    if DBT_ERRORS_MARKER not in message:
        return summary
    errors = [line.rstrip() for line in message.split(DBT_ERRORS_MARKER, 1)[1].splitlines() if line.strip()]
    # `N of M ERROR creating ...` lines say again what the `Failure in model` paragraphs say
    errors = [line for line in dict.fromkeys(errors) if not _DBT_RESULT_LINE.match(line)]
    return summary + ":\n" + "\n".join(errors)
