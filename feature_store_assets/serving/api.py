"""The HTTP API under /api/v1/features: discovery, inference, training, extract, health; /metrics and /docs.

The four-endpoint contract (`serving/contract.py`) and the richer bodies share each path, told apart
strictly by their fields. Reads serve the published analytics file; `POST /extract` starts a run
(`serving/extract.py`). Keys, the body size limit and short errors: `serving/guard.py`; metrics:
`serving/metrics.py`. Online lookups come from the
in-memory OnlineStore, which a background thread refreshes when a new file is
published, or from the shared online store in Redis (FEATURE_STORE_ONLINE_STORE, serving/redis_online.py); training rows run the same point-in-time join as
`get_training_features`, so a model sees the same values in training and inference.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Discriminator, Field, Tag, field_validator, model_validator

from feature_store_assets.core.months import add_months, format_month, parse_month
from feature_store_assets.core.settings import Settings
from feature_store_assets.defs.checks.freshness import FRESH, current_freshness
from feature_store_assets.serving.contract import (
    CLINIC,
    ENTITY_TYPES,
    MAX_INFERENCE_IDS,
    MAX_TRAINING_ROWS,
    ClientId,
    ClinicId,
    ContractExtractResponse,
    ContractInference,
    ContractResult,
    ContractTraining,
    ContractTrainingResponse,
    FeatureNames,
    StrictBody,
    contract_results,
    missing_reason,
)
from feature_store_assets.serving.extract import Extractor, ExtractRefused, month_to_extract
from feature_store_assets.serving.guard import (
    BodyLimit,
    KeyRefused,
    check_key,
    key_refused_response,
    presented_key,
    validation_error,
)
from feature_store_assets.serving.metrics import ServiceMetrics, metrics_middleware
from feature_store_assets.serving.online import OnlineSnapshot, OnlineStore, open_online_store
from feature_store_assets.serving.published import (
    ENTITY,
    SNAPSHOT_COLUMN,
    AnalyticsUnavailable,
    ServingError,
    UnknownFeatures,
)
from feature_store_assets.serving.training import EVENT_TIMESTAMP, VERSION_ATTR, get_training_features

PREFIX = "/api/v1/features"
DOCS_ASSETS = f"{PREFIX}/docs-assets"
REDOC_ASSETS = f"{PREFIX}/redoc-assets"

Value = float | int | str | None


class InferenceRequest(StrictBody):
    """Many clients, many features of client_features: the latest snapshot of each."""

    client_ids: list[ClientId] = Field(
        min_length=1, max_length=MAX_INFERENCE_IDS, description=f"clients to look up (at most {MAX_INFERENCE_IDS:,})"
    )
    features: FeatureNames


class ClinicInferenceRequest(StrictBody):
    """Many clinics, many features of clinic_features (bare names, or clinic_features:NAME): the latest of each."""

    clinic_ids: list[ClinicId] = Field(
        min_length=1, max_length=MAX_INFERENCE_IDS, description=f"clinics to look up (at most {MAX_INFERENCE_IDS:,})"
    )
    features: FeatureNames


class EntityFeatures(BaseModel):
    client_id: int | None = Field(None, description="the client looked up (a client_ids request)")
    clinic_id: int | None = Field(None, description="the clinic looked up (a clinic_ids request)")
    success: bool
    reason: str | None = Field(None, description="why success is false: unknown_entity")
    feature_month: date | None = Field(None, description="the snapshot served: features as of the end of this month")
    computed_at: datetime | None = Field(None, description="when the pipeline materialized that month")
    features: dict[str, Value] | None = None
    message: str | None = Field(None, description="why success is false")


class InferenceResponse(BaseModel):
    published_at: datetime = Field(description="when the served analytics file was published (UTC)")
    latest_feature_month: date | None
    results: list[EntityFeatures]


class TrainingRow(StrictBody):
    """A client_id (client_features) or a clinic_id (clinic_features), and the label's time."""

    client_id: ClientId | None = None
    clinic_id: ClinicId | None = None
    event_timestamp: datetime = Field(description="naive, like the store's events: the label's time")

    @model_validator(mode="after")
    def one_entity(self) -> TrainingRow:
        if (self.client_id is None) == (self.clinic_id is None):
            raise ValueError("give exactly one of client_id or clinic_id")
        return self

    @property
    def entity(self) -> tuple[str, int]:
        return (ENTITY, self.client_id) if self.client_id is not None else (CLINIC, self.clinic_id)

    @field_validator("event_timestamp")
    @classmethod
    def naive(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError("must be naive (no time zone): the store's months are naive calendar months")
        return value


class TrainingRequest(StrictBody):
    """Point-in-time rows: each (client_id, event_timestamp) gets the latest snapshot ended before it."""

    rows: list[TrainingRow] = Field(
        min_length=1, max_length=MAX_TRAINING_ROWS, description=f"at most {MAX_TRAINING_ROWS:,} rows"
    )
    features: FeatureNames
    max_age_months: int | None = Field(
        None, strict=True, ge=0, le=1200, description="drop snapshots older than this (0 = freshest only)"
    )
    version: int | None = Field(
        None, strict=True, ge=1, le=2**31, description="the store version to read; the current one when omitted"
    )

    @model_validator(mode="after")
    def one_entity(self) -> TrainingRequest:
        if len({row.entity[0] for row in self.rows}) > 1:
            raise ValueError("rows mix client_id and clinic_id: one feature view (one entity) per request")
        return self

    @property
    def entity(self) -> str:
        return self.rows[0].entity[0]


def _has(field: str):
    return lambda body: field if isinstance(body, dict) and field in body else "contract"


def _inference_shape(body: Any) -> str:
    if isinstance(body, dict):
        return next((field for field in ("client_ids", "clinic_ids") if field in body), "contract")
    return "contract"


# One path, two shapes, told apart by one field: `client_ids` or `clinic_ids` (or `rows`) is the richer body,
# else the contract's.
InferenceBody = Annotated[
    Annotated[InferenceRequest, Tag("client_ids")]
    | Annotated[ClinicInferenceRequest, Tag("clinic_ids")]
    | Annotated[ContractInference, Tag("contract")],
    Discriminator(_inference_shape),
]
TrainingBody = Annotated[
    Annotated[TrainingRequest, Tag("rows")] | Annotated[ContractTraining, Tag("contract")],
    Discriminator(_has("rows")),
]


class ExtractRequest(StrictBody):
    month: str | None = Field(
        None, pattern=r"^\d{4}-\d{2}$", description="YYYY-MM; default: the latest month the landing zone holds whole"
    )


class TrainingFeatures(BaseModel):
    client_id: int | None = Field(None, description="the row's client (rows of client_id)")
    clinic_id: int | None = Field(None, description="the row's clinic (rows of clinic_id)")
    event_timestamp: datetime
    success: bool
    reason: str | None = Field(
        None, description="why success is false: unknown_entity, not_eligible, no_snapshot_yet or too_old"
    )
    feature_month: date | None = None
    features: dict[str, Value] | None = None
    message: str | None = None


class TrainingResponse(BaseModel):
    feature_store_version: int | None = Field(description="the store version the rows were read from (pin it)")
    rows: list[TrainingFeatures]


class FeatureVersionEntry(BaseModel):
    version: int
    first_month: date | None = Field(description="the first feature month built with it")
    definition: str = Field(description="hash of the definition: the yml entry and the SQL lineage of the column")


class CatalogEntry(BaseModel):
    kind: Literal["feature"] = Field(description="an online feature (`GET /discovery/tables` lists the tables)")
    feature_type: str = Field(
        description="what /inference and /training take as feature_type: the name for client features, "
        "clinic_features:NAME for clinic features"
    )
    name: str = Field(description="the column of its feature view")
    feature_view: str = Field(description="client_features (entity client_id) or clinic_features (clinic_id)")
    entity_type: str = Field(description="client_id or clinic_id: the key its feature view is looked up by")
    created_at: datetime | None = Field(description="when the feature's first month was materialized (the ledger)")
    description: str
    data_type: str
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
    version: int | None = Field(
        None, description="the definition's version: 1, then one more each time its yml entry or SQL changed"
    )
    version_first_month: date | None = Field(
        None, description="the first feature month built with this version: it applies from there on"
    )
    definition: str | None = Field(None, description="hash of this version's definition (yml entry and SQL lineage)")
    versions: list[FeatureVersionEntry] = Field(default_factory=list, description="every version, oldest first")


class TableColumn(BaseModel):
    name: str
    data_type: str
    description: str = Field(description="from the dbt yml")


class TableEntry(BaseModel):
    kind: Literal["table"] = Field(description="a table to query with SQL on the analytics file, not served online")
    table: str = Field(description="schema.table, as SQL names it in the analytics file")
    description: str = Field(description="the dbt model's description, from its yml")
    query: str = Field(description="a query to start from")
    columns: list[TableColumn]


class FreshnessState(BaseModel):
    state: str = Field(
        description="fresh, source_late (the landing zone is late), overdue (the store is late) or unpublished"
    )
    message: str = Field(description="the freshness check's description: which month, since when, what to do")


class EntityCounts(BaseModel):
    feature_view: str
    entities: int = Field(description="ids with a published snapshot")
    features: int
    latest_feature_month: date | None


class Health(BaseModel):
    status: str = Field(description="ok when fresh; stale (with a message) when the served data is behind; unavailable")
    freshness: FreshnessState | None = None
    latest_feature_month: date | None = None
    age_days: int | None = Field(None, description="days since the end (E) of the latest month served")
    stale: bool | None = Field(None, description="the latest month due is not served (freshness.state is not fresh)")
    published_at: datetime | None = None
    loaded_at: datetime | None = None
    clients: int | None = Field(None, description="clients served (client_features)")
    features: int | None = Field(None, description="features of client_features")
    entities: dict[str, EntityCounts] | None = Field(
        None, description="per entity type (client_id, clinic_id): its feature view, ids served, features, latest month"
    )
    message: str | None = Field(None, description="why stale, or the last refresh's error")
    online_store: dict[str, Any] | None = Field(
        None,
        description='where lookups read: {"kind": "memory"}, or {"kind": "redis", "url" (password masked), '
        '"snapshot", "store_version", "pushed_at"} with FEATURE_STORE_ONLINE_STORE',
    )


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


def training_rows(
    request: TrainingRequest, analytics: Path, snapshot: OnlineSnapshot | None = None
) -> tuple[int | None, list[dict[str, Any]]]:
    """The store version read and one answer per requested row, in request order; a row without a snapshot
    says why (`contract.missing_reason`, judged against the served snapshot's entities and months)."""
    entity = request.entity
    entities = pd.DataFrame(
        {
            entity: pd.array([row.entity[1] for row in request.rows], dtype="int64"),
            EVENT_TIMESTAMP: pd.to_datetime([row.event_timestamp for row in request.rows]),
        }
    )
    found = get_training_features(
        entities, request.features, request.max_age_months, analytics=analytics, version=request.version
    )
    names = [c for c in found.columns if c not in (entity, EVENT_TIMESTAMP, SNAPSHOT_COLUMN)]
    months = _column_values(found[SNAPSHOT_COLUMN])
    values = [_column_values(found[name]) for name in names]
    served = snapshot.rows_of(entity) if snapshot is not None else None
    missing = [row.entity[1] for row, month in zip(request.rows, months) if month is None]
    known = served.known(missing) if served is not None and missing else None
    first_month = min(served.ledger, default=served.latest_month) if served is not None else None
    rows = []
    for i, row in enumerate(request.rows):
        entity_id = row.entity[1]
        base = {entity: entity_id, EVENT_TIMESTAMP: row.event_timestamp}
        if months[i] is None:
            reason, message = missing_reason(
                known is None or entity_id in known, row.event_timestamp, first_month, request.max_age_months, entity
            )
            rows.append({**base, "success": False, "reason": reason, "message": message})
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
        "status": "ok" if fresh.passed else "stale",
        "freshness": {"state": fresh.state, "message": fresh.description},
        "latest_feature_month": latest,
        "age_days": (now.date() - add_months(latest, 1)).days if latest else None,
        "stale": fresh.state != FRESH,
        "published_at": snapshot.published_at,
        "loaded_at": snapshot.loaded_at,
        "clients": snapshot.clients,
        "features": len(snapshot.default.view.features),
        "entities": {
            rows.entity: {
                "feature_view": name,
                "entities": rows.count,
                "features": len(rows.view.features),
                "latest_feature_month": rows.latest_month,
            }
            for name, rows in snapshot.views.items()
        },
        "message": store.last_error or (None if fresh.passed else fresh.description),
        "online_store": snapshot.online_store,
    }


