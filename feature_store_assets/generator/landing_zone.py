"""Synthetic raw landing zone: the five tables of docs/data-contract.md, generated in DuckDB SQL.

Every value is a deterministic function of (seed, row number, salt) through DuckDB's
`hash()`, so a seed always gives the same rows whatever the thread count, and ten million
rows a month are seconds of vectorized SQL rather than Python loops.

The shapes the pipeline has to cope with are all there: clinics of every integration
status, heavy-tailed client activity, churn, clients who join inside the generated range,
spring/summer seasonality, multi-line in-clinic baskets with returns, a growing
home-delivery share, anonymous web sessions, raw client ZIPs in every form of docs/features.md,
and a small share of event rows in each bad-input class of docs/data-contract.md.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from feature_store_assets.core.months import MONTH_PATTERN, add_months, month_folder, parse_month
from feature_store_assets.core.settings import SAMPLE_ZIP_INCOME
from feature_store_assets.defs.landing_zone.validation import EVENT_TABLES
from feature_store_assets.warehouse.connections import sql_string

TABLE_PATHS = {
    "clinics": "clinics.parquet",
    "clients": "clients.parquet",
    "transactions_inclinic": "transactions_inclinic",
    "transactions": "transactions",
    "web_sessions": "web_sessions",
}

CLINIC_ID_START = 101
CLIENT_ID_START = 100_001
# ids of clients that are not in clients.parquet (bad input `unknown_client`)
UNKNOWN_CLIENT_ID_START = 900_000_001

# multiplier of the monthly event volume by calendar month: busier in spring and summer
SEASONALITY = {
    1: 0.86,
    2: 0.88,
    3: 0.97,
    4: 1.05,
    5: 1.12,
    6: 1.15,
    7: 1.14,
    8: 1.10,
    9: 1.01,
    10: 0.96,
    11: 0.90,
    12: 0.86,
}

# the first key of each is the majority; the others get their share, at least one clinic
PRACTICE_TYPES = {"small_animal": 0.62, "mixed": 0.18, "equine": 0.07, "emergency": 0.13}
INTEGRATION_STATUSES = {"complete": 0.78, "in_progress": 0.09, "not_started": 0.08, "disabled": 0.05}
CLINIC_NAME_PREFIXES = [
    "Maple Grove",
    "Riverside",
    "Oak Hill",
    "Lakeside",
    "Cedar Park",
    "Harborview",
    "Green Valley",
    "Northgate",
    "Sunrise",
    "Willow Creek",
    "Summit",
    "Pinecrest",
    "Brookside",
    "Meadowbrook",
    "Stonebridge",
    "Hillcrest",
    "Bayside",
    "Fox Run",
]
CLINIC_NAME_SUFFIXES = {
    "small_animal": "Animal Hospital",
    "mixed": "Veterinary Services",
    "equine": "Equine Center",
    "emergency": "Animal Emergency Center",
}

# how the raw clients.zip_code was entered; a plain valid ZIP takes the rest
ZIP_FORMS = {
    "zip_plus_four": 0.03,
    "nine_digits": 0.02,
    "lost_leading_zero": 0.03,
    "not_in_source": 0.025,
    "blank": 0.015,
    "whitespace": 0.01,
    "null": 0.03,
    "junk": 0.02,
    "padded": 0.02,
}
JUNK_ZIPS = ["N/A", "ABCDE", "00000", "12-34", "unknown", "0", "1234567", "ZIP"]

# in basket order (a wellness visit: vaccines, parasiticides, pharmacy, food; a procedure:
# diagnostics, dental, surgery, Boarding); the last three are no contract category (`other`)
INCLINIC_CATEGORIES = {
    "vaccines": 0.22,
    "parasiticides": 0.12,
    "pharmacy": 0.16,
    "food": 0.10,
    "diagnostics": 0.18,
    "dental": 0.07,
    "surgery": 0.05,
    "Boarding": 0.03,
    "grooming": 0.05,
    "behavior_consult": 0.02,
}
ONLINE_CATEGORIES = {
    "food": 0.45,
    "pharmacy": 0.24,
    "parasiticides": 0.22,
    "dental": 0.04,
    "diagnostics": 0.02,
    "toys": 0.03,
}
# median unit price in dollars
UNIT_PRICES = {
    "vaccines": 45,
    "diagnostics": 130,
    "pharmacy": 55,
    "parasiticides": 75,
    "food": 60,
    "dental": 260,
    "surgery": 550,
    "grooming": 55,
    "Boarding": 90,
    "behavior_consult": 110,
    "toys": 18,
}
GOODS = ("pharmacy", "parasiticides", "food")
ORDER_STATUSES = {"completed": 0.90, "cancelled": 0.06, "refunded": 0.04}

MAX_BASKET_LINES = 6
NEW_VISIT_SHARE = 0.45
RETURN_SHARE = 0.03
AWAY_CLINIC_SHARE = 0.08
ORDER_ELSEWHERE_SHARE = 0.05
ANONYMOUS_SESSION_SHARE = 0.20
# rows at these positions of a month fall on its first and last instant (boundary cases)
EDGE_PERIOD = 1200

WRONG_MONTH, REDELIVERED = "wrong_month_folder", "redelivered"
NULL_CLIENT, UNKNOWN_CLIENT, NULL_REVENUE = "null_client", "unknown_client", "null_revenue"
TRANSACTION_BAD_INPUTS = (WRONG_MONTH, REDELIVERED, NULL_CLIENT, UNKNOWN_CLIENT, NULL_REVENUE)
# a web session without client_id is an anonymous visitor, not bad input
SESSION_BAD_INPUTS = (WRONG_MONTH, REDELIVERED, UNKNOWN_CLIENT)


@dataclass(frozen=True)
class GeneratorOptions:
    """Size and shape of the generated landing zone.

    Event volumes are monthly averages: each month's in-clinic rows are
    inclinic_rows_per_month scaled by SEASONALITY of its calendar month (0.86 to 1.15),
    and its online orders and web sessions are the ratios of that.
    """

    start_month: str = "2023-01"  # first month, YYYY-MM
    months: int = 12  # number of monthly folders
    clinics: int = 40
    clients: int = 4000
    inclinic_rows_per_month: int = 20_000
    online_orders_ratio: float = 0.25  # online order rows per month = ratio * inclinic rows
    web_sessions_ratio: float = 0.5  # web session rows per month = ratio * inclinic rows
    seed: int = 42
    bad_row_share: float = 0.01  # share of event rows that fall in some bad-input class


@dataclass(frozen=True)
class Month:
    """One monthly partition: its position in the generated range and its bounds."""

    index: int
    start: date
    end: date  # first day of the next month


@dataclass(frozen=True)
class RowPlan:
    """The rows of one event table in one month, and which of them are bad input.

    Rows are numbered 0..generated_rows-1 and take ids first_id + row. The bad rows are
    those whose slot (an affine permutation of the row number) is below bad_rows: an exact
    count, spread over the month. A `redelivered` row is written twice, so the file has
    `rows` rows.
    """

    rows: int
    first_id: int
    bad_inputs: tuple[str, ...]
    bad_rows: int
    seed: int

    @property
    def redelivered(self) -> int:
        first = self.bad_inputs.index(REDELIVERED)
        return len(range(first, self.bad_rows, len(self.bad_inputs)))

    @property
    def generated_rows(self) -> int:
        return self.rows - self.redelivered

    def bad_input_sql(self, row: str) -> str:
        """SQL for the bad-input class of local row number `row`; NULL for a good row."""
        if self.bad_rows == 0:
            return "CAST(NULL AS VARCHAR)"
        n = self.generated_rows
        offset = (self.seed * 7919 + self.first_id * 104_729) % n
        slot = f"(({_coprime_step(n)} * {row} + {offset}) % {n})"
        return (
            f"CASE WHEN {slot} < {self.bad_rows} "
            f"THEN {_sql_list(self.bad_inputs)}[1 + {slot} % {len(self.bad_inputs)}] END"
        )


def generate_landing_zone(
    raw_dir: str | Path,
    options: GeneratorOptions = GeneratorOptions(),
    zip_income_csv: str | Path | None = None,
) -> dict[str, int]:
    """Writes the raw landing zone; returns rows written per table.

    Replaces the five table paths under raw_dir and leaves anything else there alone.
    Clinic and client ZIPs are drawn from the ZIPs of zip_income_csv (IRS SOI format;
    default: the synthetic sample shipped in feature_store_assets/defs/reference/data).
    """
    _validate(options)
    raw_dir = Path(raw_dir)
    zip_income_csv = Path(zip_income_csv) if zip_income_csv is not None else SAMPLE_ZIP_INCOME
    for relative in TABLE_PATHS.values():
        _remove(raw_dir / relative)
    raw_dir.mkdir(parents=True, exist_ok=True)

    writers = {
        "transactions_inclinic": _write_inclinic_month,
        "transactions": _write_online_month,
        "web_sessions": _write_web_sessions_month,
    }
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        _define_random_macros(con, options.seed)
        _load_source_zips(con, zip_income_csv)
        written = {
            "clinics": _write_clinics(con, raw_dir / TABLE_PATHS["clinics"], options),
            "clients": _write_clients(con, raw_dir / TABLE_PATHS["clients"], options),
        }
        next_ids = dict.fromkeys(EVENT_TABLES, 1)
        for month in months_of(options):
            _prepare_client_draws(con, month)
            for table, plan in _row_plans(month, options, next_ids).items():
                path = raw_dir / TABLE_PATHS[table] / month_folder(month.start) / "part-0.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                writers[table](con, path, month, plan, options)
                written[table] = written.get(table, 0) + plan.rows
                next_ids[table] += plan.generated_rows
    finally:
        con.close()
    return written


def months_of(options: GeneratorOptions) -> list[Month]:
    """The monthly partitions of the generated range, in order."""
    first = parse_month(options.start_month)
    return [Month(index, add_months(first, index), add_months(first, index + 1)) for index in range(options.months)]


def _validate(options: GeneratorOptions) -> None:
    if not MONTH_PATTERN.fullmatch(options.start_month):
        raise ValueError(f"start_month must be YYYY-MM, got {options.start_month!r}")
    for name in ("months", "clinics", "clients", "inclinic_rows_per_month"):
        if getattr(options, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(options, name)}")
    for name in ("online_orders_ratio", "web_sessions_ratio"):
        if getattr(options, name) < 0:
            raise ValueError(f"{name} must not be negative, got {getattr(options, name)}")
    if not 0 <= options.bad_row_share <= 0.5:
        raise ValueError(f"bad_row_share must be in [0, 0.5], got {options.bad_row_share}")
    if not isinstance(options.seed, int):
        raise ValueError(f"seed must be an integer, got {options.seed!r}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _row_plans(month: Month, options: GeneratorOptions, next_ids: dict[str, int]) -> dict[str, RowPlan]:
    inclinic_rows = round(options.inclinic_rows_per_month * SEASONALITY[month.start.month])
    sizes = {
        "transactions_inclinic": (inclinic_rows, TRANSACTION_BAD_INPUTS),
        "transactions": (round(inclinic_rows * options.online_orders_ratio), TRANSACTION_BAD_INPUTS),
        "web_sessions": (round(inclinic_rows * options.web_sessions_ratio), SESSION_BAD_INPUTS),
    }
    plans = {}
    for table, (rows, bad_inputs) in sizes.items():
        bad_rows = 0
        if options.bad_row_share > 0:
            # every class shows up each month, as long as the month has room for it
            bad_rows = min(max(round(rows * options.bad_row_share), len(bad_inputs)), rows // 3)
        plans[table] = RowPlan(rows, next_ids[table], bad_inputs, bad_rows, options.seed)
    return plans


def _coprime_step(modulus: int) -> int:
    """A large step coprime to modulus, so that (step * i + offset) % modulus permutes i."""
    for prime in (1_000_003, 999_983):
        if modulus % prime:
            return prime
    return 1


def _sql_list(values) -> str:
    return "[" + ", ".join(sql_string(value) for value in values) + "]"


def _timestamp(day: date) -> str:
    return f"TIMESTAMP '{day.isoformat()} 00:00:00'"


def _weighted_choice(uniform: str, weights: dict[str, float]) -> str:
    """SQL CASE picking a key of weights with probability proportional to its weight."""
    total = sum(weights.values())
    *others, last = weights
    cumulative, branches = 0.0, []
    for name in others:
        cumulative += weights[name] / total
        branches.append(f"WHEN {uniform} < {cumulative!r} THEN {sql_string(name)}")
    return f"CASE {' '.join(branches)} ELSE {sql_string(last)} END"


def _quota_choice(rank: str, n: int, shares: dict[str, float]) -> str:
    """SQL CASE giving each minority key round(share * n) of the ranks 0..n-1 (at least
    one while there is room); the first key, the majority, takes the rest."""
    majority, *minorities = shares
    branches, upper = [], 0
    for name in minorities:
        upper += min(n - 1 - upper, max(1, round(shares[name] * n)))
        branches.append(f"WHEN {rank} < {upper} THEN {sql_string(name)}")
    return f"CASE {' '.join(branches)} ELSE {sql_string(majority)} END"


def _lookup(expression: str, mapping: dict[str, float], default: float) -> str:
    """SQL CASE mapping the values of expression through mapping."""
    branches = " ".join(f"WHEN {sql_string(key)} THEN {value!r}" for key, value in mapping.items())
    return f"CASE {expression} {branches} ELSE {default!r} END"


def _define_random_macros(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    # hash-based draws are reproducible under parallelism, unlike random(); the outer hash
    # matters: hash(a, b, c) combines by XOR, which would tie all the salts of one key
    con.execute(f"""
        CREATE MACRO uniform(key, salt) AS
            (hash(hash(key, {seed}::BIGINT, salt)) >> 11) / 9007199254740992.0;
        CREATE MACRO std_normal(key, salt) AS
            sqrt(-2 * ln(1 - uniform(key, salt || ':radius')))
            * cos(2 * pi() * uniform(key, salt || ':angle'));
    """)


def _load_source_zips(con: duckdb.DuckDBPyConnection, zip_income_csv: Path) -> None:
    """The income file's ZIPs ordered by state and ZIP, with each state's index range."""
    source = f"read_csv({sql_string(str(zip_income_csv))}, all_varchar = true, header = true)"
    # IRS column names change case between years
    columns = con.execute(f"SELECT * FROM {source} LIMIT 0").description
    by_lower_name = {column[0].lower(): column[0] for column in columns}
    missing = [name for name in ("zipcode", "state") if name not in by_lower_name]
    if missing:
        raise ValueError(f"{zip_income_csv}: missing columns {missing}")
    zipcode, state = (f'"{by_lower_name[name]}"' for name in ("zipcode", "state"))
    con.execute(f"""
        CREATE TEMP TABLE source_zips AS
        WITH zips AS (
            SELECT DISTINCT lpad(trim({zipcode}), 5, '0') AS zip_code,
                   upper(trim({state})) AS state
            FROM {source}
        ),
        indexed AS (
            SELECT zip_code, state,
                   row_number() OVER (ORDER BY state, zip_code) - 1 AS zip_index
            FROM zips
            -- state totals and "other" rows are no ZIPs
            WHERE regexp_full_match(zip_code, '[0-9]{{5}}')
                AND zip_code NOT IN ('00000', '99999')
        )
        SELECT
            zip_code,
            state,
            zip_index::BIGINT AS zip_index,
            (min(zip_index) OVER (PARTITION BY state))::BIGINT AS state_first_index,
            (count(*) OVER (PARTITION BY state))::BIGINT AS state_zip_count
        FROM indexed
    """)
    if con.execute("SELECT count(*) FROM source_zips").fetchone()[0] == 0:
        raise ValueError(f"{zip_income_csv}: no ZIP codes")
    con.execute("""
        CREATE TEMP TABLE leading_zero_zips AS
        SELECT zip_code, (row_number() OVER (ORDER BY zip_code) - 1)::BIGINT AS lz_index
        FROM source_zips
        WHERE zip_code LIKE '0%'
    """)


def _write_clinics(con: duckdb.DuckDBPyConnection, path: Path, options: GeneratorOptions) -> int:
    n = options.clinics
    start = date.fromisoformat(options.start_month + "-01")
    name_suffix = _lookup("practice_type", CLINIC_NAME_SUFFIXES, "Veterinary Clinic")
    con.execute(f"""
        CREATE TEMP TABLE clinic_profile AS
        WITH ranked AS (
            -- clinics in a random order take each type and status by quota: small runs have all
            SELECT
                i,
                row_number() OVER (ORDER BY uniform(i, 'clinic_practice'), i) - 1 AS practice_rank,
                row_number() OVER (ORDER BY uniform(i, 'clinic_status'), i) - 1 AS status_rank
            FROM range({n}) r(i)
        ),
        drawn AS (
            SELECT
                i AS clinic_index,
                {CLINIC_ID_START} + i AS clinic_id,
                {_quota_choice("practice_rank", n, PRACTICE_TYPES)} AS practice_type,
                {_quota_choice("status_rank", n, INTEGRATION_STATUSES)} AS integration_status,
                floor(uniform(i, 'clinic_zip') * (SELECT count(*) FROM source_zips))::BIGINT
                    AS zip_index,
                -- clinic sizes differ a lot: a lognormal share of the clients
                (1 + round(1000 * exp(0.7 * std_normal(i, 'clinic_size'))))::BIGINT AS size_weight
            FROM ranked
        )
        SELECT
            drawn.*,
            {_sql_list(CLINIC_NAME_PREFIXES)}[1 + floor(uniform(clinic_index, 'clinic_name')
                * {len(CLINIC_NAME_PREFIXES)})::BIGINT] || ' ' || {name_suffix} AS clinic_name,
            CASE WHEN integration_status = 'complete' THEN DATE '{start}'
                - to_days((30 + floor(uniform(clinic_index, 'integrated') * 900))::INTEGER)
            END AS integration_completed_at,
            z.zip_code, z.state, z.state_first_index, z.state_zip_count,
            (sum(size_weight) OVER (ORDER BY clinic_index) - size_weight)::BIGINT AS size_before
        FROM drawn JOIN source_zips z USING (zip_index)
    """)
    con.execute(f"""
        COPY (
            SELECT
                clinic_id::BIGINT AS clinic_id,
                clinic_name::VARCHAR AS clinic_name,
                practice_type::VARCHAR AS practice_type,
                zip_code::VARCHAR AS zip_code,
                state::VARCHAR AS state,
                integration_status::VARCHAR AS integration_status,
                integration_completed_at::DATE AS integration_completed_at
            FROM clinic_profile
            ORDER BY clinic_id
        ) TO {sql_string(str(path))} (FORMAT parquet)
    """)
    return n


def _raw_zip_sql() -> str:
    """The ZIP as entered at the clinic, in the client's zip_form."""
    four_digits = "lpad(floor(u_zip_extra * 10000)::BIGINT::VARCHAR, 4, '0')"
    padded = "['  ' || home_zip, home_zip || ' ', ' ' || home_zip || ' ']"
    return f"""CASE zip_form
        WHEN 'zip_plus_four' THEN home_zip || '-' || {four_digits}
        WHEN 'nine_digits' THEN home_zip || {four_digits}
        WHEN 'lost_leading_zero' THEN ltrim(coalesce(leading_zero_zip, home_zip), '0')
        -- Alaska: valid-looking ZIPs, absent from the sample
        WHEN 'not_in_source' THEN '995' || lpad(floor(u_zip_extra * 100)::BIGINT::VARCHAR, 2, '0')
        WHEN 'blank' THEN ''
        WHEN 'whitespace' THEN repeat(' ', 1 + floor(u_zip_extra * 3)::BIGINT)
        WHEN 'null' THEN NULL
        WHEN 'junk' THEN {_sql_list(JUNK_ZIPS)}[1 + floor(u_zip_extra * {len(JUNK_ZIPS)})::BIGINT]
        WHEN 'padded' THEN {padded}[1 + floor(u_zip_extra * 3)::BIGINT]
        ELSE home_zip END"""


