"""The test oracle tested on its own: hand-computed values on the edge-case zone."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pandas as pd
import pytest

from feature_store_assets_tests.support.edge_case_landing_zone import (
    ABSENT_ROWS,
    EXPECTED_VALUES,
    FEATURE_MONTHS,
    NEVER_FEATURED_CLIENTS,
    PLANTED_REJECTIONS,
    START_MONTH,
    write_edge_case_landing_zone,
    write_edge_case_zip_income,
)
from feature_store_assets_tests.support.reference_features import (
    FEATURE_COLUMNS,
    clean_events,
    compute_client_features,
    normalize_zip,
    parse_zip_income,
    percent_rank,
    read_landing_zone,
)


@pytest.fixture(scope="module")
def edge_zone(tmp_path_factory):
    root = tmp_path_factory.mktemp("edge_zone")
    write_edge_case_landing_zone(root / "raw")
    write_edge_case_zip_income(root / "zip_income.csv")
    return root / "raw", root / "zip_income.csv"


@pytest.fixture(scope="module")
def reference(edge_zone) -> dict[str, pd.DataFrame]:
    raw_dir, zip_csv = edge_zone
    return {month: compute_client_features(raw_dir, zip_csv, month, START_MONTH) for month in FEATURE_MONTHS}


def feature_value(features: pd.DataFrame, client_id: int, column: str):
    rows = features.loc[features["client_id"] == client_id, column]
    assert len(rows) == 1, f"client {client_id}: {len(rows)} rows"
    return rows.iloc[0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("02134", ("02134", "valid")),
        ("10001-1234", ("10001", "valid")),
        ("100011234", ("10001", "valid")),
        ("2134", ("02134", "valid")),
        ("501", ("00501", "valid")),
        (" 60601 ", ("60601", "valid")),
        ("\t10001-1234\n", ("10001", "valid")),
        (None, (None, "missing_zip")),
        (float("nan"), (None, "missing_zip")),
        ("", (None, "missing_zip")),
        ("   ", (None, "missing_zip")),
        (" \t ", (None, "missing_zip")),
        ("ABCDE", (None, "invalid_zip")),
        ("N/A", (None, "invalid_zip")),
        ("00000", (None, "invalid_zip")),
        ("000", (None, "invalid_zip")),  # pads to 00000
        ("00000-1234", (None, "invalid_zip")),
        ("12", (None, "invalid_zip")),
        ("123456", (None, "invalid_zip")),
        ("12345678", (None, "invalid_zip")),
        ("1234-5678", (None, "invalid_zip")),
        ("12345 6789", (None, "invalid_zip")),
        ("12345-678", (None, "invalid_zip")),
        ("1 234", (None, "invalid_zip")),
        ("١٢٣٤٥", (None, "invalid_zip")),  # digits, but not ASCII digits
    ],
)
def test_normalize_zip(raw, expected):
    assert normalize_zip(raw) == expected


def test_percent_rank_shares_ranks_between_ties():
    assert percent_rank([5, 1, 5, 3]) == [2 / 3, 0.0, 2 / 3, 1 / 3]
    assert percent_rank([7, 7, 7]) == [0.0, 0.0, 0.0]
    assert percent_rank([42]) == [0.0]


def test_parse_zip_income_sums_before_dividing_and_skips_non_zips(edge_zone):
    _, zip_csv = edge_zone
    income = parse_zip_income(zip_csv).set_index("zip_code")
    assert list(income.index) == ["00501", "02134", "10001", "30301", "60601", "73301"]
    # Summed over brackets, then divided: not the mean of 20000 and 90000.
    assert income.at["02134", "avg_agi"] == pytest.approx(6_500_000 / 150, rel=1e-12)
    assert income.at["00501", "avg_agi"] == 48_000.0
    assert income.at["10001", "avg_agi"] == 93_750.0
    assert list(income["avg_agi_pctl"]) == [0.4, 0.2, 0.6, 0.8, 0.8, 0.0]


def test_parse_zip_income_names_missing_columns(tmp_path):
    csv_path = tmp_path / "broken.csv"
    csv_path.write_text("STATEFIPS,STATE,zipcode,N1\n25,MA,2134,100\n")
    with pytest.raises(ValueError, match="a00100"):
        parse_zip_income(csv_path)


def test_rejected_rows_are_the_planted_ones(edge_zone):
    raw_dir, _ = edge_zone
    _, rejected = clean_events(read_landing_zone(raw_dir), START_MONTH)
    found: dict[tuple[str, str, str], set[int]] = {}
    for row in rejected.itertuples():
        found.setdefault((row.table_name, row.reason, row.folder_month), set()).add(row.key)
    assert found == PLANTED_REJECTIONS


def test_duplicates_are_counted_once_and_anonymous_sessions_kept(edge_zone):
    raw_dir, _ = edge_zone
    valid, _ = clean_events(read_landing_zone(raw_dir), START_MONTH)
    for table, key in (
        ("transactions_inclinic", "transaction_id"),
        ("transactions", "transaction_id"),
        ("web_sessions", "session_id"),
    ):
        assert not valid[table][key].duplicated().any(), table
    assert Counter(valid["transactions_inclinic"]["transaction_id"])[1101] == 1
    sessions = valid["web_sessions"]
    assert set(sessions.loc[sessions["client_id"].isna(), "session_id"]) == {9103, 9204}


def test_output_has_the_feature_columns_one_row_per_client(reference):
    for month, features in reference.items():
        assert list(features.columns) == list(FEATURE_COLUMNS), month
        assert features["client_id"].is_monotonic_increasing and features["client_id"].is_unique, month
        assert set(features["feature_month"]) == {dt.date.fromisoformat(f"{month}-01")}


def test_eligibility(reference):
    for month, client_id in ABSENT_ROWS:
        assert client_id not in set(reference[month]["client_id"]), (month, client_id)
    for month, features in reference.items():
        assert not NEVER_FEATURED_CLIENTS & set(features["client_id"]), month
    assert 106 in set(reference["2024-02"]["client_id"])
    assert 701 in set(reference["2024-03"]["client_id"])


@pytest.mark.parametrize("expectation", EXPECTED_VALUES, ids=lambda e: f"{e.month}-{e.client_id}-{e.column}")
def test_hand_computed_value(reference, expectation):
    actual = feature_value(reference[expectation.month], expectation.client_id, expectation.column)
    assert expectation.matches(actual), f"{expectation.why}: reference={actual!r} expected={expectation.value!r}"