def catalog_entry(snapshot: OnlineSnapshot, feature) -> dict[str, Any]:
    """A catalog entry in the contract's fields (feature_type, name, entity_type, created_at) and the catalog's."""
    entry = feature.as_dict()
    first = feature.first_month
    ledger = snapshot.views[feature.feature_view].ledger if feature.feature_view in snapshot.views else {}
    return {
        "kind": "feature",
        "feature_type": feature.feature_type,
        "name": feature.name,
        "feature_view": entry.pop("feature_view"),
        "entity_type": entry.pop("entity"),
        "created_at": ledger.get(first) if first else None,
        **entry,
    }


async def _read(store: OnlineStore, work, *args):
    """In-memory lookups run on the event loop (microseconds); Redis-backed ones, a round trip, in a thread."""
    if store.reads_remotely:
        return await asyncio.to_thread(work, *args)
    return work(*args)


def build_router(store: OnlineStore, raw_dir: Path, metrics: ServiceMetrics, extractor: Extractor, keys) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["features"])
    read = [Depends(keys.read)]

    @router.get(
        "/discovery",
        response_model=list[CatalogEntry],
        dependencies=read,
        summary="The feature catalog: a list of online features, optionally filtered",
        description="Each entry has the contract's fields (feature_type, name, description, entity_type, data_type, "
        "created_at) and the catalog's (feature view, window, lineage, owner, tags, leakage, availability). "
        f"entity_type is {' or '.join(ENTITY_TYPES)}. The marts, tables to query with SQL rather than online "
        f"features, are listed by `GET {PREFIX}/discovery/tables`.",
    )
    async def discovery(
        q: str | None = Query(None, max_length=200, description="text in the name or description"),
        tag: str | None = Query(None, max_length=200, description="an exact tag, e.g. revenue"),
        source_table: str | None = Query(None, max_length=200, description="a landing-zone table or table.column"),
        entity_type: Literal[ENTITY_TYPES] | None = Query(None, description="only this entity's features"),
    ):
        snapshot = store.snapshot
        found = snapshot.catalog.search(text=q, tag=tag, source_table=source_table, entity=entity_type)
        return ServingJSONResponse([catalog_entry(snapshot, f) for f in found])

    @router.get(
        "/discovery/tables",
        response_model=list[TableEntry],
        dependencies=read,
        summary="The marts: tables an analyst queries with SQL on the analytics file (not online features)",
        description="Each table's name, its description and its columns', from the dbt yml (kind: table). "
        "They are not served by /inference or /training: query them read-only in the analytics file.",
    )
    async def tables():
        return ServingJSONResponse([table.as_dict() for table in store.snapshot.tables])

    @router.get(
        "/discovery/{name}",
        response_model=CatalogEntry,
        dependencies=read,
        summary="One feature's entry (a client feature's name, or clinic_features:NAME)",
    )
    async def feature(name: str):
        snapshot = store.snapshot
        try:
            return ServingJSONResponse(catalog_entry(snapshot, snapshot.catalog.get(name)))
        except UnknownFeatures as error:
            return ServingJSONResponse(
                status_code=404,
                content={"detail": {"message": f"no feature {name[:200]!r}", "valid_features": error.valid}},
            )

    @router.post(
        "/inference",
        response_model=ContractResult | InferenceResponse,
        dependencies=read,
        summary="Latest features: one (the contract's body) or many clients or clinics and features",
        description='Three bodies: the contract\'s `{"feature_type": "tenure_days", "entity_id": "123"}` answers '
        '`{feature_type, entity_id, feature_value, computed_at, success}` (a clinic feature: `"feature_type": '
        '"clinic_features:clients_active"`, or `"entity_type": "clinic_id"` with its bare name); `{"client_ids": '
        '[...], "features": [...]}` and `{"clinic_ids": [...], "features": [...]}` answer every feature of every '
        "client or clinic. A body with `client_ids` or `clinic_ids` is one of the richer two, any other the first.",
    )
    async def inference(request: Annotated[InferenceBody, Body()]):
        snapshot = store.snapshot
        if isinstance(request, ContractInference):
            (result,) = await _read(store, contract_results, snapshot, [request])
            metrics.lookups_done(
                int(result["success"]), int(not result["success"] and result["reason"] != "unknown_feature")
            )
            return ServingJSONResponse(result)
        entity, ids = (
            (ENTITY, request.client_ids) if isinstance(request, InferenceRequest) else (CLINIC, request.clinic_ids)
        )
        plan = snapshot.plan(request.features, entity)
        results = await _read(store, snapshot.lookup, ids, plan)
        hits = sum(r["success"] for r in results)
        metrics.lookups_done(hits, len(results) - hits)
        for r in results:
            if not r["success"]:
                r["reason"] = "unknown_entity"
        rows = plan.rows
        return ServingJSONResponse(
            {"published_at": snapshot.published_at, "latest_feature_month": rows.latest_month, "results": results}
        )

    @router.post(
        "/training",
        response_model=ContractTrainingResponse | TrainingResponse,
        dependencies=read,
        summary="A batch of (feature, entity) items, or point-in-time features for labelled client or clinic rows",
        description='Two bodies: the contract\'s `{"features": [{"feature_type", "entity_id"}, ...]}` answers '
        "`{results, total_requested, total_successful}` with the latest values, each item on its own (a failed item "
        'has success false and a reason); `{"rows": [{"client_id", "event_timestamp"}], ...}` (or rows of `clinic_id`, '
        "for clinic features; one entity per request) answers each row with the snapshot ended before its "
        "event_timestamp. A body with `rows` is the second, any other the first.",
    )
    async def training(request: Annotated[TrainingBody, Body()]):
        if isinstance(request, ContractTraining):
            results = await _read(store, contract_results, store.snapshot, request.features)
            successful = sum(r["success"] for r in results)
            return ServingJSONResponse(
                {"results": results, "total_requested": len(results), "total_successful": successful}
            )
        snapshot = store._snapshot
        # DuckDB work can take a while: off the event loop, so lookups keep flowing.
        version, rows = await asyncio.to_thread(training_rows, request, store.analytics, snapshot)
        return ServingJSONResponse({"feature_store_version": version, "rows": rows})

    @router.post(
        "/extract",
        response_model=ContractExtractResponse,
        status_code=202,
        dependencies=[Depends(keys.write)],
        summary="Start the monthly job for a month (the latest complete one by default); poll the run id",
        description="Always needs the API key. Starts `feature-store materialize` for the month in its own process, "
        "on the Dagster instance the UI shows, and answers 202 with the run id at once; `GET /extract/{run_id}` "
        "answers the counts per feature when it succeeded. 409 while any run holds the warehouse.",
    )
    async def extract(request: Annotated[ExtractRequest | None, Body()] = None):
        requested = parse_month(request.month) if request and request.month else None
        month = month_to_extract(requested, raw_dir, datetime.now(UTC).date())
        run = await asyncio.to_thread(extractor.start, month)
        report = extractor.report(run.run_id) or {}
        report["message"] = (
            f"extraction of {format_month(month)} started: run {run.run_id}; poll GET {PREFIX}/extract/{run.run_id}"
        )
        return ServingJSONResponse(status_code=202, content=report)

    @router.get(
        "/extract/{run_id}",
        response_model=ContractExtractResponse,
        dependencies=[Depends(keys.write)],
        summary="An extraction's status, and its counts once it succeeded",
    )
    async def extraction(run_id: str):
        report = await asyncio.to_thread(extractor.report, run_id)
        if report is None:
            return ServingJSONResponse(
                status_code=404,
                content={"detail": {"message": f"no extraction {run_id[:64]!r} started by this server"}},
            )
        return ServingJSONResponse(report)

    @router.get("/health", response_model=Health, summary="The latest month served, its age and whether it is on time")
    async def health():
        # a directory listing of the landing zone: off the event loop, like the training rows
        status, report = await asyncio.to_thread(health_report, store, raw_dir, datetime.now(UTC))
        return ServingJSONResponse(status_code=status, content=report)

    return router