def _write_clients(con: duckdb.DuckDBPyConnection, path: Path, options: GeneratorOptions) -> int:
    start = date.fromisoformat(options.start_month + "-01")
    range_days = (months_of(options)[-1].end - start).days
    forms = dict(ZIP_FORMS, valid=1 - sum(ZIP_FORMS.values()))
    con.execute(f"""
        CREATE TEMP TABLE client_profile AS
        WITH drawn AS (
            SELECT
                i,
                {CLIENT_ID_START} + i AS client_id,
                floor(uniform(i, 'home_clinic')
                      * (SELECT sum(size_weight) FROM clinic_profile))::BIGINT AS clinic_draw,
                {_weighted_choice("uniform(i, 'zip_form')", forms)} AS zip_form,
                -- most clients live in their clinic's state
                uniform(i, 'zip_in_home_state') < 0.85 AS zip_in_home_state,
                uniform(i, 'zip_pick') AS u_zip,
                uniform(i, 'zip_extra') AS u_zip_extra,
                -- a quarter join during the generated range, the others up to six years before
                CASE WHEN uniform(i, 'joins_in_range') < 0.25
                    THEN {_timestamp(start)}
                        + to_days(floor(uniform(i, 'joined') * {range_days})::INTEGER)
                    ELSE {_timestamp(start)}
                        - to_days((1 + floor(uniform(i, 'joined') * 6 * 365))::INTEGER)
                END + to_seconds(8 * 3600 + floor(uniform(i, 'joined_at') * 11 * 3600))
                    AS created_at,
                -- a quarter stop buying after some month
                CASE WHEN uniform(i, 'churns') < 0.25
                    THEN 1 + floor(uniform(i, 'churn_month') * {options.months})::INTEGER
                END AS churn_month,
                -- heavy tail: a few clients visit far more often than the median client
                exp(1.2 * std_normal(i, 'activity')) AS activity,
                CASE WHEN uniform(i, 'shops_online') < 0.55
                    THEN exp(0.9 * std_normal(i, 'online')) ELSE 0 END AS online_affinity
            FROM range({options.clients}) r(i)
        ),
        homed AS (
            SELECT drawn.*, c.clinic_id, c.clinic_index, c.state_first_index, c.state_zip_count
            FROM drawn ASOF JOIN clinic_profile c ON drawn.clinic_draw >= c.size_before
        ),
        located AS (
            SELECT homed.*, z.zip_code AS home_zip, lz.zip_code AS leading_zero_zip
            FROM homed
            JOIN source_zips z ON z.zip_index = CASE WHEN zip_in_home_state
                THEN homed.state_first_index + floor(u_zip * homed.state_zip_count)::BIGINT
                ELSE floor(u_zip * (SELECT count(*) FROM source_zips))::BIGINT END
            LEFT JOIN leading_zero_zips lz
                ON lz.lz_index = floor(u_zip * (SELECT count(*) FROM leading_zero_zips))::BIGINT
        )
        SELECT
            client_id, clinic_id, clinic_index, {_raw_zip_sql()} AS zip_code, created_at,
            churn_month,
            -- integer draw weights keep cumulative sums exact, hence reproducible
            (1 + round(1000 * activity))::BIGINT AS inclinic_weight,
            (1 + round(1000 * sqrt(activity) * online_affinity))::BIGINT AS online_weight,
            (1 + round(1000 * (0.3 + online_affinity + 0.5 * exp(0.6 * std_normal(i, 'web')))))
                ::BIGINT AS web_weight
        FROM located
    """)
    con.execute(f"""
        COPY (
            SELECT
                client_id::BIGINT AS client_id,
                clinic_id::BIGINT AS clinic_id,
                zip_code::VARCHAR AS zip_code,
                created_at::TIMESTAMP AS created_at
            FROM client_profile
            ORDER BY client_id
        ) TO {sql_string(str(path))} (FORMAT parquet)
    """)
    return options.clients


