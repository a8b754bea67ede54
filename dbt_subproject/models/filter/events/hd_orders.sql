-- Completed home-delivery (HD) orders of integrated clients, one row per transaction_id, by month. Other channels and statuses never count.
select
    transaction_id,
    client_id,
    home_clinic_id,
    clinic_id,
    transaction_ts,
    cast(transaction_ts as date) as transaction_date,
    event_month,
    {{ normalized_category('product_category') }} as product_category,
    revenue
from {{ first_valid_copies(ref('stg_online_orders'), 'transactions') }} as counted
where home_clinic_id is not null
    and channel = 'HD'
    and status = 'completed'