class Keys:
    """The API key dependencies: `read` (when a key is configured) and `write` (always)."""

    def __init__(self, key: str | None):
        self.key = key

    def read(self, request: Request) -> None:
        check_key(self.key, presented_key(request.headers), always=False, what=f"{request.method} {request.url.path}")

    def write(self, request: Request) -> None:
        check_key(self.key, presented_key(request.headers), always=True, what=f"{request.method} {request.url.path}")


def docs_page(title: str) -> HTMLResponse:
    """Swagger UI from the files swagger-ui-bundle installs (served under DOCS_ASSETS): no CDN."""
    return get_swagger_ui_html(
        openapi_url=f"{PREFIX}/openapi.json",
        title=title,
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
    )


def redoc_page(title: str) -> HTMLResponse:
    """ReDoc from the files fastapi-standalone-docs installs (served under REDOC_ASSETS): no CDN, no web fonts."""
    return get_redoc_html(
        openapi_url=f"{PREFIX}/openapi.json",
        title=f"{title} - ReDoc",
        redoc_js_url=f"{REDOC_ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        with_google_fonts=False,
    )


def create_app(
    analytics: Path, refresh_interval: float = 1.0, raw_dir: Path | None = None, settings: Settings | None = None
) -> FastAPI:
    """The API over the analytics file; it loads on startup and re-checks the file every refresh_interval s.

    `/health` judges freshness against the landing zone `raw_dir` (default: FEATURE_STORE_RAW_DIR's);
    `settings` (default: the environment's) give the API key, the warehouse `/extract` runs on
    and the online store (FEATURE_STORE_ONLINE_STORE: Redis; unset: in memory).
    """
    import fastapi_standalone_docs
    import swagger_ui_bundle

    settings = settings or Settings.from_env()
    store = open_online_store(analytics, settings.online_store, load=False)
    raw_dir = raw_dir or settings.raw_dir
    metrics = ServiceMetrics(store)
    keys = Keys(settings.resolved_api_key())
    extractor = Extractor(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store.refresh_if_changed()  # a missing file is no reason not to start: health says 503 until it lands
        store.watch(refresh_interval)
        yield
        store.close()

    app = FastAPI(
        title="Client feature store",
        version="1",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = store
    app.state.metrics = metrics
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_bundle.swagger_ui_path)), name="docs-assets")
    redoc_files = Path(fastapi_standalone_docs.__file__).parent / "static" / "redoc"
    app.mount(REDOC_ASSETS, StaticFiles(directory=str(redoc_files)), name="redoc-assets")

    @app.get("/docs", include_in_schema=False)
    @app.get(f"{PREFIX}/docs", include_in_schema=False)
    async def docs():
        return docs_page(app.title)

    @app.get("/redoc", include_in_schema=False)
    @app.get(f"{PREFIX}/redoc", include_in_schema=False)
    async def redoc():
        return redoc_page(app.title)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus():
        return metrics.response()

    app.add_exception_handler(RequestValidationError, validation_error)

    @app.exception_handler(KeyRefused)
    async def key_refused(request: Request, error: KeyRefused):
        return key_refused_response(error)

    @app.exception_handler(ExtractRefused)
    async def extract_refused(request: Request, error: ExtractRefused):
        return ServingJSONResponse(status_code=error.status, content={"detail": {"message": error.message}})

    @app.exception_handler(UnknownFeatures)
    async def unknown_features(request: Request, error: UnknownFeatures):
        return _unknown_features(error)

    @app.exception_handler(AnalyticsUnavailable)
    async def unavailable(request: Request, error: AnalyticsUnavailable):
        return ServingJSONResponse(status_code=503, content={"detail": {"message": str(error)}})

    @app.exception_handler(ServingError)
    async def bad_request(request: Request, error: ServingError):
        return ServingJSONResponse(status_code=400, content={"detail": {"message": str(error)}})

    app.include_router(build_router(store, raw_dir, metrics, extractor, keys))
    app.add_middleware(BodyLimit)
    app.middleware("http")(metrics_middleware(metrics))  # outermost: counts the 413s too
    return app