def _prepare_client_draws(con: duckdb.DuckDBPyConnection, month: Month) -> None:
    """Per channel, cumulative weights of the clients active in the month, for ASOF draws."""
    active = f"created_at < {_timestamp(month.start)} AND (churn_month IS NULL OR {month.index} < churn_month)"
    for channel in ("inclinic", "online", "web"):
        weight = f"{channel}_weight"
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {channel}_client_draws AS
            SELECT
                client_id, clinic_id, clinic_index,
                (sum({weight}) OVER (ORDER BY client_id) - {weight})::BIGINT AS weight_before,
                (sum({weight}) OVER ())::BIGINT AS total_weight
            FROM client_profile
            -- with no active client yet (tiny runs), anyone may buy
            WHERE ({active}) OR NOT EXISTS (SELECT 1 FROM client_profile WHERE {active})
        """)


def _with_drawn_client(channel: str, source: str, key: str) -> str:
    """SQL adding to source the client drawn for key, with odds in proportion to its weight."""
    total = f"(SELECT max(total_weight) FROM {channel}_client_draws)"
    return f"""
        SELECT source.*, d.client_id AS drawn_client_id, d.clinic_id AS home_clinic_id,
               d.clinic_index AS home_clinic_index
        FROM (SELECT *, floor(uniform({key}, '{channel}_client') * {total})::BIGINT AS draw
              FROM {source}) source
        ASOF JOIN {channel}_client_draws d ON source.draw >= d.weight_before"""


def _edge_or(month: Month, local_row: str, timestamp: str) -> str:
    """timestamp, except that some rows fall on the month's very first and last instant."""
    return f"""CASE WHEN {local_row} % {EDGE_PERIOD} = 0 THEN {_timestamp(month.start)}
        WHEN {local_row} % {EDGE_PERIOD} = {EDGE_PERIOD // 2}
            THEN {_timestamp(month.end)} - INTERVAL 1 MICROSECOND
        ELSE {timestamp} END"""


