"""`feature-store versions`, `feature-store restore VERSION` and `feature-store online push|status`: the published
store's versions (store/) and the shared online store in Redis (store/online.py)."""

from __future__ import annotations

import argparse
import json

from feature_store_assets.core.settings import Settings

VERSION_COLUMNS = (("", 2), ("version", 9), ("published_at", 27), ("run_id", 38), ("months", 0))


def _months(months: list[str] | None) -> str:
    return "everything" if months is None else ", ".join(months) or "none"


def cmd_versions(args: argparse.Namespace, settings: Settings) -> int:
    from feature_store_assets.store import current_version, list_versions

    versions = list_versions(settings.published_dir)
    current = current_version(settings.published_dir)
    if args.json:
        print(json.dumps([{**v.as_dict(), "current": v == current} for v in versions], indent=2))
        return 0
    if not versions:
        print(f"nothing published in {settings.published_dir} yet: run `feature-store materialize` first")
        return 0
    print("".join(f"{title:<{width}}" if width else title for title, width in VERSION_COLUMNS))
    for v in reversed(versions):
        months = _months(v.months) + (f" (restore of version {v.restored_from})" if v.restored_from else "")
        cells = ("*" if v == current else "", str(v.version), v.published_at, v.run_id or "", months)
        print("".join(f"{cell:<{width}}" if width else cell for cell, (_, width) in zip(cells, VERSION_COLUMNS)))
    print(
        f"{len(versions)} version(s) kept in {settings.published_dir} (FEATURE_STORE_KEEP_VERSIONS="
        f"{settings.keep_versions}); * is current; `feature-store restore VERSION` makes another one current"
    )
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    """Restore under the warehouse's run lock, so no run publishes meanwhile."""
    from feature_store_assets.operations.runs import RunInProgress, acquire, release
    from feature_store_assets.store import restore

    try:
        acquire(settings.warehouse, None, command="feature-store restore")
    except RunInProgress as error:
        raise ValueError(f"{error}; restore once it has finished") from None
    try:
        record = restore(settings.published_dir, settings.analytics, args.version, keep=settings.keep_versions)
        print(
            f"version {args.version} is current again as version {record.version} "
            f"({len(record.tables)} tables); {settings.analytics} shows it now"
        )
        if settings.online_store:  # the online answers follow the restored version too
            _push(settings, record.version)
    finally:
        release(settings.warehouse)
    print(
        "The warehouse still holds what was published after it: fix the input and re-run the months "
        "(`feature-store materialize`) to publish them again."
    )
    return 0


def _push(settings: Settings, store_version: int | None) -> None:
    from feature_store_assets.store.online import OnlineStoreError, push_snapshot

    try:
        print(push_snapshot(settings.online_store, settings.analytics, store_version).describe())
    except OnlineStoreError as error:
        raise ValueError(
            f"{error}; the online store keeps serving its previous snapshot, whole (`feature-store online push` "
            "tries again)"
        ) from None


def _online_url(settings: Settings) -> str:
    if not settings.online_store:
        raise ValueError("FEATURE_STORE_ONLINE_STORE is not set: the online store is each server's memory")
    return settings.online_store


def cmd_online_push(args: argparse.Namespace, settings: Settings) -> int:
    """Push the published version to Redis now, under the run lock (one writer): after a failed push, or after
    Redis lost its data."""
    from feature_store_assets.operations.runs import RunInProgress, acquire, release
    from feature_store_assets.store import current_version

    _online_url(settings)
    try:
        acquire(settings.warehouse, None, command="feature-store online push")
    except RunInProgress as error:
        raise ValueError(f"{error}; its publish step pushes when it is done") from None
    try:
        version = current_version(settings.published_dir) if settings.published_dir.is_dir() else None
        _push(settings, version.version if version else None)
    finally:
        release(settings.warehouse)
    return 0


def cmd_online_status(args: argparse.Namespace, settings: Settings) -> int:
    from feature_store_assets.core.settings import redacted_url
    from feature_store_assets.store import current_version
    from feature_store_assets.store.online import OnlineStoreError, online_status

    url = _online_url(settings)
    try:
        snapshot_id, meta = online_status(url)
    except OnlineStoreError as error:
        raise ValueError(str(error)) from None
    if meta is None:
        print(f"{redacted_url(url)} holds no snapshot: `feature-store online push` pushes the published version")
        return 0
    views = ", ".join(f"{name} {layout.entities:,}" for name, layout in meta.views.items())
    published = current_version(settings.published_dir) if settings.published_dir.is_dir() else None
    behind = published is not None and published.version != meta.store_version
    print(
        f"{redacted_url(url)} serves {snapshot_id}: store version {meta.store_version}, pushed at {meta.pushed_at} "
        f"({views})"
        + (f"; the published version is {published.version}: `feature-store online push` pushes it" if behind else "")
    )
    return 0


def add_store_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the published store's commands to the `feature-store` parser (FEATURE_STORE_PUBLISHED_DIR)."""
    versions = subparsers.add_parser("versions", help="the published store's versions, newest first")
    versions.add_argument("--json", action="store_true", help="print the versions (tables, files) as JSON")
    versions.set_defaults(run=cmd_versions)

    restore = subparsers.add_parser(
        "restore", help="make an earlier published version current again (docs/published-store.md)"
    )
    restore.add_argument("version", type=int, metavar="VERSION", help="a version number from `feature-store versions`")
    restore.set_defaults(run=cmd_restore)

    online = subparsers.add_parser(
        "online", help="the shared online store in Redis, FEATURE_STORE_ONLINE_STORE (docs/serving.md)"
    )
    online_commands = online.add_subparsers(dest="online_command", required=True)
    online_commands.add_parser("push", help="push the published version to Redis now").set_defaults(run=cmd_online_push)
    online_commands.add_parser("status", help="the snapshot Redis serves: its store version and entities").set_defaults(
        run=cmd_online_status
    )
