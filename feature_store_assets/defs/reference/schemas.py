"""Pandera schemas of the reference DataFrames written to the warehouse."""

import pandera.pandas as pa

from feature_store_assets.defs.reference.zip_income import ZIP_MATCH_VALUES, ZIP_MATCHED

ZIP_CODE = r"^\d{5}$"

zip_income_schema = pa.DataFrameSchema(
    {
        "zip_code": pa.Column(str, pa.Check.str_matches(ZIP_CODE), unique=True),
        "state": pa.Column(str, pa.Check.str_matches(r"^[A-Z]{2}$"), nullable=True),
        "n_returns": pa.Column(float, pa.Check.gt(0)),
        "agi_thousands": pa.Column(float),
        "avg_agi": pa.Column(float),
        "avg_agi_pctl": pa.Column(float, pa.Check.in_range(0, 1)),
    },
    strict=True,
    coerce=True,
    name="zip_income",
)

client_zip_income_schema = pa.DataFrameSchema(
    {
        "client_id": pa.Column("int64", unique=True),
        "zip_code": pa.Column(str, pa.Check.str_matches(ZIP_CODE), nullable=True),
        "zip_income_match": pa.Column(str, pa.Check.isin(ZIP_MATCH_VALUES)),
        "zip_avg_agi": pa.Column("Float64", nullable=True),
        "zip_avg_agi_pctl": pa.Column("Float64", pa.Check.in_range(0, 1), nullable=True),
    },
    checks=[
        # the average and its rank are there exactly when the ZIP matched
        pa.Check(
            lambda df: (df["zip_income_match"] == ZIP_MATCHED) == df["zip_avg_agi"].notna(),
            name="avg_agi_iff_matched",
        ),
    ],
    strict=True,
    coerce=True,
    name="client_zip_income",
)
