"""Feast, in its own virtual environment, reads the repository `feature-store feast-repo` writes and returns
this project's values: get_historical_features as get_training_features, materialize + get_online_features
as OnlineStore, on really published months 2023-01..2023-03 of the small landing zone.

Feast's venv is the benchmark's (benchmarks/feast_env.py, under benchmarks/.cache/): created once, about
80 s on this machine, then reused.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.feast_env import feast_python
from feature_store_assets.cli.main import main
from feature_store_assets.serving.catalog import load_catalog
from feature_store_assets.serving.feast_repo import feast_repo_files
from feature_store_assets.serving.online import OnlineStore
from feature_store_assets.serving.training import get_training_features
from feature_store_assets_tests.support.shared import published_copy

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("feast")]

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
FEAST_SIDE = Path(__file__).resolve().parent / "support" / "feast_side.py"
E_FEB = pd.Timestamp("2023-03-01")
US = pd.Timedelta(microseconds=1)


@pytest.fixture(scope="module")
def store(tmp_path_factory, small_landing_zone):
    return published_copy(tmp_path_factory, small_landing_zone, "feast")


@pytest.fixture(scope="module")
def feast(store, tmp_path_factory):
    """The generated repo after `feast apply`, Feast's training rows and online rows, and the inputs."""
    work = tmp_path_factory.mktemp("feast_run")
    repo = work / "repo"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEATURE_STORE_ANALYTICS", str(store.settings.analytics))
        assert main(["feast-repo", str(repo)]) == 0
    python = feast_python(BENCHMARKS / ".cache")
    subprocess.run([str(python.parent / "feast"), "apply"], cwd=repo, check=True, capture_output=True, text=True)

    published = pd.read_parquet(repo / "data" / "client_features.parquet", columns=["client_id"])
    clients = published["client_id"].unique()
    rng = np.random.default_rng(11)
    entities = pd.DataFrame(
        {
            "row_id": np.arange(300),
            "client_id": rng.choice(clients, 300),
            "event_timestamp": pd.Timestamp("2023-01-20")
            + pd.to_timedelta(rng.integers(0, 120 * 86400, 300), unit="s"),
        }
    )
    boundary = pd.DataFrame(  # exactly E of February sees February; one microsecond earlier, January
        {"row_id": [300, 301], "client_id": [clients[0]] * 2, "event_timestamp": [E_FEB, E_FEB - US]}
    )
    entities = pd.concat([entities, boundary], ignore_index=True)
    entities.to_parquet(work / "entities.parquet")
    online_clients = [int(c) for c in clients[:50]]
    (work / "clients.json").write_text(json.dumps(online_clients))
    subprocess.run(
        [
            str(python),
            str(FEAST_SIDE),
            str(repo),
            str(work / "entities.parquet"),
            str(work / "training.parquet"),
            str(work / "clients.json"),
            str(work / "online.json"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return {
        "repo": repo,
        "entities": entities,
        "training": pd.read_parquet(work / "training.parquet"),
        "clients": online_clients,
        "online": json.loads((work / "online.json").read_text()),
    }


def plain(values) -> list:
    """Comparable values: None for every kind of missing (NaN, NA, None)."""
    return [None if pd.isna(v) else v for v in values]


def test_the_repo_holds_the_catalogs_features_with_their_descriptions_and_e_as_event_timestamp(store):
    catalog = load_catalog(store.settings.analytics)
    files = feast_repo_files(catalog, version=None)
    assert set(files) >= {"feature_store.yaml", "client_features.py"}
    yaml = files["feature_store.yaml"]
    assert "type: sqlite" in yaml and "registry: data/registry.db" in yaml and "type: file" in yaml
    definitions = files["client_features.py"]
    assert "join_keys=['client_id']" in definitions and "timestamp_field='available_at'" in definitions
    for feature in catalog.features:
        assert f"Field(name={feature.name!r}" in definitions and repr(feature.description) in definitions


def test_feast_training_rows_are_get_training_features_rows(store, feast):
    ours = get_training_features(feast["entities"], analytics=store.settings.analytics).set_index("row_id")
    theirs = feast["training"].set_index("row_id")
    names = load_catalog(store.settings.analytics).names
    # Feast's file offline store leaves out the rows without a snapshot; ours keeps them, with NULLs
    assert sorted(theirs.index) == sorted(ours.index[ours["feature_month"].notna()])
    theirs, ours = theirs.loc[ours.index[ours["feature_month"].notna()]], ours[ours["feature_month"].notna()]
    # the same snapshot: rows without one are NULL in both, E itself sees the month, E - 1 µs the one before
    assert ours.loc[300, "feature_month"] == pd.Timestamp("2023-02-01")
    assert ours.loc[301, "feature_month"] == pd.Timestamp("2023-01-01")
    assert len(ours) > 200
    for name in names:
        assert plain(theirs[name]) == pytest.approx(plain(ours[name])), name


def test_feast_online_rows_are_online_store_rows(store, feast):
    names = load_catalog(store.settings.analytics).names
    with OnlineStore(store.settings.analytics) as online:
        ours = online.lookup(feast["clients"], names)
    theirs = feast["online"]
    assert theirs["client_id"] == feast["clients"]
    assert all(row["success"] for row in ours)
    for name in names:
        assert plain(theirs[name]) == pytest.approx(plain([row["features"][name] for row in ours])), name
