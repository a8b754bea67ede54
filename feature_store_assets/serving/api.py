"""The HTTP API under /api/v1/features: discovery, online inference, point-in-time training rows, health.

Read-only: it serves the published analytics file. Online lookups come from the
in-memory OnlineStore, which a background thread refreshes when a new file is
published; training rows run the same point-in-time join as
`get_training_features`, so a model sees the same values in training and inference.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from feature_store_assets.core.months import add_months
from feature_store_assets.core.settings import Settings
from feature_store_assets.defs.checks.freshness import FRESH, current_freshness
from feature_store_assets.serving.online import OnlineStore
from feature_store_assets.serving.published import (
    ENTITY,
    SNAPSHOT_COLUMN,
    AnalyticsUnavailable,
    ServingError,
    UnknownFeatures,
)
from feature_store_assets.serving.training import EVENT_TIMESTAMP, VERSION_ATTR, get_training_features

PREFIX = "/api/v1/features"
MAX_INFERENCE_IDS = 10_000
MAX_TRAINING_ROWS = 100_000  # larger training sets: the Python API or `feature-store training`
NO_SNAPSHOT = "no feature snapshot ended at or before event_timestamp"

Value = float | int | str | None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class InferenceRequest(Strict):
    client_ids: list[int] = Field(min_length=1, max_length=MAX_INFERENCE_IDS, description="clients to look up")
    features: list[str] | None = Field(None, min_length=1, description="feature names; all when omitted")


class EntityFeatures(BaseModel):
    client_id: int
    success: bool
    feature_month: date | None = Field(None, description="the snapshot served: features as of the end of this month")
    computed_at: datetime | None = Field(None, description="when the pipeline materialized that month")
    features: dict[str, Value] | None = None
    message: str | None = Field(None, description="why success is false")


class InferenceResponse(BaseModel):
    published_at: datetime = Field(description="when the served analytics file was published (UTC)")
    latest_feature_month: date | None
    results: list[EntityFeatures]


class TrainingRow(Strict):
    client_id: int
    event_timestamp: datetime = Field(description="naive, like the store's events: the label's time")

    @field_validator("event_timestamp")
    @classmethod
    def naive(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError("must be naive (no time zone): the store's months are naive calendar months")
        return value


class TrainingRequest(Strict):
    rows: list[TrainingRow] = Field(min_length=1, max_length=MAX_TRAINING_ROWS)
    features: list[str] | None = Field(None, min_length=1, description="feature names; all when omitted")
    max_age_months: int | None = Field(None, ge=0, description="drop snapshots older than this (0 = freshest only)")
    version: int | None = Field(None, ge=1, description="the store version to read; the current one when omitted")


class TrainingFeatures(BaseModel):
    client_id: int
    event_timestamp: datetime
    success: bool
    feature_month: date | None = None
    features: dict[str, Value] | None = None
    message: str | None = None


class TrainingResponse(BaseModel):
    feature_store_version: int | None = Field(description="the store version the rows were read from (pin it)")
    rows: list[TrainingFeatures]


class CatalogEntry(BaseModel):
    name: str
    description: str
    data_type: str
    entity: str
    window: str
    source_tables: list[str]
    source_columns: list[str]
    owner: str
    tags: list[str]
    leakage_risk: str
    leakage_note: str
    first_month: date | None
    last_month: date | None
    latest_month: date | None
    latest_null_rate: float | None


class DiscoveryResponse(BaseModel):
    count: int
    features: list[CatalogEntry]


class FreshnessState(BaseModel):
    state: str = Field(
        description="fresh, source_late (the landing zone is late), overdue (the store is late) or unpublished"
    )
    message: str = Field(description="the freshness check's description: which month, since when, what to do")


class Health(BaseModel):
    status: str = Field(description="ok when fresh; degraded when the served data is behind the month due; unavailable")
    freshness: FreshnessState | None = None
    latest_feature_month: date | None = None
    age_days: int | None = Field(None, description="days since the end (E) of the latest month served")
    stale: bool | None = Field(None, description="the latest month due is not served (freshness.state is not fresh)")
    published_at: datetime | None = None
    loaded_at: datetime | None = None
    clients: int | None = None
    features: int | None = None
    message: str | None = None


def _json_default(value: Any) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class ServingJSONResponse(JSONResponse):
    """Plain json.dumps with ISO dates: the handlers build JSON-ready dicts, so pydantic need not re-encode them."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=_json_default, separators=(",", ":"), allow_nan=False).encode()


def _unknown_features(error: UnknownFeatures) -> ServingJSONResponse:
    return ServingJSONResponse(
        status_code=400,
        content={"detail": {"message": str(error), "unknown_features": error.unknown, "valid_features": error.valid}},
    )


