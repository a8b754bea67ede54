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
