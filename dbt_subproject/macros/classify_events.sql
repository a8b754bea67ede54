{# How a landed event row is classified (docs/data-contract.md): its product category and why it is rejected. #}

{# In-clinic product categories of the contract; any other value counts as `other`. #}
{% macro inclinic_categories() -%}
    {{ return(['vaccines', 'diagnostics', 'pharmacy', 'parasiticides', 'food', 'dental', 'surgery']) }}
{%- endmacro %}

{# The category of a raw product_category value: one of inclinic_categories() or 'other'. #}
{% macro normalized_category(column) -%}
    case when {{ column }} in ('{{ inclinic_categories() | join("', '") }}') then {{ column }} else 'other' end
{%- endmacro %}

{# Why a landed event row is rejected (docs/data-contract.md), or null when it is valid. #}
{% macro rejection_reason(ts_column, client_known, revenue_column=none) -%}
    case
        when {{ ts_column }} is null
            or {{ month_of(ts_column) }} != cast({{ dbt.concat(['folder_month', "'-01'"]) }} as date)
            then 'wrong_month_folder'
        when not ({{ client_known }}) then 'unknown_client'
        {%- if revenue_column %}
        when {{ revenue_column }} is null then 'null_revenue'
        {%- endif %}
    end
{%- endmacro %}

{#
  Every row of a landed event table filed under the run's months, classified: the contract's columns,
  folder_month, event_month (its first day), rejection_reason (null when valid) and home_clinic_id (the client's
  home clinic when the client is integrated, else null). One join to the clients file tells both whether the
  client is known and whether it is integrated. anonymous_valid: a row without client_id is valid (web sessions).
#}
{% macro classified_landed_rows(table_name, ts_column, revenue_column=none, anonymous_valid=false) -%}
with landed as (
    select * from {{ landing_zone_events(table_name) }}
),

-- every client of the clients file (a known client), with its home clinic when the client is integrated
clients as (
    select known.client_id, integrated.clinic_id as home_clinic_id
    from (select distinct client_id from {{ landing_zone_table('clients') }}) as known
    left join {{ ref('integrated_clients') }} as integrated on known.client_id = integrated.client_id
)

select
    landed.*,
    cast({{ dbt.concat(['landed.folder_month', "'-01'"]) }} as date) as event_month,
    {{ rejection_reason(
        'landed.' ~ ts_column,
        ('landed.client_id is null or ' if anonymous_valid else '') ~ 'clients.client_id is not null',
        'landed.' ~ revenue_column if revenue_column else none
    ) }} as rejection_reason,
    clients.home_clinic_id
from landed
left join clients on landed.client_id = clients.client_id
{%- endmacro %}

{#
  Repeated copies of a landed row (docs/data-contract.md, "Repeated rows"): within one month folder, the rows of
  one key count once. Each event table's key, and the order whose first copy counts (valid copies before rejected
  ones; then these columns). Rows without a key are never merged.
#}
{% macro copy_rule(table_name) -%}
    {%- set rules = {
        'transactions_inclinic': {'key': 'transaction_id', 'order_by': ['transaction_ts', 'revenue', 'client_id', 'clinic_id', 'product_category', 'quantity']},
        'transactions': {'key': 'transaction_id', 'order_by': ['transaction_ts', 'revenue', 'client_id', 'clinic_id', 'channel', 'status', 'product_category']},
        'web_sessions': {'key': 'session_id', 'order_by': ['session_start_ts', 'client_id', 'page_views', 'product_views', 'add_to_cart_events', 'orders']},
    } -%}
    {{ return(rules[table_name]) }}
{%- endmacro %}

{#
  The valid rows that count, from a classified staging view of `table_name`: of each key, the first valid copy in
  its folder (a key with a valid copy counts as that copy; its rejected copies are listed nowhere). Only the valid
  rows are ranked, so no window runs over the rejected ones, and no row is written before its event table.
#}
{% macro first_valid_copies(staging_relation, table_name) -%}
    {%- set rule = copy_rule(table_name) -%}
    (select * from (
        select
            *,
            row_number() over (partition by folder_month, {{ rule.key }} order by {{ rule.order_by | join(', ') }}) as copy_number
        from {{ staging_relation }}
        where rejection_reason is null
    ) as valid_copies
    where {{ rule.key }} is null or copy_number = 1)
{%- endmacro %}

{#
  The rejected rows that count, from a classified staging view of `table_name`: of each key with no valid copy in
  its folder, the first rejected copy (by reason, then the table's order). Whether a key has a valid copy is looked
  up for the few rejected keys only: the valid rows are neither ranked nor kept in a hash table here.
#}
{% macro first_rejected_copies(staging_relation, table_name) -%}
    {%- set rule = copy_rule(table_name) -%}
    {%- set key = rule.key -%}
    (with rejected as (
        select * from {{ staging_relation }} where rejection_reason is not null
    ),

    keys_with_a_valid_copy as (
        select distinct folder_month, {{ key }}
        from {{ staging_relation }}
        where rejection_reason is null
            and {{ key }} in (select {{ key }} from rejected)
    ),

    ranked as (
        select
            rejected.*,
            row_number() over (
                partition by rejected.folder_month, rejected.{{ key }}
                order by rejected.rejection_reason{% for column in rule.order_by %}, rejected.{{ column }}{% endfor %}
            ) as copy_number
        from rejected
        left join keys_with_a_valid_copy as valid_copy
            on rejected.folder_month = valid_copy.folder_month and rejected.{{ key }} = valid_copy.{{ key }}
        where valid_copy.{{ key }} is null
    )

    select * from ranked where {{ key }} is null or copy_number = 1)
{%- endmacro %}
