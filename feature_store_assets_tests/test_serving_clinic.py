"""The clinic grain served: clinic features in the catalog, online by clinic_id, point in time, over HTTP; the marts
listed as tables. Values are checked against the rows of `features.clinic_features` in the published analytics file.
"""

from __future__ import annotations

import math
import os
from datetime import date

import pandas as pd
import pytest
import yaml

from feature_store_assets.core.paths import DBT_PROJECT_DIR
from feature_store_assets.defs.dbt.project import load_manifest
from feature_store_assets.serving import OnlineStore, ServingError, UnknownFeatures, get_training_features, load_catalog
from feature_store_assets.serving.catalog import FeatureCatalog, catalog_definitions
from feature_store_assets_tests.support.serving import analytics_query, call_json, serving_process
from feature_store_assets_tests.support.shared import published_copy

pytestmark = pytest.mark.xdist_group("serving_clinic")

API = "/api/v1/features"
MODELS = DBT_PROJECT_DIR / "models"
KEYS = {"clinic_id", "feature_month"}


def yml_model(path) -> dict:
    return yaml.safe_load(path.read_text())["models"][0]


@pytest.fixture(scope="module")
def clinic_yml() -> dict[str, dict]:
    return {c["name"]: c for c in yml_model(MODELS / "features" / "clinic_features.yml")["columns"]}


def test_the_catalog_learns_both_feature_views_and_their_entities_from_the_manifest(clinic_yml):
    catalog = FeatureCatalog(catalog_definitions(load_manifest()))
    assert list(catalog.views) == ["client_features", "clinic_features"]
    assert catalog.entities == ["client_id", "clinic_id"]
    clinic = catalog.views["clinic_features"]
    assert clinic.names == [name for name in clinic_yml if name not in KEYS]
    for feature in clinic.features:
        assert feature.description == clinic_yml[feature.name]["description"] and feature.description
        assert (feature.entity, feature.data_type) == ("clinic_id", clinic_yml[feature.name]["data_type"])
        assert feature.feature_type == f"clinic_features:{feature.name}"
    assert {f.entity for f in catalog.views["client_features"].features} == {"client_id"}
    assert len(catalog.views["client_features"].features) == 31


def test_names_resolve_within_the_entitys_view_and_one_view_per_request():
    catalog = FeatureCatalog(catalog_definitions(load_manifest()))
    # total_revenue_12m is a column of both views: bare, it is the client feature unless the entity says clinic
    assert catalog.select(["total_revenue_12m"]).view.name == "client_features"
    assert catalog.select(["total_revenue_12m"], "clinic_id").view.name == "clinic_features"
    assert catalog.select(["clinic_features:total_revenue_12m"]).view.name == "clinic_features"
    assert catalog.select(["clients_active"]).view.name == "clinic_features"  # only clinic_features has it
    assert catalog.select(None, "clinic_id").names == catalog.views["clinic_features"].names
    with pytest.raises(UnknownFeatures) as unknown:
        catalog.select(["tenure_days"], "clinic_id")
    assert unknown.value.valid == catalog.views["clinic_features"].names
    with pytest.raises(ServingError, match="several feature views"):
        catalog.select(["tenure_days", "clinic_features:clients_active"])
    with pytest.raises(ServingError, match="keyed by clinic_id, not client_id"):
        catalog.select(["clinic_features:clients_active"], "client_id")
    with pytest.raises(ServingError, match="the entities served are client_id, clinic_id"):
        catalog.select(None, "pet_id")


# ---------------------------------------------------------------- against a published store


@pytest.fixture(scope="module")
def store(tmp_path_factory, small_landing_zone):
    return published_copy(tmp_path_factory, small_landing_zone, "serving_clinic")


@pytest.fixture(scope="module")
def clinic_rows(store) -> pd.DataFrame:
    """features.clinic_features of the published file, keyed by (clinic_id, feature_month)."""
    rows = analytics_query(store.settings, "select * from features.clinic_features")
    rows["feature_month"] = pd.to_datetime(rows["feature_month"]).dt.date
    return rows.set_index(["clinic_id", "feature_month"]).sort_index()


@pytest.fixture(scope="module")
def latest(clinic_rows) -> pd.DataFrame:
    """Each clinic's latest published row: what online lookup serves."""
    return clinic_rows.reset_index().sort_values("feature_month").groupby("clinic_id").tail(1).set_index("clinic_id")


def same(value, expected) -> bool:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)) or expected is pd.NA:
        return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA
    return value == pytest.approx(expected) if isinstance(expected, float) else value == expected


def assert_row(features: dict, expected: pd.Series) -> None:
    for name, value in features.items():
        assert same(value, expected[name].item() if hasattr(expected[name], "item") else expected[name]), name


