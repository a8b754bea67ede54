"""An independent pandas implementation of docs/features.md, used as the test oracle.

It shares no code with the pipeline and uses no SQL: the end-to-end tests
compare `features.client_features` with what this module computes from the
same raw landing zone. Money is summed exactly in integer cents, ranks and
ties are decided on those exact sums, and floats appear only in the output.

Readings of points docs/features.md / docs/data-contract.md leave open:

- Bad-input rules run per event table in this order: folders before the start
  month are ignored (history before it does not exist); a row whose timestamp
  month differs from its folder month is rejected (`wrong_month_folder`);
  repeated keys (transaction_id / session_id) keep their first row; a null or
  unknown client_id is rejected (`unknown_client`), except a null client_id
  in web_sessions, an anonymous session that is kept but belongs to no client;
  a null revenue is rejected (`null_revenue`).
- Eligible client in month M: home clinic `complete` and created_at < E. All
  valid events of an eligible client count, whatever clinic they happened at,
  including events dated before the client's created_at.
- tenure_days = (E - created_at's date) in days.
- days_since_last_purchase = (last day of M - date of the last purchase before
  E) in days, over all history from the start month.
- In-clinic visit: a distinct calendar date with at least one in-clinic row of
  revenue > 0 (any clinic).
- HD revenue and HD orders: channel 'HD' and status 'completed' only. A
  completed HD order counts as an order and as a purchase whatever its revenue
  (the purchase definition puts no revenue condition on HD orders).
- Product categories match the seven names exactly; anything else (including
  null or another spelling) is 'other'.
- Category shares divide by inclinic_revenue_12m and may be negative or above
  1 when returns are involved; NULL when inclinic_revenue_12m <= 0.
- clinic_revenue_pctl_global_12m ranks one value per clinic, among the clinics
  with at least one eligible client in the month.
- ZIP: "white space" is ASCII white space (space, tab, CR, LF, FF, VT). A
  result of `00000` is invalid whether written so or produced by padding
  (`000`) or from a ZIP+4 (`00000-1234`).
- IRS file: N1 and A00100 are summed exactly per ZIP before dividing; the
  percent rank of zip_avg_agi is over every ZIP of the file except 00000 and
  99999, ties decided on the exact averages.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pandas as pd

CATEGORIES = ("vaccines", "diagnostics", "pharmacy", "parasiticides", "food", "dental", "surgery")

# Column name -> SQL type, in the order of docs/features.md.
FEATURE_COLUMNS: dict[str, str] = {
    "client_id": "BIGINT",
    "feature_month": "DATE",
    "clinic_id": "BIGINT",
    "tenure_days": "INTEGER",
    "inclinic_revenue_1m": "DOUBLE",
    "inclinic_revenue_12m": "DOUBLE",
    "inclinic_visits_12m": "INTEGER",
    "hd_revenue_1m": "DOUBLE",
    "hd_revenue_12m": "DOUBLE",
    "hd_orders_12m": "INTEGER",
    "total_revenue_12m": "DOUBLE",
    "hd_revenue_share_12m": "DOUBLE",
    "days_since_last_purchase": "INTEGER",
    "web_sessions_3m": "INTEGER",
    "web_orders_3m": "INTEGER",
    "web_conversion_rate_3m": "DOUBLE",
    **{f"inclinic_share_{category}_12m": "DOUBLE" for category in (*CATEGORIES, "other")},
    "inclinic_revenue_pctl_in_clinic_12m": "DOUBLE",
    "hd_revenue_pctl_in_clinic_12m": "DOUBLE",
    "total_revenue_pctl_in_clinic_12m": "DOUBLE",
    "total_revenue_pctl_global_12m": "DOUBLE",
    "clinic_revenue_12m": "DOUBLE",
    "clinic_revenue_pctl_global_12m": "DOUBLE",
    "zip_code": "VARCHAR",
    "zip_income_match": "VARCHAR",
    "zip_avg_agi": "DOUBLE",
    "zip_avg_agi_pctl": "DOUBLE",
}


@dataclass(frozen=True)
class EventTable:
    key: str
    timestamp: str
    has_revenue: bool
    anonymous_allowed: bool


EVENT_TABLES = {
    "transactions_inclinic": EventTable("transaction_id", "transaction_ts", has_revenue=True, anonymous_allowed=False),
    "transactions": EventTable("transaction_id", "transaction_ts", has_revenue=True, anonymous_allowed=False),
    "web_sessions": EventTable("session_id", "session_start_ts", has_revenue=False, anonymous_allowed=True),
}

IRS_REQUIRED_COLUMNS = ("statefips", "state", "zipcode", "n1", "a00100")
IRS_NON_ZIPS = {"00000", "99999"}  # state totals and "other"
ASCII_WHITESPACE = " \t\n\r\f\v"


# ---------------------------------------------------------------- reading


def read_landing_zone(raw_dir) -> dict[str, pd.DataFrame]:
    raw_dir = Path(raw_dir)
    zone = {
        "clinics": pd.read_parquet(raw_dir / "clinics.parquet"),
        "clients": pd.read_parquet(raw_dir / "clients.parquet"),
    }
    for table in EVENT_TABLES:
        zone[table] = _read_event_table(raw_dir / table)
    return zone


def _read_event_table(table_dir: Path) -> pd.DataFrame:
    parts = []
    for folder in sorted(table_dir.glob("month=*")):
        for file in sorted(folder.glob("*.parquet")):
            part = pd.read_parquet(file)
            part["folder_month"] = folder.name.removeprefix("month=")
            parts.append(part)
    if not parts:
        raise FileNotFoundError(f"no month=YYYY-MM/*.parquet under {table_dir}")
    events = pd.concat(parts, ignore_index=True)
    # Nulls turn an int64 column into float64 on read; keep ids integral.
    events["client_id"] = events["client_id"].astype("Int64")
    return events


def parse_zip_income(csv_path) -> pd.DataFrame:
    raw = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    raw.columns = [column.strip().lower() for column in raw.columns]
    missing = [column for column in IRS_REQUIRED_COLUMNS if column not in raw.columns]
    if missing:
        raise ValueError(f"{csv_path}: missing IRS columns {missing}")
    returns: dict[str, Fraction] = defaultdict(Fraction)
    agi_thousands: dict[str, Fraction] = defaultdict(Fraction)
    for zipcode, n1, a00100 in zip(raw["zipcode"], raw["n1"], raw["a00100"]):
        zip_code = zipcode.strip().zfill(5)
        if zip_code in IRS_NON_ZIPS:
            continue
        returns[zip_code] += Fraction(Decimal(n1.strip()))
        agi_thousands[zip_code] += Fraction(Decimal(a00100.strip()))
    zip_codes = sorted(returns)
    # Sum first, then divide: never average the per-bracket averages.
    averages = [agi_thousands[z] * 1000 / returns[z] for z in zip_codes]
    return pd.DataFrame(
        {
            "zip_code": zip_codes,
            "avg_agi": [float(average) for average in averages],
            "avg_agi_pctl": percent_rank(averages),
        }
    )


# ---------------------------------------------------------------- pure rules


def normalize_zip(raw) -> tuple[str | None, str]:
    if raw is None or (isinstance(raw, float) and math.isnan(raw)) or raw is pd.NA:
        return None, "missing_zip"
    text = str(raw).strip(ASCII_WHITESPACE)
    if text == "":
        return None, "missing_zip"
    if re.fullmatch(r"[0-9]{5}-[0-9]{4}|[0-9]{9}", text):
        zip_code = text[:5]
    elif re.fullmatch(r"[0-9]{3,5}", text):
        zip_code = text.zfill(5)
    else:
        return None, "invalid_zip"
    if zip_code == "00000":
        return None, "invalid_zip"
    return zip_code, "valid"


def percent_rank(values: Sequence) -> list[float]:
    """(r - 1) / (n - 1) with r = 1 + the number of strictly smaller values; 0 when n = 1."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 1:
        return [0.0]
    # bisect_left counts the values strictly smaller, that is r - 1.
    return [bisect_left(ordered, value) / (n - 1) for value in values]


