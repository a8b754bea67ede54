"""The synthetic landing zone follows docs/data-contract.md and has the shapes the pipeline handles."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feature_store_assets.core.settings import SAMPLE_ZIP_INCOME
from feature_store_assets.generator import GeneratorOptions, generate_landing_zone
from feature_store_assets.generator.landing_zone import SEASONALITY

# the contract's column types (docs/data-contract.md) as Parquet/Arrow types
BIGINT, INTEGER, VARCHAR = pa.int64(), pa.int32(), pa.string()
DECIMAL, TIMESTAMP, DATE = pa.decimal128(12, 2), pa.timestamp("us"), pa.date32()
CONTRACT = {
    "clinics": {
        "clinic_id": BIGINT,
        "clinic_name": VARCHAR,
        "practice_type": VARCHAR,
        "zip_code": VARCHAR,
        "state": VARCHAR,
        "integration_status": VARCHAR,
        "integration_completed_at": DATE,
    },
    "clients": {"client_id": BIGINT, "clinic_id": BIGINT, "zip_code": VARCHAR, "created_at": TIMESTAMP},
    "transactions_inclinic": {
        "transaction_id": BIGINT,
        "client_id": BIGINT,
        "clinic_id": BIGINT,
        "transaction_ts": TIMESTAMP,
        "product_category": VARCHAR,
        "quantity": INTEGER,
        "revenue": DECIMAL,
    },
    "transactions": {
        "transaction_id": BIGINT,
        "client_id": BIGINT,
        "clinic_id": BIGINT,
        "transaction_ts": TIMESTAMP,
        "channel": VARCHAR,
        "product_category": VARCHAR,
        "revenue": DECIMAL,
        "status": VARCHAR,
    },
    "web_sessions": {
        "session_id": BIGINT,
        "client_id": BIGINT,
        "session_start_ts": TIMESTAMP,
        "page_views": INTEGER,
        "product_views": INTEGER,
        "add_to_cart_events": INTEGER,
        "orders": INTEGER,
    },
}
# event table -> (key, event timestamp)
EVENTS = {
    "transactions_inclinic": ("transaction_id", "transaction_ts"),
    "transactions": ("transaction_id", "transaction_ts"),
    "web_sessions": ("session_id", "session_start_ts"),
}
CATEGORIES = {"vaccines", "diagnostics", "pharmacy", "parasiticides", "food", "dental", "surgery"}

# crosses a year boundary on purpose
OPTIONS = GeneratorOptions(
    start_month="2023-11", months=3, clinics=12, clients=800, inclinic_rows_per_month=4000, seed=7, bad_row_share=0.02
)
MONTHS = ["2023-11", "2023-12", "2024-01"]


@pytest.fixture(scope="module")
def landing_zone(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    raw_dir = tmp_path_factory.mktemp("raw")
    return raw_dir, generate_landing_zone(raw_dir, OPTIONS)


@pytest.fixture(scope="module")
def con(landing_zone):
    raw_dir, _ = landing_zone
    connection = duckdb.connect()
    for table in ("clinics", "clients"):
        connection.execute(f"CREATE VIEW {table} AS SELECT * FROM '{raw_dir}/{table}.parquet'")
    for table in EVENTS:
        connection.execute(f"CREATE VIEW {table} AS SELECT * FROM {month_files(raw_dir, table)}")
    yield connection
    connection.close()


def month_files(raw_dir: Path, table: str) -> str:
    """An event table's files, with the folder's month as a column."""
    return (
        f"read_parquet('{raw_dir}/{table}/month=*/*.parquet', hive_partitioning = true, "
        "hive_types = {'month': VARCHAR})"
    )


def scalar(con, query: str):
    return con.execute(query).fetchone()[0]


def table_dump(raw_dir: Path) -> dict[str, list[tuple]]:
    """Every row of every table (with its month folder), in a fixed order."""
    connection = duckdb.connect()
    try:
        sources = {table: f"'{raw_dir}/{table}.parquet'" for table in ("clinics", "clients")}
        sources.update({table: month_files(raw_dir, table) for table in EVENTS})
        return {
            table: connection.execute(f"SELECT * FROM {source} ORDER BY ALL").fetchall()
            for table, source in sources.items()
        }
    finally:
        connection.close()


def test_layout_is_exactly_the_contract(landing_zone):
    raw_dir, written = landing_zone
    files = sorted(str(path.relative_to(raw_dir)) for path in raw_dir.rglob("*") if path.is_file())
    expected = ["clients.parquet", "clinics.parquet"] + [
        f"{table}/month={month}/part-0.parquet" for table in EVENTS for month in MONTHS
    ]
    assert files == sorted(expected)
    assert set(written) == set(CONTRACT)


@pytest.mark.parametrize("table", list(CONTRACT))
def test_columns_and_types_match_the_contract(landing_zone, table):
    raw_dir, _ = landing_zone
    paths = (
        [raw_dir / f"{table}.parquet"]
        if table in ("clinics", "clients")
        else sorted((raw_dir / table).glob("month=*/part-0.parquet"))
    )
    for path in paths:
        schema = pq.read_schema(path)
        # exact names, order and types; timestamps naive; no `month` column in event files
        assert dict(zip(schema.names, schema.types)) == CONTRACT[table], path
        assert list(schema.names) == list(CONTRACT[table]), path


def test_row_counts_follow_the_options(landing_zone, con):
    _, written = landing_zone
    assert written["clinics"] == scalar(con, "SELECT count(*) FROM clinics") == OPTIONS.clinics
    assert written["clients"] == scalar(con, "SELECT count(*) FROM clients") == OPTIONS.clients
    for month in MONTHS:
        inclinic = round(OPTIONS.inclinic_rows_per_month * SEASONALITY[int(month[5:])])
        expected = {
            "transactions_inclinic": inclinic,
            "transactions": round(inclinic * OPTIONS.online_orders_ratio),
            "web_sessions": round(inclinic * OPTIONS.web_sessions_ratio),
        }
        for table, rows in expected.items():
            query = f"SELECT count(*) FROM {table} WHERE month = '{month}'"
            assert scalar(con, query) == rows, (table, month)
    for table in EVENTS:
        assert written[table] == scalar(con, f"SELECT count(*) FROM {table}")


def test_ratios_set_the_online_and_web_volumes(tmp_path):
    options = GeneratorOptions(
        months=1, clinics=3, clients=50, inclinic_rows_per_month=1000, online_orders_ratio=0, web_sessions_ratio=2
    )
    written = generate_landing_zone(tmp_path, options)
    assert written["transactions_inclinic"] == 860  # January: 0.86
    assert (written["transactions"], written["web_sessions"]) == (0, 1720)
    assert pq.read_metadata(tmp_path / "transactions/month=2023-01/part-0.parquet").num_rows == 0


def test_same_seed_same_data_other_seed_other_data(landing_zone, tmp_path):
    raw_dir, written = landing_zone
    assert generate_landing_zone(tmp_path / "again", OPTIONS) == written
    first = table_dump(raw_dir)
    assert table_dump(tmp_path / "again") == first

    generate_landing_zone(tmp_path / "other", dataclasses.replace(OPTIONS, seed=OPTIONS.seed + 1))
    other = table_dump(tmp_path / "other")
    for table in CONTRACT:
        assert other[table] != first[table], table


def test_every_bad_input_class_in_every_month(con):
    for table, (key, ts) in EVENTS.items():
        for month in MONTHS:
            wrong_month, repeated, null_client, unknown_client, total = con.execute(f"""
                SELECT
                    count(*) FILTER (strftime({ts}, '%Y-%m') <> month),
                    count(*) - count(DISTINCT {key}),
                    count(*) FILTER (client_id IS NULL),
                    count(*) FILTER (client_id NOT IN (SELECT client_id FROM clients)),
                    count(*)
                FROM {table} WHERE month = '{month}'""").fetchone()
            assert wrong_month > 0 and repeated > 0 and unknown_client > 0, (table, month)
            bad = wrong_month + repeated + unknown_client
            if table != "web_sessions":  # there a null client is an anonymous visitor
                null_revenue = scalar(
                    con,
                    f"""SELECT count(*) FROM {table}
                    WHERE month = '{month}' AND revenue IS NULL""",
                )
                assert null_client > 0 and null_revenue > 0, (table, month)
                bad += null_client + null_revenue
            assert 0.5 < bad / total / OPTIONS.bad_row_share < 1.5, (table, month)


def test_repeated_ids_are_exact_redeliveries(con):
    for table, (key, _) in EVENTS.items():
        most = f"SELECT max(n) FROM (SELECT count(*) AS n FROM {table} GROUP BY {key})"
        assert scalar(con, most) == 2, table
        # an exact copy collapses under DISTINCT over all columns, month included
        assert scalar(con, f"SELECT count(*) FROM (SELECT DISTINCT * FROM {table})") == scalar(
            con, f"SELECT count(DISTINCT {key}) FROM {table}"
        ), table


def test_no_bad_rows_when_the_share_is_zero(tmp_path):
    options = GeneratorOptions(months=1, clinics=5, clients=200, inclinic_rows_per_month=2000, bad_row_share=0)
    generate_landing_zone(tmp_path, options)
    connection = duckdb.connect()
    counts = connection.execute(f"""
        SELECT count(*) - count(DISTINCT transaction_id),
               count(*) FILTER (client_id IS NULL OR revenue IS NULL
                   OR client_id NOT IN (SELECT client_id FROM '{tmp_path}/clients.parquet')),
               count(*) FILTER (strftime(transaction_ts, '%Y-%m') <> '2023-01')
        FROM '{tmp_path}/transactions_inclinic/*/*.parquet'""").fetchone()
    connection.close()
    assert counts == (0, 0, 0)


def test_clinics_cover_every_status_and_practice_type(con):
    statuses = dict(con.execute("SELECT integration_status, count(*) FROM clinics GROUP BY ALL").fetchall())
    assert set(statuses) == {"complete", "in_progress", "not_started", "disabled"}
    assert statuses["complete"] > OPTIONS.clinics / 2
    types = {row[0] for row in con.execute("SELECT DISTINCT practice_type FROM clinics").fetchall()}
    assert types == {"small_animal", "mixed", "equine", "emergency"}
    assert (
        scalar(
            con,
            """SELECT count(*) FROM clinics
        WHERE (integration_completed_at IS NOT NULL) <> (integration_status = 'complete')""",
        )
        == 0
    )
    assert (
        scalar(
            con,
            """SELECT count(*) FROM clinics
        WHERE NOT regexp_full_match(zip_code, '[0-9]{5}')
            OR NOT regexp_full_match(state, '[A-Z]{2}')""",
        )
        == 0
    )


def zip_form(raw: str | None, source: set[str]) -> str:
    """The form of a raw clients.zip_code, after docs/features.md's normalization rules."""
    if raw is None:
        return "null"
    zip_code = raw.strip()
    if zip_code == "":
        return "whitespace" if raw else "blank"
    if zip_code != raw:
        return "padded"
    if re.fullmatch(r"\d{5}-\d{4}", zip_code):
        return "zip_plus_four"
    if re.fullmatch(r"\d{9}", zip_code):
        return "nine_digits"
    if re.fullmatch(r"\d{3,4}", zip_code):
        return "lost_leading_zero"
    if re.fullmatch(r"\d{5}", zip_code) and zip_code != "00000":
        return "valid" if zip_code in source else "not_in_source"
    return "junk"


