"""Each feature's definition, learnt from the dbt manifest, and its version: a hash that changes when the
definition does (docs/serving.md, "Feature versions").

A feature's definition is two things, both in the manifest:

- its yml entry: the column's whole entry in the model's yml (description, data type, meta, tags, constraints);
- its SQL: the expression that computes its column, traced through the model's CTEs down to the tables the model
  reads (sqlglot's column lineage), with the joins and filters of each select it passes through, on the model's
  SQL rendered from the manifest's raw code. The rendering runs
  the project's own macros (feature_store's, from the manifest) with fixed run months, so it is the same every
  month; dbt's built-in macros (dbt.cast, dbt.dateadd, ...) are kept as calls by name (`DBT_CAST(...)`), so a
  change to the project's macros shows, a dbt upgrade does not. Comments are left out.

Changing one column's description therefore changes that feature's version only; changing an expression, a join
or a filter changes the versions of the features computed through it (a CTE column several features read changes
each of them). What the lineage does not follow is a joined select none of the feature's columns come from (the
rows a join keeps): a change there shows in the features whose columns it computes, not in every feature.
"""

from __future__ import annotations

import datetime as datetime_module
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import sqlglot
from sqlglot import exp
from sqlglot.lineage import lineage
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope

from feature_store_assets.serving.catalog import Feature, FeatureVersion, feature_type, feature_views
from feature_store_assets.warehouse.connections import comment_on_columns, sql_string, table_exists

DIALECT = "duckdb"
# Fixed run months: the rendered SQL must not change from one run to the next (the months are data, not definition).
RENDER_VARS = {"min_date": "2000-01-01", "max_date": "2000-02-01"}
HASH_LENGTH = 12


class _Return(Exception):  # dbt's `return(value)` inside a macro: the macro's value
    def __init__(self, value: Any):
        self.value = value


