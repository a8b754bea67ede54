"""The second peer of item 1: one month's client features in plain pandas, as an analyst would write them by hand.

For the landing zone's first month (no history before it, so the 12- and 3-month windows hold that
month only, as in the pipeline). Reads the month's raw files into memory, applies the same row rules,
and computes the revenue, visit, HD, share, recency, web, category-mix and percentile features, plus
the ZIP income columns joined from the published reference table. After the timed part it compares
its values with the published `features.client_features` of that month.

    python -m benchmarks.naive_pandas RAW_DIR YYYY-MM ANALYTICS.duckdb   # prints a JSON line
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

CATEGORIES = ["vaccines", "diagnostics", "pharmacy", "parasiticides", "food", "dental", "surgery"]


def valid_rows(
    frame: pd.DataFrame, ts: str, key: str, start: pd.Timestamp, end: pd.Timestamp, known: pd.Series
) -> pd.DataFrame:
    frame = frame[(frame[ts] >= start) & (frame[ts] < end) & frame["client_id"].isin(known)]
    keyed = frame[frame[key].notna()].drop_duplicates(key)
    return pd.concat([keyed, frame[frame[key].isna()]])


def month_features(raw_dir: Path, month: str, zip_income: pd.DataFrame) -> pd.DataFrame:
    start = pd.Timestamp(f"{month}-01")
    end = start + pd.DateOffset(months=1)
    clients = pd.read_parquet(raw_dir / "clients.parquet")
    clinics = pd.read_parquet(raw_dir / "clinics.parquet")
    complete = clinics.loc[clinics["integration_status"] == "complete", "clinic_id"]
    eligible = clients[clients["clinic_id"].isin(complete) & (clients["created_at"] < end)][
        ["client_id", "clinic_id", "created_at"]
    ]

    inclinic = pd.read_parquet(raw_dir / "transactions_inclinic" / f"month={month}")
    inclinic = valid_rows(
        inclinic[inclinic["revenue"].notna()], "transaction_ts", "transaction_id", start, end, clients["client_id"]
    )
    inclinic["revenue"] = inclinic["revenue"].astype(float)
    inclinic["date"] = inclinic["transaction_ts"].dt.normalize()
    inclinic["category"] = inclinic["product_category"].where(inclinic["product_category"].isin(CATEGORIES), "other")
    online = pd.read_parquet(raw_dir / "transactions" / f"month={month}")
    online = online[(online["channel"] == "HD") & (online["status"] == "completed") & online["revenue"].notna()]
    online = valid_rows(online, "transaction_ts", "transaction_id", start, end, clients["client_id"])
    online["revenue"] = online["revenue"].astype(float)
    web = pd.read_parquet(raw_dir / "web_sessions" / f"month={month}")
    web = valid_rows(web, "session_start_ts", "session_id", start, end, clients["client_id"])

    purchases = inclinic[inclinic["revenue"] > 0]
    money = pd.DataFrame(
        {
            "inclinic_revenue_12m": inclinic.groupby("client_id")["revenue"].sum(),
            "inclinic_visits_12m": purchases.groupby("client_id")["date"].nunique(),
            "hd_revenue_12m": online.groupby("client_id")["revenue"].sum(),
            "hd_orders_12m": online.groupby("client_id").size(),
            "last_purchase": pd.concat(
                [
                    purchases[["client_id", "date"]],
                    online.assign(date=online["transaction_ts"].dt.normalize())[["client_id", "date"]],
                ]
            )
            .groupby("client_id")["date"]
            .max(),
        }
    )
    mix = inclinic.pivot_table(index="client_id", columns="category", values="revenue", aggfunc="sum", fill_value=0.0)
    engagement = web.groupby("client_id").agg(web_sessions_3m=("session_id", "size"), web_orders_3m=("orders", "sum"))

    features = eligible.merge(money, left_on="client_id", right_index=True, how="left")
    features = features.merge(engagement, left_on="client_id", right_index=True, how="left")
    features = features.merge(mix, left_on="client_id", right_index=True, how="left")
    for column in [
        "inclinic_revenue_12m",
        "inclinic_visits_12m",
        "hd_revenue_12m",
        "hd_orders_12m",
        "web_sessions_3m",
        "web_orders_3m",
    ]:
        features[column] = features[column].fillna(0)
    features["feature_month"] = start
    features["tenure_days"] = (end - features["created_at"].dt.normalize()).dt.days
    features["inclinic_revenue_1m"] = features["inclinic_revenue_12m"]
    features["hd_revenue_1m"] = features["hd_revenue_12m"]
    features["total_revenue_12m"] = features["inclinic_revenue_12m"] + features["hd_revenue_12m"]
    features["hd_revenue_share_12m"] = (features["hd_revenue_12m"] / features["total_revenue_12m"]).where(
        features["total_revenue_12m"] > 0
    )
    features["days_since_last_purchase"] = (end - pd.Timedelta(days=1) - features["last_purchase"]).dt.days
    features["web_conversion_rate_3m"] = (features["web_orders_3m"] / features["web_sessions_3m"]).where(
        features["web_sessions_3m"] > 0
    )
    for category in CATEGORIES + ["other"]:
        revenue = features[category].fillna(0) if category in features else 0.0
        features[f"inclinic_share_{category}_12m"] = (revenue / features["inclinic_revenue_12m"]).where(
            features["inclinic_revenue_12m"] > 0
        )
    features = features.drop(columns=[c for c in CATEGORIES + ["other", "last_purchase"] if c in features])

    def percent_rank(values: pd.Series, groups) -> pd.Series:
        ranks = values.groupby(groups).rank(method="min")
        sizes = values.groupby(groups).transform("size")
        return ((ranks - 1) / (sizes - 1)).where(sizes > 1, 0.0)

    for column in ["inclinic_revenue_12m", "hd_revenue_12m", "total_revenue_12m"]:
        features[column.replace("_12m", "_pctl_in_clinic_12m")] = percent_rank(features[column], features["clinic_id"])
    features["total_revenue_pctl_global_12m"] = percent_rank(features["total_revenue_12m"], np.zeros(len(features)))
    features["clinic_revenue_12m"] = features.groupby("clinic_id")["total_revenue_12m"].transform("sum")
    clinic_totals = features.drop_duplicates("clinic_id")[["clinic_id", "clinic_revenue_12m"]]
    clinic_totals["clinic_revenue_pctl_global_12m"] = percent_rank(
        clinic_totals["clinic_revenue_12m"], np.zeros(len(clinic_totals))
    )
    features = features.merge(clinic_totals[["clinic_id", "clinic_revenue_pctl_global_12m"]], on="clinic_id")
    return features.merge(zip_income, on="client_id", how="left")


def main(argv: list[str]) -> int:
    raw_dir, month, analytics = Path(argv[0]), argv[1], Path(argv[2])
    with duckdb.connect(str(analytics), read_only=True) as con:
        zip_income = con.sql(
            "select client_id, zip_code, zip_income_match, zip_avg_agi, zip_avg_agi_pctl from reference.client_zip_income"
        ).df()
        began = time.perf_counter()
        features = month_features(raw_dir, month, zip_income)
        seconds = time.perf_counter() - began
        published = con.sql(
            f"select client_id, total_revenue_12m, hd_revenue_share_12m, days_since_last_purchase, total_revenue_pctl_global_12m "
            f"from features.client_features where feature_month = date '{month}-01'"
        ).df()
    both = published.merge(features, on="client_id", suffixes=("_published", ""))
    differences = {
        column: float(
            np.nanmax(np.abs(both[f"{column}_published"].astype(float) - both[column].astype(float)), initial=0.0)
        )
        for column in [
            "total_revenue_12m",
            "hd_revenue_share_12m",
            "days_since_last_purchase",
            "total_revenue_pctl_global_12m",
        ]
    }
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows": len(features),
                "published_rows": len(published),
                "matched_rows": len(both),
                "features": len(
                    [c for c in features.columns if c not in ("client_id", "feature_month", "clinic_id", "created_at")]
                ),
                "max_abs_difference": differences,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