def _percent_rank_within(values: pd.Series, groups: pd.Series) -> pd.Series:
    ranks = pd.Series(0.0, index=values.index)
    for _, members in values.groupby(groups):
        ranks[members.index] = percent_rank(list(members))
    return ranks


def _cents(revenue: Decimal) -> int:
    cents = revenue.scaleb(2)
    if cents != cents.to_integral_value():
        raise ValueError(f"revenue {revenue} has more than two decimals")
    return int(cents)


def _share(part_cents: int, whole_cents: int) -> float:
    return part_cents / whole_cents if whole_cents > 0 else math.nan


def _money(cents: int) -> float:
    return cents / 100  # int / int is correctly rounded


# ---------------------------------------------------------------- bad input


def clean_events(zone: dict[str, pd.DataFrame], start_month: str) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Valid event rows per table, and the rejected rows (table_name, folder_month, reason, key)."""
    known_clients = set(zone["clients"]["client_id"])
    valid, rejected = {}, []
    for name, table in EVENT_TABLES.items():
        rows = zone[name]
        rows = rows[rows["folder_month"] >= start_month]

        wrong_month = rows[table.timestamp].dt.strftime("%Y-%m") != rows["folder_month"]
        rejected.append(_rejections(name, table, rows[wrong_month], "wrong_month_folder"))
        rows = rows[~wrong_month].drop_duplicates(subset=[table.key], keep="first")

        is_known = rows["client_id"].isin(known_clients)  # False for a null client_id
        is_anonymous = rows["client_id"].isna() & table.anonymous_allowed
        unknown = ~is_known & ~is_anonymous
        rejected.append(_rejections(name, table, rows[unknown], "unknown_client"))
        rows = rows[~unknown]

        if table.has_revenue:
            null_revenue = rows["revenue"].isna()
            rejected.append(_rejections(name, table, rows[null_revenue], "null_revenue"))
            rows = rows[~null_revenue].copy()
            rows["revenue_cents"] = rows["revenue"].map(_cents)
        valid[name] = rows.reset_index(drop=True)
    return valid, pd.concat(rejected, ignore_index=True)


def _rejections(name: str, table: EventTable, rows: pd.DataFrame, reason: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "table_name": name,
            "folder_month": rows["folder_month"].to_numpy(),
            "reason": reason,
            "key": rows[table.key].astype("int64").to_numpy(),
        }
    )


# ---------------------------------------------------------------- time


@dataclass(frozen=True)
class MonthWindows:
    month_start: dt.date
    end: dt.date  # E, exclusive
    start_3m: dt.date
    start_12m: dt.date

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_windows(month: str) -> MonthWindows:
    start = dt.date.fromisoformat(f"{month}-01")
    return MonthWindows(
        month_start=start,
        end=_add_months(start, 1),
        start_3m=_add_months(start, -2),
        start_12m=_add_months(start, -11),
    )


# ---------------------------------------------------------------- features


def eligible_clients(zone: dict[str, pd.DataFrame], end: dt.date) -> pd.DataFrame:
    complete = zone["clinics"].loc[zone["clinics"]["integration_status"] == "complete", "clinic_id"]
    clients = zone["clients"]
    eligible = clients["clinic_id"].isin(set(complete)) & (clients["created_at"] < pd.Timestamp(end))
    return clients[eligible].sort_values("client_id").reset_index(drop=True)


def compute_client_features(raw_dir, zip_income_csv, month: str, start_month: str) -> pd.DataFrame:
    zone = read_landing_zone(raw_dir)
    events, _ = clean_events(zone, start_month)
    return features_for_month(zone, events, parse_zip_income(zip_income_csv), month)


def features_for_month(
    zone: dict[str, pd.DataFrame], events: dict[str, pd.DataFrame], zip_income: pd.DataFrame, month: str
) -> pd.DataFrame:
    windows = month_windows(month)
    clients = eligible_clients(zone, windows.end)
    activity = ClientActivity.of(events, clients["client_id"], windows.end)
    cents = _revenue_cents(activity, windows)

    features = pd.DataFrame(
        {
            "client_id": clients["client_id"].astype("int64"),
            "feature_month": [windows.month_start] * len(clients),
            "clinic_id": clients["clinic_id"].astype("int64"),
            "tenure_days": [(windows.end - created.date()).days for created in clients["created_at"]],
        }
    )
    for column in cents.columns:
        features[column] = cents[column].map(_money)
    features["inclinic_visits_12m"] = _inclinic_visits(activity, windows)
    features["hd_orders_12m"] = activity.per_client(
        _between(activity.hd_orders, windows.start_12m, windows.end).groupby("client_id").size()
    )
    features["hd_revenue_share_12m"] = [
        _share(hd, total) for hd, total in zip(cents["hd_revenue_12m"], cents["total_revenue_12m"])
    ]
    features["days_since_last_purchase"] = _days_since_last_purchase(activity, windows)
    for column, values in _web_engagement(activity, windows).items():
        features[column] = values
    for columns in (
        _category_shares(activity, windows, cents["inclinic_revenue_12m"]),
        _revenue_ranks(cents, features["clinic_id"]),
        _zip_features(clients["zip_code"], zip_income),
    ):
        for column, values in columns.items():
            features[column] = values
    return features[list(FEATURE_COLUMNS)]


@dataclass(frozen=True)
class ClientActivity:
    """The valid events of the eligible clients before E."""

    client_ids: pd.Series
    inclinic: pd.DataFrame
    hd_orders: pd.DataFrame  # channel HD, status completed: the only online rows that ever count
    web_sessions: pd.DataFrame  # anonymous sessions excluded: they belong to no client

    @classmethod
    def of(cls, events: dict[str, pd.DataFrame], client_ids: pd.Series, end: dt.date) -> ClientActivity:
        eligible = set(client_ids)

        def before_end(rows: pd.DataFrame, ts_column: str) -> pd.DataFrame:
            rows = rows[rows["client_id"].isin(eligible)]
            return rows[rows[ts_column] < pd.Timestamp(end)].rename(columns={ts_column: "ts"})

        online = events["transactions"]
        hd_orders = online[(online["channel"] == "HD") & (online["status"] == "completed")]
        return cls(
            client_ids.reset_index(drop=True),
            before_end(events["transactions_inclinic"], "transaction_ts"),
            before_end(hd_orders, "transaction_ts"),
            before_end(events["web_sessions"], "session_start_ts"),
        )

    def per_client(self, values: pd.Series) -> pd.Series:
        """A per-client aggregate aligned on the eligible clients; 0 for clients without rows."""
        aligned = values.reindex(self.client_ids.to_numpy(), fill_value=0)
        return aligned.reset_index(drop=True).astype("int64")


def _between(rows: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    return rows[(rows["ts"] >= pd.Timestamp(start)) & (rows["ts"] < pd.Timestamp(end))]


def _revenue_cents(activity: ClientActivity, windows: MonthWindows) -> pd.DataFrame:
    def cents(rows: pd.DataFrame, start: dt.date) -> pd.Series:
        in_window = _between(rows, start, windows.end)
        return activity.per_client(in_window.groupby("client_id")["revenue_cents"].sum())

    revenue = pd.DataFrame(
        {
            "inclinic_revenue_1m": cents(activity.inclinic, windows.month_start),
            "inclinic_revenue_12m": cents(activity.inclinic, windows.start_12m),
            "hd_revenue_1m": cents(activity.hd_orders, windows.month_start),
            "hd_revenue_12m": cents(activity.hd_orders, windows.start_12m),
        }
    )
    revenue["total_revenue_12m"] = revenue["inclinic_revenue_12m"] + revenue["hd_revenue_12m"]
    return revenue


def _inclinic_visits(activity: ClientActivity, windows: MonthWindows) -> pd.Series:
    purchases = _between(activity.inclinic, windows.start_12m, windows.end)
    purchases = purchases[purchases["revenue_cents"] > 0]
    visit_dates = purchases.assign(date=purchases["ts"].dt.date)
    return activity.per_client(visit_dates.groupby("client_id")["date"].nunique())


def _web_engagement(activity: ClientActivity, windows: MonthWindows) -> dict[str, list]:
    sessions_3m = _between(activity.web_sessions, windows.start_3m, windows.end)
    sessions = activity.per_client(sessions_3m.groupby("client_id").size())
    orders = activity.per_client(sessions_3m.groupby("client_id")["orders"].sum())
    return {
        "web_sessions_3m": sessions,
        "web_orders_3m": orders,
        "web_conversion_rate_3m": [o / s if s > 0 else math.nan for o, s in zip(orders, sessions)],
    }


def _category_shares(activity: ClientActivity, windows: MonthWindows, inclinic_12m: pd.Series) -> dict[str, list]:
    rows = _between(activity.inclinic, windows.start_12m, windows.end)
    category = rows["product_category"].where(rows["product_category"].isin(CATEGORIES), "other")
    by_category = rows.assign(category=category).groupby(["client_id", "category"])["revenue_cents"].sum()
    shares = {}
    for name in (*CATEGORIES, "other"):
        cents = [int(by_category.get((client, name), 0)) for client in activity.client_ids]
        shares[f"inclinic_share_{name}_12m"] = [_share(c, whole) for c, whole in zip(cents, inclinic_12m)]
    return shares


def _revenue_ranks(cents: pd.DataFrame, home_clinic: pd.Series) -> dict[str, list]:
    # Grouping the eligible clients keeps only the clinics that have at least one.
    clinic_cents = cents["total_revenue_12m"].groupby(home_clinic).sum()
    clinic_pctl = dict(zip(clinic_cents.index, percent_rank(list(clinic_cents))))

    def within_clinic(column: str) -> pd.Series:
        return _percent_rank_within(cents[column], home_clinic)

    return {
        "inclinic_revenue_pctl_in_clinic_12m": within_clinic("inclinic_revenue_12m"),
        "hd_revenue_pctl_in_clinic_12m": within_clinic("hd_revenue_12m"),
        "total_revenue_pctl_in_clinic_12m": within_clinic("total_revenue_12m"),
        "total_revenue_pctl_global_12m": percent_rank(list(cents["total_revenue_12m"])),
        "clinic_revenue_12m": [_money(int(clinic_cents[clinic])) for clinic in home_clinic],
        "clinic_revenue_pctl_global_12m": [clinic_pctl[clinic] for clinic in home_clinic],
    }


def _days_since_last_purchase(activity: ClientActivity, windows: MonthWindows) -> pd.Series:
    purchases = pd.concat(
        [
            activity.inclinic.loc[activity.inclinic["revenue_cents"] > 0, ["client_id", "ts"]],
            activity.hd_orders[["client_id", "ts"]],
        ]
    )
    last_purchase = purchases.groupby("client_id")["ts"].max()
    days = [
        (windows.last_day - last_purchase[client].date()).days if client in last_purchase.index else None
        for client in activity.client_ids
    ]
    return pd.Series(days, dtype="Int64")


def _zip_features(raw_zip_codes: pd.Series, zip_income: pd.DataFrame) -> dict[str, list]:
    income = zip_income.set_index("zip_code")
    columns: dict[str, list] = {"zip_code": [], "zip_income_match": [], "zip_avg_agi": [], "zip_avg_agi_pctl": []}
    for raw in raw_zip_codes:
        zip_code, match = normalize_zip(raw)
        if match == "valid":
            match = "matched" if zip_code in income.index else "not_in_source"
        source = income.loc[zip_code] if match == "matched" else None
        columns["zip_code"].append(zip_code)
        columns["zip_income_match"].append(match)
        columns["zip_avg_agi"].append(math.nan if source is None else float(source["avg_agi"]))
        columns["zip_avg_agi_pctl"].append(math.nan if source is None else float(source["avg_agi_pctl"]))
    return columns
