-- Every web session filed under the run's months, classified once. Anonymous sessions (no client_id) are valid but belong to no client.
with landed as (
    select * from {{ landing_zone_events('web_sessions') }}
),

clients as (
    select client_id, clinic_id as home_clinic_id from {{ ref('integrated_clients') }}
),

known_clients as (
    select distinct client_id from {{ landing_zone_table('clients') }}
),

classified as (
    select
        landed.*,
        {{ rejection_reason('landed.session_start_ts', 'landed.client_id is null or known_clients.client_id is not null') }} as rejection_reason,
        clients.home_clinic_id
    from landed
    left join known_clients on landed.client_id = known_clients.client_id
    left join clients on landed.client_id = clients.client_id
)

select
    *,
    cast({{ dbt.concat(['folder_month', "'-01'"]) }} as date) as event_month,
    -- a re-delivered row counts once: the first copy in its folder, valid copies first; rows without a key are never merged
    case when session_id is null then 1 else row_number() over (
        partition by folder_month, session_id
        order by rejection_reason nulls first, session_start_ts, client_id, page_views, product_views, add_to_cart_events, orders
    ) end as copy_number
from classified