def _anytime_in_month(month: Month, uniform: str) -> str:
    micros = int((month.end - month.start).total_seconds()) * 1_000_000
    return f"{_timestamp(month.start)} + to_microseconds(floor({uniform} * {micros})::BIGINT)"


def _event_ts_sql(month: Month, key: str, timestamp: str) -> str:
    """timestamp, or for a `wrong_month_folder` row one up to three days outside the month."""
    offset = f"to_seconds(1 + floor(uniform({key}, 'wrong_month_offset') * 3 * 86400))"
    return f"""CASE WHEN bad_input = '{WRONG_MONTH}' THEN
            CASE WHEN uniform({key}, 'wrong_month_side') < 0.5
                THEN {_timestamp(month.start)} - {offset}
                ELSE {_timestamp(month.end)} + {offset} - INTERVAL 1 SECOND END
        ELSE {timestamp} END"""


def _client_id_sql(key: str) -> str:
    unknown = f"{UNKNOWN_CLIENT_ID_START} + floor(uniform({key}, 'unknown_client') * 100000)"
    return f"""CASE bad_input WHEN '{NULL_CLIENT}' THEN NULL
        WHEN '{UNKNOWN_CLIENT}' THEN ({unknown})::BIGINT
        ELSE drawn_client_id END"""


