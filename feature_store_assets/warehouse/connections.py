"""Short-lived connections to the DuckDB warehouse, and small helpers over them.

DuckDB allows one writing process per file: every connection here is opened for
one unit of work and closed before dbt (a subprocess) runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb

from feature_store_assets.core.settings import setting_from_env


def memory_limit() -> str:
    """DuckDB's memory limit for the pipeline's connections (FEATURE_STORE_DUCKDB_MEMORY_LIMIT, settings.py)."""
    return setting_from_env("duckdb_memory_limit")


def limit_memory(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """The pipeline's session settings: the memory limit, and UTC whatever the host's time zone (no value ever
    depends on where the pipeline runs; the landing zone's naive timestamps are used as they are)."""
    con.execute(f"set memory_limit = '{memory_limit()}'")
    con.execute("set TimeZone = 'UTC'")
    return con


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = limit_memory(duckdb.connect(str(path), read_only=read_only))
    try:
        yield con
    finally:
        con.close()


def quote(identifier: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    """A SQL string literal, for the statements that take no parameters (COMMENT ON, ATTACH, read_parquet in a view)."""
    return "'" + value.replace("'", "''") + "'"


def comment_on_columns(con: duckdb.DuckDBPyConnection, relation: str, comments: Mapping[str, str]) -> None:
    """Set each column's comment (publishing copies them); columns without a comment are left alone.
    relation: as SQL spells it; column names are quoted here."""
    for column, comment in comments.items():
        if comment:
            con.execute(f"comment on column {relation}.{quote(column)} is {sql_string(comment)}")


def table_exists(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    """Whether `schema.table` is a table or view of the connection's databases (the warehouse, or the attached
    analytics file)."""
    schema, table = relation.split(".")
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()  # fetchone would leave the result open, and DuckDB 2 then refuses register()
    return bool(found[0][0])


def rows_per_month(
    con: duckdb.DuckDBPyConnection, relation: str, month_column: str, months: Iterable[date]
) -> dict[date, int]:
    """Row count of each month of a table (0 for months with no rows, and for a table not created yet:
    dbt failed before it, or dbt on Spark wrote no file for it)."""
    months = list(months)
    if not months or not table_exists(con, relation):  # no month: a view's files are not even opened
        return dict.fromkeys(months, 0)
    found = dict(
        con.execute(
            f"select {month_column}, count(*) from {relation} where list_contains(?, {month_column}) group by 1",
            [months],
        ).fetchall()
    )
    return {month: int(found.get(month, 0)) for month in months}


def rejected_rows_by_table(con: duckdb.DuckDBPyConnection, relation: str, months: Iterable[date]) -> dict[str, int]:
    """Rejected rows of the months in `relation` (the rejected-rows model), per landing-zone table (none before dbt
    created the table)."""
    if not table_exists(con, relation):
        return {}
    return dict(
        con.execute(
            f"select table_name, count(*) from {relation} where list_contains(?, event_month) group by 1",
            [list(months)],
        ).fetchall()
    )
