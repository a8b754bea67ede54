"""An independent pandas implementation of the marts and clinic features (docs/marts.md), the test oracle.

It reads the warehouse's upstream tables (the filter layer's events, the monthly
aggregates, client_features, integrated_clients) and shares no SQL or macro with
the pipeline. Money is summed exactly in integer cents and ranks are decided on
exact values (cents, integer counts, fractions); floats appear only in the output.
Where the pipeline takes a shortcut, the oracle goes the long way round: creation
months come from created_at rather than tenure, cohorts and clinic revenue from the
events and aggregates rather than client_features' derived columns.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from itertools import permutations
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from feature_store_assets.core.paths import DBT_PROJECT_DIR
from feature_store_assets_tests.support.reference_features import CATEGORIES, percent_rank

DBT_PROJECT_YML = DBT_PROJECT_DIR / "dbt_project.yml"
SEGMENT_ACTIONS_CSV = DBT_PROJECT_DIR / "seeds" / "segment_actions.csv"
ALL_CATEGORIES = (*CATEGORIES, "other")


@dataclass(frozen=True)
class Thresholds:
    lookback_months: int
    active_days: int
    churn_days: int
    high_value: float
    medium_value: float
    min_support: float
    recommendations_per_category: int
    strong_lift: float
    strong_confidence: float
    moderate_lift: float
    moderate_confidence: float
    high_evidence_visits: int
    medium_evidence_visits: int
    healthy_retention_rate: float
    unhealthy_retention_rate: float
    unhealthy_churn_rate: float

    @classmethod
    def from_dbt_project(cls, path: Path = DBT_PROJECT_YML) -> Thresholds:
        """The defaults the pipeline runs with: the vars of dbt_project.yml."""
        var = yaml.safe_load(path.read_text())["vars"]
        return cls(
            lookback_months=int(var["marts_lookback_months"]),
            active_days=int(var["client_active_days"]),
            churn_days=int(var["client_churn_days"]),
            high_value=float(var["high_value_annual_threshold"]),
            medium_value=float(var["medium_value_annual_threshold"]),
            min_support=float(var["affinity_min_support"]),
            recommendations_per_category=int(var["recommendations_per_category"]),
            strong_lift=float(var["recommendation_strong_lift"]),
            strong_confidence=float(var["recommendation_strong_confidence"]),
            moderate_lift=float(var["recommendation_moderate_lift"]),
            moderate_confidence=float(var["recommendation_moderate_confidence"]),
            high_evidence_visits=int(var["recommendation_high_evidence_visits"]),
            medium_evidence_visits=int(var["recommendation_medium_evidence_visits"]),
            healthy_retention_rate=float(var["cohort_healthy_retention_rate"]),
            unhealthy_retention_rate=float(var["cohort_unhealthy_retention_rate"]),
            unhealthy_churn_rate=float(var["cohort_unhealthy_churn_rate"]),
        )


# ---------------------------------------------------------------- months and small rules


def add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def months_between(first: dt.date, last: dt.date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def window(month: dt.date, months: int, start: dt.date) -> tuple[dt.date, dt.date]:
    """First and last month of a `months`-month window ending with `month`, cut at the start month."""
    return max(add_months(month, 1 - months), start), month


def status(days: int | None, t: Thresholds) -> str | None:
    if days is None:
        return None
    return "active" if days <= t.active_days else "at_risk" if days <= t.churn_days else "churned"


def quintile_scores(values: list, higher_is_better: bool = True) -> list[int]:
    """1 + floor(5 x (values strictly worse) / n), in integer arithmetic."""
    ordered = sorted(values)
    n = len(values)
    worse = [bisect_left(ordered, v) if higher_is_better else n - bisect_right(ordered, v) for v in values]
    return [1 + (5 * w) // n for w in worse]


def segment(r: int | None, f: int | None, m: int | None) -> str:
    if r is None or (r == 1 and f == 1):
        return "lost"
    if r >= 4 and f >= 4 and m >= 4:
        return "champions"
    if r >= 3 and f >= 4:
        return "loyal"
    if r >= 4 and f == 1:
        return "new"
    if r >= 3:
        return "potential_loyalist"
    if f >= 3:
        return "at_risk"
    return "hibernating"


def _cents(value) -> int:
    cents = value.scaleb(2)
    assert cents == cents.to_integral_value(), value
    return int(cents)


def _money(cents: int) -> float:
    return cents / 100


# ---------------------------------------------------------------- reading the warehouse


@dataclass(frozen=True)
class Upstream:
    """The warehouse tables the marts are built from, as pandas frames (money in cents)."""

    client_features: pd.DataFrame
    financials: pd.DataFrame
    inclinic_mix: pd.DataFrame
    integrated_clients: pd.DataFrame
    inclinic_lines: pd.DataFrame
    hd_orders: pd.DataFrame

    @classmethod
    def read(cls, warehouse: Path) -> Upstream:
        con = duckdb.connect(str(warehouse), read_only=True)
        try:

            def frame(sql: str, money: tuple[str, ...] = ()) -> pd.DataFrame:
                cursor = con.execute(sql)
                rows = cursor.fetchall()  # DECIMAL money arrives as exact Decimal
                result = pd.DataFrame(rows, columns=[d[0] for d in cursor.description])
                for column in money:
                    result[column] = [_cents(v) for v in result[column]]
                return result

            return cls(
                client_features=frame("select * from features.client_features"),
                financials=frame(
                    "select client_id, activity_month, inclinic_revenue, hd_revenue, inclinic_visits, hd_orders, "
                    "last_purchase_date from aggregation.client_monthly_financials",
                    money=("inclinic_revenue", "hd_revenue"),
                ),
                inclinic_mix=frame(
                    "select * from aggregation.client_monthly_inclinic_mix",
                    money=tuple(f"revenue_{c}" for c in ALL_CATEGORIES),
                ),
                integrated_clients=frame(
                    "select client_id, clinic_id, created_at, practice_type from filtered.integrated_clients"
                ),
                inclinic_lines=frame(
                    "select client_id, transaction_date, event_month, product_category, revenue from filtered.inclinic_transactions",
                    money=("revenue",),
                ),
                hd_orders=frame("select client_id, event_month, revenue from filtered.hd_orders", money=("revenue",)),
            )
        finally:
            con.close()

    def features_of(self, month: dt.date) -> pd.DataFrame:
        rows = self.client_features[self.client_features["feature_month"] == month]
        return rows.sort_values("client_id").reset_index(drop=True)

    def financials_in(self, first: dt.date, last: dt.date) -> pd.DataFrame:
        months = self.financials["activity_month"]
        return self.financials[(months >= first) & (months <= last)]


def _optional_int(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


# ---------------------------------------------------------------- marts


def client_rfm(up: Upstream, month: dt.date, start: dt.date, t: Thresholds) -> pd.DataFrame:
    clients = up.features_of(month)
    clients = clients[clients["days_since_last_purchase"].notna()]
    in_window = up.financials_in(*window(month, t.lookback_months, start))
    purchases = (in_window["inclinic_visits"] + in_window["hd_orders"]).groupby(in_window["client_id"]).sum()
    revenue = (in_window["inclinic_revenue"] + in_window["hd_revenue"]).groupby(in_window["client_id"]).sum()

    rows = [
        {
            "client_id": int(c.client_id),
            "snapshot_month": month,
            "clinic_id": int(c.clinic_id),
            "lookback_months": t.lookback_months,
            "days_since_last_purchase": int(c.days_since_last_purchase),
            "purchases": int(purchases.get(c.client_id, 0)),
            "revenue_cents": int(revenue.get(c.client_id, 0)),
        }
        for c in clients.itertuples()
    ]
    scored = [row for row in rows if row["purchases"] > 0]
    for name, column, higher in (
        ("recency_score", "days_since_last_purchase", False),
        ("frequency_score", "purchases", True),
        ("monetary_score", "revenue_cents", True),
    ):
        for row, score in zip(scored, quintile_scores([row[column] for row in scored], higher)):
            row[name] = score
    for row in rows:
        r, f, m = (row.get(name) for name in ("recency_score", "frequency_score", "monetary_score"))
        row["revenue"] = _money(row.pop("revenue_cents"))
        row.update(recency_score=r, frequency_score=f, monetary_score=m)
        row["rfm_code"] = f"{r}{f}{m}" if r is not None else None
        row["segment"] = segment(r, f, m)
        row["status"] = status(row["days_since_last_purchase"], t)
    return pd.DataFrame(rows)


def client_value(up: Upstream, month: dt.date, start: dt.date, t: Thresholds) -> pd.DataFrame:
    clients = up.features_of(month)
    created = dict(zip(up.integrated_clients["client_id"], up.integrated_clients["created_at"]))
    first, last = window(month, t.lookback_months, start)
    in_window = (
        up.financials_in(first, last)
        .groupby("client_id")[["inclinic_revenue", "hd_revenue", "inclinic_visits", "hd_orders"]]
        .sum()
    )
    rows = []
    for c in clients.itertuples():
        created_month = pd.Timestamp(created[c.client_id]).date().replace(day=1)
        observed = months_between(max(first, created_month), month) + 1
        sums = in_window.loc[c.client_id] if c.client_id in in_window.index else None
        inclinic, hd = (int(sums.inclinic_revenue), int(sums.hd_revenue)) if sums is not None else (0, 0)
        visits, orders_hd = (int(sums.inclinic_visits), int(sums.hd_orders)) if sums is not None else (0, 0)
        total = inclinic + hd
        orders = visits + orders_hd
        annual = float(Fraction(total * 12, observed * 100))
        rows.append(
            {
                "client_id": int(c.client_id),
                "snapshot_month": month,
                "clinic_id": int(c.clinic_id),
                "lookback_months": t.lookback_months,
                "observed_months": observed,
                "inclinic_revenue": _money(inclinic),
                "hd_revenue": _money(hd),
                "total_revenue": _money(total),
                "inclinic_visits": visits,
                "hd_orders": orders_hd,
                "orders": orders,
                "avg_order_value": float(Fraction(total, orders * 100)) if orders else None,
                "estimated_annual_value": annual,
                "value_tier": "high"
                if annual >= t.high_value
                else "medium"
                if annual >= t.medium_value
                else "low"
                if annual > 0
                else "none",
                "client_status": status(_optional_int(c.days_since_last_purchase), t),
            }
        )
    return pd.DataFrame(rows)


def client_segments(up: Upstream, month: dt.date, start: dt.date, t: Thresholds) -> pd.DataFrame:
    """The oracle's RFM rows with the oracle's value tier and the action of the seed CSV, read as a file."""
    actions = pd.read_csv(SEGMENT_ACTIONS_CSV).set_index("segment")
    value = client_value(up, month, start, t).set_index("client_id")
    rows = []
    for r in client_rfm(up, month, start, t).itertuples():
        action = actions.loc[r.segment] if r.segment in actions.index else None
        rows.append(
            {
                "client_id": r.client_id,
                "snapshot_month": month,
                "clinic_id": r.clinic_id,
                "segment": r.segment,
                "status": r.status,
                "value_tier": value.loc[r.client_id, "value_tier"],
                "estimated_annual_value": value.loc[r.client_id, "estimated_annual_value"],
                "recommended_action": None if action is None else action["recommended_action"],
                "action_priority": None if action is None else int(action["priority"]),
            }
        )
    return pd.DataFrame(rows)


def client_cohorts(up: Upstream, month: dt.date, start: dt.date) -> pd.DataFrame:
    """From the filter layer's events: a purchase is an in-clinic line with revenue > 0 or a completed HD order."""
    lines, hd = up.inclinic_lines, up.hd_orders
    history = lambda frame: frame[(frame["event_month"] >= start) & (frame["event_month"] <= month)]  # noqa: E731
    lines, hd = history(lines), history(hd)
    purchase_months = pd.concat(
        [lines.loc[lines["revenue"] > 0, ["client_id", "event_month"]], hd[["client_id", "event_month"]]]
    )
    cohort_of = purchase_months.groupby("client_id")["event_month"].min()
    revenue = pd.concat([lines[["client_id", "event_month", "revenue"]], hd[["client_id", "event_month", "revenue"]]])
    revenue_by_month = revenue.groupby(["client_id", "event_month"])["revenue"].sum()
    purchased_in_month = set(zip(purchase_months["client_id"], purchase_months["event_month"]))

    cells: dict[tuple[int, dt.date], dict] = {}
    for c in up.features_of(month).itertuples():
        if c.client_id not in cohort_of.index:
            continue
        cohort = cohort_of[c.client_id]
        cell = cells.setdefault((int(c.clinic_id), cohort), {"clients": 0, "active": 0, "revenue": 0, "cumulative": 0})
        cell["clients"] += 1
        cell["active"] += (c.client_id, month) in purchased_in_month
        cell["revenue"] += int(revenue_by_month.get((c.client_id, month), 0))
        mine = (
            revenue_by_month.loc[c.client_id]
            if c.client_id in revenue_by_month.index.get_level_values(0)
            else pd.Series(dtype=int)
        )
        cell["cumulative"] += int(sum(v for m, v in mine.items() if cohort <= m <= month))
    return pd.DataFrame(
        [
            {
                "clinic_id": clinic,
                "cohort_month": cohort,
                "snapshot_month": month,
                "months_since_start": months_between(cohort, month),
                "is_start_cohort": cohort == start,
                "cohort_clients": cell["clients"],
                "active_clients": cell["active"],
                "retention_rate": cell["active"] / cell["clients"],
                "revenue": _money(cell["revenue"]),
                "cumulative_revenue": _money(cell["cumulative"]),
                "cumulative_revenue_per_client": float(Fraction(cell["cumulative"], cell["clients"] * 100)),
            }
            for (clinic, cohort), cell in sorted(cells.items())
        ]
    )


