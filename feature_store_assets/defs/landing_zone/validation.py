"""Pre-flight validation of the raw landing zone against the contract's schema and value ranges.

Runs before dbt so that a bad file fails its month with a message naming the file and the
column (docs/data-contract.md, "Bad input"), instead of dbt failing with a cast error that names
neither, or DuckDB quietly reading a time-zone-aware timestamp in the host's time zone.

Checks are pure functions over real Parquet files and read as little as they can: the
footer gives the schema and each row group's min/max statistics; a column is read only when
those do not settle it: a floating-point column for a DECIMAL (NaN and infinity never appear
in statistics), an integer or decimal column wider than the contract's type whose row groups
lack statistics, and the key of clinics.parquet and clients.parquet (duplicates).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from feature_store_assets.core.months import month_folder

REFERENCE_TABLES = ("clinics", "clients")
EVENT_TABLES = ("transactions_inclinic", "transactions", "web_sessions")
# The key of each reference table: every value appears once (dbt's unique tests would fail every month otherwise).
REFERENCE_KEYS = {"clinics": "clinic_id", "clients": "client_id"}
INTEGER_BITS = {"tinyint": 8, "smallint": 16, "integer": 32, "int": 32, "bigint": 64}
REPEATED_KEYS_SHOWN = 5


class LandingZoneError(ValueError):
    """A landing-zone file breaks the contract; the message lists each file and column."""


def _kind(contract_type: str) -> str:
    return contract_type.lower().split("(")[0].strip()


def _compatible(contract_type: str, actual: pa.DataType) -> bool:
    """Whether a Parquet column type can be read as the contract's SQL type without loss of meaning."""
    if pa.types.is_null(actual):  # an all-null column carries no type
        return True
    kind = _kind(contract_type)
    if kind in INTEGER_BITS:
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


@dataclass(frozen=True)
class ValueRange:
    """The values a numeric contract type holds: low..high after rounding half away from zero to `scale` digits."""

    low: Decimal
    high: Decimal
    scale: int

    def holds(self, value: int | float | Decimal) -> bool:
        exact = Decimal(value)  # exact for ints, floats and Decimals
        if self.low - 1 <= exact <= self.high + 1:  # only near the bounds does rounding matter
            exact = exact.quantize(Decimal(1).scaleb(-self.scale), rounding=ROUND_HALF_UP, context=Context(prec=100))
        return self.low <= exact <= self.high

    def __str__(self) -> str:
        return f"{self.low} to {self.high}"


def _largest_decimal(precision: int, scale: int) -> Decimal:
    """The largest value of DECIMAL(precision, scale): 10^(precision - scale) - 10^-scale."""
    return Decimal(10) ** (precision - scale) - Decimal(1).scaleb(-scale)


def contract_range(contract_type: str) -> ValueRange | None:
    """The range of an integer or DECIMAL(p,s) contract type (DuckDB's DECIMAL is DECIMAL(18,3)); None for other types."""
    kind = _kind(contract_type)
    if kind in INTEGER_BITS:
        bits = INTEGER_BITS[kind]
        return ValueRange(Decimal(-(2 ** (bits - 1))), Decimal(2 ** (bits - 1) - 1), 0)
    if kind in ("decimal", "numeric"):
        sizes = [int(n) for n in re.findall(r"\d+", contract_type)] or [18, 3]
        precision, scale = sizes[0], sizes[1] if len(sizes) > 1 else 0
        top = _largest_decimal(precision, scale)
        return ValueRange(-top, top, scale)
    return None


def _type_bounds(actual: pa.DataType) -> tuple[Decimal, Decimal] | None:
    """The smallest and largest value a Parquet integer or decimal type can hold; None when unbounded (floats)."""
    if pa.types.is_integer(actual):
        if pa.types.is_unsigned_integer(actual):
            return Decimal(0), Decimal(2**actual.bit_width - 1)
        return Decimal(-(2 ** (actual.bit_width - 1))), Decimal(2 ** (actual.bit_width - 1) - 1)
    if pa.types.is_decimal(actual):
        top = _largest_decimal(actual.precision, actual.scale)
        return -top, top
    return None


