"""Client feature store for veterinary-clinic analytics: Dagster assets over dbt and DuckDB.

`from feature_store_assets import FeatureStore`: the Python client (client.py), imported on first use so that
loading the Dagster definitions does not import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feature_store_assets.client import FeatureStore

__all__ = ["FeatureStore"]


def __getattr__(name: str) -> Any:
    if name == "FeatureStore":
        from feature_store_assets.client import FeatureStore

        return FeatureStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
