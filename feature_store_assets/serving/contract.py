"""The four-endpoint feature-store contract's bodies, beside the richer ones, and the limits every body keeps.

Two request shapes share each path and are told apart strictly by their fields (`api.py`):

- the contract's: one `{"feature_type", "entity_id"}` per item (optionally `entity_type`, client_id or
  clinic_id), `entity_id` a string of digits, answers
  `{feature_type, entity_id, entity_type, feature_value, computed_at, success}` (plus `feature_month`,
  `reason` and `message`, which a contract client may ignore);
- the richer ones: many entities and features per request (`client_ids` or `clinic_ids`), point-in-time
  training rows (`rows` of `client_id` or `clinic_id` with `event_timestamp`).

Each feature view has its entity (client_features: client_id, clinic_features: clinic_id); a feature_type
`clinic_features:NAME` (what discovery lists for clinic features) names its view, and a bare name is a
client feature unless `entity_type` says clinic_id.

Ids are strict: JSON integers within int64 (`true`, `"123"` and 10^30 are 422 naming the field) where an
integer is documented, strings of digits within int64 where the contract documents a string. Every list
has a maximum length, so what a request can make the server hold is bounded.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from feature_store_assets.core.months import add_months, format_month
from feature_store_assets.serving.online import OnlineSnapshot, Plan, unknown_entity_message
from feature_store_assets.serving.published import ENTITY, SNAPSHOT_COLUMN, ServingError, UnknownFeatures

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_INFERENCE_IDS = 10_000
MAX_TRAINING_ROWS = 100_000  # larger training sets: the Python API or `feature-store training`
MAX_CONTRACT_ITEMS = 10_000  # items of a contract /training batch
MAX_FEATURES_PER_REQUEST = 256  # the catalog has 31; a longer list is a mistake, not a need
MAX_NAME_LENGTH = 128
CLINIC = "clinic_id"
ENTITY_TYPES = (ENTITY, CLINIC)  # the feature views' entities, as the contract names them

# Why an item has success false: one code a cause, and a sentence.
UNKNOWN_ENTITY, UNKNOWN_FEATURE, NOT_ELIGIBLE, NO_SNAPSHOT_YET, TOO_OLD = (
    "unknown_entity",
    "unknown_feature",
    "not_eligible",
    "no_snapshot_yet",
    "too_old",
)

ClientId = Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX, description="a client_id (int64)")]
ClinicId = Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX, description="a clinic_id (int64)")]
EntityType = Literal[ENTITY_TYPES]
FeatureName = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_NAME_LENGTH)]
FeatureNames = Annotated[
    list[FeatureName] | None,
    Field(
        None,
        min_length=1,
        max_length=MAX_FEATURES_PER_REQUEST,
        description=f"feature names (at most {MAX_FEATURES_PER_REQUEST}); all when omitted",
    ),
]


def _int64(value: str) -> str:
    if not INT64_MIN <= int(value) <= INT64_MAX:
        raise ValueError("must be within int64 (a client_id or clinic_id)")
    return value


EntityId = Annotated[
    str,
    StringConstraints(strict=True, pattern=r"^-?[0-9]{1,19}$"),
    AfterValidator(_int64),
    Field(description='the client_id (or clinic_id) as a string of digits, e.g. "123"', examples=["100005"]),
]


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class ContractItem(StrictBody):
    feature_type: FeatureName = Field(
        description="the feature, as `GET /discovery` lists it: `tenure_days`, `clinic_features:clients_active`"
    )
    entity_id: EntityId
    entity_type: EntityType | None = Field(
        None,
        description="client_id or clinic_id: the entity the id names; omitted, the feature_type's view's "
        "(clinic_id for clinic_features:NAME, else client_id)",
    )


class ContractInference(ContractItem):
    """The contract's `POST /inference`: one feature of one entity."""


class ContractTraining(StrictBody):
    """The contract's `POST /training`: a batch of (feature, entity) items, each answered on its own."""

    features: list[ContractItem] = Field(min_length=1, max_length=MAX_CONTRACT_ITEMS)


class ContractResult(BaseModel):
    feature_type: str
    entity_id: str
    entity_type: str | None = Field(description="the entity the id was looked up as: the feature's view's")
    feature_value: float | int | str | None = Field(description="the latest published value (NULL is null)")
    computed_at: datetime | None = Field(description="when the value's month was materialized (the ledger)")
    success: bool
    feature_month: date | None = Field(None, description="the snapshot served: as of the end of this month")
    reason: str | None = Field(None, description=f"why success is false: {UNKNOWN_ENTITY} or {UNKNOWN_FEATURE}")
    message: str | None = None


