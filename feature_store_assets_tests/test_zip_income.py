"""The IRS SOI ZIP income parser and ZIP normalization (pure functions, no Dagster)."""

import pandas as pd
import pytest

from feature_store_assets.core.settings import SAMPLE_ZIP_INCOME
from feature_store_assets.defs.reference.zip_income import (
    ZipIncomeFileError,
    match_client_zips,
    normalize_zip_codes,
    percent_rank,
    read_irs_zip_income,
    zip_income_by_zip,
)


def write(tmp_path, text, name="21zpallagi.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_brackets_are_summed_before_dividing_and_non_zips_skipped(tmp_path):
    path = write(
        tmp_path,
        "STATEFIPS,STATE,zipcode,agi_stub,N1,A00100,N2\n"
        "25,MA,0,1,1000,50000,1\n"  # state total: not a ZIP
        "25,MA,2138,1,100,2000,1\n"  # lost leading zero: 02138
        "25,MA,2138,6,10,9000,1\n"
        "25,MA,99999,1,50,1000,1\n"  # "other": not a ZIP
        "06,CA,90210,1,20,4000,1\n",
    )
    by_zip = zip_income_by_zip(read_irs_zip_income(path), path).set_index("zip_code")
    assert list(by_zip.index) == ["02138", "90210"]
    # (2000 + 9000) * 1000 / (100 + 10), not the mean of 20000 and 900000
    assert by_zip.loc["02138", "avg_agi"] == pytest.approx(100_000.0)
    assert by_zip.loc["90210", "avg_agi"] == pytest.approx(200_000.0)
    assert by_zip["avg_agi_pctl"].tolist() == [0.0, 1.0]


def test_column_names_match_case_insensitively_and_noagi_file_has_no_stub(tmp_path):
    path = write(tmp_path, "statefips,State,ZIPCODE,n1,a00100\n36,NY,10001,40,8000\n", name="21zpallnoagi.csv")
    by_zip = zip_income_by_zip(read_irs_zip_income(path), path)
    assert by_zip.loc[0, "zip_code"] == "10001" and by_zip.loc[0, "avg_agi"] == pytest.approx(200_000.0)


def test_missing_columns_are_named_with_the_file(tmp_path):
    path = write(tmp_path, "STATEFIPS,STATE,zipcode,agi_stub,N2\n25,MA,2138,1,5\n")
    with pytest.raises(ZipIncomeFileError, match=r"missing required column\(s\) N1, A00100") as error:
        read_irs_zip_income(path)
    assert str(path) in str(error.value)


def test_non_numeric_values_are_named(tmp_path):
    path = write(tmp_path, "STATEFIPS,STATE,zipcode,agi_stub,N1,A00100\n25,MA,2138,1,abc,10\n")
    with pytest.raises(ZipIncomeFileError, match="column N1 has a non-numeric value 'abc'"):
        zip_income_by_zip(read_irs_zip_income(path), path)


def test_header_without_data_rows_names_the_file(tmp_path):
    path = write(tmp_path, "STATEFIPS,STATE,zipcode,agi_stub,N1,A00100\n")
    with pytest.raises(ZipIncomeFileError, match="no data rows") as error:
        read_irs_zip_income(path)
    assert str(path) in str(error.value)


def test_file_of_only_state_totals_and_other_names_the_file(tmp_path):
    path = write(tmp_path, "STATEFIPS,STATE,zipcode,agi_stub,N1,A00100\n25,MA,0,1,1000,50000\n25,MA,99999,1,50,1000\n")
    with pytest.raises(ZipIncomeFileError, match="none of its 2 rows is a ZIP code") as error:
        zip_income_by_zip(read_irs_zip_income(path), path)
    assert str(path) in str(error.value)


def test_file_whose_zips_have_no_returns_names_the_file(tmp_path):
    path = write(tmp_path, "STATEFIPS,STATE,zipcode,agi_stub,N1,A00100\n25,MA,2138,1,0,0\n")
    with pytest.raises(ZipIncomeFileError, match=r"no ZIP code has returns \(N1 > 0\)") as error:
        zip_income_by_zip(read_irs_zip_income(path), path)
    assert str(path) in str(error.value)


def test_the_shipped_sample_parses_and_has_ties_and_leading_zero_zips():
    by_zip = zip_income_by_zip(read_irs_zip_income(SAMPLE_ZIP_INCOME), SAMPLE_ZIP_INCOME)
    assert len(by_zip) >= 100
    assert by_zip["zip_code"].str.fullmatch(r"\d{5}").all()
    assert by_zip["zip_code"].str.startswith("0").any()
    assert not by_zip["zip_code"].isin(["00000", "99999"]).any()
    assert by_zip["avg_agi"].duplicated().any(), "the sample should hold tied averages"


@pytest.mark.parametrize(
    ("raw", "zip_code", "status"),
    [
        ("02138", "02138", "valid"),
        ("  02138 ", "02138", "valid"),
        ("02138-1234", "02138", "valid"),
        ("021381234", "02138", "valid"),
        ("2138", "02138", "valid"),
        ("213", "00213", "valid"),
        ("21", None, "invalid_zip"),
        ("00000", None, "invalid_zip"),
        ("00000-1234", None, "invalid_zip"),
        ("ABCDE", None, "invalid_zip"),
        ("123456", None, "invalid_zip"),
        ("2138-1234", None, "invalid_zip"),
        ("", None, "missing_zip"),
        ("   ", None, "missing_zip"),
        (None, None, "missing_zip"),
    ],
)
def test_zip_normalization_follows_features_md(raw, zip_code, status):
    result = normalize_zip_codes(pd.Series([raw], dtype="object")).iloc[0]
    assert (None if pd.isna(result["zip_code"]) else result["zip_code"]) == zip_code
    assert result["zip_status"] == status


def test_zip_normalization_of_a_column_is_the_rule_applied_to_each_value():
    # normalize_zip_codes normalizes each distinct value once and maps the results back to the rows
    values = ["02138-1234", None, "213", "02138-1234", "", "ABCDE", None, "213", "00000", "  02138 ", "ABCDE"]
    raw = pd.Series(values, index=range(100, 100 + len(values)), dtype="object")
    column = normalize_zip_codes(raw)
    assert column.index.tolist() == raw.index.tolist()
    for index, value in raw.items():
        one = normalize_zip_codes(pd.Series([value], dtype="object")).iloc[0]
        assert column.loc[index, "zip_status"] == one["zip_status"], value
        assert pd.isna(column.loc[index, "zip_code"]) == pd.isna(one["zip_code"]), value
        if not pd.isna(one["zip_code"]):
            assert column.loc[index, "zip_code"] == one["zip_code"], value
    assert str(column["zip_code"].dtype) == str(column["zip_status"].dtype) == "string"


def test_client_match_status_and_income_only_when_matched():
    source = pd.DataFrame({"zip_code": ["02138", "90210"], "avg_agi": [100.0, 200.0], "avg_agi_pctl": [0.0, 1.0]})
    clients = pd.DataFrame({"client_id": [1, 2, 3, 4], "zip_code": ["2138", "10001", "junk", None]})
    matched = match_client_zips(clients, source).set_index("client_id")
    assert matched["zip_income_match"].tolist() == ["matched", "not_in_source", "invalid_zip", "missing_zip"]
    assert matched.loc[1, "zip_avg_agi"] == 100.0
    assert matched.loc[2, "zip_code"] == "10001" and pd.isna(matched.loc[2, "zip_avg_agi"])


def test_percent_rank_ties_share_the_lowest_rank():
    assert percent_rank(pd.Series([5.0, 1.0, 5.0, 3.0])).tolist() == [2 / 3, 0.0, 2 / 3, 1 / 3]
    assert percent_rank(pd.Series([7.0])).tolist() == [0.0]
