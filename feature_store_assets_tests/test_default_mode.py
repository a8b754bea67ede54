"""Valid landing zones publish in the default (enforcing) quality mode (docs/quality.md, "integrity blocks,
statistics warn"): a small zone month by month and in one run, a tiny zone with empty months (no HD order, no web
session, no product pair), a zone that ramps up, a zone with a month of 2.5x the rows, and a zone whose in-clinic
volume drops to 30% (a row_count WARN naming the drop, nothing held back). A model whose yml lists row_count
under meta.quality.blocking_checks holds that drop back."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from feature_store_assets.cli.main import main
from feature_store_assets.core.months import parse_month
from feature_store_assets.core.settings import SAMPLE_ZIP_INCOME, Settings, settings_fields
from feature_store_assets.defs.checks.quality import Judgement, models_from_manifest, row_count_results
from feature_store_assets.defs.dbt.project import load_manifest, parse_project
from feature_store_assets.defs.landing_zone.validation import landed_rows
from feature_store_assets.generator import GeneratorOptions, generate_landing_zone
from feature_store_assets.operations.logs import DBT_LOG_NAME, RUN_LOGS_FOLDER
from feature_store_assets_tests.conftest import FeatureStore, configure
from feature_store_assets_tests.test_quality_checks import published_months, rewrite_month_file

pytestmark = pytest.mark.e2e

START_MONTH = "2024-01"
MONTHS = ["2024-01", "2024-02", "2024-03", "2024-04"]
# the zone: a few hundred clients, a few clinics, 4 months
SMALL_VALID_ZONE = GeneratorOptions(
    start_month=START_MONTH, months=len(MONTHS), clinics=6, clients=300, inclinic_rows_per_month=1_500, seed=13
)
# a few dozen clients: months without HD orders or web sessions (the generator's output for this seed)
TINY_ZONE = dataclasses.replace(SMALL_VALID_ZONE, clinics=3, clients=40, inclinic_rows_per_month=30, seed=2)
EVENT_KEYS = {"transactions_inclinic": "transaction_id", "transactions": "transaction_id", "web_sessions": "session_id"}
NEW_IDS = 1_000_000_000  # added to a copied row's key: no generated id comes near it


@dataclass(frozen=True)
class Outcome:
    store: FeatureStore
    exit_codes: list[int]
    stderr: str

    def lines(self, severity: str) -> list[str]:
        return [line for line in self.stderr.splitlines() if f"({severity}" in line]


@pytest.fixture(scope="module")
def small_zone(tmp_path_factory) -> Path:
    raw_dir = tmp_path_factory.mktemp("small_valid_zone") / "raw"
    generate_landing_zone(raw_dir, SMALL_VALID_ZONE, zip_income_csv=SAMPLE_ZIP_INCOME)
    return raw_dir


def zone_copy(zone: Path, root: Path) -> Path:
    raw_dir = root / "raw"
    shutil.copytree(zone, raw_dir)
    return raw_dir


def materialize(root: Path, raw_dir: Path, ranges: list[tuple[str, str]]) -> Outcome:
    """`feature-store materialize` over each (first, last) in turn, in the default quality mode."""
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(io.StringIO()) as stderr:
        patch.delenv("FEATURE_STORE_QUALITY_MODE", raising=False)
        store = configure(patch, root, raw_dir, start_month=START_MONTH)
        codes = [main(["materialize", "--from", first, "--to", last]) for first, last in ranges]
    return Outcome(store, codes, stderr.getvalue())


def assert_published(outcome: Outcome, runs: int) -> None:
    """Every run exited 0 without an ERROR line, and every month is accepted and in the analytics file."""
    assert outcome.exit_codes == [0] * runs, outcome.stderr
    assert not outcome.lines("ERROR"), outcome.stderr
    assert published_months(outcome.store) == MONTHS
    statuses = outcome.store.query("select distinct status from quality.materialized_months")["status"].tolist()
    assert statuses == ["accepted"], outcome.stderr


# ---------------------------------------------------------------- a small valid zone


def test_a_small_valid_zone_publishes_month_by_month(small_zone, tmp_path):
    outcome = materialize(tmp_path, zone_copy(small_zone, tmp_path), [(month, month) for month in MONTHS])
    assert_published(outcome, runs=len(MONTHS))
    # dbt's logs, one invocation a run: only the first run on this new warehouse parsed the whole
    # project (docs/architecture.md, "How a build learns its months"), and each run's tests read its own month
    logs = sorted(
        (outcome.store.settings.warehouse.parent / RUN_LOGS_FOLDER).glob(f"*/{DBT_LOG_NAME}"),
        key=lambda log: log.stat().st_mtime,
    )
    texts = [log.read_text() for log in logs]
    assert len(texts) == len(MONTHS)
    assert [text.count("Unable to do partial parsing") for text in texts] == [1] + [0] * (len(MONTHS) - 1)
    assert all(text.count("Running with dbt") == 1 for text in texts)  # dbt starts once a run
    assert all(text.count("skipping partial parsing") == 1 for text in texts[1:])
    for month, text in zip(MONTHS, texts, strict=True):
        tested = set(re.findall(r"event_month >=\s*cast\('(\d{4}-\d{2})-01' as date\)", text))
        assert tested == {month}, (month, tested)


def test_the_first_run_on_a_new_warehouse_uses_the_projects_parse(small_zone, tmp_path, monkeypatch):
    # `feature-store demo` on a fresh clone: no FEATURE_STORE_* path set, the paths' defaults under the working
    # directory. Loading the definitions parses the project under the settings a run hands dbt (absolute paths), so
    # the first run on the new warehouse re-parses nothing: dagster-dbt copies the project's parse into an
    # invocation that has no parse kept for its warehouse.
    project_target = tmp_path / "project_target"
    monkeypatch.setenv("DBT_TARGET_PATH", str(project_target))  # where dagster-dbt copies the project's parse from
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"  # where the defaults put the warehouse and the analytics file
    raw_dir = zone_copy(small_zone, data)
    with pytest.MonkeyPatch.context() as patch:
        for setting in settings_fields().values():
            patch.delenv(setting.env, raising=False)
        patch.setenv("FEATURE_STORE_START_MONTH", START_MONTH)  # the zone's first month, as the runs have it
        parse_project(project_target)
    outcome = materialize(data, raw_dir, [(MONTHS[0], MONTHS[0])])
    assert outcome.exit_codes == [0], outcome.stderr
    assert outcome.store.settings.warehouse == Settings.from_env({}, cwd=tmp_path).warehouse
    (log,) = (outcome.store.settings.warehouse.parent / RUN_LOGS_FOLDER).glob(f"*/{DBT_LOG_NAME}")
    text = log.read_text()
    assert text.count("Unable to do partial parsing") == 0, text[:2000]
    assert text.count("Running with dbt") == 1 and text.count("skipping partial parsing") == 1


def test_a_small_valid_zone_publishes_in_one_run(small_zone, tmp_path):
    outcome = materialize(tmp_path, zone_copy(small_zone, tmp_path), [(MONTHS[0], MONTHS[-1])])
    assert_published(outcome, runs=1)


def test_a_tiny_zone_with_empty_months_publishes(tmp_path):
    """40 clients of 3 clinics: some months have no HD order and no web session of an eligible client, and every
    visit buys one category, so no product pair has support: those months are empty, with a WARN, and publish."""
    raw_dir = tmp_path / "raw"
    generate_landing_zone(raw_dir, TINY_ZONE, zip_income_csv=SAMPLE_ZIP_INCOME)
    for month in MONTHS:
        rewrite_month_file(
            raw_dir, "transactions_inclinic", month, "select * replace ('vaccines' as product_category) from landed"
        )
    outcome = materialize(tmp_path, raw_dir, [(MONTHS[0], MONTHS[-1])])
    assert_published(outcome, runs=1)
    empty = {
        line.split(" check ")[0].removeprefix("warning: ")
        for line in outcome.lines("WARN")
        if " check row_count " in line and "no rows" in line
    }
    assert empty == {
        "filtered/hd_orders",
        "filtered/web_sessions",
        "aggregation/client_monthly_web_engagement",
        "marts/product_affinity",
        "marts/product_recommendations",
    }, outcome.stderr


# ---------------------------------------------------------------- growth: clinics going live, a busy month


def test_a_zone_ramping_up_publishes(small_zone, tmp_path):
    raw_dir = zone_copy(small_zone, tmp_path)
    for table, key in EVENT_KEYS.items():  # month 1 has half the activity of month 2
        rewrite_month_file(raw_dir, table, MONTHS[0], f"select * from landed where {key} % 2 = 0")
        january = parse_month(MONTHS[0])
        assert 0.4 < landed_rows(raw_dir, table, january) / landed_rows(small_zone, table, january) < 0.6, table
    outcome = materialize(tmp_path, raw_dir, [(MONTHS[0], MONTHS[-1])])
    assert_published(outcome, runs=1)


def test_a_zone_with_a_month_of_two_and_a_half_times_the_rows_publishes(small_zone, tmp_path):
    raw_dir = zone_copy(small_zone, tmp_path)
    for table, key in EVENT_KEYS.items():  # every row twice more under new ids, then half of them once more
        rewrite_month_file(
            raw_dir,
            table,
            MONTHS[2],
            f"select * from landed union all select * replace ({key} + {NEW_IDS} as {key}) from landed "
            f"union all select * replace ({key} + {2 * NEW_IDS} as {key}) from landed where {key} % 2 = 0",
        )
    march = parse_month(MONTHS[2])
    for table in EVENT_KEYS:
        assert 2.4 < landed_rows(raw_dir, table, march) / landed_rows(small_zone, table, march) < 2.6, table
    outcome = materialize(tmp_path, raw_dir, [(MONTHS[0], MONTHS[-1])])
    assert_published(outcome, runs=1)


# ---------------------------------------------------------------- a measurable drop: a WARN, unless the yml makes it blocking


@pytest.fixture(scope="module")
def dropped_month(small_zone, tmp_path_factory) -> Outcome:
    """April's in-clinic file keeps 30% of its rows: three earlier months of more than 500 rows make it measurable."""
    root = tmp_path_factory.mktemp("dropped_month")
    raw_dir = zone_copy(small_zone, root)
    rewrite_month_file(
        raw_dir, "transactions_inclinic", MONTHS[-1], "select * from landed where transaction_id % 10 < 3"
    )
    return materialize(root, raw_dir, [(MONTHS[0], MONTHS[-1])])


