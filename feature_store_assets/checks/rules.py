"""Pure verdicts of the quality checks: each takes numbers and thresholds, returns a verdict with its numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median

import numpy as np

# Defaults, overridable per model in its dbt .yml under `meta.quality` (see docs/quality.md).
DEFAULT_ROW_COUNT_TOLERANCE = 0.5  # within ±50% of the median of the trailing months
DEFAULT_ROW_COUNT_LOOKBACK = 3
DEFAULT_REJECTED_WARN_RATE = 0.01
DEFAULT_REJECTED_ERROR_RATE = 0.10
DEFAULT_PSI_WARN = 0.25  # the usual "significant shift" level of the population stability index
PSI_BINS = 10


@dataclass(frozen=True)
class Verdict:
    passed: bool
    summary: str
    metadata: dict = field(default_factory=dict)


def row_count_verdict(
    month_rows: int, previous_rows: Sequence[int], tolerance: float = DEFAULT_ROW_COUNT_TOLERANCE
) -> Verdict:
    """Non-zero, and within ±tolerance of the median of the previous months (when there are any)."""
    metadata = {"rows": month_rows, "tolerance": tolerance, "previous_months_rows": list(previous_rows)}
    if month_rows == 0:
        return Verdict(False, "no rows", metadata)
    if not previous_rows:
        return Verdict(True, "no previous month to compare with", metadata)
    reference = median(previous_rows)
    ratio = month_rows / reference if reference else math.inf
    metadata |= {"trailing_median": float(reference), "ratio_to_median": round(ratio, 4)}
    if abs(ratio - 1) > tolerance:
        return Verdict(False, f"{month_rows} rows is {ratio:.2f}x the trailing median {reference:g}", metadata)
    return Verdict(True, f"{ratio:.2f}x the trailing median", metadata)


def null_rate_verdict(column: str, nulls: int, rows: int, max_rate: float | None, expected_rate: float | None) -> Verdict:
    """A column's null rate against its ceiling (max_rate) or its exact expectation (expected_rate)."""
    rate = nulls / rows if rows else 0.0
    metadata = {"column": column, "nulls": nulls, "rows": rows, "null_rate": rate}
    if expected_rate is not None:
        metadata["expected_null_rate"] = expected_rate
        return Verdict(math.isclose(rate, expected_rate, abs_tol=1e-12), f"{column}: {rate:.4%} (expected {expected_rate:.4%})", metadata)
    if max_rate is not None:
        metadata["max_null_rate"] = max_rate
        return Verdict(rate <= max_rate + 1e-12, f"{column}: {rate:.4%} (max {max_rate:.4%})", metadata)
    return Verdict(True, f"{column}: {rate:.4%}", metadata)


def rejection_severity(rate: float, warn_rate: float, error_rate: float) -> str | None:
    """'ERROR' above error_rate, 'WARN' above warn_rate, None when acceptable."""
    if rate > error_rate:
        return "ERROR"
    if rate > warn_rate:
        return "WARN"
    return None


def population_stability_index(expected: np.ndarray, actual: np.ndarray, bins: int = PSI_BINS) -> float:
    """PSI of `actual` against `expected`, over the expected's quantile bins; NaN (NULL) is a bin of its own.

    PSI = sum((a - e) * ln(a / e)) over the bins' shares, empty bins floored at 1e-4.
    """
    expected = np.asarray(expected, dtype="float64")
    actual = np.asarray(actual, dtype="float64")
    if expected.size == 0 or actual.size == 0:
        return 0.0
    known = expected[~np.isnan(expected)]
    edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1])) if known.size else np.array([])

    def shares(values: np.ndarray) -> np.ndarray:
        nan = np.isnan(values)
        counts = np.bincount(np.searchsorted(edges, values[~nan], side="right"), minlength=edges.size + 1)
        return np.append(counts, nan.sum()) / values.size

    e = np.maximum(shares(expected), 1e-4)
    a = np.maximum(shares(actual), 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))
