"""Quality checks through real runs: a good month passes every check and is published; crafted bad
months fail the check that guards them, with numbers, and nothing of that month is published."""

import shutil
from datetime import date

import dagster as dg
import duckdb
import pytest

from feature_store_assets.cli.main import main
from feature_store_assets.defs.checks.quality import (
    Judgement,
    eligibility_result,
    models_from_manifest,
    point_in_time_results,
)
from feature_store_assets.defs.dbt.project import load_manifest

pytestmark = pytest.mark.e2e


def rewrite_month_file(raw_dir, table: str, month: str, select: str) -> None:
    """Replace a month's file with `select` over its original rows (`landed`)."""
    path = raw_dir / table / f"month={month}" / "part-0.parquet"
    original = path.with_suffix(".orig")
    shutil.copy(path, original)
    duckdb.sql(
        f"copy (with landed as (select * from read_parquet('{original}')) {select}) to '{path}' (format parquet)"
    )
    original.unlink()


def published_months(store) -> list[str]:
    with duckdb.connect(str(store.settings.analytics), read_only=True) as con:
        rows = con.execute(
            "select distinct strftime(feature_month, '%Y-%m') from features.client_features order by 1"
        ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture
def two_good_months(feature_store, capsys):
    assert main(["materialize", "--from", "2023-01", "--to", "2023-02"]) == 0
    capsys.readouterr()
    return feature_store


def test_good_months_pass_every_check_and_are_published(feature_store):
    from feature_store_assets.cli.main import materialize_months
    from feature_store_assets.core.months import parse_month

    result = materialize_months(feature_store.settings, parse_month("2023-01"), parse_month("2023-02"))
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    ours = {
        k: e
        for k, e in evaluations.items()
        if k[1] in ("row_count", "null_rates", "point_in_time", "rejected_row_rate", "eligible_clients_only")
    }
    assert len(ours) >= 20
    assert all(e.passed for e in ours.values()), [k for k, e in ours.items() if not e.passed]
    row_count = evaluations[("filtered/inclinic_transactions", "row_count")]
    # two months are too few to judge a change (docs/quality.md): counted, no verdict
    assert (
        row_count.metadata["2023-02"].value["rows"] > 0
        and "no verdict" in row_count.metadata["2023-02"].value["summary"]
    )
    accepted = evaluations[("features/client_features", "month_accepted")]
    assert accepted.passed and accepted.metadata["accepted_months"].value == "2023-01..2023-02"
    ledger = feature_store.query(
        "select distinct status, published_at is not null as published from quality.materialized_months"
    )
    assert ledger.to_dict("records") == [{"status": "accepted", "published": True}]
    rates = evaluations[("quality/rejected_rows", "rejected_row_rate")].metadata["2023-01"].value["rejected_rate"]
    assert set(rates) >= {
        "transactions_inclinic/unknown_client",
        "transactions/null_revenue",
        "web_sessions/wrong_month_folder",
    }
    assert published_months(feature_store) == ["2023-01", "2023-02"]
    # materializations carry rows in / out / rejected
    financials = [
        m.event_specific_data.materialization
        for m in result.get_asset_materialization_events()
        if m.event_specific_data.materialization.asset_key == dg.AssetKey(["filtered", "inclinic_transactions"])
    ][0]
    assert financials.metadata["rows_in"].value > financials.metadata["rows_out"].value > 0
    assert financials.metadata["rows_rejected"].value > 0


def test_a_broken_month_fails_its_checks_with_numbers_and_is_not_published(two_good_months, capsys):
    store = two_good_months
    raw = store.raw_dir
    # half of the in-clinic rows without quantity, 1 in 7 without revenue (rates over more than 1,000 rows block)
    rewrite_month_file(
        raw,
        "transactions_inclinic",
        "2023-03",
        "select * replace (case when transaction_id % 2 = 0 then null else quantity end as quantity, "
        "case when transaction_id % 7 = 0 then null else revenue end as revenue) from landed",
    )
    # 1 in 7 online orders without revenue: a rate over a few hundred rows warns, never blocks
    rewrite_month_file(
        raw,
        "transactions",
        "2023-03",
        "select * replace (case when transaction_id % 7 = 0 then null else revenue end as revenue) from landed",
    )
    analytics_before = store.settings.analytics.read_bytes()

    assert main(["materialize", "--from", "2023-03", "--to", "2023-03"]) == 1
    error = capsys.readouterr().err
    assert "filtered/inclinic_transactions check null_rates (ERROR" in error and "quantity" in error
    assert (
        "quality/rejected_rows check rejected_row_rate (ERROR" in error
        and "transactions_inclinic/null_revenue" in error
    )
    assert "transactions/null_revenue 14" in error  # reported too, as a WARN (fewer than 1,000 landed rows)
    assert "held back 2023-03" in error
    assert store.settings.analytics.read_bytes() == analytics_before  # nothing of March was published
    assert published_months(store) == ["2023-01", "2023-02"]
    status = store.query("select distinct status, reason from quality.materialized_months where month = '2023-03-01'")
    assert status["status"].tolist() == ["blocked"] and "null_rates" in status["reason"][0]

    # an operator who checked March by hand accepts it as it is: it is published, with the reason in the ledger
    assert main(["accept", "--month", "2023-02", "--reason", "x"]) == 1
    assert "2023-02 is accepted" in capsys.readouterr().err
    assert main(["accept", "--month", "2023-03", "--reason", "quantity missing at clinic 3, known"]) == 0
    assert published_months(store) == ["2023-01", "2023-02", "2023-03"]
    ledger = store.query(
        "select distinct status, reason, published_at is not null as published "
        "from quality.materialized_months where month = '2023-03-01'"
    ).to_dict("records")
    assert ledger == [
        {
            "status": "accepted",
            "reason": "accepted by an operator: quantity missing at clinic 3, known",
            "published": True,
        }
    ]


def test_warnings_do_not_block_drift_and_a_few_rejections(two_good_months, capsys):
    store = two_good_months
    rewrite_month_file(
        store.raw_dir,
        "transactions_inclinic",
        "2023-03",
        "select * replace (cast(revenue * 8 as decimal(12,2)) as revenue) from landed",
    )
    rewrite_month_file(
        store.raw_dir,
        "transactions",
        "2023-03",
        "select * replace (case when transaction_id % 40 = 0 then null else revenue end as revenue) from landed",
    )
    assert main(["materialize", "--from", "2023-03", "--to", "2023-03"]) == 0
    warnings = capsys.readouterr().err
    assert "features/client_features check feature_drift (WARN" in warnings
    assert "quality/rejected_rows check rejected_row_rate (WARN" in warnings
    assert published_months(store) == ["2023-01", "2023-02", "2023-03"]


def test_guards_against_pipeline_bugs_catch_a_tampered_snapshot(two_good_months, tmp_path):
    """Point in time and eligibility cannot be broken by input data (the filter layer prevents it), so a
    copy of a real warehouse is tampered with as a bug would, and the checks must notice."""
    tampered = tmp_path / "tampered.duckdb"
    shutil.copy(two_good_months.settings.warehouse, tampered)
    february = date(2023, 2, 1)
    models = {m.name: m for m in models_from_manifest(load_manifest())}

    def judged(con):
        judgement = Judgement("enforce")
        point_in_time_results(con, models.values(), [february], judgement)
        eligibility_result(con, models["client_features"], [february], judgement)
        return judgement

    with duckdb.connect(str(tampered)) as con:
        clean = judged(con)
        assert all(r.passed for r in clean.results) and not clean.blocking
        con.execute(
            "update features.client_features set days_since_last_purchase = -3 where client_id = (select min(client_id) from features.client_features where feature_month = '2023-02-01' and days_since_last_purchase is not null) and feature_month = '2023-02-01'"
        )
        con.execute(
            "insert into features.client_features (client_id, feature_month, clinic_id) values (999999999, '2023-02-01', 1)"
        )
        con.execute(
            "insert into filtered.web_sessions (session_id, client_id, session_start_ts, event_month) values (-1, 1, timestamp '2023-03-01 00:00:00', '2023-02-01')"
        )
        tampered_judgement = judged(con)
    broken = {(r.asset_key.to_user_string(), r.check_name): r for r in tampered_judgement.results}
    ineligible = broken[("features/client_features", "eligible_clients_only")]
    assert len(tampered_judgement.blocking[february]) == 3  # each failure holds February back
    assert not broken[("features/client_features", "point_in_time")].passed
    assert not broken[("filtered/web_sessions", "point_in_time")].passed
    assert broken[("filtered/web_sessions", "point_in_time")].metadata["rows_outside_month"].value == 1
    assert not ineligible.passed and 999999999 in ineligible.metadata["2023-02"].value["sample_client_ids"]


def test_warn_mode_reports_the_same_failures_without_blocking(two_good_months, monkeypatch, capsys):
    store = two_good_months
    rewrite_month_file(
        store.raw_dir,
        "transactions_inclinic",
        "2023-03",
        "select * replace (case when transaction_id % 2 = 0 then null else quantity end as quantity) from landed",
    )
    monkeypatch.setenv("FEATURE_STORE_QUALITY_MODE", "warn")
    assert main(["materialize", "--from", "2023-03", "--to", "2023-03"]) == 0
    assert "filtered/inclinic_transactions check null_rates (WARN" in capsys.readouterr().err
    assert published_months(store) == ["2023-01", "2023-02", "2023-03"]