def test_a_drop_in_volume_publishes_with_a_row_count_warning(dropped_month):
    assert_published(dropped_month, runs=1)
    drop = [line for line in dropped_month.lines("WARN") if "filtered/inclinic_transactions check row_count" in line]
    assert len(drop) == 1, dropped_month.stderr
    assert f"{MONTHS[-1]}: " in drop[0] and "x the trailing median" in drop[0] and "a drop below" in drop[0], drop[0]


def test_blocking_checks_in_a_models_yml_make_the_drop_block(dropped_month, tmp_path):
    """The shipped yml warns on the drop; the same model with `meta.quality.blocking_checks: [row_count]` holds the
    month back, and warn mode never does. Judged on a copy of the real warehouse, with the model's yml changed in memory."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(dropped_month.store.settings.warehouse, warehouse)
    april = parse_month(MONTHS[-1])
    shipped = {m.name: m for m in models_from_manifest(load_manifest())}["inclinic_transactions"]
    assert "row_count" not in shipped.quality.get("blocking_checks", [])
    blocking = dataclasses.replace(shipped, quality={**shipped.quality, "blocking_checks": ["row_count"]})

    def judged(model, mode: str = "enforce") -> Judgement:
        judgement = Judgement(mode)
        with duckdb.connect(str(warehouse), read_only=True) as con:
            row_count_results(con, [model], [april], judgement)
        return judgement

    as_shipped, made_blocking, in_warn_mode = judged(shipped), judged(blocking), judged(blocking, "warn")
    for judgement in (as_shipped, made_blocking, in_warn_mode):
        (result,) = judgement.results
        assert not result.passed and "a drop below" in result.description
    assert not as_shipped.blocking and as_shipped.results[0].severity.value == "WARN"
    assert made_blocking.results[0].severity.value == "ERROR"
    assert list(made_blocking.blocking) == [april]
    assert "filtered/inclinic_transactions row_count" in made_blocking.blocking[april][0]
    assert not in_warn_mode.blocking and in_warn_mode.results[0].severity.value == "WARN"
