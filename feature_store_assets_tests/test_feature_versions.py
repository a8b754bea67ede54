"""Feature versions in the catalog: each feature's definition (its yml entry and the SQL lineage of its column,
from the dbt manifest) hashed, a new version when it changes, and the first month built with each version."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from datetime import date, datetime

import duckdb
import pytest

from feature_store_assets.core.paths import PACKAGE_DIR
from feature_store_assets.defs.catalog import definitions
from feature_store_assets.defs.catalog.assets import kept_lineages
from feature_store_assets.defs.catalog.definitions import (
    VERSIONS_TABLE,
    column_expressions,
    definition_hashes,
    next_versions,
    read_versions,
    rendered_sql,
    write_versions,
)
from feature_store_assets.defs.dbt.process import dbt_executable
from feature_store_assets.defs.dbt.project import load_manifest
from feature_store_assets.serving.catalog import (
    FeatureVersion,
    catalog_definitions,
    feature_views,
    load_catalog,
    read_catalog,
    write_catalog,
)
from feature_store_assets_tests.support.serving import analytics_query
from feature_store_assets_tests.support.shared import published_copy

DBT_PROJECT = PACKAGE_DIR.parent / "dbt_subproject"
JAN, FEB, MAR, APR = (date(2023, m, 1) for m in (1, 2, 3, 4))


def view_node(manifest, name: str):
    return next(node for node in feature_views(manifest) if node["name"] == name)


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    assert set(before) == set(after)
    return {name for name in before if before[name] != after[name]}


@pytest.fixture(scope="module")
def manifest():
    return load_manifest()


@pytest.fixture(scope="module")
def hashes(manifest) -> dict[str, str]:
    return definition_hashes(manifest)


def test_every_feature_has_a_definition_from_its_yml_and_its_sql(manifest, hashes):
    assert list(hashes) == [f.feature_type for f in catalog_definitions(manifest)]
    assert len(set(hashes.values())) == len(hashes)  # no two features share a definition
    assert definition_hashes(manifest) == hashes  # the same manifest, the same versions: nothing depends on the day
    sql = rendered_sql(manifest, view_node(manifest, "client_features"))
    assert "{{" not in sql and "{%" not in sql and "2000-01-01" in sql  # rendered, with the fixed run months
    steps = column_expressions(sql, ["web_conversion_rate_3m", "zip_code"])
    assert (
        "web_orders_3m" in steps["web_conversion_rate_3m"][0]
        and "web_sessions_3m" in steps["web_conversion_rate_3m"][0]
    )
    assert any("SUM(" in step and "orders" in step for step in steps["web_conversion_rate_3m"])  # traced to web_3m
    assert not any("sessions" in step for step in steps["zip_code"])


def test_a_description_change_changes_that_features_version_only(manifest, hashes):
    edited = copy.deepcopy(manifest)
    column = view_node(edited, "client_features")["columns"]["tenure_days"]
    column["description"] += " Counted in whole days."
    assert changed(hashes, definition_hashes(edited)) == {"tenure_days"}
    edited = copy.deepcopy(manifest)
    view_node(edited, "clinic_features")["columns"]["clients_active"]["meta"]["feature"] = {"tags": ["new"]}
    assert changed(hashes, definition_hashes(edited)) == {"clinic_features:clients_active"}


def test_an_sql_change_changes_the_versions_of_the_features_computed_from_it(manifest, hashes):
    edited = copy.deepcopy(manifest)
    node = view_node(edited, "client_features")
    expression = "then cast(ranked.web_orders_3m as double) / cast(ranked.web_sessions_3m as double)"
    assert expression in node["raw_code"]
    node["raw_code"] = node["raw_code"].replace(expression, expression.replace("as double)", "as float)", 1))
    assert changed(hashes, definition_hashes(edited)) == {"web_conversion_rate_3m"}
    # a CTE column several features read: each of them, and only they
    edited = copy.deepcopy(manifest)
    node = view_node(edited, "client_features")
    window = "on web.activity_month >= {{ add_months('feature_months.feature_month', -2) }}"
    assert window in node["raw_code"]
    node["raw_code"] = node["raw_code"].replace(window, window.replace("-2", "-3"))
    assert changed(hashes, definition_hashes(edited)) == {"web_sessions_3m", "web_orders_3m", "web_conversion_rate_3m"}
    # a comment is no change
    edited = copy.deepcopy(manifest)
    node = view_node(edited, "client_features")
    node["raw_code"] = node["raw_code"].replace("ranked as (", "ranked as ( -- a note", 1)
    assert changed(hashes, definition_hashes(edited)) == set()


def test_a_kept_lineage_gives_the_same_versions_and_an_sql_change_is_traced_anew(
    manifest, hashes, tmp_path, monkeypatch
):
    cache = tmp_path / ".dbt" / "warehouse.duckdb.feature_lineage.json"
    assert definition_hashes(manifest, kept_lineages(manifest, cache)) == hashes  # traced, then written
    written = json.loads(cache.read_text())
    assert len(written) == len(feature_views(manifest))

    def not_traced(sql, columns):
        raise AssertionError("traced again, though kept")

    monkeypatch.setattr(definitions, "column_expressions", not_traced)
    assert definition_hashes(manifest, kept_lineages(manifest, cache)) == hashes  # read back: the same versions
    # an SQL change is a new key: that view is traced again (and only it), and the file holds this run's lineages
    monkeypatch.undo()
    edited = copy.deepcopy(manifest)
    node = view_node(edited, "client_features")
    node["raw_code"] = node["raw_code"].replace("ranked as (", "ranked as ( -- a note", 1)
    traced = []
    monkeypatch.setattr(definitions, "column_expressions", lambda sql, columns: traced.append(columns) or {})
    with pytest.raises(KeyError):  # the stand-in traced nothing: proof the edited view was traced, not read
        definition_hashes(edited, kept_lineages(edited, cache))
    assert len(traced) == 1 and "tenure_days" in traced[0] and "clients_active" not in traced[0]  # client view only
    assert set(json.loads(cache.read_text())) != set(written)
    # an unreadable cache is traced again, never an error
    monkeypatch.undo()
    cache.write_text("{not json")
    assert definition_hashes(manifest, kept_lineages(manifest, cache)) == hashes


def test_an_edited_yml_in_a_copy_of_the_project_changes_that_features_version_only(tmp_path, hashes):
    """The real path: a copy of the dbt project with one description edited, parsed by dbt into a manifest."""
    project = tmp_path / "dbt_subproject"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", ".manifest.lock"))
    yml = project / "models" / "features" / "client_features.yml"
    text = yml.read_text()
    marker = "- name: web_orders_3m"
    assert text.count(marker) == 1
    before, after = text.split(marker)
    description_line = next(line for line in after.splitlines() if line.strip().startswith("description:"))
    yml.write_text(before + marker + after.replace(description_line, description_line + " (edited)", 1))
    result = subprocess.run(
        [dbt_executable(), "parse", "--quiet", "--project-dir", str(project), "--profiles-dir", str(project)]
        + ["--target-path", str(project / "target")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    edited = json.loads((project / "target" / "manifest.json").read_text())
    assert changed(hashes, definition_hashes(edited)) == {"web_orders_3m"}


def test_versions_follow_the_definitions_and_the_months_built_with_them():
    v1 = FeatureVersion(1, JAN, "aaa")
    # first seen: version 1 from the view's first month, whatever this run built
    assert next_versions((), "aaa", [MAR], JAN) == (v1,)
    assert next_versions((), "aaa", [], None) == (FeatureVersion(1, None, "aaa"),)
    # the same definition: unchanged; a backfill of earlier months moves its first month back
    assert next_versions((v1,), "aaa", [MAR], JAN) == (v1,)
    assert next_versions((FeatureVersion(1, FEB, "aaa"),), "aaa", [JAN, MAR], JAN) == (v1,)
    # a new definition: version 2 from the first month built with it, the old version kept
    assert next_versions((v1,), "bbb", [APR, MAR], JAN) == (v1, FeatureVersion(2, MAR, "bbb"))
    # a new definition no month was built with yet: nothing published has it, nothing changes
    assert next_versions((v1,), "bbb", [], JAN) == (v1,)
    # back to an earlier definition: a new version still (the months between were built otherwise)
    v2 = FeatureVersion(2, MAR, "bbb")
    assert next_versions((v1, v2), "aaa", [APR], JAN) == (v1, v2, FeatureVersion(3, APR, "aaa"))


def test_the_catalog_table_and_the_versions_table_keep_every_version(manifest):
    features = catalog_definitions(manifest)[:3]
    versioned = [
        f.__class__(**{**f.__dict__, "versions": (FeatureVersion(1, JAN, "aaa"), FeatureVersion(2, MAR, "bbb"))})
        for f in features[:2]
    ] + features[2:]
    with duckdb.connect() as con:
        write_catalog(con, versioned, datetime(2024, 1, 1))
        write_versions(con, versioned, datetime(2024, 1, 1))
        back = read_catalog(con)
        assert back[0].versions == versioned[0].versions and back[2].versions == ()
        assert (back[0].version, back[0].version_first_month, back[0].definition) == (2, MAR, "bbb")
        assert back[0].as_dict()["versions"] == [
            {"version": 1, "first_month": "2023-01-01", "definition": "aaa"},
            {"version": 2, "first_month": "2023-03-01", "definition": "bbb"},
        ]
        assert read_versions(con) == {f.feature_type: f.versions for f in versioned[:2]}
        assert con.execute(f"select count(*) from {VERSIONS_TABLE}").fetchone()[0] == 4


@pytest.mark.e2e
@pytest.mark.xdist_group("feature_versions")
def test_a_published_store_lists_version_1_of_every_feature_from_its_first_month(
    tmp_path_factory, small_landing_zone, hashes
):
    store = published_copy(tmp_path_factory, small_landing_zone, "feature_versions")
    catalog = load_catalog(store.settings.analytics)
    assert {(f.version, f.version_first_month) for f in catalog.features} == {(1, JAN)}
    assert {f.feature_type: f.definition for f in catalog.features} == hashes
    versions = analytics_query(
        store.settings, f"select feature_name, version, first_month, definition from {VERSIONS_TABLE}"
    )
    assert len(versions) == len(hashes) and set(versions["feature_name"]) == set(hashes)
    assert set(versions["version"]) == {1} and {d.date() for d in versions["first_month"]} == {JAN}


def test_definitions_hash_the_same_in_every_process():
    """Runs and serving processes must agree, or every run would start new versions: each process here has its own
    string-hash seed (set and dict iteration order), as every real process does."""
    code = (
        "import json; from feature_store_assets.defs.dbt.project import load_manifest; "
        "from feature_store_assets.defs.catalog.definitions import definition_hashes; "
        "print(json.dumps(definition_hashes(load_manifest()), sort_keys=True))"
    )
    found = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(found) == 1 and json.loads(found.pop()) == definition_hashes(load_manifest())
