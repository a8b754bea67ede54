"""`feature-store features list|show`, `feature-store training`, `feature-store feast-repo` and `feature-store serve`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from feature_store_assets.core.settings import Settings

LIST_COLUMNS = (("name", 37), ("window", 8), ("data_type", 11), ("null_rate", 11), ("tags", 0))


def _catalog(settings: Settings):
    from feature_store_assets.serving.catalog import load_catalog

    return load_catalog(settings.analytics)


def cmd_features_list(args: argparse.Namespace, settings: Settings) -> int:
    found = _catalog(settings).search(text=args.search, tag=args.tag, source_table=args.source, entity=args.entity)
    if args.json:
        print(json.dumps([f.as_dict() for f in found], indent=2))
        return 0
    # names as requests take them: clinic features as clinic_features:NAME, a wider column when they are listed
    columns = [
        (title, max(width, *(len(f.feature_type) + 2 for f in found)) if i == 0 and found else width)
        for i, (title, width) in enumerate(LIST_COLUMNS)
    ]
    print("".join(f"{title:<{width}}" if width else title for title, width in columns))
    for f in found:
        null_rate = "" if f.latest_null_rate is None else f"{f.latest_null_rate:.1%}"
        cells = (f.feature_type, f.window, f.data_type, null_rate, ", ".join(f.tags))
        print("".join(f"{cell:<{width}}" if width else cell for cell, (_, width) in zip(cells, columns)))
    print(f"{len(found)} feature(s); `feature-store features show NAME` for one feature's lineage and leakage risk")
    return 0


def cmd_features_show(args: argparse.Namespace, settings: Settings) -> int:
    entry = _catalog(settings).get(args.name).as_dict()
    if args.json:
        print(json.dumps(entry, indent=2))
        return 0
    width = max(len(key) for key in entry) + 2
    for key, value in entry.items():
        if key == "versions":  # each version: its number, the month it applies from, its definition's hash
            value = [f"v{v['version']} from {v['first_month']} ({v['definition']})" for v in value]
        shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{key + ':':<{width}}{'' if shown is None else shown}")
    return 0


def read_entities(path: Path):
    """A CSV (event_timestamp parsed as ISO 8601) or Parquet file of entity rows."""
    import pandas as pd

    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        entities = pd.read_csv(path)
        if "event_timestamp" in entities.columns:  # so the output keeps a timestamp column, not text
            entities["event_timestamp"] = pd.to_datetime(entities["event_timestamp"], format="ISO8601")
        return entities
    raise ValueError(f"{path}: entities must be a .csv or .parquet file")


def cmd_training(args: argparse.Namespace, settings: Settings) -> int:
    from feature_store_assets.serving.training import VERSION_ATTR, get_training_features

    began = time.perf_counter()
    entities = read_entities(Path(args.entities))
    features = [name.strip() for name in args.features.split(",")] if args.features else None
    rows = get_training_features(
        entities, features, args.max_age_months, analytics=settings.analytics, version=args.version
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(out, index=False)
    matched = int(rows["feature_month"].notna().sum())
    print(
        f"{len(rows):,} rows ({matched:,} with a snapshot, {len(rows) - matched:,} without) "
        f"written to {out} in {time.perf_counter() - began:.1f}s"
        + ("" if rows.attrs[VERSION_ATTR] is None else f", from store version {rows.attrs[VERSION_ATTR]}")
    )
    return 0


def cmd_feast_repo(args: argparse.Namespace, settings: Settings) -> int:
    from feature_store_assets.serving.feast_repo import write_feast_repo

    directory = Path(args.directory)
    directory.mkdir(parents=True, exist_ok=True)
    repo = write_feast_repo(directory, settings.analytics, args.version)
    pinned = "" if repo.version is None else f" of store version {repo.version}"
    print(
        f"Feast repository written to {directory}: entity client, feature view client_features "
        f"({repo.features} features, {repo.rows:,} snapshot rows{pinned}). Next: cd {directory} && feast apply"
    )
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from feature_store_assets.core.settings import redacted_url
    from feature_store_assets.serving.api import PREFIX, create_app

    app = create_app(settings.analytics, refresh_interval=args.refresh_interval)
    online = f"; online lookups from {redacted_url(settings.online_store)}" if settings.online_store else ""
    print(
        f"serving {settings.analytics} at http://{args.host}:{args.port}{PREFIX} (OpenAPI: {PREFIX}/docs){online}",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def add_version_option(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--version", type=int, metavar="N", help=help)


def add_serving_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the serving commands to the `feature-store` parser; each reads FEATURE_STORE_ANALYTICS only."""
    features = subparsers.add_parser("features", help="list and inspect the feature catalog")
    catalog_commands = features.add_subparsers(dest="features_command", required=True)
    listing = catalog_commands.add_parser("list", help="every feature, or those matching the filters")
    listing.add_argument("--tag", help="an exact tag, e.g. revenue")
    listing.add_argument("--source", help="a landing-zone table (transactions) or column (transactions.revenue)")
    listing.add_argument("--search", help="text in the name or description")
    listing.add_argument("--entity", help="only the features of this entity: client_id or clinic_id")
    listing.add_argument("--json", action="store_true", help="print the entries as JSON")
    listing.set_defaults(run=cmd_features_list)
    show = catalog_commands.add_parser("show", help="one feature's full catalog entry")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="print the entry as JSON")
    show.set_defaults(run=cmd_features_show)

    training = subparsers.add_parser("training", help="point-in-time features for labelled entity rows")
    training.add_argument(
        "--entities", required=True, metavar="FILE", help=".csv or .parquet with client_id, event_timestamp"
    )
    training.add_argument("--out", required=True, metavar="FILE.parquet")
    training.add_argument("--features", metavar="A,B,...", help="comma-separated feature names (default: all)")
    training.add_argument("--max-age-months", type=int, metavar="N", help="drop snapshots older than N months")
    add_version_option(training, "the store version to read (`feature-store versions`; default: the current one)")
    training.set_defaults(run=cmd_training)

    feast = subparsers.add_parser("feast-repo", help="write a Feast feature repository over the published features")
    feast.add_argument("directory", metavar="DIR")
    add_version_option(feast, "the store version its snapshot holds (default: the current one)")
    feast.set_defaults(run=cmd_feast_repo)

    serve = subparsers.add_parser("serve", help="the HTTP API (discovery, inference, training, health)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--refresh-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often to check for a newly published file",
    )
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(run=cmd_serve)
