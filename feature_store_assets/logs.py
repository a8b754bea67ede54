"""The runs' console log format: text (Dagster's default) or one JSON object a line.

FEATURE_STORE_LOG_FORMAT=json swaps the jobs' console logger for Dagster's JSON console logger,
for log collectors. Dagster uses a job's console logger when the run's config names it, as
`feature-store materialize` always does (on stderr; dagster-dbt echoes dbt's own progress
lines to stdout as dbt prints them); a run launched from the UI without logger config
keeps Dagster's default text console (its structured event log is in the UI either way), and
`feature-store ui` switches the webserver's and daemon's own logs to JSON.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from feature_store_assets.settings import ConfigurationError

LOG_FORMAT_VARIABLE = "FEATURE_STORE_LOG_FORMAT"


def run_loggers(env: Mapping[str, str] | None = None) -> dict[str, dg.LoggerDefinition] | None:
    """Loggers for the Definitions: None keeps Dagster's default (colored text) console logger."""
    env = os.environ if env is None else env
    log_format = (env.get(LOG_FORMAT_VARIABLE) or "text").strip().lower()
    if log_format == "text":
        return None
    if log_format == "json":
        return {"console": dg.json_console_logger}
    raise ConfigurationError(f"{LOG_FORMAT_VARIABLE} must be text or json, got {log_format!r}")