class ContractTrainingResponse(BaseModel):
    results: list[ContractResult]
    total_requested: int
    total_successful: int


class ContractExtractResponse(BaseModel):
    message: str
    features_extracted: dict[str, int] = Field(
        description="per feature, the clients with a value in the month extracted; empty until the run succeeded"
    )
    total_features: int
    run_id: str | None = Field(None, description="the Dagster run: poll GET /extract/{run_id}")
    month: str | None = Field(None, description="the month extracted, YYYY-MM")
    status: str = Field(description="started, running, succeeded or failed")


def contract_results(snapshot: OnlineSnapshot, items: Iterable[ContractItem]) -> list[dict[str, Any]]:
    """One contract answer per item, in order: the latest value, or success false with a reason. The entities
    are read once per feature view, for every feature the items ask of it (one round trip to Redis each)."""
    items = list(items)
    plans: list[Plan | str] = []  # per item, its plan, or why it has none
    for item in items:
        try:
            plans.append(snapshot.plan([item.feature_type], item.entity_type))
        except (UnknownFeatures, ServingError) as error:  # no such feature, or not one of that entity's view
            plans.append(
                f"unknown feature_type {item.feature_type!r}"
                + (f" for entity_type {item.entity_type}" if item.entity_type else "")
                + ": GET /discovery lists the features"
                if isinstance(error, UnknownFeatures)
                else str(error)
            )
    wanted: dict[str, tuple[Any, dict, dict]] = {}  # per feature view: its rows, the slots and ids asked
    for plan, item in zip(plans, items):
        if isinstance(plan, Plan):
            rows, slots, ids = wanted.setdefault(plan.rows.view.name, (plan.rows, {}, {}))
            slots.setdefault(plan.slots[0].name, plan.slots[0])
            ids.setdefault(int(item.entity_id), None)
    found = {
        name: dict(zip(ids, rows.answers(list(ids), list(slots.values()))))
        for name, (rows, slots, ids) in wanted.items()
    }
    results = []
    for plan, item in zip(plans, items):
        base = {"feature_type": item.feature_type, "entity_id": item.entity_id, "entity_type": item.entity_type}
        if not isinstance(plan, Plan):
            results.append(
                {
                    **base,
                    "feature_value": None,
                    "computed_at": None,
                    "success": False,
                    "reason": UNKNOWN_FEATURE,
                    "message": plan,
                }
            )
            continue
        base["entity_type"] = plan.rows.entity
        entity = found[plan.rows.view.name][int(item.entity_id)]
        if not entity["success"]:
            results.append(
                {
                    **base,
                    "feature_value": None,
                    "computed_at": None,
                    "success": False,
                    "reason": UNKNOWN_ENTITY,
                    "message": entity["message"],
                }
            )
            continue
        results.append(
            {
                **base,
                "feature_value": entity["features"][plan.slots[0].name],
                "computed_at": entity["computed_at"],
                "success": True,
                SNAPSHOT_COLUMN: entity[SNAPSHOT_COLUMN],
            }
        )
    return results


def missing_reason(
    known: bool,
    event_timestamp: datetime,
    first_month: date | None,
    max_age_months: int | None,
    entity: str = ENTITY,
) -> tuple[str, str]:
    """(reason, message) for a training row without a snapshot, most specific cause first (pure).

    `known`: the entity has a published snapshot at all; `first_month`: its feature view's earliest month.
    """
    if not known:
        return UNKNOWN_ENTITY, unknown_entity_message(entity)
    if first_month is None or event_timestamp < datetime.combine(add_months(first_month, 1), datetime.min.time()):
        first = (
            "nothing"
            if first_month is None
            else f"{format_month(first_month)}, usable from {add_months(first_month, 1)}"
        )
        return NO_SNAPSHOT_YET, f"no snapshot yet: the store's first month is {first}; event_timestamp is earlier"
    if max_age_months is not None:
        return TOO_OLD, f"no feature snapshot ended at or before event_timestamp within max_age_months={max_age_months}"
    return (
        NOT_ELIGIBLE,
        f"not eligible that month: the {entity.removesuffix('_id')} has no snapshot ended at or before "
        "event_timestamp (it became eligible later)",
    )