def _clinic_id_sql(key: str, elsewhere_share: float, n_clinics: int) -> str:
    """Mostly the home clinic; at elsewhere_share another one, if there is another."""
    if n_clinics == 1:
        return "home_clinic_id"
    other = (
        f"{CLINIC_ID_START} + (home_clinic_index + 1 "
        f"+ floor(uniform({key}, 'other_clinic') * {n_clinics - 1})::BIGINT) % {n_clinics}"
    )
    return f"CASE WHEN uniform({key}, 'elsewhere') < {elsewhere_share} THEN {other} ELSE home_clinic_id END"


def _revenue_sql(amount: str) -> str:
    return f"(CASE WHEN bad_input = '{NULL_REVENUE}' THEN NULL ELSE round({amount}, 2) END)"


def _copy_with_redeliveries(con: duckdb.DuckDBPyConnection, query: str, key: str, path: Path) -> None:
    """Writes query's rows ordered by key; rows flagged `redelivered` are written twice."""
    con.execute(f"""
        COPY (
            SELECT * EXCLUDE (bad_input, delivery)
            FROM (
                SELECT *,
                       unnest(CASE WHEN bad_input = '{REDELIVERED}' THEN [1, 2] ELSE [1] END)
                           AS delivery
                FROM ({query})
            )
            ORDER BY {key}
        ) TO {sql_string(str(path))} (FORMAT parquet)
    """)