def source_zips() -> set[str]:
    rows = duckdb.sql(f"""SELECT DISTINCT lpad(zipcode, 5, '0')
        FROM read_csv('{SAMPLE_ZIP_INCOME}', all_varchar = true)""").fetchall()
    return {row[0] for row in rows} - {"00000", "99999"}


def test_client_zips_come_in_every_form(con):
    source = source_zips()
    raw_zips = [row[0] for row in con.execute("SELECT zip_code FROM clients").fetchall()]
    forms = [zip_form(raw, source) for raw in raw_zips]
    assert set(forms) == {
        "valid",
        "zip_plus_four",
        "nine_digits",
        "lost_leading_zero",
        "not_in_source",
        "blank",
        "whitespace",
        "null",
        "junk",
        "padded",
    }
    assert forms.count("valid") > 0.7 * len(forms)
    # the altered forms still carry a ZIP of the source
    for raw, form in zip(raw_zips, forms):
        if form in ("zip_plus_four", "nine_digits", "padded"):
            assert raw.strip()[:5] in source, raw
        if form == "lost_leading_zero":
            assert raw.zfill(5) in source, raw


def test_clients_join_over_time_and_spend_is_heavy_tailed(con):
    joined_before, joined_during = con.execute("""SELECT
        count(*) FILTER (created_at < '2023-11-01'),
        count(*) FILTER (created_at >= '2023-11-01' AND created_at < '2024-02-01')
        FROM clients""").fetchone()
    assert joined_before > joined_during > 0
    assert (
        scalar(
            con,
            """SELECT count(*) FROM clients
        WHERE clinic_id NOT IN (SELECT clinic_id FROM clinics)""",
        )
        == 0
    )
    # the top tenth of the buying clients bring a large share of the in-clinic revenue
    top_share = scalar(
        con,
        """
        WITH spend AS (
            SELECT client_id, sum(revenue) AS revenue FROM transactions_inclinic
            WHERE client_id IN (SELECT client_id FROM clients) GROUP BY ALL
        )
        SELECT sum(revenue) FILTER (top <= 0.1) / sum(revenue)
        FROM (SELECT revenue, percent_rank() OVER (ORDER BY revenue DESC) AS top FROM spend)""",
    )
    assert top_share > 0.3
    # nobody buys before joining (rows filed under the wrong month aside)
    assert (
        scalar(
            con,
            """SELECT count(*)
        FROM transactions_inclinic t JOIN clients c USING (client_id)
        WHERE t.transaction_ts < c.created_at
            AND strftime(t.transaction_ts, '%Y-%m') = t.month""",
        )
        == 0
    )


