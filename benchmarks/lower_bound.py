"""The lower bound of item 1: one hand-written DuckDB query that reads a month's raw files once.

It computes the client-month aggregates the pipeline's feature layer needs (the content of the
aggregation layer: in-clinic revenue, visits, lines and category mix, HD revenue and orders, the last
purchase date, web engagement) for eligible clients, with the same row rules (wrong month, unknown
client, NULL revenue, re-delivered copies counted once), and writes them to a DuckDB table. No
validation, no checks, no rejected-row table, no history: what a perfect single pass would cost.

    python -m benchmarks.lower_bound RAW_DIR YYYY-MM OUT.duckdb   # prints a JSON line
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb

CATEGORIES = ("vaccines", "diagnostics", "pharmacy", "parasiticides", "food", "dental", "surgery")


def lower_bound_sql(raw_dir: Path, month: str) -> str:
    folder = lambda table: f"'{raw_dir}/{table}/month={month}/*.parquet'"  # noqa: E731
    start, end = f"date '{month}-01'", f"(date '{month}-01' + interval 1 month)"
    mix = ",\n        ".join(
        f"sum(case when source = 'inclinic' and category = '{c}' then revenue else 0 end) as revenue_{c}"
        for c in CATEGORIES
    )
    other = " and ".join(f"category != '{c}'" for c in CATEGORIES)
    return f"""
    create or replace table client_month_aggregates as
    with eligible as (
        select c.client_id
        from read_parquet('{raw_dir}/clients.parquet') c
        join read_parquet('{raw_dir}/clinics.parquet') k on c.clinic_id = k.clinic_id
        where k.integration_status = 'complete'
    ),
    purchases as (
        select 'inclinic' as source, transaction_id as id, client_id, transaction_ts as ts, product_category as category, revenue
        from read_parquet({folder("transactions_inclinic")})
        where revenue is not null
        union all
        select 'hd', transaction_id, client_id, transaction_ts, product_category, revenue
        from read_parquet({folder("transactions")})
        where channel = 'HD' and status = 'completed' and revenue is not null
    ),
    valid_purchases as (
        select p.* from purchases p semi join eligible e on p.client_id = e.client_id
        where p.ts >= {start} and p.ts < {end}
        qualify p.id is null or row_number() over (partition by p.source, p.id order by p.ts, p.revenue) = 1
    ),
    money as (
        select
            client_id,
            sum(case when source = 'inclinic' then revenue else 0 end) as inclinic_revenue,
            count(distinct case when source = 'inclinic' and revenue > 0 then ts::date end) as inclinic_visits,
            count(*) filter (where source = 'inclinic') as inclinic_lines,
            sum(case when source = 'hd' then revenue else 0 end) as hd_revenue,
            count(*) filter (where source = 'hd') as hd_orders,
            max(case when source = 'hd' or revenue > 0 then ts::date end) as last_purchase_date,
            {mix},
            sum(case when source = 'inclinic' and ({other}) then revenue else 0 end) as revenue_other
        from valid_purchases
        group by client_id
    ),
    web as (
        select w.client_id, count(*) as sessions, sum(orders) as orders, sum(page_views) as page_views,
            sum(product_views) as product_views, sum(add_to_cart_events) as add_to_cart_events
        from (
            select * from read_parquet({folder("web_sessions")})
            where session_start_ts >= {start} and session_start_ts < {end}
            qualify session_id is null or row_number() over (partition by session_id order by session_start_ts) = 1
        ) w semi join eligible e on w.client_id = e.client_id
        group by w.client_id
    )
    select coalesce(money.client_id, web.client_id) as client_id, {start} as activity_month, money.client_id is not null as purchased,
        money.* exclude (client_id), web.* exclude (client_id)
    from money full join web on money.client_id = web.client_id
    """


def main(argv: list[str]) -> int:
    raw_dir, month, out = Path(argv[0]).resolve(), argv[1], Path(argv[2])
    out.unlink(missing_ok=True)
    began = time.perf_counter()
    with duckdb.connect(str(out)) as con:
        con.execute(lower_bound_sql(raw_dir, month))
        rows, revenue = con.execute(
            "select count(*) filter (where purchased), sum(coalesce(inclinic_revenue, 0) + coalesce(hd_revenue, 0)) "
            "from client_month_aggregates"
        ).fetchone()
    # rows: clients with an in-clinic or HD row (as aggregation.client_monthly_financials), for the agreement check
    print(json.dumps({"seconds": time.perf_counter() - began, "rows": rows, "revenue": float(revenue or 0)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
