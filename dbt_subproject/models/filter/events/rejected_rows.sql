-- Every rejected event row of the run's months with its reason and key columns: nothing bad is silently dropped.
{{ config(schema='quality') }}

{% set landed_tables = [
    ('transactions_inclinic', 'stg_inclinic_transactions', 'transaction_ts', 'revenue'),
    ('transactions', 'stg_online_orders', 'transaction_ts', 'revenue'),
    ('web_sessions', 'stg_web_sessions', 'session_start_ts', 'cast(null as decimal(12,2))'),
] %}

{% for table_name, staging_model, ts_column, revenue in landed_tables %}
select
    '{{ table_name }}' as table_name,
    event_month,
    rejection_reason as reason,
    {{ copy_rule(table_name).key }} as event_id,
    client_id,
    {{ ts_column }} as event_ts,
    {{ revenue }} as revenue
from {{ first_rejected_copies(ref(staging_model), table_name) }} as counted
{% if not loop.last %}union all{% endif %}
{% endfor %}
