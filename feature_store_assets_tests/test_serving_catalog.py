"""The feature catalog: what the dbt yml declares, plus availability computed from the published data."""

from __future__ import annotations

import json

import pytest
import yaml

from feature_store_assets.core.paths import DBT_PROJECT_DIR
from feature_store_assets.defs.dbt.project import load_manifest
from feature_store_assets.serving.catalog import FeatureCatalog, catalog_definitions, feature_definitions, load_catalog
from feature_store_assets.serving.published import UnknownFeatures
from feature_store_assets_tests.support.serving import analytics_query
from feature_store_assets_tests.support.shared import published_copy

YML = DBT_PROJECT_DIR / "models" / "features" / "client_features.yml"
RISKS = {"low", "medium", "high"}
NOT_FEATURES = {"client_id", "feature_month", "clinic_id"}  # keys: the two feature views' entities, the month
WINDOWS = {"1m", "3m", "12m", "all", "static"}
LANDING_TABLES = {"clients", "transactions_inclinic", "transactions", "web_sessions", "zip_income"}
# one worker for the module: its module-scoped materialization runs once
pytestmark = pytest.mark.xdist_group("serving_catalog")


@pytest.fixture(scope="module")
def yml_columns() -> dict[str, dict]:
    model = yaml.safe_load(YML.read_text())["models"][0]
    return {column["name"]: column for column in model["columns"]}


@pytest.fixture(scope="module")
def definitions():
    return feature_definitions(load_manifest())


def test_one_entry_per_feature_column_in_yml_order(definitions, yml_columns):
    assert [f.name for f in definitions] == [name for name in yml_columns if name not in NOT_FEATURES]
    assert len(definitions) == 31
    assert "clinic_id" not in {f.name for f in definitions}  # an identifier, not a feature


def test_entries_carry_the_yml_definitions_word_for_word(definitions, yml_columns):
    for feature in definitions:
        column = yml_columns[feature.name]
        meta = column["meta"]["feature"]
        assert feature.description == column["description"]
        assert feature.data_type == column["data_type"]
        assert feature.window == meta["window"] and feature.window in WINDOWS
        assert list(feature.source_columns) == meta["derived_from"]
        assert list(feature.tags) == meta["tags"] and feature.tags
        assert feature.leakage_risk == meta["leakage_risk"] and feature.leakage_risk in RISKS
        assert feature.leakage_note == meta["leakage_note"]
        assert feature.owner == "feature-store" and feature.entity == "client_id"
        assert set(feature.source_tables) <= LANDING_TABLES


def test_unversioned_zip_features_are_flagged_as_leakage_risks(definitions):
    risky = {f.name for f in definitions if f.leakage_risk != "low"}
    assert risky == {"zip_code", "zip_income_match", "zip_avg_agi", "zip_avg_agi_pctl"}


def test_search_by_text_tag_and_source(definitions):
    catalog = FeatureCatalog(definitions)
    assert [f.name for f in catalog.search(tag="web")] == ["web_sessions_3m", "web_orders_3m", "web_conversion_rate_3m"]
    assert {f.name for f in catalog.search(source_table="web_sessions.orders")} == {
        "web_orders_3m",
        "web_conversion_rate_3m",
    }
    assert {f.name for f in catalog.search(source_table="zip_income")} == {
        "zip_income_match",
        "zip_avg_agi",
        "zip_avg_agi_pctl",
    }
    assert [f.name for f in catalog.search(text="CONVERSION")] == ["web_conversion_rate_3m"]
    assert [f.name for f in catalog.search(text="share", tag="channel_mix")] == ["hd_revenue_share_12m"]
    assert catalog.search(tag="no-such-tag") == []


def test_unknown_names_are_reported_with_the_valid_ones(definitions):
    catalog = FeatureCatalog(definitions)
    with pytest.raises(UnknownFeatures) as raised:
        catalog.resolve(["tenure_days", "tenure", "clinic_id"])
    assert raised.value.unknown == ["tenure", "clinic_id"]
    assert raised.value.valid == catalog.names
    assert catalog.resolve(["zip_code", "tenure_days", "zip_code"]) == ["zip_code", "tenure_days"]


# ---------------------------------------------------------------- the published catalog


@pytest.fixture(scope="module")
def store(tmp_path_factory, small_landing_zone):
    return published_copy(tmp_path_factory, small_landing_zone, "serving_catalog")


@pytest.mark.e2e
def test_published_catalog_table_matches_the_yml_and_the_data(store, definitions):
    catalog = load_catalog(store.settings.analytics)
    assert catalog.names == [f.name for f in definitions]
    assert catalog.feature_types == [f.feature_type for f in catalog_definitions(load_manifest())]  # clinic after
    table = analytics_query(store.settings, "select * from features.feature_catalog order by position")
    assert table["feature_name"].tolist() == [f.name for f in catalog.features]
    for published, declared in zip(catalog.features, definitions):
        assert (published.description, published.data_type, published.tags, published.source_columns) == (
            declared.description,
            declared.data_type,
            declared.tags,
            declared.source_columns,
        )
    by_name = {f.name: f for f in catalog.features}
    assert str(by_name["tenure_days"].first_month) == "2023-01-01"
    assert str(by_name["tenure_days"].last_month) == "2023-03-01"
    assert {str(f.latest_month) for f in catalog.features} == {"2023-03-01"}


