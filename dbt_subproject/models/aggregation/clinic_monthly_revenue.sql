-- Revenue each clinic took in a month from integrated clients: in the clinic where the purchase happened, and HD orders attributed to it.
with inclinic as (
    select
        clinic_id,
        event_month as activity_month,
        sum(revenue) as inclinic_revenue,
        count(distinct client_id) as inclinic_clients
    from {{ ref('inclinic_transactions') }}
    where {{ in_window('event_month') }}
    group by clinic_id, event_month
),

home_delivery as (
    select
        clinic_id,
        event_month as activity_month,
        sum(revenue) as hd_revenue,
        count(*) as hd_orders,
        count(distinct client_id) as hd_clients
    from {{ ref('hd_orders') }}
    where {{ in_window('event_month') }}
    group by clinic_id, event_month
)

select
    coalesce(inclinic.clinic_id, home_delivery.clinic_id) as clinic_id,
    coalesce(inclinic.activity_month, home_delivery.activity_month) as activity_month,
    coalesce(inclinic.inclinic_revenue, 0) as inclinic_revenue,
    coalesce(home_delivery.hd_revenue, 0) as hd_revenue,
    coalesce(inclinic.inclinic_revenue, 0) + coalesce(home_delivery.hd_revenue, 0) as total_revenue,
    cast(coalesce(inclinic.inclinic_clients, 0) as integer) as inclinic_clients,
    cast(coalesce(home_delivery.hd_clients, 0) as integer) as hd_clients,
    cast(coalesce(home_delivery.hd_orders, 0) as integer) as hd_orders
from inclinic
full outer join home_delivery
    on inclinic.clinic_id = home_delivery.clinic_id
    and inclinic.activity_month = home_delivery.activity_month