def _statistics_min_max(parquet: pq.ParquetFile, name: str) -> tuple | None:
    """A column's min and max over all row groups from the footer's statistics; None when a row group with values has none.

    (None, None) when every value is null.
    """
    metadata = parquet.metadata
    index = [metadata.schema.column(i).path for i in range(metadata.num_columns)].index(name)
    lows, highs = [], []
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        stats = row_group.column(index).statistics
        if stats is not None and stats.has_min_max:
            lows.append(stats.min)
            highs.append(stats.max)
        elif stats is None or not (stats.has_null_count and stats.null_count == row_group.num_rows):
            return None
    return (min(lows), max(highs)) if lows else (None, None)


def _scan(parquet: pq.ParquetFile, name: str) -> tuple:
    """A column's (min, max, NaN count, infinite count), reading only that column; min and max skip NaN and infinity."""
    lows, highs, nan, infinite = [], [], 0, 0
    for batch in parquet.iter_batches(columns=[name], batch_size=1 << 20):
        values = batch.column(0)
        if pa.types.is_floating(values.type):
            nan += pc.sum(pc.is_nan(values)).as_py() or 0
            infinite += pc.sum(pc.is_inf(values)).as_py() or 0
            values = pc.filter(values, pc.is_finite(values))
        low_high = pc.min_max(values)
        if low_high["min"].is_valid:
            lows.append(low_high["min"].as_py())
            highs.append(low_high["max"].as_py())
    return (min(lows) if lows else None), (max(highs) if highs else None), nan, infinite


def value_problems(parquet: pq.ParquetFile, path: Path, name: str, contract_type: str) -> list[str]:
    """Values of a numeric column the contract's integer or DECIMAL type cannot hold: NaN, infinity, out of range.

    Nothing is read when the file's type cannot hold such values; row-group statistics settle an integer
    or decimal column when every row group has them; a floating-point column is always read.
    """
    wanted = contract_range(contract_type)
    actual = parquet.schema_arrow.field(name).type
    if wanted is None or pa.types.is_null(actual):
        return []
    bounds = _type_bounds(actual)
    if bounds is not None and wanted.holds(bounds[0]) and wanted.holds(bounds[1]):
        return []
    found = _statistics_min_max(parquet, name) if bounds is not None else None
    low, high, nan, infinite = (*found, 0, 0) if found is not None else _scan(parquet, name)
    problems = []
    where = f"{path}: column '{name}' ({actual})"
    if nan or infinite:
        counts = " and ".join(f"{n} {what}" for n, what in ((nan, "NaN"), (infinite, "infinite")) if n)
        problems.append(f"{where} has {counts} value(s), which the contract's {contract_type} cannot hold")
    if low is not None and not (wanted.holds(low) and wanted.holds(high)):
        problems.append(
            f"{where} has values outside the contract's {contract_type} ({wanted}): smallest {low}, largest {high}"
        )
    return problems


def duplicate_key_problems(parquet: pq.ParquetFile, path: Path, key: str) -> list[str]:
    """Key values that appear more than once (nulls aside), reading only the key column."""
    counts = pc.value_counts(parquet.read(columns=[key]).column(key).drop_null())
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    if len(repeated) == 0:
        return []
    smallest = pc.take(repeated, pc.array_sort_indices(repeated)[:REPEATED_KEYS_SHOWN])
    shown = ", ".join(str(value) for value in smallest.to_pylist())
    more = ", ..." if len(repeated) > REPEATED_KEYS_SHOWN else ""
    return [f"{path}: column '{key}' is the key, but {len(repeated)} value(s) appear more than once: {shown}{more}"]


def file_problems(path: Path, columns: Mapping[str, str], key: str | None = None) -> list[str]:
    """What is wrong with one Parquet file against the contract's {column: type}; empty when it is fine.

    Missing columns, incompatible types, time-zone-aware timestamps, numeric values the contract's type
    cannot hold and, with `key`, repeated key values. Each problem names the file and the column.
    """
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as error:
        return [f"{path}: not a valid Parquet file ({error})"]
    problems = []
    try:
        for name, contract_type in columns.items():
            if name not in schema.names:
                problems.append(f"{path}: missing required column '{name}' ({contract_type})")
                continue
            actual = schema.field(name).type
            if not _compatible(contract_type, actual):
                problems.append(
                    f"{path}: column '{name}' has type {actual}, incompatible with the contract's {contract_type}"
                )
            elif pa.types.is_timestamp(actual) and actual.tz is not None:
                problems.append(
                    f"{path}: column '{name}' has type {actual}, a time-zone-aware timestamp; the contract wants "
                    f"naive timestamps ({contract_type} without a time zone, used as they are)"
                )
            else:
                problems += value_problems(parquet, path, name, contract_type)
        if key is not None and key in schema.names and pa.types.is_integer(schema.field(key).type):
            problems += duplicate_key_problems(parquet, path, key)
    except (pa.ArrowException, OSError) as error:
        problems.append(f"{path}: cannot be read ({error})")
    return problems


