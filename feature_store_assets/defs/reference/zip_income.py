"""Pure functions for the IRS SOI "ZIP Code Data" file and client ZIP codes (docs/data-contract.md, docs/features.md).

No I/O besides reading the CSV; the Dagster assets in `assets.py` wrap these.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# Columns the contract uses, by their canonical (upper-case) name; agi_stub is absent from the noagi file.
REQUIRED_IRS_COLUMNS = ("STATEFIPS", "STATE", "ZIPCODE", "N1", "A00100")
NOT_ZIP_CODES = ("00000", "99999")  # state totals and "other" (small or non-residential ZIPs)

ZIP_MATCHED = "matched"
ZIP_NOT_IN_SOURCE = "not_in_source"
ZIP_INVALID = "invalid_zip"
ZIP_MISSING = "missing_zip"
ZIP_MATCH_VALUES = (ZIP_MATCHED, ZIP_NOT_IN_SOURCE, ZIP_INVALID, ZIP_MISSING)


class ZipIncomeFileError(ValueError):
    """The ZIP income file cannot be used; the message names the file and what is wrong."""


def read_irs_zip_income(path: str | Path) -> pd.DataFrame:
    """The file's rows with the contract's columns, upper-cased names, every value as text."""
    path = Path(path)
    try:
        header = pd.read_csv(path, nrows=0)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ZipIncomeFileError(f"{path}: cannot be read as a CSV file ({error})") from error
    by_canonical = {name.strip().upper(): name for name in header.columns}
    missing = [name for name in REQUIRED_IRS_COLUMNS if name not in by_canonical]
    if missing:
        raise ZipIncomeFileError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(matched case-insensitively; found {', '.join(map(str, header.columns))})"
        )
    wanted = [by_canonical[name] for name in REQUIRED_IRS_COLUMNS]
    if "AGI_STUB" in by_canonical:
        wanted.append(by_canonical["AGI_STUB"])
    frame = pd.read_csv(path, usecols=wanted, dtype=str, keep_default_na=False)
    if frame.empty:
        raise ZipIncomeFileError(f"{path}: has the required columns but no data rows")
    return frame.rename(columns={name: name.strip().upper() for name in wanted})


def _numeric(frame: pd.DataFrame, column: str, path: str | Path) -> pd.Series:
    values = pd.to_numeric(frame[column].str.strip().str.replace(",", "", regex=False), errors="coerce")
    bad = values.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ZipIncomeFileError(
            f"{path}: column {column} has a non-numeric value {frame[column].iloc[row]!r} "
            f"(data row {row + 1}, ZIP {frame['ZIPCODE'].iloc[row]!r})"
        )
    return values.astype("float64")


def percent_rank(values: pd.Series) -> pd.Series:
    """SQL's percent_rank(): (r - 1) / (n - 1) with ties sharing the lowest rank; 0 when n = 1."""
    n = len(values)
    if n <= 1:
        return pd.Series(0.0, index=values.index)
    return (values.rank(method="min") - 1) / (n - 1)


