from datetime import date

import pytest

from feature_store_assets.core.months import (
    add_months,
    dbt_window_env,
    describe_months,
    month_range,
    months_needed_by_features,
    parse_month,
)


def test_parse_month_accepts_month_and_partition_key_and_names_bad_values():
    assert parse_month("2024-03") == date(2024, 3, 1)
    assert parse_month("2024-03-01") == date(2024, 3, 1)
    for bad in ("2024-13", "2024-03-02", "March", ""):
        with pytest.raises(ValueError, match=repr(bad).replace("(", r"\(")):
            parse_month(bad)


def test_add_months_crosses_years_both_ways():
    assert add_months(date(2024, 12, 1), 1) == date(2025, 1, 1)
    assert add_months(date(2024, 1, 1), -1) == date(2023, 12, 1)
    assert add_months(date(2024, 3, 1), -11) == date(2023, 4, 1)


def test_dbt_window_end_is_exclusive_first_day_after_the_last_month():
    assert dbt_window_env(date(2024, 1, 1), date(2024, 3, 1)) == {
        "FEATURE_STORE_RUN_MIN_DATE": "2024-01-01",
        "FEATURE_STORE_RUN_MAX_DATE": "2024-04-01",
    }


def test_feature_months_need_twelve_months_but_nothing_before_the_start():
    needed = months_needed_by_features([date(2024, 3, 1)], start=date(2023, 1, 1))
    assert needed == month_range(date(2023, 4, 1), date(2024, 3, 1))
    assert months_needed_by_features([date(2023, 3, 1)], start=date(2023, 1, 1)) == month_range(
        date(2023, 1, 1), date(2023, 3, 1)
    )


def test_describe_months_compacts_ranges():
    months = [date(2023, 2, 1), date(2023, 3, 1), date(2023, 4, 1), date(2023, 7, 1)]
    assert describe_months(months) == "2023-02..2023-04, 2023-07"


def test_build_chunks_keep_months_in_order_within_the_row_budget():
    from feature_store_assets.core.months import build_chunks

    months = [date(2023, m, 1) for m in range(1, 6)]
    rows = dict(zip(months, [10, 30, 25, 5, 50]))
    assert build_chunks(months, rows, 40) == [months[0:2], months[2:4], months[4:5]]  # 50 > 40: alone
    assert build_chunks(months, rows, 1_000) == [months]
    assert build_chunks(months, rows, 1) == [[m] for m in months]
    assert build_chunks([], rows, 40) == []


def test_month_folders_are_named_and_parsed_in_one_place():
    from feature_store_assets.core.months import folder_month, month_folder

    assert month_folder(date(2024, 3, 1)) == "month=2024-03"
    assert folder_month("month=2024-03") == date(2024, 3, 1)
    assert [folder_month(n) for n in ("month=2024-13", "month=2024-03-01", "2024-03", "_SUCCESS")] == [None] * 4