def test_inclinic_baskets_categories_and_returns(con):
    categories = {
        row[0] for row in con.execute("SELECT DISTINCT product_category FROM transactions_inclinic").fetchall()
    }
    assert CATEGORIES < categories and len(categories - CATEGORIES) >= 2
    low, high, negative_share = con.execute("""SELECT min(quantity), max(quantity),
        avg((revenue < 0)::INTEGER) FROM transactions_inclinic""").fetchone()
    assert (low, high) == (1, 5)
    assert 0.015 < negative_share < 0.05
    # several lines per visit (same client, clinic and instant), of different categories
    most_lines, distinct_share = con.execute("""
        SELECT max(lines), avg((lines = categories)::INTEGER) FROM (
            SELECT count(*) AS lines, count(DISTINCT product_category) AS categories
            FROM (SELECT DISTINCT * FROM transactions_inclinic)
            WHERE client_id IS NOT NULL
            GROUP BY client_id, clinic_id, transaction_ts)""").fetchone()
    assert most_lines >= 4
    # two visits can share an instant (a month edge), so not quite all
    assert distinct_share > 0.95
    away = scalar(
        con,
        """SELECT avg((t.clinic_id <> c.clinic_id)::INTEGER)
        FROM transactions_inclinic t JOIN clients c USING (client_id)""",
    )
    assert 0.02 < away < 0.2