@pytest.mark.e2e
def test_latest_null_rates_are_computed_from_the_latest_month(store):
    catalog = load_catalog(store.settings.analytics)
    expected = analytics_query(
        store.settings,
        "select avg((hd_revenue_share_12m is null)::double) as share, avg((web_conversion_rate_3m is null)::double) as web "
        "from features.client_features where feature_month = date '2023-03-01'",
    ).iloc[0]
    assert catalog.get("hd_revenue_share_12m").latest_null_rate == pytest.approx(expected["share"])
    assert catalog.get("web_conversion_rate_3m").latest_null_rate == pytest.approx(expected["web"])
    assert catalog.get("tenure_days").latest_null_rate == 0


@pytest.mark.e2e
def test_cli_lists_and_shows_features(store, monkeypatch, capsys):
    from feature_store_assets.cli.main import main

    monkeypatch.setenv("FEATURE_STORE_ANALYTICS", str(store.settings.analytics))
    assert main(["features", "list", "--tag", "web"]) == 0
    listed = capsys.readouterr().out
    assert "web_conversion_rate_3m" in listed and "tenure_days" not in listed and "3 feature(s)" in listed
    assert main(["features", "show", "zip_avg_agi", "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry["leakage_risk"] == "medium" and entry["source_tables"] == ["clients", "zip_income"]
    assert main(["features", "show", "no_such_feature"]) == 1
    assert "Valid features: tenure_days" in capsys.readouterr().err


def test_month_values_are_recounted_for_the_given_months_only():
    """The catalog's availability comes from per-month counts; a run recounts its own months (pure DuckDB)."""
    import datetime as dt

    import duckdb

    from feature_store_assets.serving.catalog import (
        MONTH_VALUES_TABLE,
        Feature,
        availability,
        month_values,
        update_month_values,
    )

    jan, feb, mar = dt.date(2023, 1, 1), dt.date(2023, 2, 1), dt.date(2023, 3, 1)
    con = duckdb.connect()
    con.execute("create schema features")
    con.execute(
        "create table features.client_features as select * from (values "
        "(1, date '2023-01-01', null, 1.0), (2, date '2023-01-01', null, 2.0), (1, date '2023-02-01', 5, null)) "
        "t(client_id, feature_month, a, b)"
    )
    first = update_month_values(con, ["a", "b"], [feb])  # no table yet: every month is counted
    assert sorted(map(tuple, first.values.tolist())) == [
        (jan, "a", 2, 0),
        (jan, "b", 2, 2),
        (feb, "a", 1, 1),
        (feb, "b", 1, 0),
    ]

    # February rebuilt with other values, March added: only they are recounted; a stale January count would stay
    con.execute("delete from features.client_features where feature_month = date '2023-02-01'")
    con.execute(
        "insert into features.client_features values (1, date '2023-02-01', null, 3.0), (1, date '2023-03-01', 7, 4.0)"
    )
    con.execute(f"update {MONTH_VALUES_TABLE} set month_rows = 99 where feature_month = date '2023-01-01'")
    after = update_month_values(con, ["a", "b"], [feb, mar])
    by_key = {(m, f): (r, n) for m, f, r, n in after.values.tolist()}
    assert by_key[(feb, "a")] == (1, 0) and by_key[(feb, "b")] == (1, 1) and by_key[(mar, "a")] == (1, 1)
    assert by_key[(jan, "a")] == (99, 0)  # not recounted: the run did not build January
    assert len(after) == 6

    # a new feature column: everything is recounted
    con.execute("alter table features.client_features add column c integer")
    recounted = update_month_values(con, ["a", "b", "c"], [mar])
    assert len(recounted) == 9 and (recounted["month_rows"] < 99).all()
    assert sorted(map(tuple, recounted.values.tolist())) == sorted(
        map(tuple, month_values(con, ["a", "b", "c"]).values.tolist())
    )

    def feature(name):
        return Feature(name, "", "integer", "client_id", "1m", (), "feature-store", (), "low", "")

    features = availability([feature(n) for n in ("a", "b", "c")], recounted)
    a, b, c = features
    assert (a.first_month, a.last_month, a.latest_month, a.latest_null_rate) == (mar, mar, mar, 0.0)
    assert (b.first_month, b.last_month) == (jan, mar)
    assert (c.first_month, c.last_month, c.latest_null_rate) == (None, None, 1.0)


def test_the_catalog_recounts_the_months_materialized_since_it_was_built(tmp_path):
    """Months a run without the catalog rebuilt are recounted by the next catalog build, not left stale."""
    import datetime as dt

    from feature_store_assets.warehouse.connections import connect
    from feature_store_assets.warehouse.ledger import months_materialized_since, record_materialized_months

    warehouse = tmp_path / "warehouse.duckdb"
    jan, feb = dt.date(2023, 1, 1), dt.date(2023, 2, 1)
    record_materialized_months(warehouse, {"client_features": {jan: 10}, "hd_orders": {feb: 3}}, "run-1")
    with connect(warehouse) as con:
        (built_at,) = con.execute("select current_timestamp::timestamp").fetchone()
    record_materialized_months(warehouse, {"client_features": {feb: 12}}, "run-2")
    with connect(warehouse, read_only=True) as con:
        assert months_materialized_since(con, "client_features", None) == [jan, feb]
        assert months_materialized_since(con, "client_features", built_at) == [feb]
        assert months_materialized_since(con, "hd_orders", built_at) == []
