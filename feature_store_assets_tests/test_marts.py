"""End to end: the analytical marts and the clinic features against the pandas oracle (reference_marts.py).

A 15-month generated landing zone is materialized through the CLI once per module,
in two runs: 2023-01..2024-02 as one run, then 2024-03 on its own (an incremental
month). Every month of every mart must equal what pandas computes from the
warehouse's upstream tables, within 1e-9 for floats. The dbt unit tests of the
marts run with all the others in test_dbt_unit_tests.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from feature_store_assets.core.settings import SAMPLE_ZIP_INCOME
from feature_store_assets.defs.dbt.project import LAYERS, layer_of, load_manifest
from feature_store_assets.generator import generate_landing_zone
from feature_store_assets_tests.conftest import SMALL_ZONE, FeatureStore, configure
from feature_store_assets_tests.support import reference_marts as reference
from feature_store_assets_tests.support.operations import starting_with

pytestmark = pytest.mark.e2e

# Long enough for a full 12-month window, churned clients (> 365 days) and 15 cohorts.
MARTS_ZONE = dataclasses.replace(SMALL_ZONE, months=15, clients=500, inclinic_rows_per_month=1_500)
START = dt.date(2023, 1, 1)
MONTHS = [reference.add_months(START, i) for i in range(MARTS_ZONE.months)]
FIRST_RUN = ("2023-01", "2024-02")
SECOND_RUN = ("2024-03", "2024-03")
TOLERANCE = 1e-9
SHOWN_DIFFERENCES = 5

MARTS: dict[str, tuple[str, tuple[str, ...]]] = {
    # relation: (month column, key)
    "marts.client_rfm": ("snapshot_month", ("client_id", "snapshot_month")),
    "marts.client_value": ("snapshot_month", ("client_id", "snapshot_month")),
    "marts.client_segments": ("snapshot_month", ("client_id", "snapshot_month")),
    "marts.client_cohorts": ("snapshot_month", ("clinic_id", "cohort_month", "snapshot_month")),
    "marts.cohort_health": ("snapshot_month", ("cohort_type", "cohort_month", "snapshot_month")),
    "marts.product_affinity": ("snapshot_month", ("snapshot_month", "antecedent_category", "consequent_category")),
    "marts.product_recommendations": (
        "snapshot_month",
        ("snapshot_month", "source_category", "recommended_category"),
    ),
    "features.clinic_features": ("feature_month", ("clinic_id", "feature_month")),
}
MART_MODELS = [relation.split(".")[1] for relation in MARTS]
MARTS_SCHEMA_MODELS = [relation.split(".")[1] for relation in MARTS if relation.startswith("marts.")]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> FeatureStore:
    root = tmp_path_factory.mktemp("marts")
    generate_landing_zone(root / "raw", MARTS_ZONE, zip_income_csv=SAMPLE_ZIP_INCOME)
    # Module-scoped fixtures cannot take the function-scoped monkeypatch.
    with pytest.MonkeyPatch.context() as patch:
        store = configure(patch, root, root / "raw", start_month=START.strftime("%Y-%m"))
        from feature_store_assets.cli.main import main

        for first, last in (FIRST_RUN, SECOND_RUN):
            assert main(["materialize", "--from", first, "--to", last]) == 0, f"materialize {first}..{last}"
    return store


@pytest.fixture(scope="module")
def upstream(store) -> reference.Upstream:
    return reference.Upstream.read(store.settings.warehouse)


@pytest.fixture(scope="module")
def thresholds() -> reference.Thresholds:
    return reference.Thresholds.from_dbt_project()


def read_table(duckdb_file: Path, relation: str) -> pd.DataFrame:
    con = duckdb.connect(str(duckdb_file), read_only=True)
    try:
        return con.sql(f"select * from {relation}").df()
    finally:
        con.close()


# ---------------------------------------------------------------- comparing tables


def plain(value):
    """One cell as a plain Python value (None for NULL), whatever dtype DuckDB or pandas gave it."""
    if value is None or value is pd.NA or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    return value


def same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    return a == b


def differences(pipeline: pd.DataFrame, expected: pd.DataFrame, key: tuple[str, ...]) -> list[str]:
    """What differs between two tables with the same key, as readable lines (empty when equal)."""
    if sorted(pipeline.columns) != sorted(expected.columns):
        return [f"columns differ\n  pipeline: {sorted(pipeline.columns)}\n  expected: {sorted(expected.columns)}"]

    def by_key(frame: pd.DataFrame) -> dict[tuple, dict]:
        rows = [{column: plain(value) for column, value in record.items()} for record in frame.to_dict("records")]
        return {tuple(row[column] for column in key): row for row in rows}

    got, want = by_key(pipeline), by_key(expected)
    problems = []
    if len(got) != len(pipeline):
        problems.append(f"{len(pipeline) - len(got)} duplicate keys in the pipeline")
    for name, keys in (
        ("missing in the pipeline", want.keys() - got.keys()),
        ("only in the pipeline", got.keys() - want.keys()),
    ):
        if keys:
            problems.append(f"{len(keys)} rows {name}: {sorted(keys, key=str)[:SHOWN_DIFFERENCES]}")
    common = sorted(got.keys() & want.keys(), key=str)
    for column in expected.columns:
        differing = [(k, got[k][column], want[k][column]) for k in common if not same(got[k][column], want[k][column])]
        if differing:
            shown = "\n".join(f"    {k}: pipeline={g!r} expected={w!r}" for k, g, w in differing[:SHOWN_DIFFERENCES])
            problems.append(f"{column}: {len(differing)} rows differ\n{shown}")
    return problems


def month_of(frame: pd.DataFrame, column: str, month: dt.date) -> pd.DataFrame:
    return frame[[plain(day) == month for day in frame[column]]]


def assert_equals_reference(store: FeatureStore, relation: str, compute: Callable[[dt.date], pd.DataFrame]) -> None:
    month_column, key = MARTS[relation]
    table = read_table(store.settings.warehouse, relation)
    problems = []
    for month in MONTHS:
        expected = compute(month)
        assert len(expected), f"the oracle has no {relation} rows in {month}: the test zone is too small"
        problems += [f"{month}: {p}" for p in differences(month_of(table, month_column, month), expected, key)]
    assert {plain(day) for day in table[month_column]} == set(MONTHS)
    assert not problems, f"{relation} vs reference_marts\n" + "\n".join(problems[:20])


# ---------------------------------------------------------------- the marts equal the oracle


def test_client_rfm_equals_reference(store, upstream, thresholds):
    assert_equals_reference(store, "marts.client_rfm", lambda m: reference.client_rfm(upstream, m, START, thresholds))


def test_client_value_equals_reference(store, upstream, thresholds):
    assert_equals_reference(
        store, "marts.client_value", lambda m: reference.client_value(upstream, m, START, thresholds)
    )


def test_client_segments_equal_reference(store, upstream, thresholds):
    assert_equals_reference(
        store, "marts.client_segments", lambda m: reference.client_segments(upstream, m, START, thresholds)
    )


def test_client_cohorts_equal_reference(store, upstream):
    assert_equals_reference(store, "marts.client_cohorts", lambda m: reference.client_cohorts(upstream, m, START))


def test_cohort_health_equals_reference(store, upstream, thresholds):
    assert_equals_reference(
        store, "marts.cohort_health", lambda m: reference.cohort_health(upstream, m, START, thresholds)
    )


def test_cohort_health_rolls_up_client_cohorts_and_uses_every_class(store):
    # the first-purchase cohorts are client_cohorts' cells with the clinics summed: two computations, one answer
    differing = store.scalar(
        "select count(*) from (select * from marts.cohort_health where cohort_type = 'first_purchase') h full join ("
        "  select cohort_month, snapshot_month, sum(cohort_clients) as clients, sum(active_clients) as active,"
        "         sum(cumulative_revenue) as cumulative from marts.client_cohorts group by all"
        ") c using (cohort_month, snapshot_month) "
        "where c.clients is distinct from h.cohort_clients or c.active is distinct from h.active_clients "
        "or abs(c.cumulative - h.cumulative_revenue) > 1e-6"
    )
    assert differing == 0
    health = store.query("select cohort_type, health_class from marts.cohort_health")
    assert set(health["cohort_type"]) == {"signup", "first_purchase"}
    assert set(health["health_class"]) == {"new", "healthy", "watch", "unhealthy"}


def test_product_affinity_equals_reference(store, upstream, thresholds):
    assert_equals_reference(
        store, "marts.product_affinity", lambda m: reference.product_affinity(upstream, m, START, thresholds)
    )


def test_product_recommendations_equal_reference(store, upstream, thresholds):
    assert_equals_reference(
        store,
        "marts.product_recommendations",
        lambda m: reference.product_recommendations(upstream, m, START, thresholds),
    )


def test_recommendations_list_both_directions_and_every_class(store):
    recommendations = store.query("select * from marts.product_recommendations")
    pairs = set(
        zip(
            recommendations["snapshot_month"],
            recommendations["source_category"],
            recommendations["recommended_category"],
        )
    )
    assert all((month, b, a) in pairs for month, a, b in pairs)  # A -> B and B -> A
    assert set(recommendations["strength"]) == {"strong", "moderate", "weak"}
    assert set(recommendations["confidence_level"]) == {"high", "medium", "low"}
    assert set(recommendations["cross_category"]) == {True, False}


def test_clinic_features_equal_reference(store, upstream, thresholds):
    assert_equals_reference(
        store, "features.clinic_features", lambda m: reference.clinic_features(upstream, m, START, thresholds)
    )


# ---------------------------------------------------------------- properties worth naming


def test_the_zone_exercises_every_segment_status_and_tier(store):
    rfm = read_table(store.settings.warehouse, "marts.client_rfm")
    value = read_table(store.settings.warehouse, "marts.client_value")
    assert set(rfm["segment"]) == {"champions", "loyal", "potential_loyalist", "new", "at_risk", "hibernating", "lost"}
    assert set(rfm["status"]) == {"active", "at_risk", "churned"}
    assert set(value["value_tier"]) >= {"high", "medium", "low", "none"}


def test_clinic_ranks_agree_with_client_features(store):
    # two computations of the same rank: the clinic's percent rank among clinics by 12m revenue
    disagreeing = store.scalar(
        "select count(*) from features.clinic_features c join features.client_features f "
        "on c.clinic_id = f.clinic_id and c.feature_month = f.feature_month "
        "where c.revenue_pctl_global_12m != f.clinic_revenue_pctl_global_12m"
    )
    assert disagreeing == 0


def test_cohorts_retain_everyone_in_their_first_month(store):
    first_months = store.query("select retention_rate from marts.client_cohorts where months_since_start = 0")
    assert len(first_months) and (first_months["retention_rate"] == 1.0).all()


def test_marts_are_published_with_their_column_docs(store):
    published = store.settings.analytics
    for relation in MARTS:
        assert len(read_table(published, relation)) == store.scalar(f"select count(*) from {relation}") > 0
    with duckdb.connect(str(published), read_only=True) as con:
        comment = con.execute(
            "select comment from duckdb_columns() where schema_name = 'marts' and table_name = 'product_affinity' "
            "and column_name = 'support'"
        ).fetchone()[0]
    assert comment.startswith("pair_visits / visits")


def test_every_mart_table_has_its_model_description_as_comment_in_the_warehouse_and_the_analytics_file(store):
    """The table comment (duckdb_tables() in the warehouse; duckdb_views() in the analytics file, which holds views)."""
    nodes = {node["name"]: node for node in load_manifest()["nodes"].values()}
    queries = {
        store.settings.warehouse: "select comment from duckdb_tables() where schema_name = ? and table_name = ?",
        store.settings.analytics: "select comment from duckdb_views() where schema_name = ? and view_name = ?",
    }
    for relation in [*MARTS, "marts.segment_actions"]:
        schema, name = relation.split(".")
        for path, query in queries.items():
            with duckdb.connect(str(path), read_only=True) as con:
                found = con.execute(query, [schema, name]).fetchone()
            assert found and found[0] == nodes[name]["description"].strip(), (path.name, relation)


def test_the_segment_actions_seed_is_published_as_marketing_wrote_it(store):
    csv = pd.read_csv(reference.SEGMENT_ACTIONS_CSV).sort_values("segment").reset_index(drop=True)
    published = read_table(store.settings.analytics, "marts.segment_actions").sort_values("segment")
    pd.testing.assert_frame_equal(published.reset_index(drop=True), csv, check_dtype=False)
    with duckdb.connect(str(store.settings.analytics), read_only=True) as con:
        comment = con.execute(
            "select comment from duckdb_views() where schema_name = 'marts' and view_name = 'segment_actions'"
        ).fetchone()[0]
    assert comment.startswith("The marketing action for each behavioural segment")
    # every segment the RFM mart produced has an action: the campaign list has no gap
    assert store.scalar("select count(*) from marts.client_segments where recommended_action is null") == 0


def test_every_mart_column_is_documented(store):
    models = {node["name"]: node for node in load_manifest()["nodes"].values() if node["resource_type"] == "model"}
    for relation in MARTS:
        schema, name = relation.split(".")
        described = store.query(f"describe {relation}")
        documented = models[name]["columns"]
        assert list(described["column_name"]) == list(documented), relation
        assert all(column["description"].strip() for column in documented.values()), relation
        types = {c: column.get("data_type") for c, column in documented.items()}
        assert {c: t.lower() for c, t in zip(described["column_name"], described["column_type"])} == types, relation


# ---------------------------------------------------------------- the Dagster graph


def test_marts_say_their_lookback_window_and_run_in_the_monthly_job():
    import dagster as dg

    from feature_store_assets.core.settings import Settings
    from feature_store_assets.definitions import build_definitions
    from feature_store_assets.defs.schedules.monthly import MONTHLY_JOB

    defs = build_definitions(Settings.from_env({"FEATURE_STORE_START_MONTH": "2023-01"}))
    graph = defs.resolve_asset_graph()

    def parent_months(child: list[str], parent: list[str]) -> list[str]:
        return sorted(
            graph.get_parent_partition_keys_for_child(
                partition_key="2024-03-01", parent_asset_key=dg.AssetKey(parent), child_asset_key=dg.AssetKey(child)
            ).partitions_subset.get_partition_keys()
        )

    # In the graph every monthly dependency is same-month (a lookback mapping would stretch UI backfills 11 months
    # forward, docs/architecture.md); the window is the assets' metadata, and the history guard enforces it.
    for child, parent in [
        (["marts", "product_affinity"], ["aggregation", "category_pair_monthly_visits"]),
        (["marts", "client_rfm"], ["aggregation", "client_monthly_financials"]),
        (["marts", "client_rfm"], ["features", "client_features"]),
        (["features", "clinic_features"], ["aggregation", "client_monthly_inclinic_mix"]),
    ]:
        assert parent_months(child, parent) == ["2024-03-01"], (child, parent)
    for mart in MARTS_SCHEMA_MODELS:
        assert graph.get(dg.AssetKey(["marts", mart])).metadata["reads_aggregation_months"] == "M-11..M"
    selected = {key.to_user_string() for key in defs.resolve_job_def(MONTHLY_JOB).asset_layer.selected_asset_keys}
    assert {f"marts/{name}" for name in MARTS_SCHEMA_MODELS} | {"features/clinic_features"} <= selected
    # the seed is an unpartitioned asset of the job, built by the unpartitioned dbt step before the months
    assert "marts/segment_actions" in selected
    assert graph.get(dg.AssetKey(["marts", "segment_actions"])).partitions_def is None


def test_every_model_carries_its_layer_and_a_subject_as_tags():
    """`dbt build --select tag:aggregation` (docs/marts.md, Tags): one duplicated `+tags` key in dbt_project.yml
    once dropped the layer tag of a whole folder; YAML keeps the last of two equal keys without a word."""
    subjects = {"customer", "product", "cohort", "clinic"}
    models = [n for n in load_manifest()["nodes"].values() if n["resource_type"] == "model"]
    assert {layer_of(n) for n in models} == set(LAYERS)
    for node in models:
        assert layer_of(node) in node["tags"], (node["name"], node["tags"])
        if "staging" not in node["tags"]:
            assert subjects & set(node["tags"]), (node["name"], node["tags"])


# ---------------------------------------------------------------- dbt unit tests


def test_the_tricky_logic_has_dbt_unit_tests():
    """test_dbt_unit_tests.py runs every unit test (`dbt test --select test_type:unit`); here: the marts have theirs."""
    unit_tests = load_manifest()["unit_tests"].values()
    tested = {test["model"] for test in unit_tests}
    assert set(MART_MODELS) <= tested
    names = {test["name"] for test in unit_tests}
    assert {"client_rfm_quintile_ties_and_window", "product_affinity_minimum_support_and_rank_ties"} <= names


# ---------------------------------------------------------------- the dbt docs site


def test_feature_store_docs_generates_the_site_with_the_marts_descriptions(store, monkeypatch, capsys):
    from feature_store_assets.cli.main import main

    for name, value in store.settings.as_env().items():
        monkeypatch.setenv(name, value)
    assert main(["docs", "--no-serve"]) == 0
    folder = Path(capsys.readouterr().out.split("dbt docs generated in ")[1].split(" (")[0])
    description = load_manifest()["nodes"]["model.feature_store.client_segments"]["description"]
    catalog = json.loads((folder / "catalog.json").read_text())
    # the catalog is read from the warehouse: the table's comment is the model's description
    assert catalog["nodes"]["model.feature_store.client_segments"]["metadata"]["comment"] == description
    assert "recommended_action" in catalog["nodes"]["model.feature_store.client_segments"]["columns"]
    assert (folder / "index.html").is_file()
    assert json.dumps(description)[1:-1] in (folder / "static_index.html").read_text()


def test_feature_store_docs_serves_the_site_and_stops_on_sigterm(store):
    env = {**os.environ, **store.settings.as_env()}
    command = [str(Path(sys.executable).parent / "feature-store"), "docs", "--port", "0"]
    # started as by a script that ran Dagster, in its background: SIGINT and SIGTERM ignored
    stop_signals_ignored = starting_with(signal.SIG_IGN, signal.SIGINT, signal.SIGTERM)
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, preexec_fn=stop_signals_ignored)
    try:
        lines = iter(server.stdout.readline, "")
        url = next(line for line in lines if line.startswith("serving the dbt docs on ")).split()[5]
        with urllib.request.urlopen(url + "catalog.json", timeout=30) as response:
            assert "model.feature_store.client_segments" in json.loads(response.read())["nodes"]
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200 and "dbt" in response.read().decode().lower()
    finally:
        server.terminate()
        returncode = server.wait(timeout=30)
    assert returncode == 0 and server.stdout.read() == "stopped serving the dbt docs\n"
