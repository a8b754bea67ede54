"""Serving the published features: the catalog, point-in-time training sets and online lookup.

Everything here reads the published analytics file (FEATURE_STORE_ANALYTICS) read-only; see docs/serving.md.
"""

from feature_store_assets.serving.catalog import Feature, FeatureCatalog, load_catalog
from feature_store_assets.serving.online import OnlineStore
from feature_store_assets.serving.published import AnalyticsUnavailable, ServingError, UnknownFeatures
from feature_store_assets.serving.training import get_training_features

__all__ = [
    "AnalyticsUnavailable",
    "Feature",
    "FeatureCatalog",
    "OnlineStore",
    "ServingError",
    "UnknownFeatures",
    "get_training_features",
    "load_catalog",
]
