"""Fixtures built once per test session and shared by every xdist worker: the small landing zone, and stores
materialized and published over it. Each module gets its own copy of a store, so it may change it freely.

The first worker to ask builds under a file lock in the folder the workers' temp folders share; the others wait
and reuse it. A build that failed leaves no `.built` marker, so the next one starts again from nothing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from feature_store_assets.store import rebuild_analytics
from feature_store_assets_tests.conftest import FeatureStore, configure

BUILT = ".built"


def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's folder all workers share: the parent of each worker's temp folder under xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder `name`, filled by `build(folder)` by the first worker of the session that asks for it."""
    root = shared_dir(tmp_path_factory) / name
    with FileLock(f"{root}.lock"):
        if not (root / BUILT).exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            build(root)
            (root / BUILT).touch()
    return root


def store_copy(source: Path, root: Path, raw_dir: Path, monkeypatch: pytest.MonkeyPatch | None = None) -> FeatureStore:
    """A private copy of the store in `source` (its warehouse and published Delta tables) under `root`, with its
    analytics file written again over the copy (its views name the files by absolute path) and a Dagster instance
    of its own. With `monkeypatch`, its settings are also the environment's for the test."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "warehouse.duckdb", root / "warehouse.duckdb")
    shutil.copytree(source / "published", root / "published")
    if monkeypatch is None:
        with pytest.MonkeyPatch.context() as patch:
            store = configure(patch, root, raw_dir)
    else:
        store = configure(monkeypatch, root, raw_dir)
    rebuild_analytics(store.settings.published_dir, store.settings.analytics)
    return store


def shared_published_store(
    tmp_path_factory: pytest.TempPathFactory, raw_dir: Path, first: str = "2023-01", last: str = "2023-03"
) -> Path:
    """The folder of a store over `raw_dir` with months first..last materialized and published, built once per
    session (copy it with store_copy before use)."""
    from feature_store_assets_tests.support.serving import published_store

    return built_once(
        tmp_path_factory, f"published-{first}-{last}", lambda root: published_store(root, raw_dir, first, last)
    )


def published_copy(
    tmp_path_factory: pytest.TempPathFactory, raw_dir: Path, name: str, first: str = "2023-01", last: str = "2023-03"
) -> FeatureStore:
    """A module's own copy, in a new temp folder `name`, of the session's store with months first..last published."""
    return store_copy(
        shared_published_store(tmp_path_factory, raw_dir, first, last), tmp_path_factory.mktemp(name), raw_dir
    )