def _raise_return(value: Any) -> None:
    raise _Return(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


class _Builtin:
    """A dbt built-in (dbt.cast, adapter.quote, ...): kept as a call by its name, `dbt_cast(args)`."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        parts = [_text(a) for a in args] + [f"{key}={_text(value)}" for key, value in kwargs.items()]
        return f"{self.name.replace('.', '_')}({', '.join(parts)})"

    def __getattr__(self, attribute: str) -> _Builtin:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _Builtin(f"{self.name}.{attribute}")

    def __str__(self) -> str:
        return self.name.replace(".", "_")


class _Undefined(jinja2.Undefined):
    """Anything else dbt's context has: a built-in by its name."""

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        return _Builtin(self._undefined_name or "undefined")(*args, **kwargs)

    def __getattr__(self, attribute: str) -> _Builtin:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _Builtin(f"{self._undefined_name}.{attribute}")

    def __str__(self) -> str:
        return self._undefined_name or ""


def _environment(manifest: Mapping[str, Any], project: str) -> jinja2.Environment:
    """A Jinja environment with the project's macros (from the manifest) and stand-ins for dbt's context."""
    env = jinja2.Environment(extensions=["jinja2.ext.do"], undefined=_Undefined)
    sources = {m["name"]: m["macro_sql"] for m in manifest["macros"].values() if m["package_name"] == project}
    modules: dict[str, Any] = {}

    def macro(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if name not in modules:
                modules[name] = env.from_string(sources[name]).module
            try:
                return str(getattr(modules[name], name)(*args, **kwargs))
            except _Return as returned:
                return returned.value

        return call

    class Adapter:
        @staticmethod
        def dispatch(name: str, namespace: str | None = None) -> Callable[..., Any]:
            return env.globals.get(f"default__{name}") or _Builtin(name)

    env.globals.update({name: macro(name) for name in sources})
    env.globals.update(
        {
            "return": _raise_return,
            "var": lambda name, default=None: RENDER_VARS.get(name, default),
            "env_var": lambda name, default="": default,
            "ref": lambda *names, **_: names[-1],
            "source": lambda source, table: f"{source}.{table}",
            "is_incremental": lambda: False,
            "this": "this",
            "execute": True,
            "modules": type("Modules", (), {"datetime": datetime_module}),
            "dbt": _Builtin("dbt"),
            "adapter": Adapter(),
            "config": lambda *args, **kwargs: "",
        }
    )
    return env


def rendered_sql(manifest: Mapping[str, Any], node: Mapping[str, Any]) -> str:
    """The model's SQL rendered from its raw code with the project's macros and fixed run months (pure)."""
    return _environment(manifest, node["package_name"]).from_string(node["raw_code"]).render()


def column_expressions(sql: str, columns: list[str]) -> dict[str, list[str]]:
    """Per output column, the SQL of every step of its lineage (pure): the select computing it at each step, trimmed
    to that column, with its FROM, joins and filters (the final select without the CTEs, which the later steps
    give), down to the tables the model reads; comments left out."""
    qualified = qualify(sqlglot.parse_one(sql, dialect=DIALECT), dialect=DIALECT, validate_qualify_columns=False)
    scope = build_scope(qualified)
    found = {}
    for column in columns:
        steps = []
        for i, step in enumerate(lineage(column, qualified, None, dialect=DIALECT, scope=scope, copy=False).walk()):
            source = step.source
            if i == 0 and isinstance(source, exp.Select):  # the model's own select: this column, no CTEs
                source = source.copy()
                source.set("with_", None)
                source.set("expressions", [step.expression.copy()])
            steps.append(source.sql(dialect=DIALECT, comments=False))
        # the model's own select first, the rest sorted: sqlglot walks a step's sources from a set, so their order
        # changes from one process to the next
        found[column] = steps[:1] + sorted(set(steps[1:]) - set(steps[:1]))
    return found


# What column_expressions' result depends on besides its arguments: this module's code and sqlglot's version.
_LINEAGE_CODE = hashlib.sha256(Path(__file__).read_bytes() + sqlglot.__version__.encode()).hexdigest()
Lineages = dict[str, dict[str, list[str]]]  # lineage_key -> column -> column_expressions' steps


def _view_lineage_inputs(manifest: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], list[str], str, str]]:
    """Each feature view: its node, its feature columns, its rendered SQL and the key of their lineage."""
    views = feature_views(manifest)
    keys = {"feature_month", *(view["meta"]["entity"] for view in views)}
    inputs = []
    for node in views:
        names = [name for name in node["columns"] if name not in keys]
        sql = rendered_sql(manifest, node)
        inputs.append((node, names, sql, hashlib.sha256(json.dumps([_LINEAGE_CODE, sql, names]).encode()).hexdigest()))
    return inputs


def feature_lineages(manifest: Mapping[str, Any], known: Mapping[str, Any] | None = None) -> Lineages:
    """The column lineage of every feature view, by a key of its inputs (rendered SQL, columns, this code): taken
    from `known` (what an earlier run computed) where it is there, traced anew where not (pure). Tracing is most of
    a catalog build's time, about 1.2 s for both views."""
    known = known or {}
    lineages = {}
    for _node, names, sql, key in _view_lineage_inputs(manifest):
        found = known.get(key)
        lineages[key] = (
            found if isinstance(found, dict) and set(found) == set(names) else column_expressions(sql, names)
        )
    return lineages


def definition_hashes(manifest: Mapping[str, Any], lineages: Lineages | None = None) -> dict[str, str]:
    """feature_type -> the hash of its definition (its yml entry and its SQL lineage), for every feature of every
    feature view (pure); `lineages`: feature_lineages(manifest), when already computed."""
    lineages = feature_lineages(manifest) if lineages is None else lineages
    hashes = {}
    for node, names, _sql, key in _view_lineage_inputs(manifest):
        expressions = lineages[key]
        for name in names:
            definition = {"yml": node["columns"][name], "sql": expressions[name]}
            text = json.dumps(definition, sort_keys=True, default=str)
            hashes[feature_type(node["name"], name)] = hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]
    return hashes


