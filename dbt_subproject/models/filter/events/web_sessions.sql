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
from {{ first_valid_copies(ref('stg_web_sessions'), 'web_sessions') }} as counted
where home_clinic_id is not null
