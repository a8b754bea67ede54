"""A new monthly model is SQL + yml, nothing else: added to a copy of the repository, it becomes a monthly asset
of its layer's group with the quality checks, is built by the monthly job, recorded in the ledger and published.

The copy (the repository's tracked files) runs in a subprocess with the copy first on PYTHONPATH, so its own
feature_store_assets finds its own dbt project (core/paths.py); one small landing zone, one materialize run.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import duckdb

from feature_store_assets.core.names import LEDGER
from feature_store_assets.core.paths import REPO_DIR
from feature_store_assets_tests.conftest import instance_home_copy

MODEL = "client_monthly_cart_sessions"
MODEL_SQL = """\
-- Each integrated client's web sessions with an add-to-cart event in a month.
select
    client_id,
    event_month as activity_month,
    cast(sum(case when add_to_cart_events > 0 then 1 else 0 end) as integer) as cart_sessions
from {{ ref('web_sessions') }}
where {{ in_window('event_month') }}
group by client_id, event_month
"""
MODEL_YML = f"""\
version: 2
models:
- name: {MODEL}
  description: One row per integrated client and month with web sessions, the sessions that added to the cart.
  meta:
    quality:
      allow_empty_month: true
  data_tests:
  - unique_combination_of_columns:
      config:
        where: "activity_month >= __run_min_date__ and activity_month < __run_max_date__"
      arguments:
        combination_of_columns: [client_id, activity_month]
  columns:
  - name: client_id
    description: The client.
  - name: activity_month
    description: First day of the month (the month key).
  - name: cart_sessions
    description: Sessions of the client in the month with at least one add-to-cart event.
"""
# What the copy's Dagster definitions say of the new model, as JSON on stdout's last line.
INSPECT = """
import json, sys
import dagster as dg
import feature_store_assets
from feature_store_assets.cli.main import main
from feature_store_assets.definitions import build_definitions

assert main(["generate", "--months", "2", "--clinics", "4", "--clients", "150", "--inclinic-rows", "600"]) == 0
assert main(["materialize", "--from", "2023-01", "--to", "2023-02"]) == 0
graph = build_definitions().resolve_asset_graph()
node = graph.get(dg.AssetKey(["aggregation", sys.argv[1]]))
print(json.dumps({
    "package": feature_store_assets.__file__,
    "group": node.group_name,
    "partitions": type(node.partitions_def).__name__,
    "first_partition": node.partitions_def.get_first_partition_key(),
    "checks": sorted(k.name for k in graph.asset_check_keys if k.asset_key == node.key),
}))
"""


def copy_of_the_repository(destination):
    tracked = subprocess.run(
        ["git", "-C", str(REPO_DIR), "ls-files", "-z"], check=True, capture_output=True, text=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        source = REPO_DIR / name
        if source.is_file():  # a tracked file deleted in the working tree is not part of it
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def test_a_new_monthly_model_needs_no_python_change(tmp_path):
    repo = copy_of_the_repository(tmp_path / "repo")
    models = repo / "dbt_subproject" / "models" / "aggregation"
    (models / f"{MODEL}.sql").write_text(MODEL_SQL)
    (models / f"{MODEL}.yml").write_text(MODEL_YML)
    store = tmp_path / "store"
    instance_home_copy(store / "dagster_home")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("FEATURE_STORE_", "PYTHON"))}
    env = {
        **inherited,
        "PYTHONPATH": str(repo),
        "DAGSTER_HOME": str(store / "dagster_home"),
        "FEATURE_STORE_RAW_DIR": str(store / "raw"),
        "FEATURE_STORE_WAREHOUSE": str(store / "warehouse.duckdb"),
        "FEATURE_STORE_ANALYTICS": str(store / "analytics.duckdb"),
        "FEATURE_STORE_START_MONTH": "2023-01",
    }
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(INSPECT), MODEL],
        cwd=store,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert seen["package"].startswith(str(repo))  # the copy ran, not this checkout
    assert (seen["group"], seen["partitions"], seen["first_partition"]) == (
        "aggregation",
        "MonthlyPartitionsDefinition",
        "2023-01-01",
    )
    assert {"row_count", "null_rates", "month_accepted", "unique_client_id_and_activity_month"} <= set(seen["checks"])
    with duckdb.connect(str(store / "warehouse.duckdb"), read_only=True) as con:
        ledger = con.execute(f"select month, status from {LEDGER} where model = ? order by month", [MODEL]).fetchall()
        built = con.execute(f"select count(*) from aggregation.{MODEL}").fetchone()[0]
    assert [(m.isoformat(), status) for m, status in ledger] == [("2023-01-01", "accepted"), ("2023-02-01", "accepted")]
    with duckdb.connect(str(store / "analytics.duckdb"), read_only=True) as con:
        published = con.execute(f"select count(*) from aggregation.{MODEL}").fetchone()[0]
    assert published == built > 0
