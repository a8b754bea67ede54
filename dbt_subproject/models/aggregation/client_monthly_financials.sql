-- What each integrated client spent in a month, in the clinic and by home delivery, and when they last purchased.
with inclinic as (
    select
        client_id,
        event_month as activity_month,
        sum(revenue) as inclinic_revenue,
        -- a visit is a date with at least one purchase (revenue > 0); dates never straddle months, so monthly counts add up
        count(distinct case when revenue > 0 then transaction_date end) as inclinic_visits,
        max(case when revenue > 0 then transaction_date end) as last_inclinic_purchase_date,
        count(*) as inclinic_lines
    from {{ ref('inclinic_transactions') }}
    where {{ in_window('event_month') }}
    group by client_id, event_month
),

home_delivery as (
    select
        client_id,
        event_month as activity_month,
        sum(revenue) as hd_revenue,
        count(*) as hd_orders,
        max(transaction_date) as last_hd_order_date
    from {{ ref('hd_orders') }}
    where {{ in_window('event_month') }}
    group by client_id, event_month
)

select
    coalesce(inclinic.client_id, home_delivery.client_id) as client_id,
    coalesce(inclinic.activity_month, home_delivery.activity_month) as activity_month,
    coalesce(inclinic.inclinic_revenue, 0) as inclinic_revenue,
    cast(coalesce(inclinic.inclinic_visits, 0) as integer) as inclinic_visits,
    cast(coalesce(inclinic.inclinic_lines, 0) as integer) as inclinic_lines,
    coalesce(home_delivery.hd_revenue, 0) as hd_revenue,
    cast(coalesce(home_delivery.hd_orders, 0) as integer) as hd_orders,
    case
        when home_delivery.last_hd_order_date is null then inclinic.last_inclinic_purchase_date
        when inclinic.last_inclinic_purchase_date is null then home_delivery.last_hd_order_date
        when inclinic.last_inclinic_purchase_date > home_delivery.last_hd_order_date then inclinic.last_inclinic_purchase_date
        else home_delivery.last_hd_order_date
    end as last_purchase_date
from inclinic
full outer join home_delivery
    on inclinic.client_id = home_delivery.client_id
    and inclinic.activity_month = home_delivery.activity_month
