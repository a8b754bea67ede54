{# The run's month window as a predicate on a first-of-month DATE column. #}
{% macro in_window(month_column) -%}
    {{ month_column }} >= {{ date_literal(var('min_date')) }} and {{ month_column }} < {{ date_literal(var('max_date')) }}
{%- endmacro %}

{#
  Pre-hook of every month-incremental model: empty the run's months first.
  delete+insert on the month key only replaces months present in the new rows;
  a month whose files were removed or whose rows are all rejected must be
  emptied too, so a re-run always replaces exactly the run's months. Runs in
  the model's transaction on DuckDB: a failed build leaves the previous rows in
  place (Spark has no transactions: there a failed build leaves the months empty
  until the re-run).
#}
{% macro clear_window_months() -%}
    {%- if model.config.materialized == 'incremental' and is_incremental() -%}
    {{ adapter.dispatch('clear_window_months', 'feature_store')() }}
    {%- endif -%}
{%- endmacro %}
{% macro default__clear_window_months() -%}
    delete from {{ this }} where {{ in_window(model.config.unique_key) }}
{%- endmacro %}
{# Spark: the month key is the table's partition column; insert_overwrite then writes the months that have rows. #}
{% macro spark__clear_window_months() -%}
    alter table {{ this }} drop if exists
    {%- for month in window_months() %} partition ({{ model.config.unique_key }} = '{{ month }}'){% if not loop.last %},{% endif %}{% endfor %}
{%- endmacro %}

{# In-clinic product categories of the contract; any other value counts as `other`. #}
{% macro inclinic_categories() -%}
    {{ return(['vaccines', 'diagnostics', 'pharmacy', 'parasiticides', 'food', 'dental', 'surgery']) }}
{%- endmacro %}

{# The category of a raw product_category value: one of inclinic_categories() or 'other'. #}
{% macro normalized_category(column) -%}
    case when {{ column }} in ('{{ inclinic_categories() | join("', '") }}') then {{ column }} else 'other' end
{%- endmacro %}

{# Why a landed event row is rejected (DATA_CONTRACT.md), or null when it is valid. #}
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