def _column_values(column: pd.Series) -> list[Any]:
    """Python values with None for every kind of missing (NaN, NA, NaT)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return [None if pd.isna(v) else v.date() for v in column]
    return column.astype(object).where(column.notna(), None).tolist()


def training_rows(request: TrainingRequest, analytics: Path) -> tuple[int | None, list[dict[str, Any]]]:
    """The store version read and one answer per requested row, in request order."""
    entities = pd.DataFrame(
        {
            ENTITY: pd.array([row.client_id for row in request.rows], dtype="int64"),
            EVENT_TIMESTAMP: pd.to_datetime([row.event_timestamp for row in request.rows]),
        }
    )
    found = get_training_features(
        entities, request.features, request.max_age_months, analytics=analytics, version=request.version
    )
    names = [c for c in found.columns if c not in (ENTITY, EVENT_TIMESTAMP, SNAPSHOT_COLUMN)]
    months = _column_values(found[SNAPSHOT_COLUMN])
    values = [_column_values(found[name]) for name in names]
    message = NO_SNAPSHOT + (
        "" if request.max_age_months is None else f" within max_age_months={request.max_age_months}"
    )
    rows = []
    for i, row in enumerate(request.rows):
        base = {ENTITY: row.client_id, EVENT_TIMESTAMP: row.event_timestamp}
        if months[i] is None:
            rows.append({**base, "success": False, "message": message})
        else:
            features = {name: column[i] for name, column in zip(names, values)}
            rows.append({**base, "success": True, SNAPSHOT_COLUMN: months[i], "features": features})
    return found.attrs[VERSION_ATTR], rows


def health_report(store: OnlineStore, raw_dir: Path, now: datetime) -> tuple[int, dict[str, Any]]:
    """The served month, its age and the freshness check's state (the same rule, over the served file and `raw_dir`)."""
    try:
        snapshot = store.snapshot
    except AnalyticsUnavailable as error:
        fresh = current_freshness(None, raw_dir, now)
        return 503, {
            "status": "unavailable",
            "freshness": {"state": fresh.state, "message": fresh.description},
            "message": str(error),
        }
    latest = snapshot.latest_month
    fresh = current_freshness(latest, raw_dir, now)
    return 200, {
        "status": "ok" if fresh.passed else "degraded",
        "freshness": {"state": fresh.state, "message": fresh.description},
        "latest_feature_month": latest,
        "age_days": (now.date() - add_months(latest, 1)).days if latest else None,
        "stale": fresh.state != FRESH,
        "published_at": snapshot.published_at,
        "loaded_at": snapshot.loaded_at,
        "clients": snapshot.clients,
        "features": len(snapshot.catalog),
        "message": store.last_error,
    }


def build_router(store: OnlineStore, raw_dir: Path) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["features"])

    @router.get("/discovery", response_model=DiscoveryResponse, summary="The feature catalog, optionally filtered")
    async def discovery(
        q: str | None = Query(None, description="text in the name or description"),
        tag: str | None = Query(None, description="an exact tag, e.g. revenue"),
        source_table: str | None = Query(None, description="a landing-zone table or table.column"),
    ):
        found = store.catalog.search(text=q, tag=tag, source_table=source_table)
        return ServingJSONResponse({"count": len(found), "features": [f.as_dict() for f in found]})

    @router.get("/discovery/{name}", response_model=CatalogEntry, summary="One feature's catalog entry")
    async def feature(name: str):
        try:
            return ServingJSONResponse(store.catalog.get(name).as_dict())
        except UnknownFeatures as error:
            return ServingJSONResponse(
                status_code=404, content={"detail": {"message": f"no feature {name!r}", "valid_features": error.valid}}
            )

    @router.post("/inference", response_model=InferenceResponse, summary="Latest features of one or many clients")
    async def inference(request: InferenceRequest):
        snapshot = store.snapshot
        plan = snapshot.plan(request.features)
        results = [snapshot.entity(client_id, plan) for client_id in request.client_ids]
        return ServingJSONResponse(
            {"published_at": snapshot.published_at, "latest_feature_month": snapshot.latest_month, "results": results}
        )

    @router.post("/training", response_model=TrainingResponse, summary="Point-in-time features for labelled rows")
    async def training(request: TrainingRequest):
        # DuckDB work can take a while: off the event loop, so lookups keep flowing.
        version, rows = await asyncio.to_thread(training_rows, request, store.analytics)
        return ServingJSONResponse({"feature_store_version": version, "rows": rows})

    @router.get("/health", response_model=Health, summary="The latest month served, its age and whether it is on time")
    async def health():
        # a directory listing of the landing zone: off the event loop, like the training rows
        status, report = await asyncio.to_thread(health_report, store, raw_dir, datetime.now(UTC))
        return ServingJSONResponse(status_code=status, content=report)

    return router


def create_app(analytics: Path, refresh_interval: float = 1.0, raw_dir: Path | None = None) -> FastAPI:
    """The API over the analytics file; it loads on startup and re-checks the file every refresh_interval s.

    `/health` judges freshness against the landing zone `raw_dir` (default: FEATURE_STORE_RAW_DIR's).
    """
    store = OnlineStore(analytics, load=False)
    raw_dir = raw_dir or Settings.from_env().raw_dir

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store.refresh_if_changed()  # a missing file is no reason not to start: health says 503 until it lands
        store.watch(refresh_interval)
        yield
        store.close()

    app = FastAPI(
        title="Client feature store",
        version="1",
        description="Discovery, online inference and point-in-time training rows over the published client features.",
        lifespan=lifespan,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    app.state.store = store

    @app.exception_handler(UnknownFeatures)
    async def unknown_features(request: Request, error: UnknownFeatures):
        return _unknown_features(error)

    @app.exception_handler(AnalyticsUnavailable)
    async def unavailable(request: Request, error: AnalyticsUnavailable):
        return ServingJSONResponse(status_code=503, content={"detail": {"message": str(error)}})

    @app.exception_handler(ServingError)
    async def bad_request(request: Request, error: ServingError):
        return ServingJSONResponse(status_code=400, content={"detail": {"message": str(error)}})

    app.include_router(build_router(store, raw_dir))
    return app
