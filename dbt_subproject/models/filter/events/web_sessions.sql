-- Valid web sessions of integrated clients, one row per session_id, by month. Anonymous sessions belong to no client and are left out.
select
    session_id,
    client_id,
    home_clinic_id,
    session_start_ts,
    event_month,
    page_views,
    product_views,
    add_to_cart_events,
    orders
from {{ ref('stg_web_sessions') }}
where rejection_reason is null
    and copy_number = 1
    and home_clinic_id is not null
