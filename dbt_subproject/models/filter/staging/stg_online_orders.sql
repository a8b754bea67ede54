-- Every online order filed under the run's months, classified once: valid, rejected (with its reason) or a repeated copy.
with landed as (
    select * from {{ landing_zone_events('transactions') }}
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
        {{ rejection_reason('landed.transaction_ts', 'known_clients.client_id is not null', 'landed.revenue') }} as rejection_reason,
        clients.home_clinic_id
    from landed
    left join known_clients on landed.client_id = known_clients.client_id
    left join clients on landed.client_id = clients.client_id
)

select
    *,
    cast({{ dbt.concat(['folder_month', "'-01'"]) }} as date) as event_month,
    -- a re-delivered row counts once: the first copy in its folder, valid copies first; rows without a key are never merged
    case when transaction_id is null then 1 else row_number() over (
        partition by folder_month, transaction_id
        order by rejection_reason nulls first, transaction_ts, revenue, client_id, clinic_id, channel, status, product_category
    ) end as copy_number
from classified
