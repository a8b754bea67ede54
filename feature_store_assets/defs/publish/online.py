"""After a publish: the shared online store in Redis (FEATURE_STORE_ONLINE_STORE, store/online.py) gets the
version just published, unless it serves it already.

The store is published first, whole (the analytics file swapped in, the months stamped published); only then
is the new snapshot pushed to Redis. So a Redis failure never leaves the store half-published: the publish
step records its materialization, then fails naming the Redis URL, while Redis keeps serving its previous
snapshot whole (the API's online answers stay on that version's months). The next run's publish step pushes
again, even when it has no new month to publish, as does `feature-store online push`.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from feature_store_assets.core.settings import redacted_url, setting_from_env
from feature_store_assets.store import StoreVersion
from feature_store_assets.store.online import OnlineStoreError, sync_online_store


class OnlineStoreBehind(dg.Failure):
    """The store was published; the online store in Redis could not be given it and serves an earlier version."""


def push_to_online_store(version: StoreVersion, analytics: Path) -> tuple[str, OnlineStoreBehind | None]:
    """(what happened, for the step's metadata; the failure to raise once the materialization is recorded).

    The URL is read from this process's environment: it is a secret (it may hold a password), so it is not in
    the run's config, which the Dagster UI shows."""
    url = setting_from_env("online_store")
    if not url:
        return "in memory (FEATURE_STORE_ONLINE_STORE is not set)", None
    try:
        report = sync_online_store(url, analytics, version.version)
    except OnlineStoreError as error:
        return f"failed: {error}", OnlineStoreBehind(
            description=f"published store version {version.version} (FEATURE_STORE_ANALYTICS={analytics}) whole, "
            f"but {error}.\nThe online store keeps serving its previous snapshot, whole: online answers stay on "
            "that version's months. The next run's publish step pushes this version again (so does "
            "`feature-store online push`).",
            metadata={"online_store": redacted_url(url), "store_version": version.version},
        )
    if report is None:
        return f"{redacted_url(url)} serves store version {version.version} already", None
    return report.describe(), None