def zip_income_by_zip(irs_rows: pd.DataFrame, path: str | Path = "<zip income>") -> pd.DataFrame:
    """One row per ZIP: returns, AGI and average AGI per return (sum of A00100 x 1000 / sum of N1).

    Brackets are summed before dividing: per-bracket averages are never averaged.
    ZIPs with no returns have no average and are left out of the source. A file left with
    no ZIP (only 00000 and 99999 rows, or no returns anywhere) is a ZipIncomeFileError.
    """
    zips = irs_rows["ZIPCODE"].str.strip().str.zfill(5)
    frame = pd.DataFrame(
        {
            "zip_code": zips,
            "state": irs_rows["STATE"].str.strip(),
            "n_returns": _numeric(irs_rows, "N1", path),
            "agi_thousands": _numeric(irs_rows, "A00100", path),
        }
    )
    frame = frame[~frame["zip_code"].isin(NOT_ZIP_CODES) & frame["zip_code"].str.fullmatch(r"\d{5}")]
    if frame.empty:
        raise ZipIncomeFileError(
            f"{path}: none of its {len(irs_rows)} rows is a ZIP code "
            f"(state totals {NOT_ZIP_CODES[0]} and 'other' {NOT_ZIP_CODES[1]} are skipped)"
        )
    by_zip = (
        frame.groupby("zip_code", sort=True)
        .agg(state=("state", "first"), n_returns=("n_returns", "sum"), agi_thousands=("agi_thousands", "sum"))
        .reset_index()
    )
    by_zip = by_zip[by_zip["n_returns"] > 0].reset_index(drop=True)
    if by_zip.empty:
        raise ZipIncomeFileError(f"{path}: no ZIP code has returns (N1 > 0), so none has an average AGI")
    by_zip["avg_agi"] = by_zip["agi_thousands"] * 1000.0 / by_zip["n_returns"]
    by_zip["avg_agi_pctl"] = percent_rank(by_zip["avg_agi"])
    return by_zip


def normalize_zip_codes(raw: pd.Series) -> pd.DataFrame:
    """Normalized 5-digit ZIP and its status (`valid`, `invalid_zip`, `missing_zip`) for each raw value.

    After trimming: null or empty is missing; NNNNN-NNNN or nine digits keep the first five;
    three to five digits are left-padded with zeros (lost leading zeros); anything else, and
    00000, is invalid. Each distinct value is normalized once: a clients file repeats a few
    thousand ZIP codes millions of times.
    """
    codes, distinct = pd.factorize(raw)  # a null value has code -1: the last entry below
    normalized = _normalize_distinct(pd.Series(distinct))
    zip_code = np.append(normalized["zip_code"].to_numpy(dtype=object), pd.NA)[codes]
    status = np.append(normalized["zip_status"].to_numpy(dtype=object), ZIP_MISSING)[codes]
    return pd.DataFrame(
        {"zip_code": pd.array(zip_code, dtype="string"), "zip_status": pd.array(status, dtype="string")},
        index=raw.index,
    )


def _normalize_distinct(raw: pd.Series) -> pd.DataFrame:
    """normalize_zip_codes' rules, value by value."""
    text = raw.astype("string").str.strip()
    missing = text.isna() | (text == "")
    plus_four = text.str.fullmatch(r"\d{5}-\d{4}|\d{9}").fillna(False)
    short = text.str.fullmatch(r"\d{3,5}").fillna(False)
    zip_code = pd.Series(pd.NA, index=raw.index, dtype="string")
    zip_code[plus_four] = text[plus_four].str[:5]
    zip_code[short] = text[short].str.zfill(5)
    zip_code[zip_code == "00000"] = pd.NA
    status = pd.Series(ZIP_INVALID, index=raw.index, dtype="string")
    status[zip_code.notna()] = "valid"
    status[missing] = ZIP_MISSING
    return pd.DataFrame({"zip_code": zip_code, "zip_status": status})


def match_client_zips(clients: pd.DataFrame, zip_income: pd.DataFrame) -> pd.DataFrame:
    """Per client: normalized ZIP, match status against the income source, the ZIP's average AGI and its percent rank."""
    normalized = normalize_zip_codes(clients["zip_code"])
    result = pd.DataFrame({"client_id": clients["client_id"].astype("int64"), "zip_code": normalized["zip_code"]})
    source = zip_income.set_index("zip_code")[["avg_agi", "avg_agi_pctl"]]
    result = result.join(source, on="zip_code")
    in_source = result["avg_agi"].notna()
    match = normalized["zip_status"].copy()
    match[(match == "valid") & in_source] = ZIP_MATCHED
    match[(match == "valid") & ~in_source] = ZIP_NOT_IN_SOURCE
    result.insert(2, "zip_income_match", match)
    return result.rename(columns={"avg_agi": "zip_avg_agi", "avg_agi_pctl": "zip_avg_agi_pctl"}).reset_index(drop=True)