def _visit_start_sql(plan: RowPlan) -> str:
    """Local row number of the first line of row i's visit.

    A line starts a new visit by chance, and always every MAX_BASKET_LINES rows, so the
    start is among the last few rows: no window function over millions of rows.
    """

    def starts_visit(row: str) -> str:
        return f"(({row}) % {MAX_BASKET_LINES} = 0 OR uniform({plan.first_id} + {row}, 'visit') < {NEW_VISIT_SHARE})"

    branches = " ".join(f"WHEN {starts_visit(f'i - {back}')} THEN i - {back}" for back in range(MAX_BASKET_LINES - 1))
    return f"CASE {branches} ELSE i - {MAX_BASKET_LINES - 1} END"


def _write_inclinic_month(
    con: duckdb.DuckDBPyConnection, path: Path, month: Month, plan: RowPlan, options: GeneratorOptions
) -> None:
    days = (month.end - month.start).days
    categories = _sql_list(INCLINIC_CATEGORIES)
    first_category = _weighted_choice("u_category", INCLINIC_CATEGORIES)
    # visits happen during opening hours, 07:00 to 20:00
    opening_hours = (
        f"{_timestamp(month.start)}"
        f" + to_days(floor(uniform(visit_key, 'visit_day') * {days})::INTEGER)"
        f" + to_seconds(7 * 3600 + floor(uniform(visit_key, 'visit_time') * 13 * 3600))"
    )
    unit_price = f"{_lookup('product_category', UNIT_PRICES, 50)} * exp(0.35 * std_normal(row_key, 'unit_price'))"
    query = f"""
        WITH line AS (
            SELECT
                {plan.first_id} + i AS row_key,
                {_visit_start_sql(plan)} AS visit_row,
                {plan.first_id} + visit_row AS visit_key,
                i - visit_row AS basket_line,
                {plan.bad_input_sql("i")} AS bad_input,
                uniform(visit_key, 'basket_category') AS u_category,
                uniform(row_key, 'quantity') AS u_quantity
            FROM range({plan.generated_rows}) r(i)
        ),
        item AS (
            SELECT
                *,
                -- a basket takes consecutive categories from a weighted first one, so they differ
                {categories}[1 + (list_position({categories}, {first_category}) - 1 + basket_line)
                             % {len(INCLINIC_CATEGORIES)}] AS product_category,
                -- goods sell up to five at a time; services are mostly one per line
                CASE WHEN list_contains({_sql_list(GOODS)}, product_category)
                    THEN 1 + floor(5 * pow(u_quantity, 2.5))
                    ELSE 1 + floor(2 * pow(u_quantity, 4))
                END AS quantity,
                {_edge_or(month, "visit_row", opening_hours)} AS visit_ts
            FROM ({_with_drawn_client("inclinic", "line", "visit_key")})
        )
        SELECT
            row_key::BIGINT AS transaction_id,
            ({_client_id_sql("row_key")})::BIGINT AS client_id,
            ({_clinic_id_sql("visit_key", AWAY_CLINIC_SHARE, options.clinics)})::BIGINT
                AS clinic_id,
            ({_event_ts_sql(month, "row_key", "visit_ts")})::TIMESTAMP AS transaction_ts,
            product_category::VARCHAR AS product_category,
            quantity::INTEGER AS quantity,
            {
        _revenue_sql(f'''quantity * {unit_price}
                * CASE WHEN uniform(row_key, 'returned') < {RETURN_SHARE} THEN -1 ELSE 1 END''')
    }
                ::DECIMAL(12, 2) AS revenue,
            bad_input
        FROM item
    """
    _copy_with_redeliveries(con, query, "transaction_id", path)