# ---------------------------------------------------------------- versions: which definition built which months

VERSIONS_TABLE = "features.feature_versions"
VERSIONS_COMMENT = (
    "Every version of each feature's definition (its yml entry and SQL lineage, hashed), with the first feature "
    "month built with it: the version applies from that month on (docs/serving.md, Feature versions)."
)


def next_versions(
    history: Sequence[FeatureVersion],
    definition: str,
    built: Sequence[date],
    view_first_month: date | None,
) -> tuple[FeatureVersion, ...]:
    """A feature's versions after a catalog build (pure). `built`: its view's months materialized since the last
    build (built with `definition`); `view_first_month`: the view's first month in the warehouse.

    - first seen: version 1, from the view's first month (every month there was built before anything was recorded);
    - the same definition: unchanged, unless months before its first month were rebuilt (a backfill): then it
      applies from the earliest of them;
    - another definition: version n+1 from the earliest month built with it; none built yet, nothing changes (no
      published row has it).
    """
    first_built = min(built, default=None)
    if not history:
        return (FeatureVersion(1, view_first_month if view_first_month is not None else first_built, definition),)
    last = history[-1]
    if last.definition == definition:
        if first_built is not None and (last.first_month is None or first_built < last.first_month):
            return (*history[:-1], replace(last, first_month=first_built))
        return tuple(history)
    if first_built is None:
        return tuple(history)
    return (*history, FeatureVersion(last.version + 1, first_built, definition))


def read_versions(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[FeatureVersion, ...]]:
    """feature_type -> its recorded versions, oldest first (none before the first catalog build that recorded them)."""
    if not table_exists(con, VERSIONS_TABLE):
        return {}
    found: dict[str, list[FeatureVersion]] = {}
    for name, version, first_month, definition in con.execute(
        f"select feature_name, version, first_month, definition from {VERSIONS_TABLE} order by feature_name, version"
    ).fetchall():
        found.setdefault(name, []).append(FeatureVersion(version, first_month, definition))
    return {name: tuple(versions) for name, versions in found.items()}


def write_versions(con: duckdb.DuckDBPyConnection, features: Sequence[Feature], recorded_at: datetime) -> None:
    """Replace the versions table with every feature's versions (publishing copies it beside the catalog)."""
    rows = [
        (f.feature_view, f.feature_type, v.version, v.first_month, v.definition, recorded_at)
        for f in features
        for v in f.versions
    ]
    con.execute(
        f"create or replace table {VERSIONS_TABLE} (feature_view varchar, feature_name varchar, version integer, "
        "first_month date, definition varchar, recorded_at timestamp)"
    )
    if rows:
        con.executemany(f"insert into {VERSIONS_TABLE} values (?, ?, ?, ?, ?, ?)", rows)
    con.execute(f"comment on table {VERSIONS_TABLE} is {sql_string(VERSIONS_COMMENT)}")
    comment_on_columns(
        con,
        VERSIONS_TABLE,
        {
            "feature_view": "the feature view (features.<feature_view>)",
            "feature_name": "the feature, as requests name it (feature_type)",
            "version": "1, then one more each time its definition changed",
            "first_month": "the first feature month built with this version: it applies from there on",
            "definition": "hash of the definition: the yml entry and the SQL lineage of the column",
            "recorded_at": "when the catalog build that wrote this table ran",
        },
    )


def with_versions(
    features: Sequence[Feature],
    history: Mapping[str, Sequence[FeatureVersion]],
    hashes: Mapping[str, str],
    built: Mapping[str, Sequence[date]],
    view_first_months: Mapping[str, date | None],
) -> list[Feature]:
    """The features with their versions after this build (pure): `built` and `view_first_months` by feature view."""
    return [
        replace(
            f,
            versions=next_versions(
                history.get(f.feature_type, ()),
                hashes[f.feature_type],
                built.get(f.feature_view, ()),
                view_first_months.get(f.feature_view),
            ),
        )
        for f in features
    ]