API_DESCRIPTION = f"""Discovery, inference, training and extraction over the published client and clinic features.

**Entities.** Each feature view has its entity: `client_features` is looked up by `client_id`, `clinic_features`
by `clinic_id` (`entity_type` in discovery). A feature is named as discovery's `feature_type` lists it: the bare
name for client features, `clinic_features:NAME` for clinic features; within a request for one entity (`clinic_ids`,
rows of `clinic_id`, or `"entity_type": "clinic_id"`) bare names are that entity's view's. The marts are tables to
query with SQL, listed by `GET {PREFIX}/discovery/tables`, not online features.

**Two request shapes on each path.** The feature-store contract's bodies
(`{{"feature_type", "entity_id": "123"}}`, `{{"features": [{{"feature_type", "entity_id"}}]}}`) and the richer ones
(`client_ids` or `clinic_ids`, point-in-time `rows`) are accepted on the same paths and told apart by one field:
`client_ids` or `clinic_ids` (for /inference) or `rows` (for /training) makes the richer body, any other body is
the contract's. Both are strict: an unknown field, a boolean or string where an integer id is documented, an id
beyond int64 is a 422 whose `loc` names the shape (`contract`, `client_ids`, `clinic_ids`, `rows`) and the field;
errors never repeat the input.

**Limits.** Bodies over 8 MiB: 413, before parsing. At most {MAX_INFERENCE_IDS:,} client_ids or clinic_ids,
{MAX_TRAINING_ROWS:,} training rows, 10,000 contract items and 256 feature names per request.

**Keys.** With FEATURE_STORE_API_KEY (or _FILE) set, every endpoint but /health, /metrics and the docs needs it
(`X-API-Key: KEY` or `Authorization: Bearer KEY`); /extract needs it always. Missing: 401; wrong: 403."""
