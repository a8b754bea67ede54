"""A small hand-built raw landing zone where every row is placed for a reason.

Months 2024-01 .. 2024-04 are featured (start month 2024-01). A 2023-12 folder
(history before the start month: must be ignored) and a 2024-05 folder (the
future of April: must never be seen) are written too.

Clinics
    1 Maple Street (complete)       the main clinic: most edge cases live here
    2 Harbor Vet (complete)         purchases of clinic-1 clients happen here too
    3 Solo Paws (complete)          a single eligible client (in-clinic pctl 0)
    4 / 5 / 6                       in_progress / not_started / disabled: never featured
    7 Late Start (complete)         its only client is created in March: no
                                    eligible client in Jan/Feb, so not ranked then

In January clients 102, 103, 201 and 301 all have total_revenue_12m = 150.00
(a tie in their clinic and globally), and clinics 2 and 3 both have
clinic_revenue_12m = 150.00 (a tie between clinics). Client 102's 150.00 is
149.70 + 0.10 + 0.20, which is not 150.0 when summed as doubles: ties must be
computed on exact money.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from feature_store_assets.defs.dbt.project import load_manifest
from feature_store_assets.defs.landing_zone.validation import contract_from_manifest

START_MONTH = "2024-01"
FEATURE_MONTHS = ["2024-01", "2024-02", "2024-03", "2024-04"]

# What the bad-input rules must reject: (table, reason, folder month) -> keys.
PLANTED_REJECTIONS: dict[tuple[str, str, str], set[int]] = {
    ("transactions_inclinic", "wrong_month_folder", "2024-01"): {1121},
    ("transactions_inclinic", "wrong_month_folder", "2024-02"): {1207},
    ("transactions_inclinic", "unknown_client", "2024-01"): {1118, 1119},
    ("transactions_inclinic", "unknown_client", "2024-03"): {1306},
    ("transactions_inclinic", "null_revenue", "2024-01"): {1120},
    ("transactions_inclinic", "null_revenue", "2024-02"): {1209},
    ("transactions", "wrong_month_folder", "2024-02"): {5204},
    ("transactions", "unknown_client", "2024-01"): {5109},
    ("transactions", "null_revenue", "2024-01"): {5110},
    ("web_sessions", "wrong_month_folder", "2024-02"): {9203},
    ("web_sessions", "unknown_client", "2024-01"): {9106},
}


@dataclass(frozen=True)
class Expectation:
    """One hand-computed feature value of the edge-case zone; value None means NULL."""

    why: str
    month: str
    client_id: int
    column: str
    value: object

    def matches(self, actual) -> bool:
        if actual is None or actual is pd.NA or (isinstance(actual, float) and math.isnan(actual)):
            return self.value is None
        if isinstance(self.value, float):
            return math.isclose(actual, self.value, rel_tol=1e-9, abs_tol=1e-12)
        return actual == self.value


# Hand-computed from the rows below; checked against the reference and the pipeline.
EXPECTED_VALUES = [
    # January
    Expectation(
        "re-delivered copy, null revenue and Feb 1 00:00 filed in Jan do not count",
        "2024-01",
        101,
        "inclinic_revenue_1m",
        155.75,
    ),
    Expectation(
        "cancelled, refunded, CURBSIDE, THIRD_PARTY and duplicate orders never count",
        "2024-01",
        101,
        "hd_revenue_12m",
        60.0,
    ),
    Expectation("one completed HD order", "2024-01", 101, "hd_orders_12m", 1),
    Expectation("hd share = 60 / (155.75 + 60)", "2024-01", 101, "hd_revenue_share_12m", 60 / 215.75),
    Expectation(
        "two purchases on Jan 3 are one visit, Jan 20 at another clinic a second",
        "2024-01",
        101,
        "inclinic_visits_12m",
        2,
    ),
    Expectation(
        "last purchase Jan 20 (other clinic), 11 days before Jan 31", "2024-01", 101, "days_since_last_purchase", 11
    ),
    Expectation("vaccine share of in-clinic revenue", "2024-01", 101, "inclinic_share_vaccines_12m", 80 / 155.75),
    Expectation("tenure from created_at's date (2023-06-15) to E", "2024-01", 101, "tenure_days", 231),
    Expectation(
        "149.70 + 0.10 + 0.20 ties exactly with three other 150.00 (8 of 14 below)",
        "2024-01",
        102,
        "total_revenue_pctl_global_12m",
        8 / 14,
    ),
    Expectation("global tie, HD-only 150.00", "2024-01", 103, "total_revenue_pctl_global_12m", 8 / 14),
    Expectation("global tie, clinic 2", "2024-01", 201, "total_revenue_pctl_global_12m", 8 / 14),
    Expectation("global tie, clinic 3", "2024-01", 301, "total_revenue_pctl_global_12m", 8 / 14),
    Expectation("tie within clinic 1 (7 of 11 below)", "2024-01", 102, "total_revenue_pctl_in_clinic_12m", 7 / 11),
    Expectation("tie within clinic 1, other side", "2024-01", 103, "total_revenue_pctl_in_clinic_12m", 7 / 11),
    Expectation("HD-only client ranks first on HD in clinic 1", "2024-01", 103, "hd_revenue_pctl_in_clinic_12m", 1.0),
    Expectation(
        "clinic revenue sums the home clinic's eligible clients", "2024-01", 101, "clinic_revenue_12m", 1100.75
    ),
    Expectation("clinic 1 ranks above the tied clinics 2 and 3", "2024-01", 101, "clinic_revenue_pctl_global_12m", 1.0),
    Expectation("clinics 2 and 3 tie at 150.00", "2024-01", 201, "clinic_revenue_pctl_global_12m", 0.0),
    Expectation("clinics 3 and 2 tie at 150.00", "2024-01", 301, "clinic_revenue_pctl_global_12m", 0.0),
    Expectation("single eligible client of its clinic", "2024-01", 301, "total_revenue_pctl_in_clinic_12m", 0.0),
    Expectation("grooming counts as other", "2024-01", 301, "inclinic_share_other_12m", 1.0),
    Expectation("the 2023-12 folder is before the start month", "2024-01", 109, "inclinic_revenue_12m", 220.0),
    Expectation("Jan 31 23:59:59.999999 is January", "2024-01", 111, "inclinic_revenue_1m", 325.0),
    Expectation("two purchases on Jan 31 are one visit", "2024-01", 111, "inclinic_visits_12m", 1),
    Expectation("purchase on the last day of the month", "2024-01", 111, "days_since_last_purchase", 0),
    Expectation("duplicate session once, anonymous sessions belong to no one", "2024-01", 112, "web_sessions_3m", 2),
    Expectation("one order over two sessions", "2024-01", 112, "web_conversion_rate_3m", 0.5),
    Expectation("no activity: zero revenue", "2024-01", 105, "total_revenue_12m", 0.0),
    Expectation("no activity: zero visits", "2024-01", 105, "inclinic_visits_12m", 0),
    Expectation("no activity: zero sessions", "2024-01", 105, "web_sessions_3m", 0),
    Expectation("no activity: no last purchase", "2024-01", 105, "days_since_last_purchase", None),
    Expectation("no activity: no sessions, no rate", "2024-01", 105, "web_conversion_rate_3m", None),
    Expectation("no activity: total 0, no share", "2024-01", 105, "hd_revenue_share_12m", None),
    Expectation("no activity: no in-clinic revenue, no mix", "2024-01", 105, "inclinic_share_food_12m", None),
    Expectation("no activity: lowest rank", "2024-01", 105, "total_revenue_pctl_global_12m", 0.0),
    Expectation("revenue 0.00 is not a purchase", "2024-01", 113, "days_since_last_purchase", None),
    Expectation("revenue 0.00 is not a visit", "2024-01", 113, "inclinic_visits_12m", 0),
    # February
    Expectation("a return makes 12m revenue negative", "2024-02", 104, "total_revenue_12m", -20.0),
    Expectation("total <= 0: NULL HD share", "2024-02", 104, "hd_revenue_share_12m", None),
    Expectation("in-clinic <= 0: NULL category shares", "2024-02", 104, "inclinic_share_pharmacy_12m", None),
    Expectation("a return is not a purchase: last purchase Jan 12", "2024-02", 104, "days_since_last_purchase", 48),
    Expectation("negative revenue ranks lowest", "2024-02", 104, "total_revenue_pctl_global_12m", 0.0),
    Expectation("events before created_at count", "2024-02", 106, "inclinic_revenue_12m", 100.0),
    Expectation("created Feb 10, E = Mar 1", "2024-02", 106, "tenure_days", 20),
    Expectation("created exactly at January's E: featured from February", "2024-02", 107, "tenure_days", 29),
    Expectation("purchase at the instant of creation counts", "2024-02", 107, "inclinic_revenue_1m", 42.0),
    Expectation("Feb 29 23:59:59.999999 is February, Mar 1 00:00 is not", "2024-02", 108, "inclinic_revenue_1m", 75.0),
    Expectation("purchase in the last microsecond of the month", "2024-02", 108, "days_since_last_purchase", 0),
    Expectation("only a 0.00 row: no visit", "2024-02", 110, "inclinic_visits_12m", 0),
    Expectation("only a 0.00 row: no purchase", "2024-02", 110, "days_since_last_purchase", None),
    Expectation("only a 0.00 row: NULL mix", "2024-02", 110, "inclinic_share_food_12m", None),
    Expectation("a completed HD order of 0.00 is an order", "2024-02", 111, "hd_orders_12m", 1),
    Expectation("a completed HD order of 0.00 is a purchase", "2024-02", 111, "days_since_last_purchase", 19),
    Expectation("Feb 1 00:00:00 is February", "2024-02", 112, "hd_revenue_1m", 88.8),
    Expectation(
        "Mar 1 filed in Feb rejected; order attributed to another clinic counts", "2024-02", 101, "hd_revenue_1m", 20.0
    ),
    Expectation("two purchases on Feb 14 are one visit", "2024-02", 101, "inclinic_visits_12m", 3),
    Expectation("January session filed in February rejected", "2024-02", 113, "web_sessions_3m", 1),
    Expectation("two orders in one session", "2024-02", 113, "web_conversion_rate_3m", 2.0),
    # March
    Expectation("Mar 1 00:00:00 is March", "2024-03", 108, "inclinic_revenue_1m", 500.0),
    Expectation("a return alone: negative 1m revenue", "2024-03", 101, "inclinic_revenue_1m", -80.0),
    Expectation("purchase before created_at (Mar 2 < Mar 15) counts", "2024-03", 701, "inclinic_revenue_12m", 60.0),
    Expectation("clinics 2, 3 and 7 tie at 150.00", "2024-03", 701, "clinic_revenue_pctl_global_12m", 0.0),
    Expectation("unknown category in the 12m mix", "2024-03", 113, "inclinic_share_other_12m", 0.8),
    Expectation("Mar 31 23:59:59.999999 is March", "2024-03", 114, "hd_revenue_1m", 33.33),
    Expectation("3m window Jan..Mar: three sessions, one order", "2024-03", 112, "web_conversion_rate_3m", 1 / 3),
    # April
    Expectation("last purchase in month 1, checked in month 4", "2024-04", 109, "days_since_last_purchase", 116),
    Expectation("May 1 00:00:00 is never seen by April", "2024-04", 112, "inclinic_revenue_1m", 19.99),
    Expectation("3m window Feb..Apr drops January's sessions", "2024-04", 112, "web_sessions_3m", 2),
    Expectation("sessions without orders: rate 0, not NULL", "2024-04", 112, "web_conversion_rate_3m", 0.0),
    Expectation("a March return cancels January's vaccines", "2024-04", 101, "inclinic_share_vaccines_12m", 0.0),
    Expectation("clinic 2 = 300.00 + 150.00", "2024-04", 201, "clinic_revenue_12m", 450.0),
    Expectation("four clinics ranked", "2024-04", 201, "clinic_revenue_pctl_global_12m", 2 / 3),
    Expectation("clinic 3 second lowest", "2024-04", 301, "clinic_revenue_pctl_global_12m", 1 / 3),
    # ZIP forms
    Expectation("4 digits, lost leading zero", "2024-01", 101, "zip_code", "02134"),
    Expectation("average AGI = 6500 * 1000 / 150", "2024-01", 101, "zip_avg_agi", 6_500_000 / 150),
    Expectation("ZIP+4", "2024-01", 103, "zip_code", "10001"),
    Expectation("nine digits", "2024-01", 104, "zip_code", "10001"),
    Expectation("null ZIP", "2024-01", 105, "zip_income_match", "missing_zip"),
    Expectation("3 digits, lost leading zeros", "2024-02", 106, "zip_code", "00501"),
    Expectation("3 digits: matched", "2024-02", 106, "zip_avg_agi_pctl", 0.4),
    Expectation("blank ZIP", "2024-02", 107, "zip_income_match", "missing_zip"),
    Expectation("white space only", "2024-01", 108, "zip_income_match", "missing_zip"),
    Expectation("junk", "2024-01", 109, "zip_income_match", "invalid_zip"),
    Expectation("00000", "2024-01", 110, "zip_income_match", "invalid_zip"),
    Expectation("00000 has no zip_code", "2024-01", 110, "zip_code", None),
    Expectation("valid, not in the source", "2024-01", 111, "zip_income_match", "not_in_source"),
    Expectation("not_in_source keeps its ZIP", "2024-01", 111, "zip_code", "94105"),
    Expectation("not_in_source has no income", "2024-01", 111, "zip_avg_agi", None),
    Expectation("surrounded by spaces", "2024-01", 112, "zip_code", "60601"),
    Expectation("tied average AGI", "2024-01", 112, "zip_avg_agi_pctl", 0.8),
    Expectation("tied average AGI, other side", "2024-01", 113, "zip_avg_agi_pctl", 0.8),
    Expectation("six digits", "2024-01", 114, "zip_income_match", "invalid_zip"),
    Expectation("two digits", "2024-01", 202, "zip_income_match", "invalid_zip"),
    Expectation("written 73301 in the file, lowest average", "2024-01", 201, "zip_avg_agi_pctl", 0.0),
]

# (month, client_id): eligible clients only.
ABSENT_ROWS = [
    ("2024-01", 106),  # created Feb 10, after January's E
    ("2024-01", 107),  # created exactly at January's E (not < E)
    ("2024-01", 701),  # created Mar 15
    ("2024-02", 701),
]
NEVER_FEATURED_CLIENTS = {401, 501, 601}  # home clinics in_progress, not_started, disabled
NEVER_FEATURED_CLINICS = {4, 5, 6}


# The contract's column types (the dbt sources' data_type) as the pyarrow types the files are written with.
PYARROW_TYPES = {
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "varchar": pa.string(),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
    "decimal(12,2)": pa.decimal128(12, 2),
}


def contract_schema(table: str) -> pa.Schema:
    """A landing-zone table's columns, in order, with the contract's types (docs/data-contract.md)."""
    columns = contract_from_manifest(load_manifest())[table]
    return pa.schema([(name, PYARROW_TYPES[contract_type]) for name, contract_type in columns.items()])


CLINICS_SCHEMA = contract_schema("clinics")
CLIENTS_SCHEMA = contract_schema("clients")
INCLINIC_SCHEMA = contract_schema("transactions_inclinic")
ONLINE_SCHEMA = contract_schema("transactions")
WEB_SCHEMA = contract_schema("web_sessions")


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _money(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


CLINICS = [
    (1, "Maple Street Animal Hospital", "small_animal", "02134", "MA", "complete", dt.date(2022, 3, 1)),
    (2, "Harbor Veterinary Clinic", "mixed", "10001", "NY", "complete", dt.date(2022, 6, 1)),
    (3, "Solo Paws Equine", "equine", "60601", "IL", "complete", dt.date(2023, 1, 10)),
    (4, "Northside Emergency Vets", "emergency", "30301", "GA", "in_progress", None),
    (5, "Prairie Animal Care", "small_animal", "73301", "TX", "not_started", None),
    (6, "Old Town Pet Clinic", "small_animal", "94105", "CA", "disabled", None),
    (7, "Late Start Veterinary", "small_animal", "10001", "NY", "complete", dt.date(2024, 3, 1)),
]

CLIENTS = [
    # clinic 1
    (101, 1, "2134", _ts("2023-06-15 10:30:00")),  # 4 digits, lost leading zero -> 02134
    (102, 1, "02134", _ts("2023-01-01 00:00:00")),  # plain 5-digit ZIP
    (103, 1, "10001-1234", _ts("2023-09-30 23:59:59")),  # ZIP+4 -> 10001
    (104, 1, "100011234", _ts("2023-11-11 08:00:00")),  # nine digits -> 10001
    (105, 1, None, _ts("2023-12-01 09:00:00")),  # null ZIP; no activity at all
    (106, 1, "501", _ts("2024-02-10 14:00:00")),  # 3 digits -> 00501; created after Jan's E
    (107, 1, "", _ts("2024-02-01 00:00:00")),  # blank ZIP; created exactly at Jan's E
    (108, 1, " \t ", _ts("2022-05-05 12:00:00")),  # white space only -> missing
    (109, 1, "ABCDE", _ts("2023-03-03 03:03:03")),  # junk -> invalid
    (110, 1, "00000", _ts("2023-04-04 00:00:00")),  # 00000 -> invalid
    (111, 1, "94105", _ts("2023-05-05 00:00:00")),  # valid, not in the income source
    (112, 1, " 60601 ", _ts("2023-07-07 07:07:07")),  # surrounded by spaces -> 60601
    (113, 1, "30301", _ts("2023-08-08 00:00:00")),  # same average AGI as 60601 (pctl tie)
    (114, 1, "123456", _ts("2023-02-02 00:00:00")),  # six digits -> invalid
    # clinic 2
    (201, 2, "73301", _ts("2023-10-10 00:00:00")),
    (202, 2, "12", _ts("2023-10-11 00:00:00")),  # two digits -> invalid; no activity
    # clinic 3: its single eligible client
    (301, 3, "10001", _ts("2023-01-15 00:00:00")),
    # non-complete clinics: never featured, even with activity
    (401, 4, "30301", _ts("2023-01-01 00:00:00")),
    (501, 5, "73301", _ts("2023-01-01 00:00:00")),
    (601, 6, "94105", _ts("2023-01-01 00:00:00")),
    # clinic 7: first eligible in March
    (701, 7, "10001", _ts("2024-03-15 00:00:00")),
]

# (transaction_id, client_id, clinic_id, transaction_ts, product_category, quantity, revenue)
INCLINIC_BY_FOLDER: dict[str, list[tuple]] = {
    "2023-12": [
        (1001, 109, 1, _ts("2023-12-20 10:00:00"), "vaccines", 1, "500.00"),  # before start month: ignored
    ],
    "2024-01": [
        (1101, 101, 1, _ts("2024-01-03 09:15:00"), "vaccines", 1, "80.00"),
        (1102, 101, 1, _ts("2024-01-03 09:20:00"), "diagnostics", 1, "45.50"),  # same date as 1101: one visit
        (1103, 101, 2, _ts("2024-01-20 16:00:00"), "pharmacy", 2, "30.25"),  # at a clinic other than home
        (1104, 102, 1, _ts("2024-01-08 10:00:00"), "food", 1, "149.70"),
        (1105, 102, 1, _ts("2024-01-09 10:00:00"), "food", 1, "0.10"),
        (1106, 102, 1, _ts("2024-01-10 10:00:00"), "parasiticides", 1, "0.20"),  # 102 totals exactly 150.00
        (1107, 104, 1, _ts("2024-01-12 11:00:00"), "pharmacy", 1, "40.00"),
        (1108, 109, 1, _ts("2024-01-05 14:00:00"), "dental", 1, "220.00"),  # 109's last purchase ever
        (1109, 111, 1, _ts("2024-01-31 23:59:59.999999"), "surgery", 1, "300.00"),  # last instant of January
        (1110, 111, 1, _ts("2024-01-31 08:00:00"), "vaccines", 1, "25.00"),  # same date as 1109: one visit
        (1111, 201, 2, _ts("2024-01-15 12:00:00"), "diagnostics", 1, "150.00"),
        (1112, 301, 3, _ts("2024-01-22 09:00:00"), "grooming", 1, "150.00"),  # unknown category -> other
        (1113, 106, 1, _ts("2024-01-25 10:00:00"), "vaccines", 1, "65.00"),  # before 106's created_at: counts from Feb
        (1114, 401, 4, _ts("2024-01-10 10:00:00"), "vaccines", 1, "90.00"),  # in_progress clinic
        (1115, 501, 5, _ts("2024-01-11 10:00:00"), "food", 1, "70.00"),  # not_started clinic
        (1116, 601, 6, _ts("2024-01-12 10:00:00"), "food", 1, "55.00"),  # disabled clinic
        (1118, None, 1, _ts("2024-01-14 10:00:00"), "vaccines", 1, "20.00"),  # null client -> unknown_client
        (1119, 999, 1, _ts("2024-01-15 10:00:00"), "vaccines", 1, "20.00"),  # unknown client -> unknown_client
        (1120, 101, 1, _ts("2024-01-16 10:00:00"), "vaccines", 1, None),  # null revenue -> null_revenue
        (1121, 101, 1, _ts("2024-02-01 00:00:00"), "vaccines", 1, "999.00"),  # February's first instant in Jan folder
        (1122, 113, 1, _ts("2024-01-18 10:00:00"), "vaccines", 1, "0.00"),  # revenue 0: no purchase, no visit
    ],
    "2024-02": [
        (1201, 104, 1, _ts("2024-02-05 10:00:00"), "pharmacy", -1, "-60.00"),  # return: 104's 12m revenue -20.00
        (1202, 101, 1, _ts("2024-02-14 10:00:00"), "dental", 1, "120.00"),
        (1203, 108, 2, _ts("2024-02-29 23:59:59.999999"), "vaccines", 1, "75.00"),  # last instant of (leap) February
        (1204, 110, 1, _ts("2024-02-20 10:00:00"), "food", 1, "0.00"),  # 110's only row: revenue 0
        (1205, 106, 1, _ts("2024-02-12 10:00:00"), "diagnostics", 1, "35.00"),
        (1206, 107, 1, _ts("2024-02-01 00:00:00"), "vaccines", 1, "42.00"),  # at the instant 107 is created
        (1207, 102, 1, _ts("2024-01-31 23:59:59"), "food", 1, "10.00"),  # January row in Feb folder
        (1208, 101, 1, _ts("2024-02-14 16:30:00"), "food", 1, "24.50"),  # second purchase on 1202's date: one visit
        (1209, 113, 1, _ts("2024-02-15 10:00:00"), "vaccines", 1, None),  # null revenue -> null_revenue
    ],
    "2024-03": [
        (1301, 108, 2, _ts("2024-03-01 00:00:00"), "surgery", 1, "500.00"),  # midnight of Mar 1: March, not February
        (1302, 113, 1, _ts("2024-03-10 10:00:00"), "grooming", 1, "80.00"),  # unknown category -> other
        (1303, 113, 1, _ts("2024-03-10 11:00:00"), "vaccines", 1, "20.00"),
        (1304, 701, 7, _ts("2024-03-02 10:00:00"), "food", 1, "60.00"),  # before 701's created_at
        (1305, 101, 1, _ts("2024-03-05 10:00:00"), "vaccines", -1, "-80.00"),  # return of January's vaccine
        (1306, 888, 1, _ts("2024-03-06 10:00:00"), "food", 1, "12.00"),  # unknown client -> unknown_client
    ],
    "2024-04": [
        (1401, 112, 1, _ts("2024-04-30 23:59:59.999999"), "pharmacy", 1, "19.99"),  # last instant of April
        (1402, 102, 1, _ts("2024-04-02 10:00:00"), "food", 1, "0.00"),  # revenue 0
        (1403, 201, 2, _ts("2024-04-03 10:00:00"), "vaccines", 1, "150.00"),
        (1404, 301, 3, _ts("2024-04-04 10:00:00"), "dental", 1, "10.00"),
    ],
    "2024-05": [
        (1501, 112, 1, _ts("2024-05-01 00:00:00"), "food", 1, "1000.00"),  # April's future: never seen
    ],
}
# Re-delivered file: exact copies of rows already delivered; each counts once.
INCLINIC_REDELIVERED = {
    "2024-01": [row for row in INCLINIC_BY_FOLDER["2024-01"] if row[0] in (1101, 1104)],
}

# (transaction_id, client_id, clinic_id, transaction_ts, channel, product_category, revenue, status)
ONLINE_BY_FOLDER: dict[str, list[tuple]] = {
    "2024-01": [
        (5101, 103, 1, _ts("2024-01-10 12:00:00"), "HD", "food", "150.00", "completed"),  # 103's 150.00 tie
        (5102, 101, 1, _ts("2024-01-11 12:00:00"), "HD", "pharmacy", "60.00", "completed"),
        (5103, 101, 1, _ts("2024-01-12 12:00:00"), "HD", "pharmacy", "40.00", "cancelled"),  # never counts
        (5104, 101, 1, _ts("2024-01-13 12:00:00"), "HD", "pharmacy", "25.00", "refunded"),  # never counts
        (5105, 101, 1, _ts("2024-01-14 12:00:00"), "CURBSIDE", "food", "35.00", "completed"),  # never counts
        (5106, 101, 1, _ts("2024-01-15 12:00:00"), "THIRD_PARTY", "food", "45.00", "completed"),  # never counts
        (5107, 401, 4, _ts("2024-01-16 12:00:00"), "HD", "food", "100.00", "completed"),  # in_progress clinic
        (5102, 101, 1, _ts("2024-01-11 12:00:00"), "HD", "pharmacy", "60.00", "completed"),  # exact duplicate
        (5109, None, 1, _ts("2024-01-17 12:00:00"), "HD", "food", "30.00", "completed"),  # null client
        (5110, 103, 1, _ts("2024-01-18 12:00:00"), "HD", "food", None, "completed"),  # null revenue
    ],
    "2024-02": [
        (5201, 112, 1, _ts("2024-02-01 00:00:00"), "HD", "food", "88.80", "completed"),  # first instant of Feb
        (5202, 101, 2, _ts("2024-02-20 12:00:00"), "HD", "dental", "20.00", "completed"),  # attributed to clinic 2
        (
            5203,
            111,
            1,
            _ts("2024-02-10 12:00:00"),
            "HD",
            "food",
            "0.00",
            "completed",
        ),  # a completed HD order is a purchase
        (5204, 101, 1, _ts("2024-03-01 00:00:00"), "HD", "food", "77.00", "completed"),  # March row in Feb folder
    ],
    "2024-03": [
        (5301, 114, 1, _ts("2024-03-31 23:59:59.999999"), "HD", "vaccines", "33.33", "completed"),
        (5302, 701, 7, _ts("2024-03-20 12:00:00"), "HD", "food", "90.00", "completed"),
        (5303, 601, 6, _ts("2024-03-21 12:00:00"), "HD", "food", "40.00", "completed"),  # disabled clinic
    ],
    "2024-04": [
        (5401, 103, 1, _ts("2024-04-15 12:00:00"), "HD", "food", "10.00", "refunded"),  # never counts
        (5402, 202, 2, _ts("2024-04-20 12:00:00"), "HD", "food", "150.00", "completed"),
        (5403, 104, 1, _ts("2024-04-21 12:00:00"), "HD", "food", "15.00", "cancelled"),  # never counts
    ],
}

# (session_id, client_id, session_start_ts, page_views, product_views, add_to_cart_events, orders)
WEB_BY_FOLDER: dict[str, list[tuple]] = {
    "2024-01": [
        (9101, 112, _ts("2024-01-05 10:00:00"), 10, 4, 1, 0),  # a session with 0 orders
        (9102, 112, _ts("2024-01-20 10:00:00"), 8, 3, 2, 1),
        (9103, None, _ts("2024-01-21 10:00:00"), 3, 1, 0, 0),  # anonymous: kept, belongs to no client
        (9104, 101, _ts("2024-01-31 23:59:59.999999"), 5, 2, 1, 1),
        (9102, 112, _ts("2024-01-20 10:00:00"), 8, 3, 2, 1),  # exact duplicate of 9102
        (9106, 777, _ts("2024-01-22 10:00:00"), 2, 1, 0, 0),  # unknown client -> unknown_client
        (9107, 601, _ts("2024-01-23 10:00:00"), 4, 2, 1, 1),  # disabled clinic
    ],
    "2024-02": [
        (9201, 101, _ts("2024-02-01 00:00:00"), 4, 1, 0, 0),  # first instant of Feb
        (9202, 113, _ts("2024-02-11 10:00:00"), 6, 2, 1, 2),  # two orders in one session
        (9203, 113, _ts("2024-01-15 10:00:00"), 1, 1, 1, 1),  # January row in Feb folder
        (9204, None, _ts("2024-02-12 10:00:00"), 2, 0, 0, 0),  # anonymous
    ],
    "2024-03": [
        (9301, 112, _ts("2024-03-03 10:00:00"), 1, 0, 0, 0),
        (9302, 106, _ts("2024-03-04 10:00:00"), 2, 1, 1, 1),
    ],
    "2024-04": [
        (9401, 112, _ts("2024-04-01 00:00:00"), 3, 1, 1, 0),  # April's 3m window drops January's sessions
    ],
    "2024-05": [
        (9501, 112, _ts("2024-05-01 00:00:00"), 9, 9, 9, 9),  # April's future: never seen
    ],
}

ZIP_INCOME_CSV = """\
statefips,STATE,ZipCode,AGI_STUB,n1,A00100
25,MA,0,1,5000,100000
25,MA,2134,1,100,2000
25,MA,2134,2,50,4500
36,NY,0,1,9000,700000
36,NY,10001,1,200,10000
36,NY,10001,2,100,12000
36,NY,10001,3,20,8000
36,NY,501,1,40,1000
36,NY,501,2,10,1400
36,NY,99999,1,300,9000
36,NY,99999,2,100,9000
17,IL,60601,1,30,1800
17,IL,60601,2,10,2200
13,GA,30301,1,60,6000
48,TX,73301,1,80,2000
"""
# Averages: 02134 = 6500*1000/150 (not the mean of bracket averages), 10001 = 93750,
# 00501 = 48000, 60601 = 30301 = 100000 (a tie), 73301 = 25000; 0 and 99999 skipped.


def _write_table(rows: list[tuple], schema: pa.Schema, path: Path) -> None:
    frame = pd.DataFrame(rows, columns=schema.names)
    if "revenue" in frame:
        frame["revenue"] = frame["revenue"].map(_money)
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No pandas metadata: the files should look like any upstream export.
    pq.write_table(table.replace_schema_metadata(None), path)


def _write_event_table(raw_dir: Path, name: str, by_folder: dict[str, list[tuple]], schema: pa.Schema) -> None:
    for month, rows in by_folder.items():
        _write_table(rows, schema, raw_dir / name / f"month={month}" / "part-0.parquet")


def write_edge_case_landing_zone(raw_dir) -> None:
    raw_dir = Path(raw_dir)
    _write_table(CLINICS, CLINICS_SCHEMA, raw_dir / "clinics.parquet")
    _write_table(CLIENTS, CLIENTS_SCHEMA, raw_dir / "clients.parquet")
    _write_event_table(raw_dir, "transactions_inclinic", INCLINIC_BY_FOLDER, INCLINIC_SCHEMA)
    for month, rows in INCLINIC_REDELIVERED.items():
        # A second file in the same folder: readers must take every *.parquet.
        _write_table(rows, INCLINIC_SCHEMA, raw_dir / "transactions_inclinic" / f"month={month}" / "part-1.parquet")
    _write_event_table(raw_dir, "transactions", ONLINE_BY_FOLDER, ONLINE_SCHEMA)
    _write_event_table(raw_dir, "web_sessions", WEB_BY_FOLDER, WEB_SCHEMA)


def write_edge_case_zip_income(csv_path) -> None:
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    csv_path.write_text(ZIP_INCOME_CSV)