@pytest.mark.e2e
def test_the_published_catalog_lists_the_clinic_features_with_their_availability(store, clinic_rows, clinic_yml):
    catalog = load_catalog(store.settings.analytics)
    clinic = catalog.search(entity="clinic_id")
    assert [f.name for f in clinic] == [name for name in clinic_yml if name not in KEYS]
    assert all(f.description == clinic_yml[f.name]["description"] for f in clinic)
    months = sorted({month for _, month in clinic_rows.index})
    assert {(f.first_month, f.last_month, f.latest_month) for f in clinic} == {(months[0], months[-1], months[-1])}
    in_table = analytics_query(
        store.settings,
        "select feature_view, count(*) as features, min(entity) as entity from features.feature_catalog group by 1",
    ).set_index("feature_view")
    assert in_table.to_dict("index") == {
        "client_features": {"features": 31, "entity": "client_id"},
        "clinic_features": {"features": len(clinic), "entity": "clinic_id"},
    }


@pytest.mark.e2e
def test_online_lookup_by_clinic_id_serves_each_clinics_latest_row(store, latest):
    online = OnlineStore(store.settings.analytics)
    ids = [int(c) for c in latest.index]
    answers = online.lookup([*ids, 424242], entity="clinic_id")
    for clinic, answer in zip(ids, answers):
        assert answer["success"] is True and answer["clinic_id"] == clinic
        assert answer["feature_month"] == latest.loc[clinic, "feature_month"]
        assert set(answer["features"]) == set(online.catalog.views["clinic_features"].names)
        assert_row(answer["features"], latest.loc[clinic])
    assert answers[-1] == {
        "clinic_id": 424242,
        "success": False,
        "message": "unknown clinic: no published feature snapshot",
    }
    # a clinic reference needs no entity; client lookups are unchanged beside it
    one = online.lookup_one(ids[0], ["clinic_features:clients_active"])
    assert one["features"] == {"clients_active": int(latest.loc[ids[0], "clients_active"])}
    assert "client_id" in online.lookup([1], ["tenure_days"])[0]


@pytest.mark.e2e
def test_point_in_time_training_rows_for_clinics(store, clinic_rows):
    clinic = int(clinic_rows.index[0][0])
    labels = pd.DataFrame(
        {
            "clinic_id": [clinic, clinic, clinic, 424242],
            "event_timestamp": pd.to_datetime(
                ["2023-03-01", "2023-02-28 23:59:59.999999", "2022-12-31", "2023-03-01"], format="ISO8601"
            ),
            "label": [1, 0, 1, 0],
        },
        index=[10, 11, 12, 13],
    )
    rows = get_training_features(
        labels, ["clients_active", "total_revenue_12m", "practice_type"], analytics=store.settings.analytics
    )
    assert list(rows.index) == [10, 11, 12, 13] and rows["label"].tolist() == [1, 0, 1, 0]
    assert rows["feature_month"].dt.date.tolist()[:2] == [date(2023, 2, 1), date(2023, 1, 1)]  # exactly E; 1 µs before
    assert rows["feature_month"].iloc[2:].isna().all()  # before the first month; an unknown clinic
    for i, month in ((0, date(2023, 2, 1)), (1, date(2023, 1, 1))):
        expected = clinic_rows.loc[(clinic, month)]
        assert rows["clients_active"].iloc[i] == expected["clients_active"]
        assert rows["total_revenue_12m"].iloc[i] == pytest.approx(expected["total_revenue_12m"])
        assert rows["practice_type"].iloc[i] == expected["practice_type"]
    everything = get_training_features(labels, analytics=store.settings.analytics)  # the clinic view, all of it
    assert list(everything.columns[4:]) == load_catalog(store.settings.analytics).views["clinic_features"].names
    with pytest.raises(ServingError, match="lacks column.*clinic_id"):
        get_training_features(
            labels.rename(columns={"clinic_id": "client_id"}),
            ["clinic_features:clients_active"],
            analytics=store.settings.analytics,
        )


# ---------------------------------------------------------------- over HTTP


@pytest.fixture(scope="module")
def base(store):
    env = {**os.environ, **store.settings.as_env()}
    env.pop("FEATURE_STORE_API_KEY", None)
    env.pop("FEATURE_STORE_API_KEY_FILE", None)
    with serving_process(store, env, lambda url: call_json(url, "GET", f"{API}/health")[0] == 200) as (url, _):
        yield url


