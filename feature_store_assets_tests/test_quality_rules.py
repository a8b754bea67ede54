"""The pure verdicts behind the quality checks, and the thresholds read from the dbt project."""

import numpy as np
import pytest

from feature_store_assets.checks import rules
from feature_store_assets.checks.quality import models_from_manifest
from feature_store_assets.dbt import load_manifest


def test_row_count_is_non_zero_and_within_tolerance_of_the_trailing_median():
    assert not rules.row_count_verdict(0, []).passed
    assert rules.row_count_verdict(10, []).passed
    assert rules.row_count_verdict(150, [100, 90, 300]).passed  # median 100, 1.5x: on the edge
    verdict = rules.row_count_verdict(151, [100, 90, 300])
    assert not verdict.passed and verdict.metadata["trailing_median"] == 100
    assert not rules.row_count_verdict(49, [100, 100, 100]).passed
    assert rules.row_count_verdict(80, [100, 100, 100], tolerance=0.25).passed


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
