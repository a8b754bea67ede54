"""Synthetic column values in DuckDB SQL, for the benchmarks' published-like tables (publish.py, serving.py).

Every value is a deterministic function of the row number and a salt through DuckDB's `hash()`, so the same
table comes out whatever the thread count, and a million rows are a second of vectorized SQL.
"""

from __future__ import annotations

import re

_INTEGERS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
_FLOATS = {"DOUBLE", "FLOAT", "REAL"}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
SECONDS_A_MONTH = 30 * 24 * 3600


def uniform(row: str, salt: str) -> str:
    """SQL for a deterministic number in [0, 1) per (row, salt)."""
    return f"(hash({row}, '{salt}') % 1000000) / 1000000.0"


def value_sql(data_type: str, row: str, salt: str, month: str) -> str:
    """SQL for a synthetic value of DuckDB type `data_type` in row `row` (an integer SQL expression): 10% NULLs in
    the double and text columns, small counts, amounts up to 1,000, text of ZIP-code shape, dates in the year before
    `month` (a SQL date) and times in that month. A type it has no rule for raises ValueError naming it."""
    u, v = uniform(row, salt), uniform(row, f"{salt}/value")
    kind = data_type.upper()
    if kind in _INTEGERS:
        return f"({u} * 100)::{kind}"
    if kind in _FLOATS:
        return f"case when {u} < 0.1 then null else {v} * 1000 end::{kind}"
    if (decimal := _DECIMAL.fullmatch(kind)) is not None:
        digits, scale = map(int, decimal.groups())
        return f"({v} * {min(1000, 10 ** (digits - scale) - 1)})::{kind}"
    if kind == "VARCHAR":
        return f"case when {u} < 0.1 then null else lpad((hash({row}, '{salt}/text') % 99999)::varchar, 5, '0') end"
    if kind == "BOOLEAN":
        return f"{u} < 0.5"
    if kind == "DATE":
        return f"({month} - ({u} * 365)::integer)::date"
    if kind == "TIMESTAMP":
        return f"({month}::timestamp + to_seconds(({u} * {SECONDS_A_MONTH})::bigint))"
    raise ValueError(f"no synthetic values for type {data_type}")
