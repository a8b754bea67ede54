"""Pure verdicts of the quality checks: each takes numbers and thresholds, returns a verdict with its numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median

import numpy as np

# Defaults, overridable per model in its dbt .yml under `meta.quality` (see docs/quality.md).
DEFAULT_ROW_COUNT_TOLERANCE = 0.5  # a month below (1 - 0.5) x the trailing median is a drop worth a look
DEFAULT_ROW_COUNT_GROWTH = 3.0  # up to 3x the trailing median is growth (clinics going live), not an anomaly
DEFAULT_ROW_COUNT_LOOKBACK = 3
DEFAULT_ROW_COUNT_MIN_HISTORY = 3  # no verdict on the change before 3 earlier months are known
DEFAULT_ROW_COUNT_MIN_ROWS = 500  # nor when the trailing median is below 500 rows: a band around a few rows is noise
NOISE_SIGMAS = 4  # the band never gets narrower than 4 x sqrt(median), the count's Poisson noise
# A rate (rejected rows, a column's NULLs under a ceiling) over fewer rows than this is reported as a WARN, never
# blocking: on 100 rows a rate moves by several points by chance.
DEFAULT_RATE_MIN_ROWS = 1000
DEFAULT_REJECTED_WARN_RATE = 0.01
DEFAULT_REJECTED_ERROR_RATE = 0.10
DEFAULT_PSI_WARN = 0.25  # the usual "significant shift" level of the population stability index
PSI_BINS = 10


@dataclass(frozen=True)
class Verdict:
    passed: bool
    summary: str
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RowCountRule:
    """How a month's row count is judged against the trailing months' median (docs/quality.md)."""

    tolerance: float = DEFAULT_ROW_COUNT_TOLERANCE
    growth: float = DEFAULT_ROW_COUNT_GROWTH
    min_history: int = DEFAULT_ROW_COUNT_MIN_HISTORY
    min_rows: int = DEFAULT_ROW_COUNT_MIN_ROWS


def row_count_verdict(month_rows: int, previous_rows: Sequence[int], rule: RowCountRule = RowCountRule()) -> Verdict:
    """`no rows` fails (an integrity problem: the caller decides its severity); a change fails only when it is
    outside [median x (1 - tolerance), median x growth], widened to the count's noise (NOISE_SIGMAS x sqrt(median)),
    and only with at least `min_history` earlier months whose median is at least `min_rows`."""
    metadata = {
        "rows": month_rows,
        "previous_months_rows": list(previous_rows),
        "drop_tolerance": rule.tolerance,
        "growth_allowed": rule.growth,
    }
    if month_rows == 0:
        return Verdict(False, "no rows", metadata | {"empty": True})
    if len(previous_rows) < rule.min_history:
        return Verdict(True, f"{len(previous_rows)} earlier months: no verdict before {rule.min_history}", metadata)
    reference = median(previous_rows)
    metadata |= {
        "trailing_median": float(reference),
        "ratio_to_median": round(month_rows / reference, 4) if reference else None,
    }
    if reference < rule.min_rows:
        return Verdict(
            True, f"trailing median {reference:g} rows is below {rule.min_rows}: no verdict on the change", metadata
        )
    noise = NOISE_SIGMAS * math.sqrt(reference)
    low, high = (
        min(reference * (1 - rule.tolerance), reference - noise),
        max(reference * rule.growth, reference + noise),
    )
    metadata |= {"lowest_expected": round(low, 1), "highest_expected": round(high, 1)}
    ratio = month_rows / reference
    if month_rows < low:
        return Verdict(
            False,
            f"{month_rows} rows is {ratio:.2f}x the trailing median {reference:g} (a drop below {low:.0f})",
            metadata,
        )
    if month_rows > high:
        return Verdict(
            False, f"{month_rows} rows is {ratio:.2f}x the trailing median {reference:g} (above {high:.0f})", metadata
        )
    return Verdict(True, f"{ratio:.2f}x the trailing median", metadata)


def null_rate_verdict(
    column: str, nulls: int, rows: int, max_rate: float | None, expected_rate: float | None
) -> Verdict:
    """A column's null rate against its ceiling (max_rate) or its exact expectation (expected_rate)."""
    rate = nulls / rows if rows else 0.0
    metadata = {"column": column, "nulls": nulls, "rows": rows, "null_rate": rate}
    if expected_rate is not None:
        metadata["expected_null_rate"] = expected_rate
        return Verdict(
            math.isclose(rate, expected_rate, abs_tol=1e-12),
            f"{column}: {rate:.4%} (expected {expected_rate:.4%})",
            metadata,
        )
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
