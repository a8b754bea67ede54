"""Readable names and descriptions for the asset checks dagster-dbt makes of the dbt data tests.

dbt names a generic test after its kind, model and every argument
(`unique_combination_of_columns_client_features_client_id__feature_month`); on the
asset's checks tab that is a column of identical-looking prefixes. Here a check is
named by what it tests, without the model (the asset already says it) or the run's
months (the test's `where` config reads only those): `not_null_client_id`,
`unique_client_id_and_feature_month`, `between_tenure_days` (an `accepted_range`
test), `rows_in_every_window_month`. Dagster check names must match ^[A-Za-z0-9_]+$
(they become op output names), hence underscores.

dagster-dbt maps a test's result to its check by the test node's `name` in the
manifest given to @dbt_assets (not through the translator), so the names are set
there: `with_readable_test_names` returns a copy of the manifest with test nodes
renamed; dbt's own selection of tests uses their fqn, which stays as it was.
A description written on the test in the .yml (`description:`) wins over the
generated one.
"""

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

SCOPE = " in the run's months"
# The first word of a check's name, by the test's kind where the kind's name is not what it checks.
CHECK_PREFIX = {"unique_combination_of_columns": "unique", "accepted_range": "between"}


def _kind_and_arguments(test: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    metadata = test.get("test_metadata") or {}
    return metadata.get("name"), metadata.get("kwargs") or {}


def _columns(arguments: Mapping[str, Any]) -> list[str]:
    if arguments.get("combination_of_columns"):
        return list(arguments["combination_of_columns"])
    return [arguments["column_name"]] if arguments.get("column_name") else []


def readable_check_name(test: Mapping[str, Any]) -> str:
    """`<kind>_<columns>` (`unique_a_b_and_c`): the generic test's name (CHECK_PREFIX shortens some), then the
    columns it tests; a singular test keeps its file's name."""
    kind, arguments = _kind_and_arguments(test)
    if not kind:
        return test["name"]
    columns = _columns(arguments)
    listed = "_and_".join(filter(None, ["_".join(columns[:-1]), *columns[-1:]]))  # a_b_and_c
    parts = [CHECK_PREFIX.get(kind, kind), listed]
    return re.sub(r"[^A-Za-z0-9_]+", "_", "_".join(p for p in parts if p)).strip("_")


def check_description(test: Mapping[str, Any]) -> str:
    """The test's `description:` from the .yml, else one sentence from its kind and arguments."""
    if (test.get("description") or "").strip():
        return test["description"].strip()
    kind, arguments = _kind_and_arguments(test)
    if not kind:
        return f"Singular dbt test {test['name']}: passes when its query returns no rows."
    scope = SCOPE if (test.get("config") or {}).get("where") or "month_column" in arguments else ""
    base = CHECK_PREFIX.get(kind, kind)
    columns = _columns(arguments)
    column = columns[0] if columns else ""
    if base == "not_null":
        text = f"{column} is never NULL{scope}."
    elif base == "unique":
        key = column if len(columns) == 1 else f"({', '.join(columns)})"
        text = f"At most one row per {key}{scope}."
    elif base == "between":
        text = f"{column} is between {arguments.get('min_value')} and {arguments.get('max_value')} (inclusive){scope}; NULL passes."
    elif base == "accepted_values":
        text = f"{column} is one of {', '.join(map(str, arguments.get('values', [])))}{scope}; NULL passes."
    elif base == "null_exactly_when":
        text = f"{column} is NULL exactly when {arguments.get('condition')}{scope}."
    elif base == "rows_in_every_window_month":
        text = f"Every month of the run has at least one row (by {arguments.get('month_column')})."
    else:
        shown = ", ".join(f"{k}={v}" for k, v in arguments.items() if k != "model")
        text = f"dbt test {kind}({shown}){scope}."
    warns = ((test.get("config") or {}).get("severity") or "error").lower() == "warn"
    return text + (" Warns only: the models downstream still build." if warns else "")


def with_readable_test_names(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the manifest whose data tests carry readable names, unique per tested model: tests that would
    share a readable name on one model keep dbt's own (unique) names."""
    tests = {uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] == "test"}
    wanted = {uid: (node.get("attached_node"), readable_check_name(node)) for uid, node in tests.items()}
    taken = Counter(wanted.values())
    nodes = dict(manifest["nodes"])
    for uid, node in tests.items():
        name = wanted[uid][1] if taken[wanted[uid]] == 1 else node["name"]
        nodes[uid] = {**node, "name": name}
    return {**manifest, "nodes": nodes}
