"""The DuckDB warehouse's views over the tables dbt built on Spark (docs/spark.md)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from feature_store_assets.warehouse.connections import comment_on_columns, connect, quote, sql_string


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
                "select table_type from information_schema.tables where table_schema = ? and table_name = ?",
                [schema, table],
            ).fetchone()
            if kind and kind[0] != "VIEW":
                raise SparkWarehouseError(
                    f"{path} has a DuckDB table {schema}.{table}: with FEATURE_STORE_DBT_TARGET=spark, point "
                    "FEATURE_STORE_WAREHOUSE at a warehouse file of its own (docs/spark.md)"
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
            columns = {
                row[0]
                for row in con.execute(
                    "select column_name from duckdb_columns() where schema_name = ? and table_name = ?", [schema, table]
                ).fetchall()
            }
            comment_on_columns(con, relation, {c: d for c, d in descriptions.items() if c in columns})
    return empty
