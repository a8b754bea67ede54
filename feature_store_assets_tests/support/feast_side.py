"""Feast's side of test_feast.py, run by the Python of Feast's own virtual environment (benchmarks/feast_env.py).

Standalone: it imports Feast and pandas only, never this project. In a repository `feast apply` has applied:

    python feast_side.py REPO ENTITIES.parquet TRAINING_OUT.parquet CLIENTS.json ONLINE_OUT.json

writes get_historical_features for the entity rows, then materializes everything up to now and writes
get_online_features for the clients (JSON: {"client_id": [...], feature: [...]}).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from feast import FeatureStore


def main(repo: str, entities: str, training_out: str, clients: str, online_out: str) -> None:
    store = FeatureStore(repo_path=repo)
    view = store.get_feature_view("client_features")
    references = [f"client_features:{feature.name}" for feature in view.features]
    training = store.get_historical_features(entity_df=pd.read_parquet(entities), features=references).to_df()
    training.to_parquet(training_out)
    snapshot = pd.read_parquet(Path(repo) / view.batch_source.path, columns=["available_at"])
    store.materialize(
        start_date=snapshot["available_at"].min().to_pydatetime() - timedelta(days=1),
        end_date=datetime.now(UTC),
    )
    rows = [{"client_id": int(c)} for c in json.loads(Path(clients).read_text())]
    Path(online_out).write_text(json.dumps(store.get_online_features(features=references, entity_rows=rows).to_dict()))


if __name__ == "__main__":
    main(*sys.argv[1:])
