-- Valid in-clinic purchase lines of integrated clients, one row per transaction_id, by month.
select
    transaction_id,
    client_id,
    home_clinic_id,
    clinic_id,
    transaction_ts,
    cast(transaction_ts as date) as transaction_date,
    event_month,
    product_category as raw_product_category,
    {{ normalized_category('product_category') }} as product_category,
    quantity,
    revenue
from {{ first_valid_copies(ref('stg_inclinic_transactions'), 'transactions_inclinic') }} as counted
where home_clinic_id is not null
