"""Committed snapshots: a value compared, as indented JSON, with a file under feature_store_assets_tests/snapshots/.

`FEATURE_STORE_UPDATE_SNAPSHOTS=1 pytest <test file>` rewrites the files instead of comparing
(docs/testing.md); review the change with `git diff` before committing it. A mismatch fails
with a unified diff, committed file first.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

SNAPSHOTS = Path(__file__).resolve().parent.parent / "snapshots"
UPDATE_ENV = "FEATURE_STORE_UPDATE_SNAPSHOTS"


def assert_matches_snapshot(name: str, value: Any, folder: Path = SNAPSHOTS) -> None:
    """Compare `value` with <folder>/<name>.json (or write it when FEATURE_STORE_UPDATE_SNAPSHOTS=1)."""
    path = folder / f"{name}.json"
    text = json.dumps(value, indent=2, sort_keys=True) + "\n"
    if os.environ.get(UPDATE_ENV) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    if not path.exists():
        raise AssertionError(f"{path}: no snapshot yet; write it with {UPDATE_ENV}=1 and commit it")
    committed = path.read_text()
    if committed != text:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True), text.splitlines(keepends=True), str(path), "these definitions"
            )
        )
        raise AssertionError(f"{path} differs (rewrite it with {UPDATE_ENV}=1 if the change is meant):\n{diff}")


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> Any:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return {
            "type": type(partitions_def).__name__,
            "cron": partitions_def.cron_schedule,
            "timezone": partitions_def.timezone,
            "first": partitions_def.get_first_partition_key(),
            "end_offset": partitions_def.end_offset,
        }
    return {"type": type(partitions_def).__name__}


def definitions_snapshot(defs: dg.Definitions) -> dict[str, Any]:
    """Every asset (group, partitions, each dependency's partition mapping), check (blocking or not), job (its
    partitions, assets and checks), schedule and sensor of the definitions, as plain JSON values."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": _partitions(node.partitions_def),
            "deps": {
                parent.to_user_string(): repr(graph.get_partition_mapping(key, parent))
                for parent in sorted(node.parent_keys)
            },
        }
    checks = {
        f"{key.asset_key.to_user_string()}:{key.name}": {"blocking": graph.get_check_spec(key).blocking}
        for key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name))
    }
    jobs = {}
    for job in defs.resolve_all_job_defs():
        if job.name.startswith("__"):  # Dagster's implicit job of every asset
            continue
        jobs[job.name] = {
            "partitions": _partitions(job.partitions_def),
            "assets": sorted(key.to_user_string() for key in job.asset_layer.selected_asset_keys),
            "checks": sorted(
                f"{key.asset_key.to_user_string()}:{key.name}" for key in job.asset_layer.asset_graph.asset_check_keys
            ),
        }
    schedules = {
        schedule.name: {
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "job": schedule.job_name,
            "default_status": schedule.default_status.value,
        }
        for schedule in sorted(defs.schedules or [], key=lambda s: s.name)
    }
    sensors = {
        sensor.name: {
            "type": sensor.sensor_type.value,
            "jobs": sorted(job.name for job in sensor.jobs) if sensor.has_jobs else [],
            "default_status": sensor.default_status.value,
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
        }
        for sensor in sorted(defs.sensors or [], key=lambda s: s.name)
    }
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}
