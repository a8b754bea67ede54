"""The pure verdicts behind the quality checks, and the thresholds read from the dbt project."""

import numpy as np
import pytest

from feature_store_assets.defs.checks import rules
from feature_store_assets.defs.checks.quality import models_from_manifest
from feature_store_assets.defs.dbt.project import load_manifest


def test_row_count_no_rows_always_fails():
    assert not rules.row_count_verdict(0, []).passed
    assert rules.row_count_verdict(0, [10_000] * 3).metadata["empty"]


def test_row_count_gives_no_verdict_on_short_or_tiny_histories():
    assert rules.row_count_verdict(10, []).passed
    assert rules.row_count_verdict(100_000, [1000, 1000]).passed  # two earlier months: too few to judge
    small = rules.row_count_verdict(5, [3, 3, 2])  # the hd_orders: 5 rows against a median of 3 is noise
    assert small.passed and "no verdict" in small.summary
    assert rules.row_count_verdict(6, [2, 2, 2]).passed


def test_row_count_flags_a_drop_and_extreme_growth_but_not_a_ramp():
    history = [10_000, 10_400, 9_800]
    assert rules.row_count_verdict(20_000, history).passed  # clinics going live: twice the activity is growth
    assert rules.row_count_verdict(29_000, history).passed
    drop = rules.row_count_verdict(3_000, history)  # a third of the median: a file is missing
    assert not drop.passed and drop.metadata["trailing_median"] == 10_000 and "drop" in drop.summary
    assert not rules.row_count_verdict(31_000, history).passed  # above 3x: duplicated delivery?
    assert rules.row_count_verdict(8_000, history, rules.RowCountRule(tolerance=0.25)).passed
    assert not rules.row_count_verdict(7_000, history, rules.RowCountRule(tolerance=0.25)).passed


def test_row_count_band_is_never_narrower_than_the_counts_noise():
    # median 600: 4 x sqrt(600) = 98 rows of noise, wider than a 10% tolerance (60 rows)
    rule = rules.RowCountRule(tolerance=0.1, growth=1.1, min_rows=500)
    assert rules.row_count_verdict(520, [600, 600, 600], rule).passed
    assert not rules.row_count_verdict(490, [600, 600, 600], rule).passed


def test_null_rate_against_ceiling_or_exact_expectation():
    assert rules.null_rate_verdict("a", 0, 10, max_rate=0.0, expected_rate=None).passed
    assert not rules.null_rate_verdict("a", 1, 10, max_rate=0.05, expected_rate=None).passed
    assert rules.null_rate_verdict("share", 3, 10, max_rate=None, expected_rate=0.3).passed
    assert not rules.null_rate_verdict("share", 2, 10, max_rate=None, expected_rate=0.3).passed
    assert rules.null_rate_verdict("free", 10, 10, max_rate=None, expected_rate=None).passed


def test_rejection_severity_thresholds():
    assert rules.rejection_severity(0.005, 0.01, 0.10) is None
    assert rules.rejection_severity(0.02, 0.01, 0.10) == "WARN"
    assert rules.rejection_severity(0.11, 0.01, 0.10) == "ERROR"


def test_psi_is_near_zero_for_the_same_population_and_large_for_a_shift():
    rng = np.random.default_rng(1)
    before = rng.lognormal(5, 1, 50_000)
    assert rules.population_stability_index(before, rng.lognormal(5, 1, 50_000)) < 0.01
    assert rules.population_stability_index(before, before * 10) > 1.0
    with_nulls = np.append(before[:40_000], [np.nan] * 10_000)
    assert rules.population_stability_index(before, with_nulls) > rules.DEFAULT_PSI_WARN


def test_thresholds_come_from_the_dbt_project():
    models = {m.name: m for m in models_from_manifest(load_manifest())}
    features = models["client_features"]
    assert features.null_conditions["hd_revenue_share_12m"] == "total_revenue_12m <= 0"
    assert features.max_null_rates["client_id"] == 0.0
    assert models["inclinic_transactions"].max_null_rates["quantity"] == pytest.approx(0.05)
    assert models["inclinic_transactions"].month_column == "event_month"
    assert "days_since_last_purchase" not in features.max_null_rates  # NULL when no purchase ever: no ceiling
