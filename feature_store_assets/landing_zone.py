"""Pre-flight validation of the raw landing zone against the contract's schema.

Reads only Parquet footers, so it costs milliseconds per file, and runs before dbt
so that a bad file fails its month with a message naming the file and the column
(DATA_CONTRACT.md, "Bad input").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from feature_store_assets.months import format_month

REFERENCE_TABLES = ("clinics", "clients")
EVENT_TABLES = ("transactions_inclinic", "transactions", "web_sessions")


class LandingZoneError(ValueError):
    """A landing-zone file breaks the contract; the message lists each file and column."""


def _compatible(contract_type: str, actual: pa.DataType) -> bool:
    """Whether a Parquet column type can be read as the contract's SQL type without loss of meaning."""
    if pa.types.is_null(actual):  # an all-null column carries no type
        return True
    kind = contract_type.lower().split("(")[0].strip()
    if kind in ("bigint", "integer", "int", "smallint"):
        return pa.types.is_integer(actual)
    if kind in ("decimal", "numeric", "double", "float"):
        return pa.types.is_decimal(actual) or pa.types.is_floating(actual) or pa.types.is_integer(actual)
    if kind == "timestamp":
        return pa.types.is_timestamp(actual) or pa.types.is_date(actual)
    if kind == "date":
        return pa.types.is_date(actual) or pa.types.is_timestamp(actual)
    if kind in ("varchar", "string", "text"):
        return pa.types.is_string(actual) or pa.types.is_large_string(actual) or pa.types.is_string_view(actual)
    return True


def file_problems(path: Path, columns: Mapping[str, str]) -> list[str]:
    """What is wrong with one Parquet file against the contract's {column: type}; empty when it is fine."""
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as error:
        return [f"{path}: not a valid Parquet file ({error})"]
    problems = []
    for name, contract_type in columns.items():
        if name not in schema.names:
            problems.append(f"{path}: missing required column '{name}' ({contract_type})")
        elif not _compatible(contract_type, schema.field(name).type):
            problems.append(
                f"{path}: column '{name}' has type {schema.field(name).type}, "
                f"incompatible with the contract's {contract_type}"
            )
    return problems


def landing_files(raw_dir: Path, table: str, month: date) -> list[Path]:
    return sorted((raw_dir / table / f"month={format_month(month)}").glob("*.parquet"))


def landed_rows(raw_dir: Path, table: str, month: date) -> int:
    """Rows filed under a month folder, from the Parquet footers (no data read)."""
    return sum(pq.ParquetFile(path).metadata.num_rows for path in landing_files(raw_dir, table, month))


def validate_landing_zone(
    raw_dir: Path, months: Iterable[date], contract: Mapping[str, Mapping[str, str]]
) -> None:
    """Raise LandingZoneError listing every bad file of the reference tables and of the given months.

    A month without files is not an error here: it yields no rows and fails its row-count check.
    """
    problems = []
    for table in REFERENCE_TABLES:
        path = raw_dir / f"{table}.parquet"
        problems += file_problems(path, contract[table]) if path.exists() else [f"{path}: file not found"]
    for month in months:
        for table in EVENT_TABLES:
            for path in landing_files(raw_dir, table, month):
                problems += file_problems(path, contract[table])
    if problems:
        raise LandingZoneError("The landing zone breaks the data contract:\n  " + "\n  ".join(problems))


def contract_from_manifest(manifest: Mapping) -> dict[str, dict[str, str]]:
    """The contract's {table: {column: type}} as declared in the dbt project's models/sources.yml."""
    contract = {}
    for node in manifest["sources"].values():
        if node["source_name"] == "landing_zone":
            contract[node["name"]] = {c["name"]: c["data_type"] for c in node["columns"].values()}
    return contract