@pytest.mark.parametrize("table", list(EVENTS))
def test_events_reach_both_edges_of_each_month(con, table):
    _, ts = EVENTS[table]
    for month in MONTHS:
        first, last = con.execute(f"""SELECT
            count(*) FILTER ({ts} = strptime(month, '%Y-%m')),
            count(*) FILTER ({ts} = strptime(month, '%Y-%m') + INTERVAL 1 MONTH
                                    - INTERVAL 1 MICROSECOND)
            FROM {table} WHERE month = '{month}'""").fetchone()
        assert first > 0 and last > 0, (table, month)


def test_online_orders_channels_and_statuses(con):
    channels = dict(con.execute("SELECT channel, count(*) FROM transactions GROUP BY ALL").fetchall())
    assert set(channels) == {"HD", "CURBSIDE", "THIRD_PARTY"}
    assert channels["HD"] > sum(channels.values()) / 2
    hd_share = [
        row[0]
        for row in con.execute("""SELECT avg((channel = 'HD')::INTEGER)
        FROM transactions GROUP BY month ORDER BY month""").fetchall()
    ]
    assert hd_share[0] < hd_share[-1]
    statuses = dict(con.execute("SELECT status, count(*) FROM transactions GROUP BY ALL").fetchall())
    assert set(statuses) == {"completed", "cancelled", "refunded"}
    assert statuses["completed"] > 0.8 * sum(statuses.values())


def test_web_sessions_have_anonymous_visitors_and_few_orders(con):
    anonymous, ordering, funnel_broken = con.execute("""SELECT
        avg((client_id IS NULL)::INTEGER),
        avg((orders > 0)::INTEGER),
        count(*) FILTER (page_views < 1 OR product_views > page_views
                         OR add_to_cart_events > product_views)
        FROM web_sessions""").fetchone()
    assert 0.12 < anonymous < 0.3
    assert 0.01 < ordering < 0.3
    assert funnel_broken == 0