@pytest.mark.e2e
def test_discovery_lists_clinic_features_by_entity_and_the_marts_as_tables(base, clinic_yml):
    status, found = call_json(base, "GET", f"{API}/discovery")
    assert status == 200 and {f["kind"] for f in found} == {"feature"}
    by_entity = {e: [f for f in found if f["entity_type"] == e] for e in ("client_id", "clinic_id")}
    assert len(by_entity["client_id"]) == 31 and len(found) == 31 + len(by_entity["clinic_id"])
    for entry in by_entity["clinic_id"]:
        assert (
            entry["feature_type"] == f"clinic_features:{entry['name']}" and entry["feature_view"] == "clinic_features"
        )
        assert entry["description"] == clinic_yml[entry["name"]]["description"] and entry["created_at"]
    assert call_json(base, "GET", f"{API}/discovery?entity_type=clinic_id")[1] == by_entity["clinic_id"]
    status, one = call_json(base, "GET", f"{API}/discovery/clinic_features:hd_adoption_rate")
    assert status == 200 and one["entity_type"] == "clinic_id"

    status, tables = call_json(base, "GET", f"{API}/discovery/tables")
    marts = {  # the marts schema's models and seeds (the campaign mapping), from the manifest
        node["name"]: node
        for node in load_manifest()["nodes"].values()
        if node["resource_type"] in ("model", "seed") and node["schema"] == "marts"
    }
    assert {"client_rfm", "product_affinity", "segment_actions"} <= set(marts)
    assert status == 200 and [t["table"] for t in tables] == [f"marts.{name}" for name in sorted(marts)]
    for table in tables:
        model = marts[table["table"].split(".")[1]]
        assert table["kind"] == "table" and table["description"] == model["description"].strip()
        columns = list(model["columns"].values())
        assert [c["name"] for c in table["columns"]] == [c["name"] for c in columns]
        assert [c["description"] for c in table["columns"]] == [c["description"].strip() for c in columns]
    assert not {t["table"].split(".")[1] for t in tables} & {f["feature_type"] for f in found}  # not online features


@pytest.mark.e2e
def test_inference_by_clinic_id_in_both_request_shapes(base, latest):
    clinic = int(latest.index[0])
    expected = latest.loc[clinic]
    status, answer = call_json(
        base, "POST", f"{API}/inference", {"feature_type": "clinic_features:clients_active", "entity_id": str(clinic)}
    )
    assert status == 200 and answer["success"] is True and answer["entity_type"] == "clinic_id"
    assert answer["feature_value"] == int(expected["clients_active"]) and answer["computed_at"]
    status, answer = call_json(
        base,
        "POST",
        f"{API}/inference",
        {"feature_type": "total_revenue_12m", "entity_id": str(clinic), "entity_type": "clinic_id"},
    )
    assert answer["feature_value"] == pytest.approx(expected["total_revenue_12m"])

    status, body = call_json(base, "POST", f"{API}/inference", {"clinic_ids": [clinic, 424242]})
    assert status == 200
    found, unknown = body["results"]
    assert found["clinic_id"] == clinic and found["feature_month"] == expected["feature_month"].isoformat()
    assert_row(found["features"], expected)
    assert unknown == {
        "clinic_id": 424242,
        "success": False,
        "reason": "unknown_entity",
        "message": "unknown clinic: no published feature snapshot",
    }

    batch = {
        "features": [
            {"feature_type": "clinic_features:hd_adoption_rate", "entity_id": str(clinic)},
            {"feature_type": "tenure_days", "entity_id": str(clinic), "entity_type": "clinic_id"},  # a client feature
        ]
    }
    status, body = call_json(base, "POST", f"{API}/training", batch)
    assert status == 200 and body["total_successful"] == 1
    assert same(body["results"][0]["feature_value"], expected["hd_adoption_rate"])
    assert body["results"][1]["reason"] == "unknown_feature"


@pytest.mark.e2e
def test_point_in_time_training_rows_of_clinic_id_over_http(base, clinic_rows):
    clinic = int(clinic_rows.index[0][0])
    rows = [
        {"clinic_id": clinic, "event_timestamp": "2023-03-01T00:00:00"},
        {"clinic_id": clinic, "event_timestamp": "2023-02-28T23:59:59.999999"},
        {"clinic_id": 424242, "event_timestamp": "2023-03-01T00:00:00"},
        {"clinic_id": clinic, "event_timestamp": "2022-06-01T00:00:00"},
    ]
    status, body = call_json(
        base, "POST", f"{API}/training", {"rows": rows, "features": ["clients_active", "practice_type"]}
    )
    assert status == 200
    for answer, month in zip(body["rows"][:2], (date(2023, 2, 1), date(2023, 1, 1))):
        assert answer["clinic_id"] == clinic and answer["feature_month"] == month.isoformat()
        expected = clinic_rows.loc[(clinic, month)]
        assert answer["features"] == {
            "clients_active": int(expected["clients_active"]),
            "practice_type": expected["practice_type"],
        }
    assert [r.get("reason") for r in body["rows"][2:]] == ["unknown_entity", "no_snapshot_yet"]

    mixed = [rows[0], {"client_id": 1, "event_timestamp": "2023-03-01T00:00:00"}]
    status, body = call_json(base, "POST", f"{API}/training", {"rows": mixed})
    assert status == 422 and "one feature view" in body["detail"][0]["msg"]
    status, body = call_json(base, "POST", f"{API}/inference", {"clinic_ids": [True]})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "clinic_ids", "clinic_ids", 0]
