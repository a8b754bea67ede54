"""One Python object for the feature store: list features, get training and online features, materialize months.

`FeatureStore()` works on the local published files (FEATURE_STORE_ANALYTICS, or `analytics=`), and
`FeatureStore(url=..., api_key=...)` on the HTTP service (`feature-store serve`); the same calls give the same
results. It is thin on purpose: locally the calls are serving/catalog.py, serving/training.py,
serving/online.py and the CLI's `materialize` path; over HTTP they are the API's discovery, `/training` (rows),
`/inference` (client_ids or clinic_ids) and `/extract`, whose answers are turned into the same frames through the
same conversion (`serving/training.py: arrow_frame`). docs/serving.md, "The Python client".
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from feature_store_assets.core.months import format_month, month_range, parse_month
from feature_store_assets.core.settings import Settings
from feature_store_assets.serving.catalog import Column, Feature, FeatureCatalog, FeatureVersion, FeatureView, Table
from feature_store_assets.serving.published import (
    SNAPSHOT_COLUMN,
    AnalyticsUnavailable,
    ServingError,
    UnknownFeatures,
)
from feature_store_assets.serving.training import (
    _KEY,
    EVENT_TIMESTAMP,
    arrow_frame,
    check_clashes,
    entity_rows,
    training_frame,
    training_view,
)

PREFIX = "/api/v1/features"
COMPUTED_AT = "computed_at"
# Rows per HTTP request, below the API's limits (100,000 training rows, 10,000 ids, 8 MiB bodies).
TRAINING_BATCH = 20_000
ONLINE_BATCH = 10_000
# The catalog's data types (the dbt yml's, DuckDB's names) as Arrow types: the frames the local path gives.
ARROW_TYPES = {
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "float": pa.float32(),
    "real": pa.float32(),
    "varchar": pa.string(),
    "text": pa.string(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
}


def arrow_type(feature: Feature) -> pa.DataType:
    try:
        return ARROW_TYPES[feature.data_type.lower()]
    except KeyError:
        raise ServingError(f"feature {feature.ref}: data type {feature.data_type!r} has no Arrow type") from None


def _months(months: str | date | Iterable[str | date]) -> list[date]:
    """`"2023-04"`, a date, or several of them: the months, sorted, once each."""
    items = [months] if isinstance(months, str | date) else list(months)
    if not items:
        raise ServingError("materialize needs at least one month (YYYY-MM)")
    return sorted({item if isinstance(item, date) else parse_month(item) for item in items})


def contiguous(months: Sequence[date]) -> list[tuple[date, date]]:
    """Sorted months as (first, last) runs of consecutive months (pure)."""
    runs: list[tuple[date, date]] = []
    for month in months:
        if runs and month_range(runs[-1][1], month)[1:] == [month]:
            runs[-1] = (runs[-1][0], month)
        else:
            runs.append((month, month))
    return runs


def entity_ids(entities: Mapping[str, Sequence[int]] | Sequence[Mapping[str, int]]) -> tuple[str, list[int]]:
    """The entity and its ids from `{"clinic_id": [103, 104]}` or Feast's entity rows `[{"clinic_id": 103}, ...]`."""
    if isinstance(entities, Mapping):
        keys, ids = list(entities), None
        if len(keys) == 1:
            ids = list(entities[keys[0]])
    else:
        rows = list(entities)
        keys = sorted({key for row in rows for key in row})
        ids = [row[keys[0]] for row in rows] if len(keys) == 1 and all(len(row) == 1 for row in rows) else None
    if ids is None:
        raise ServingError(
            f"entities name one entity (client_id or clinic_id), got {', '.join(map(str, keys)) or 'none'}"
        )
    return keys[0], [int(i) for i in ids]


def online_frame(
    view: FeatureView, names: Sequence[str], ids: Sequence[int], answers: Sequence[Mapping]
) -> pd.DataFrame:
    """One row per requested id, in order: the entity, feature_month and computed_at (NaT for an unknown one)
    and the features, typed by the catalog (pure). `answers`: OnlineStore.lookup's, dates as dates."""
    features = {f.name: f for f in view.features}
    columns: dict[str, pa.Array] = {
        view.entity: pa.array(ids, type=pa.int64()),
        SNAPSHOT_COLUMN: pa.array([a.get(SNAPSHOT_COLUMN) for a in answers], type=pa.date32()),
        COMPUTED_AT: pa.array([a.get(COMPUTED_AT) for a in answers], type=pa.timestamp("us")),
    }
    for name in names:
        values = [a["features"][name] if a["success"] else None for a in answers]
        columns[name] = pa.array(values, type=arrow_type(features[name]))
    return arrow_frame(pa.table(columns))