def cohort_health(up: Upstream, month: dt.date, start: dt.date, t: Thresholds) -> pd.DataFrame:
    """From the filter layer's events and clients.created_at, over all clinics; churned is the status rule."""
    lines, hd = up.inclinic_lines, up.hd_orders
    lines = lines[(lines["event_month"] >= start) & (lines["event_month"] <= month)]
    hd = hd[(hd["event_month"] >= start) & (hd["event_month"] <= month)]
    purchases = pd.concat(
        [lines.loc[lines["revenue"] > 0, ["client_id", "event_month"]], hd[["client_id", "event_month"]]]
    )
    first_purchase = purchases.groupby("client_id")["event_month"].min().to_dict()
    purchased = set(zip(purchases["client_id"], purchases["event_month"]))
    revenue: dict[int, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    for frame in (lines, hd):
        for client_id, event_month, cents in zip(frame["client_id"], frame["event_month"], frame["revenue"]):
            revenue[client_id][event_month] += int(cents)
    created = dict(zip(up.integrated_clients["client_id"], up.integrated_clients["created_at"]))

    cells: dict[tuple[str, dt.date], Counter] = defaultdict(Counter)
    for c in up.features_of(month).itertuples():
        cohorts = {"signup": max(pd.Timestamp(created[c.client_id]).date().replace(day=1), start)}
        if c.client_id in first_purchase:
            cohorts["first_purchase"] = first_purchase[c.client_id]
        for cohort_type, cohort in cohorts.items():
            cell = cells[(cohort_type, cohort)]
            cell["clients"] += 1
            cell["active"] += (c.client_id, month) in purchased
            cell["churned"] += status(_optional_int(c.days_since_last_purchase), t) == "churned"
            cell["revenue"] += revenue[c.client_id].get(month, 0)
            cell["cumulative"] += sum(v for m, v in revenue[c.client_id].items() if cohort <= m <= month)

    def health(since: int, retention: float, churn: float) -> str:
        if since == 0:
            return "new"
        if churn >= t.unhealthy_churn_rate or retention < t.unhealthy_retention_rate:
            return "unhealthy"
        return "healthy" if retention >= t.healthy_retention_rate else "watch"

    rows = []
    for (cohort_type, cohort), cell in sorted(cells.items()):
        retention, churn = cell["active"] / cell["clients"], cell["churned"] / cell["clients"]
        rows.append(
            {
                "cohort_type": cohort_type,
                "cohort_month": cohort,
                "snapshot_month": month,
                "months_since_start": months_between(cohort, month),
                "is_start_cohort": cohort == start,
                "cohort_clients": cell["clients"],
                "active_clients": cell["active"],
                "churned_clients": cell["churned"],
                "retention_rate": retention,
                "churn_rate": churn,
                "revenue": _money(cell["revenue"]),
                "revenue_per_client": float(Fraction(cell["revenue"], cell["clients"] * 100)),
                "cumulative_revenue": _money(cell["cumulative"]),
                "cumulative_revenue_per_client": float(Fraction(cell["cumulative"], cell["clients"] * 100)),
                "health_class": health(months_between(cohort, month), retention, churn),
            }
        )
    return pd.DataFrame(rows)


def product_affinity(up: Upstream, month: dt.date, start: dt.date, t: Thresholds) -> pd.DataFrame:
    first, last = window(month, t.lookback_months, start)
    lines = up.inclinic_lines
    lines = lines[(lines["revenue"] > 0) & (lines["event_month"] >= first) & (lines["event_month"] <= last)]
    baskets: dict[tuple, set[str]] = defaultdict(set)
    for client_id, day, category in zip(lines["client_id"], lines["transaction_date"], lines["product_category"]):
        baskets[(client_id, day)].add(category)
    visits = len(baskets)
    category_visits = Counter(category for basket in baskets.values() for category in basket)
    pair_visits = Counter(pair for basket in baskets.values() for pair in permutations(sorted(basket), 2))

    rules = []
    for (antecedent, consequent), pairs in pair_visits.items():
        support = pairs / visits
        if support < t.min_support:
            continue
        a, b = category_visits[antecedent], category_visits[consequent]
        lift = Fraction(pairs * visits, a * b)
        rules.append(
            {
                "snapshot_month": month,
                "lookback_months": t.lookback_months,
                "antecedent_category": antecedent,
                "consequent_category": consequent,
                "visits": visits,
                "antecedent_visits": a,
                "consequent_visits": b,
                "pair_visits": pairs,
                "support": support,
                "confidence": pairs / a,
                "lift": float(lift),
                "_order": (-lift, -Fraction(pairs, a), consequent),
            }
        )
    by_antecedent: dict[str, list[dict]] = defaultdict(list)
    for rule in rules:
        by_antecedent[rule["antecedent_category"]].append(rule)
    for group in by_antecedent.values():
        for rank, rule in enumerate(sorted(group, key=lambda r: r["_order"]), start=1):
            rule["recommendation_rank"] = rank
            del rule["_order"]
    return pd.DataFrame(rules)


SERVICES = {"vaccines", "diagnostics", "dental", "surgery"}
PRODUCTS = {"pharmacy", "parasiticides", "food"}


def category_group(category: str) -> str:
    return "service" if category in SERVICES else "product" if category in PRODUCTS else "other"


def half_up(value: float) -> int:
    """A float rounded half away from zero (positive here), decided on its exact binary value."""
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def product_recommendations(up: Upstream, month: dt.date, start: dt.date, t: Thresholds) -> pd.DataFrame:
    """From the oracle's own association rules: lift > 1, the top n of each source by lift, confidence, name."""
    rules = product_affinity(up, month, start, t)
    confidence_of = {(r.antecedent_category, r.consequent_category): r.confidence for r in rules.itertuples()}
    rows = []
    for source, group in rules[rules["lift"] > 1].groupby("antecedent_category"):
        ordered = sorted(group.itertuples(), key=lambda r: (-r.lift, -r.confidence, r.consequent_category))
        for rank, r in enumerate(ordered[: t.recommendations_per_category], start=1):
            tenths = half_up(r.lift * 10)
            strength = (
                "strong"
                if r.lift >= t.strong_lift and r.confidence >= t.strong_confidence
                else "moderate"
                if r.lift >= t.moderate_lift and r.confidence >= t.moderate_confidence
                else "weak"
            )
            rows.append(
                {
                    "snapshot_month": month,
                    "lookback_months": t.lookback_months,
                    "source_category": source,
                    "recommended_category": r.consequent_category,
                    "recommendation_rank": rank,
                    "source_category_group": category_group(source),
                    "recommended_category_group": category_group(r.consequent_category),
                    "cross_category": category_group(source) != category_group(r.consequent_category),
                    "pair_visits": r.pair_visits,
                    "support": r.support,
                    "confidence": r.confidence,
                    "reverse_confidence": confidence_of[(r.consequent_category, source)],
                    "lift": r.lift,
                    "strength": strength,
                    "confidence_level": "high"
                    if r.pair_visits >= t.high_evidence_visits
                    else "medium"
                    if r.pair_visits >= t.medium_evidence_visits
                    else "low",
                    "message": f"Buyers of {source}: suggest {r.consequent_category} (bought on "
                    f"{half_up(r.confidence * 100)}% of their visits, {tenths // 10}.{tenths % 10}x as often as by chance)",
                }
            )
    return pd.DataFrame(rows)


def clinic_features(up: Upstream, month: dt.date, start: dt.date, t: Thresholds) -> pd.DataFrame:
    clients = up.features_of(month)
    integrated = up.integrated_clients.set_index("client_id")
    practice_type = dict(zip(up.integrated_clients["clinic_id"], up.integrated_clients["practice_type"]))
    end = add_months(month, 1)
    first_12m = window(month, 12, start)[0]
    fin_12m = up.financials_in(first_12m, month).set_index("client_id")
    fin_1m = up.financials_in(month, month).set_index("client_id")
    mix = up.inclinic_mix
    mix = mix[(mix["activity_month"] >= first_12m) & (mix["activity_month"] <= month)].set_index("client_id")

    def client_sum(frame: pd.DataFrame, ids, column: str) -> int:
        present = [i for i in ids if i in frame.index]
        return int(frame.loc[present, column].sum()) if present else 0

    rows = []
    for clinic_id, members in clients.groupby("clinic_id"):
        ids = list(members["client_id"])
        statuses = [status(_optional_int(d), t) for d in members["days_since_last_purchase"]]
        created = [pd.Timestamp(integrated.loc[i, "created_at"]) for i in ids]
        hd_orders_12m = {i: client_sum(fin_12m, [i], "hd_orders") for i in ids}
        active = [i for i, s in zip(ids, statuses) if s == "active"]
        inclinic_1m, hd_1m = client_sum(fin_1m, ids, "inclinic_revenue"), client_sum(fin_1m, ids, "hd_revenue")
        inclinic_12m, hd_12m = client_sum(fin_12m, ids, "inclinic_revenue"), client_sum(fin_12m, ids, "hd_revenue")
        categories = {c: client_sum(mix, ids, f"revenue_{c}") for c in ALL_CATEGORIES}
        mix_total = sum(categories.values())
        incomes = [v for v in members["zip_avg_agi"] if v is not None and not pd.isna(v)]
        row = {
            "clinic_id": int(clinic_id),
            "feature_month": month,
            "practice_type": practice_type[clinic_id],
            "clients_eligible": len(ids),
            "clients_active": len(active),
            "clients_at_risk": statuses.count("at_risk"),
            "clients_lapsed": statuses.count("churned"),
            "clients_new": sum(pd.Timestamp(month) <= c < pd.Timestamp(end) for c in created),
            "inclinic_revenue_1m": _money(inclinic_1m),
            "hd_revenue_1m": _money(hd_1m),
            "total_revenue_1m": _money(inclinic_1m + hd_1m),
            "inclinic_revenue_12m": _money(inclinic_12m),
            "hd_revenue_12m": _money(hd_12m),
            "total_revenue_12m": _money(inclinic_12m + hd_12m),
            "_total_cents": inclinic_12m + hd_12m,
            "hd_adoption_rate": sum(hd_orders_12m[i] > 0 for i in active) / len(active) if active else None,
            "avg_client_revenue_12m": float(Fraction(inclinic_12m + hd_12m, len(ids) * 100)),
            "client_zip_avg_agi_mean": math.fsum(incomes) / len(incomes) if incomes else None,
        }
        for c in ALL_CATEGORIES:
            row[f"inclinic_share_{c}_12m"] = categories[c] / mix_total if mix_total > 0 else None
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["revenue_pctl_global_12m"] = percent_rank(list(frame["_total_cents"]))
    frame["revenue_pctl_in_practice_type_12m"] = 0.0
    for _, peers in frame.groupby("practice_type"):
        frame.loc[peers.index, "revenue_pctl_in_practice_type_12m"] = percent_rank(list(peers["_total_cents"]))
    return frame.drop(columns="_total_cents")