def _write_online_month(
    con: duckdb.DuckDBPyConnection, path: Path, month: Month, plan: RowPlan, options: GeneratorOptions
) -> None:
    # home delivery gains share month after month, from 62% to 82% of the orders
    hd_share = 0.62 + 0.20 * month.index / max(options.months - 1, 1)
    channels = {"HD": hd_share, "CURBSIDE": (1 - hd_share) * 0.6, "THIRD_PARTY": (1 - hd_share) * 0.4}
    order_value = (
        f"(1 + floor(3 * pow(uniform(row_key, 'order_items'), 2)))"
        f" * {_lookup('product_category', UNIT_PRICES, 30)}"
        f" * exp(0.4 * std_normal(row_key, 'order_value'))"
    )
    query = f"""
        WITH line AS (
            SELECT
                {plan.first_id} + i AS row_key,
                i AS local_row,
                {plan.bad_input_sql("i")} AS bad_input,
                uniform(row_key, 'order_category') AS u_category,
                uniform(row_key, 'order_status') AS u_status,
                uniform(row_key, 'channel') AS u_channel,
                uniform(row_key, 'order_ts') AS u_ts
            FROM range({plan.generated_rows}) r(i)
        ),
        online_order AS (
            SELECT
                *,
                {_weighted_choice("u_category", ONLINE_CATEGORIES)} AS product_category,
                {_weighted_choice("u_status", ORDER_STATUSES)} AS status,
                {_edge_or(month, "local_row", _anytime_in_month(month, "u_ts"))} AS order_ts
            FROM ({_with_drawn_client("online", "line", "row_key")})
        )
        SELECT
            row_key::BIGINT AS transaction_id,
            ({_client_id_sql("row_key")})::BIGINT AS client_id,
            ({_clinic_id_sql("row_key", ORDER_ELSEWHERE_SHARE, options.clinics)})::BIGINT
                AS clinic_id,
            ({_event_ts_sql(month, "row_key", "order_ts")})::TIMESTAMP AS transaction_ts,
            ({_weighted_choice("u_channel", channels)})::VARCHAR AS channel,
            product_category::VARCHAR AS product_category,
            -- a refund is booked as a negative amount
            {_revenue_sql(f"{order_value} * CASE WHEN status = 'refunded' THEN -1 ELSE 1 END")}
                ::DECIMAL(12, 2) AS revenue,
            status::VARCHAR AS status,
            bad_input
        FROM online_order
    """
    _copy_with_redeliveries(con, query, "transaction_id", path)


