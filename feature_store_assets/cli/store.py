"""`feature-store versions` and `feature-store restore VERSION`: the published store's versions (store/)."""

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
    finally:
        release(settings.warehouse)
    print(
        f"version {args.version} is current again as version {record.version} "
        f"({len(record.tables)} tables); {settings.analytics} shows it now"
    )
    print(
        "The warehouse still holds what was published after it: fix the input and re-run the months "
        "(`feature-store materialize`) to publish them again."
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
