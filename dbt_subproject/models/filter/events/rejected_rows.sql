-- Every rejected event row of the run's months with its reason and key columns: nothing bad is silently dropped.
{{ config(schema='quality') }}

{% set landed_tables = [
    ('transactions_inclinic', 'stg_inclinic_transactions', 'transaction_id', 'transaction_ts', 'revenue'),
    ('transactions', 'stg_online_orders', 'transaction_id', 'transaction_ts', 'revenue'),
    ('web_sessions', 'stg_web_sessions', 'session_id', 'session_start_ts', 'cast(null as decimal(12,2))'),
] %}

{% for table_name, staging_model, key_column, ts_column, revenue in landed_tables %}
select
    '{{ table_name }}' as table_name,
    event_month,
    rejection_reason as reason,
    {{ key_column }} as event_id,
    client_id,
    {{ ts_column }} as event_ts,
    {{ revenue }} as revenue
from {{ ref(staging_model) }}
where rejection_reason is not null
    and copy_number = 1
{% if not loop.last %}union all{% endif %}
{% endfor %}