def _write_web_sessions_month(
    con: duckdb.DuckDBPyConnection, path: Path, month: Month, plan: RowPlan, options: GeneratorOptions
) -> None:
    query = f"""
        WITH line AS (
            SELECT
                {plan.first_id} + i AS row_key,
                i AS local_row,
                {plan.bad_input_sql("i")} AS bad_input,
                uniform(row_key, 'session_ts') AS u_ts
            FROM range({plan.generated_rows}) r(i)
        ),
        session AS (
            -- a funnel: each step counts at most as many as the one before
            SELECT
                *,
                1 + floor(-ln(1 - uniform(row_key, 'page_views')) * 5) AS page_views,
                floor(page_views * 0.9 * uniform(row_key, 'product_views')) AS product_views,
                floor(product_views * 0.7 * pow(uniform(row_key, 'add_to_cart'), 2))
                    AS add_to_cart_events,
                CASE WHEN add_to_cart_events > 0 AND uniform(row_key, 'checkout') < 0.6
                    THEN 1 + (uniform(row_key, 'second_order') < 0.1)::INTEGER ELSE 0 END AS orders,
                {_edge_or(month, "local_row", _anytime_in_month(month, "u_ts"))} AS session_ts
            FROM ({_with_drawn_client("web", "line", "row_key")})
        )
        SELECT
            row_key::BIGINT AS session_id,
            (CASE WHEN bad_input IS NULL
                    AND uniform(row_key, 'anonymous') < {ANONYMOUS_SESSION_SHARE} THEN NULL
                ELSE {_client_id_sql("row_key")} END)::BIGINT AS client_id,
            ({_event_ts_sql(month, "row_key", "session_ts")})::TIMESTAMP AS session_start_ts,
            page_views::INTEGER AS page_views,
            product_views::INTEGER AS product_views,
            add_to_cart_events::INTEGER AS add_to_cart_events,
            orders::INTEGER AS orders,
            bad_input
        FROM session
    """
    _copy_with_redeliveries(con, query, "session_id", path)