def _date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _timestamp(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def feature_from_entry(entry: Mapping[str, Any]) -> Feature:
    """A discovery entry (GET /discovery) as the catalog's Feature."""
    return Feature(
        name=entry["name"],
        description=entry["description"],
        data_type=entry["data_type"],
        entity=entry["entity_type"],
        window=entry["window"],
        source_columns=tuple(entry["source_columns"]),
        owner=entry["owner"],
        tags=tuple(entry["tags"]),
        leakage_risk=entry["leakage_risk"],
        leakage_note=entry["leakage_note"],
        first_month=_date(entry["first_month"]),
        last_month=_date(entry["last_month"]),
        latest_month=_date(entry["latest_month"]),
        latest_null_rate=entry["latest_null_rate"],
        feature_view=entry["feature_view"],
        versions=tuple(FeatureVersion.from_dict(v) for v in entry.get("versions") or ()),
    )


def table_from_entry(entry: Mapping[str, Any]) -> Table:
    """A GET /discovery/tables entry as the catalog's Table."""
    return Table(
        entry["table"],
        entry["description"],
        tuple(Column(c["name"], c["data_type"], c["description"]) for c in entry["columns"]),
    )


class FeatureStore:
    """The feature store from Python: the local published files, or the HTTP service with `url`.

    - `list_features(text=, tag=, source_table=, entity=)`: catalog entries (`Feature`), both feature views;
      `list_tables()`: the marts, tables to query with SQL.
    - `get_training_features(entity_df, features=None, version=None, max_age_months=None)`: point-in-time rows,
      `entity_df` of client_id (or clinic_id) and event_timestamp; `attrs["feature_store_version"]` is the version.
    - `get_online_features(entities, features=None)`: the latest row of each entity, `{"client_id": [...]}` or
      Feast's `[{"clinic_id": 103}, ...]`; unknown ids get NaT and NA.
    - `materialize(months)`: run months (`"2023-04"` or several) through Dagster and publish them;
      `{month: {feature: entities with a value}}`. Over HTTP this is `POST /extract`, one month at a time, and
      needs the API key.
    """

    def __init__(
        self,
        analytics: Path | str | None = None,
        *,
        url: str | None = None,
        api_key: str | None = None,
        settings: Settings | None = None,
        timeout: float = 60.0,
    ):
        if url is not None and analytics is not None:
            raise ServingError("give analytics (the local published file) or url (the HTTP service), not both")
        self.url = url.rstrip("/") if url else None
        self.api_key = api_key
        self.timeout = timeout
        self.settings = settings or Settings.from_env()
        if analytics is not None:
            self.settings = replace(self.settings, analytics=Path(analytics), published_dir=None)
        self._online = None

    @property
    def analytics(self) -> Path:
        return self.settings.analytics

    def __repr__(self) -> str:
        return f"FeatureStore(url={self.url!r})" if self.url else f"FeatureStore(analytics={str(self.analytics)!r})"

    # ---------------------------------------------------------------- the four calls

    def list_features(
        self,
        text: str | None = None,
        tag: str | None = None,
        source_table: str | None = None,
        entity: str | None = None,
    ) -> list[Feature]:
        """The catalog's features matching every filter given (FeatureCatalog.search), in catalog order."""
        if self.url is None:
            from feature_store_assets.serving.catalog import load_catalog

            return load_catalog(self.analytics).search(text=text, tag=tag, source_table=source_table, entity=entity)
        query = {"q": text, "tag": tag, "source_table": source_table, "entity_type": entity}
        return [feature_from_entry(entry) for entry in self._get("/discovery", query)]

    def list_tables(self) -> list[Table]:
        """The marts: tables to query with SQL on the analytics file, not online features."""
        if self.url is None:
            from feature_store_assets.serving.catalog import published_tables
            from feature_store_assets.serving.published import open_analytics

            with open_analytics(self.analytics) as con:
                return published_tables(con)
        return [table_from_entry(entry) for entry in self._get("/discovery/tables")]

    def get_training_features(
        self,
        entity_df: pd.DataFrame,
        features: Sequence[str] | None = None,
        version: int | None = None,
        max_age_months: int | None = None,
    ) -> pd.DataFrame:
        """entity_df with feature_month and the features as of each row's event_timestamp (get_training_features)."""
        if self.url is None:
            from feature_store_assets.serving.training import get_training_features

            return get_training_features(entity_df, features, max_age_months, analytics=self.analytics, version=version)
        view, names = training_view(self._catalog(), entity_df, features)
        rows = entity_rows(entity_df, view.entity)
        check_clashes(entity_df, names)
        ids, times = rows.column(_KEY).to_pylist(), rows.column(EVENT_TIMESTAMP).to_pylist()
        if None in ids or None in times:
            raise ServingError(
                f"{view.entity} and {EVENT_TIMESTAMP} need a value in every row for the HTTP service "
                "(the local files take missing ones as rows without a snapshot)"
            )
        answers: list[dict] = []
        for start in range(0, len(ids), TRAINING_BATCH):
            batch = zip(ids[start : start + TRAINING_BATCH], times[start : start + TRAINING_BATCH])
            body = {
                "rows": [{view.entity: i, EVENT_TIMESTAMP: t.isoformat()} for i, t in batch],
                "features": None if features is None else list(features),
                "max_age_months": max_age_months,
                "version": version,
            }
            found = self._post("/training", body)
            version = found["feature_store_version"]  # later batches read the version the first one did
            answers += found["rows"]
        by_name = {f.name: f for f in view.features}
        columns = {SNAPSHOT_COLUMN: pa.array([_date(a.get(SNAPSHOT_COLUMN)) for a in answers], type=pa.date32())}
        for name in names:
            values = [a["features"][name] if a["success"] else None for a in answers]
            columns[name] = pa.array(values, type=arrow_type(by_name[name]))
        return training_frame(entity_df, pa.table(columns), version)

    def get_online_features(
        self,
        entities: Mapping[str, Sequence[int]] | Sequence[Mapping[str, int]],
        features: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The latest published row of each entity, one frame row per id in request order."""
        entity, ids = entity_ids(entities)
        if self.url is None:
            online = self._online_store()
            selection = online.catalog.select(features, entity)
            return online_frame(selection.view, selection.names, ids, online.lookup(ids, features, entity))
        selection = self._catalog().select(features, entity)
        answers: list[dict] = []
        for start in range(0, len(ids), ONLINE_BATCH):
            body = {
                f"{entity}s": ids[start : start + ONLINE_BATCH],
                "features": None if features is None else list(features),
            }
            for answer in self._post("/inference", body)["results"]:
                answer[SNAPSHOT_COLUMN] = _date(answer.get(SNAPSHOT_COLUMN))
                answer[COMPUTED_AT] = _timestamp(answer.get(COMPUTED_AT))
                answers.append(answer)
        return online_frame(selection.view, selection.names, ids, answers)

    def materialize(
        self, months: str | date | Iterable[str | date], poll_seconds: float = 1.0
    ) -> dict[str, dict[str, int]]:
        """Materialize and publish the months; per month, each feature's entities with a value in it.

        Locally: the CLI's materialize path (one Dagster run per run of consecutive months, on DAGSTER_HOME's
        instance). Over HTTP: `POST /extract` per month, polled until the run ends; a failed run raises."""
        wanted = _months(months)
        if self.url is None:
            from feature_store_assets.cli.main import materialize_months
            from feature_store_assets.serving.extract import feature_counts

            for first, last in contiguous(wanted):
                materialize_months(self.settings, first, last)
            return {format_month(month): feature_counts(self.analytics, month) for month in wanted}
        counts = {}
        for month in wanted:
            report = self._post("/extract", {"month": format_month(month)})
            while report["status"] not in ("succeeded", "failed"):
                time.sleep(poll_seconds)
                report = self._get(f"/extract/{report['run_id']}")
            if report["status"] == "failed":
                raise ServingError(report["message"])
            counts[format_month(month)] = report["features_extracted"]
        return counts

    # ---------------------------------------------------------------- local and HTTP plumbing

    def _online_store(self):
        """One OnlineStore (the shared one in Redis with FEATURE_STORE_ONLINE_STORE), loaded on first use and
        reloaded when a newer file has been published (or Redis switched snapshots) since."""
        from feature_store_assets.serving.online import open_online_store

        if self._online is None:
            self._online = open_online_store(self.analytics, self.settings.online_store)
        else:
            self._online.refresh_if_changed()
        return self._online

    def _catalog(self) -> FeatureCatalog:
        return FeatureCatalog(feature_from_entry(entry) for entry in self._get("/discovery"))

    def _get(self, path: str, query: Mapping[str, str | None] | None = None) -> Any:
        given = {key: value for key, value in (query or {}).items() if value is not None}
        return self._call("GET", path + (f"?{urllib.parse.urlencode(given)}" if given else ""))

    def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._call("POST", path, {key: value for key, value in body.items() if value is not None})

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        headers = {"content-type": "application/json"}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{PREFIX}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise http_error(method, path, error.code, error.read()) from None


def http_error(method: str, path: str, status: int, body: bytes) -> ServingError:
    """The API's error answer as the exception the local path raises for the same request (pure)."""
    try:
        detail = json.loads(body).get("detail")
    except ValueError:
        detail = body.decode(errors="replace")[:500]
    if isinstance(detail, dict) and "unknown_features" in detail:
        return UnknownFeatures(detail["unknown_features"], detail["valid_features"])
    message = detail.get("message") if isinstance(detail, dict) else detail
    if status == 503:
        return AnalyticsUnavailable(str(message))
    return ServingError(f"{method} {PREFIX}{path}: HTTP {status}: {message}")