def landing_files(raw_dir: Path, table: str, month: date) -> list[Path]:
    return sorted((raw_dir / table / month_folder(month)).glob("*.parquet"))


def landed_rows(raw_dir: Path, table: str, month: date) -> int:
    """Rows filed under a month folder, from the Parquet footers (no data read)."""
    return sum(pq.ParquetFile(path).metadata.num_rows for path in landing_files(raw_dir, table, month))


def reference_problems(raw_dir: Path, contract: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Problems of clinics.parquet and clients.parquet, a missing file and repeated keys included."""
    problems = []
    for table in REFERENCE_TABLES:
        path = raw_dir / f"{table}.parquet"
        problems += (
            file_problems(path, contract[table], REFERENCE_KEYS[table])
            if path.exists()
            else [f"{path}: file not found"]
        )
    return problems


@dataclass(frozen=True)
class LandingZoneReport:
    """What the landing zone holds for a run's months, against the contract.

    `reference`: problems of clinics.parquet and clients.parquet; they fail every month.
    `by_month`: each requested month's event-file problems, [] when its files are fine.
    `empty_tables`: each requested month's event tables without a file ([] when every table has one);
    not a file problem: such a month gets no rows and fails its row-count check.
    """

    reference: list[str]
    by_month: dict[date, list[str]]
    empty_tables: dict[date, list[str]]

    @property
    def bad_months(self) -> list[date]:
        """Months with a file problem of their own."""
        return [month for month, problems in self.by_month.items() if problems]

    @property
    def good_months(self) -> list[date]:
        """Months that may be built: no reference problem and no file problem of their own."""
        return [] if self.reference else [month for month, problems in self.by_month.items() if not problems]

    @property
    def problems(self) -> list[str]:
        return self.problems_of(self.by_month)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problems_of(self, months: Iterable[date]) -> list[str]:
        """The reference problems, then those of the given months' files."""
        return self.reference + [problem for month in months for problem in self.by_month.get(month, [])]

    def error(self, months: Iterable[date] | None = None) -> LandingZoneError:
        """A LandingZoneError listing the reference problems and those of the given months (default: all)."""
        problems = self.problems_of(self.by_month if months is None else months)
        return LandingZoneError("The landing zone breaks the data contract:\n  " + "\n  ".join(problems))

    def raise_if_bad(self, months: Iterable[date] | None = None) -> None:
        months = list(self.by_month if months is None else months)
        if self.problems_of(months):
            raise self.error(months)


def landing_zone_report(
    raw_dir: Path, months: Iterable[date], contract: Mapping[str, Mapping[str, str]]
) -> LandingZoneReport:
    """Check the reference files and every event file of the given months; only those months' folders are opened."""
    by_month, empty_tables = {}, {}
    for month in months:
        files = {table: landing_files(raw_dir, table, month) for table in EVENT_TABLES}
        by_month[month] = [
            problem
            for table in EVENT_TABLES
            for path in files[table]
            for problem in file_problems(path, contract[table])
        ]
        empty_tables[month] = [table for table in EVENT_TABLES if not files[table]]
    return LandingZoneReport(reference_problems(raw_dir, contract), by_month, empty_tables)


def validate_landing_zone(raw_dir: Path, months: Iterable[date], contract: Mapping[str, Mapping[str, str]]) -> None:
    """Raise LandingZoneError listing every bad file of the reference tables and of the given months.

    A month without files is not an error here: it yields no rows and fails its row-count check.
    """
    landing_zone_report(raw_dir, months, contract).raise_if_bad()


def contract_from_manifest(manifest: Mapping) -> dict[str, dict[str, str]]:
    """The contract's {table: {column: type}} as declared in the dbt project's models/sources.yml."""
    contract = {}
    for node in manifest["sources"].values():
        if node["source_name"] == "landing_zone":
            contract[node["name"]] = {c["name"]: c["data_type"] for c in node["columns"].values()}
    return contract
