"""Short-lived connections to the DuckDB warehouse, and the ledger of materialized months.

DuckDB allows one writing process per file: every connection here is opened for
one unit of work and closed before dbt (a subprocess) runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import duckdb

LEDGER = "quality.materialized_months"
# DuckDB's memory limit for the pipeline's connections, dbt's included (dbt_subproject/profiles.yml reads the
# same variable with the same default). DuckDB spills to disk beyond it; its own default is 80% of the RAM.
MEMORY_LIMIT_ENV = "FEATURE_STORE_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "2GB"


def memory_limit() -> str:
    return os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT


def limit_memory(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    con.execute(f"set memory_limit = '{memory_limit()}'")
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


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(found and found[0])


def record_materialized_months(
    path: Path, model_rows: dict[str, dict[date, int]], run_id: str
) -> None:
    """Mark each (model, month) as materialized by this run, with its row count; replaces earlier entries."""
    rows = [(model, month, count, run_id) for model, by_month in model_rows.items() for month, count in by_month.items()]
    if not rows:
        return
    with connect(path) as con:
        con.execute("create schema if not exists quality")
        con.execute(
            f"create table if not exists {LEDGER} (model varchar, month date, row_count bigint, "
            "dagster_run_id varchar, materialized_at timestamp)"
        )
        con.execute("begin transaction")
        con.executemany(f"delete from {LEDGER} where model = ? and month = ?", [(r[0], r[1]) for r in rows])
        con.executemany(f"insert into {LEDGER} values (?, ?, ?, ?, current_timestamp::timestamp)", rows)
        con.execute("commit")


def materialized_months(path: Path, models: Iterable[str]) -> set[date]:
    """Months for which every one of the models has been materialized."""
    models = list(models)
    if not path.exists():
        return set()
    with connect(path) as con:
        if not table_exists(con, "quality", "materialized_months"):
            return set()
        found = con.execute(
            f"select month from {LEDGER} where list_contains(?, model) group by month "
            "having count(distinct model) = ?",
            [models, len(models)],
        ).fetchall()
    return {row[0] for row in found}


def months_built_by_run(path: Path, run_id: str) -> list[date]:
    """Months any model was materialized in by the given Dagster run, from the ledger."""
    if not path.exists():
        return []
    with connect(path, read_only=True) as con:
        if not table_exists(con, "quality", "materialized_months"):
            return []
        found = con.execute(f"select distinct month from {LEDGER} where dagster_run_id = ? order by 1", [run_id]).fetchall()
    return [row[0] for row in found]


def months_materialized_since(con: duckdb.DuckDBPyConnection, model: str, since: datetime | None) -> list[date]:
    """Months the ledger says the model was materialized in after `since` (every month when None)."""
    if not table_exists(con, "quality", "materialized_months"):
        return []
    found = con.execute(
        f"select distinct month from {LEDGER} where model = ? and (?::timestamp is null or materialized_at > ?) order by 1",
        [model, since, since],
    ).fetchall()
    return [row[0] for row in found]


def rows_per_month(path: Path, relation: str, month_column: str, months: Iterable[date]) -> dict[date, int]:
    """Row count of each month of a table (0 for months with no rows, and for a table not created yet:
    dbt failed before it, or dbt on Spark wrote no file for it)."""
    months = list(months)
    if not path.exists():
        return dict.fromkeys(months, 0)
    with connect(path, read_only=True) as con:
        if not table_exists(con, *relation.split(".")):
            return dict.fromkeys(months, 0)
        found = dict(
            con.execute(
                f"select {month_column}, count(*) from {relation} where list_contains(?, {month_column}) group by 1",
                [months],
            ).fetchall()
        )
    return {month: int(found.get(month, 0)) for month in months}


def rejected_rows_by_table(path: Path, months: Iterable[date]) -> dict[str, int]:
    """Rejected rows of the months, per landing-zone table (none before dbt created the table)."""
    if not path.exists():
        return {}
    with connect(path, read_only=True) as con:
        if not table_exists(con, "quality", "rejected_rows"):
            return {}
        return dict(
            con.execute(
                "select table_name, count(*) from quality.rejected_rows where list_contains(?, event_month) group by 1",
                [list(months)],
            ).fetchall()
        )


class SparkWarehouseError(RuntimeError):
    """The DuckDB warehouse cannot mirror a table dbt built on Spark."""


def spark_table_folder(spark_dir: Path, schema: str, table: str) -> Path:
    """Where Spark keeps a managed table (spark.sql.warehouse.dir in dbt_subproject/profiles.yml)."""
    return spark_dir / "warehouse" / f"{schema}.db" / table


def mirror_spark_tables(path: Path, spark_dir: Path, tables: Mapping[tuple[str, str], Mapping[str, str]]) -> list[str]:
    """Views in the DuckDB warehouse over the Parquet folders of tables dbt built on Spark, with column comments.

    tables: (schema, table) -> {column: description}. With the Spark target, everything after dbt (row
    counts, checks, ledger, catalog, publishing) reads these views as it reads DuckDB's own tables. A
    month-partitioned table gets its month key back from the `key=value` folder names (hive partitioning),
    as its last column, where Spark puts it too. The views read the folders at query time, so a month
    dbt adds later shows up without re-creating them. Returns the tables without any Parquet file yet
    (no view). A DuckDB table of the same name (a warehouse built on DuckDB) is an error: one warehouse
    file per engine.
    """
    empty = []
    with connect(path) as con:
        for (schema, table), descriptions in sorted(tables.items()):
            kind = con.execute(
                "select table_type from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
            ).fetchone()
            if kind and kind[0] != "VIEW":
                raise SparkWarehouseError(
                    f"{path} has a DuckDB table {schema}.{table}: with FEATURE_STORE_DBT_TARGET=spark, point "
                    "FEATURE_STORE_WAREHOUSE at a warehouse file of its own (README, Scaling out)"
                )
            folder = spark_table_folder(spark_dir, schema, table)
            if not any(folder.rglob("*.parquet")):
                empty.append(f"{schema}.{table}")
                continue
            relation = f"{quote(schema)}.{quote(table)}"
            con.execute(f"create schema if not exists {quote(schema)}")
            con.execute(
                f"create or replace view {relation} as "
                f"select * from read_parquet({sql_string(str(folder / '**' / '*.parquet'))}, hive_partitioning = true)"
            )
            columns = {row[0] for row in con.execute(
                "select column_name from duckdb_columns() where schema_name = ? and table_name = ?", [schema, table]
            ).fetchall()}
            comment_on_columns(con, relation, {c: d for c, d in descriptions.items() if c in columns})
    return empty
