"""Shared fixtures: a small generated landing zone per session, and an isolated feature store per test."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from feature_store_assets.core.settings import SAMPLE_ZIP_INCOME, Settings
from feature_store_assets.generator import GeneratorOptions, generate_landing_zone

SMALL_ZONE = GeneratorOptions(
    start_month="2023-01", months=4, clinics=8, clients=600, inclinic_rows_per_month=3_000, seed=7
)


@dataclass
class FeatureStore:
    """An isolated feature store: its own landing zone copy and warehouse, configured through the environment."""

    root: Path
    settings: Settings

    @property
    def raw_dir(self) -> Path:
        return self.settings.raw_dir

    def query(self, sql: str) -> pd.DataFrame:
        with duckdb.connect(str(self.settings.warehouse), read_only=True) as con:
            return con.sql(sql).df()

    def scalar(self, sql: str):
        with duckdb.connect(str(self.settings.warehouse), read_only=True) as con:
            return con.execute(sql).fetchone()[0]


@pytest.fixture(scope="session", autouse=True)
def session_dagster_home(tmp_path_factory):
    """Runs of tests that set no store of their own use a per-worker instance, never the repository's dagster_home/."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(instance_home_copy(tmp_path_factory.mktemp("dagster_home"))))
        yield


@pytest.fixture(scope="session")
def small_landing_zone(tmp_path_factory) -> Path:
    """Generated once per session for every worker (support/shared.py): read it, or copy it to change it."""
    from feature_store_assets_tests.support.shared import built_once

    def generate(root: Path) -> None:
        generate_landing_zone(root / "raw", SMALL_ZONE, zip_income_csv=SAMPLE_ZIP_INCOME)

    return built_once(tmp_path_factory, "small_landing_zone", generate) / "raw"


# Where the tests' Dagster instances keep their SQLite run and event storage: tmpfs, where the machine has one.
# Dagster commits each event on its own (about 600 in a month's run); on this disk each commit's fsync costs
# about 6 ms, against 0.8 ms in memory, which was a quarter of a test run's time. Nothing else moves there.
INSTANCE_TMPFS = Path("/dev/shm")
_tmpfs_homes: list[Path] = []


@atexit.register
def _remove_tmpfs_homes() -> None:
    for folder in _tmpfs_homes:
        shutil.rmtree(folder, ignore_errors=True)


def instance_home_copy(home: Path, instance_yaml: Path | None = None) -> Path:
    """A Dagster instance folder holding a copy of the shipped dagster.yaml (or `instance_yaml`): `home`, a link
    to a folder on tmpfs where there is one (INSTANCE_TMPFS)."""
    from feature_store_assets.core.paths import SHIPPED_DAGSTER_HOME

    if not home.exists():
        home.parent.mkdir(parents=True, exist_ok=True)
        if INSTANCE_TMPFS.is_dir() and os.access(INSTANCE_TMPFS, os.W_OK):
            folder = Path(tempfile.mkdtemp(prefix="feature-store-tests-dagster-", dir=INSTANCE_TMPFS))
            _tmpfs_homes.append(folder)
            home.symlink_to(folder, target_is_directory=True)
        else:
            home.mkdir()
    shutil.copy(instance_yaml or SHIPPED_DAGSTER_HOME / "dagster.yaml", home / "dagster.yaml")
    return home


def configure(
    monkeypatch, root: Path, raw_dir: Path, start_month: str = "2023-01", zip_income: Path = SAMPLE_ZIP_INCOME
) -> FeatureStore:
    env = {
        "FEATURE_STORE_RAW_DIR": str(raw_dir),
        "FEATURE_STORE_WAREHOUSE": str(root / "warehouse.duckdb"),
        "FEATURE_STORE_ZIP_INCOME": str(zip_income),
        "FEATURE_STORE_START_MONTH": start_month,
        "FEATURE_STORE_ANALYTICS": str(root / "analytics.duckdb"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The store's own Dagster instance (runs default to the repository's dagster_home/, which tests never touch)
    monkeypatch.setenv("DAGSTER_HOME", str(instance_home_copy(root / "dagster_home")))
    return FeatureStore(root=root, settings=Settings.from_env(env))


@pytest.fixture
def feature_store(tmp_path, small_landing_zone, monkeypatch) -> FeatureStore:
    """A feature store over a private copy of the small landing zone, so a test may break its files."""
    raw_dir = tmp_path / "raw"
    shutil.copytree(small_landing_zone, raw_dir)
    return configure(monkeypatch, tmp_path, raw_dir)