def test_activity_follows_the_seasons(tmp_path):
    options = GeneratorOptions(months=12, clinics=4, clients=100, inclinic_rows_per_month=500, bad_row_share=0)
    written = generate_landing_zone(tmp_path, options)
    rows = dict(
        duckdb.sql(f"""SELECT month, count(*)
        FROM {month_files(tmp_path, "transactions_inclinic")} GROUP BY ALL""").fetchall()
    )
    assert rows["2023-06"] > rows["2023-01"] and rows["2023-07"] > rows["2023-12"]
    assert written["transactions_inclinic"] == sum(rows.values())


def test_rewrites_its_tables_and_leaves_the_rest(tmp_path):
    stale_month = tmp_path / "transactions" / "month=1999-01"
    stale_month.mkdir(parents=True)
    (stale_month / "part-0.parquet").write_text("stale")
    (tmp_path / "notes.txt").write_text("keep me")
    options = GeneratorOptions(months=1, clinics=4, clients=50, inclinic_rows_per_month=300)
    generate_landing_zone(tmp_path, options)
    assert not stale_month.exists()
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "transactions" / "month=2023-01" / "part-0.parquet").exists()


def test_zips_come_from_the_given_income_file(tmp_path):
    # another year's spelling of the columns, and ZIPs without their leading zero
    income = tmp_path / "21zpallagi.csv"
    income.write_text(
        "STATEFIPS,STATE,ZIPCODE,AGI_STUB,N1,A00100\n"
        "25,MA,0,1,100,2000\n25,MA,1002,1,40,900\n25,MA,2138,1,60,1500\n"
        "25,MA,99999,1,5,50\n"
    )
    options = GeneratorOptions(months=1, clinics=3, clients=300, inclinic_rows_per_month=300)
    generate_landing_zone(tmp_path / "raw", options, income)
    clinic_zips = {row[0] for row in duckdb.sql(f"SELECT zip_code FROM '{tmp_path}/raw/clinics.parquet'").fetchall()}
    client_zips = {
        row[0]
        for row in duckdb.sql(f"""SELECT zip_code
        FROM '{tmp_path}/raw/clients.parquet'
        WHERE regexp_full_match(zip_code, '[0-9]{{5}}')
            AND zip_code NOT LIKE '995%' AND zip_code <> '00000'""").fetchall()
    }
    assert clinic_zips <= {"01002", "02138"}
    assert client_zips == {"01002", "02138"}


@pytest.mark.parametrize(
    "change",
    [{"start_month": "2023-13"}, {"months": 0}, {"clients": 0}, {"bad_row_share": 0.9}, {"online_orders_ratio": -1}],
)
def test_rejects_impossible_options(tmp_path, change):
    with pytest.raises(ValueError):
        generate_landing_zone(tmp_path, GeneratorOptions(**change))


def test_shipped_zip_income_sample_has_the_irs_shape():
    sample = f"read_csv('{SAMPLE_ZIP_INCOME}', all_varchar = true)"
    columns = set(duckdb.sql(f"SELECT * FROM {sample}").columns)
    assert {"STATEFIPS", "STATE", "zipcode", "agi_stub", "N1", "A00100", "synthetic_sample"} <= columns
    per_zip = duckdb.sql(f"""
        SELECT state, lpad(zipcode, 5, '0') AS zip,
               list(agi_stub::INTEGER ORDER BY agi_stub::INTEGER) AS stubs,
               sum(A00100::BIGINT) * 1000 / sum(N1::BIGINT) AS avg_agi
        FROM {sample} GROUP BY ALL""").fetchall()
    assert all(stubs == [1, 2, 3, 4, 5, 6] for _, _, stubs, _ in per_zip)
    states = {state for state, *_ in per_zip}
    assert len(states) >= 8
    for not_a_zip in ("00000", "99999"):  # state totals and "other", in every state
        assert {state for state, zip_code, *_ in per_zip if zip_code == not_a_zip} == states
    averages = {zip_code: avg for _, zip_code, _, avg in per_zip if zip_code not in ("00000", "99999")}
    assert 300 <= len(averages) <= 600
    assert {"01002", "02138", "06511"} <= set(averages)
    assert 30_000 < min(averages.values()) and max(averages.values()) < 450_000
    assert len(set(averages.values())) < len(averages)  # ties
    # written without leading zeros, as some IRS years are
    assert duckdb.sql(f"SELECT count(*) FROM {sample} WHERE zipcode = '1002'").fetchall() == [(6,)]
