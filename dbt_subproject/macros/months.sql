{# Month arithmetic. Jinja-side helpers work on the run's window vars; SQL-side ones are adapter-dispatched. #}

{# The feature months of this run: every first-of-month in [min_date, max_date), as ISO strings. #}
{% macro window_months() -%}
    {%- set first = modules.datetime.date.fromisoformat(var('min_date')) -%}
    {%- set stop = modules.datetime.date.fromisoformat(var('max_date')) -%}
    {%- set months = [] -%}
    {%- set ns = namespace(month=first.replace(day=1)) -%}
    {%- for _ in range(1200) if ns.month < stop -%}
        {%- do months.append(ns.month.isoformat()) -%}
        {%- set next_index = ns.month.year * 12 + ns.month.month -%}
        {%- set ns.month = modules.datetime.date(next_index // 12, next_index % 12 + 1, 1) -%}
    {%- endfor -%}
    {{ return(months) }}
{%- endmacro %}

{# A month `n` months after the ISO month `month` (negative n goes back), as an ISO string, computed in Jinja. #}
{% macro shift_month(month, n) -%}
    {%- set d = modules.datetime.date.fromisoformat(month) -%}
    {%- set index = d.year * 12 + d.month - 1 + n -%}
    {{ return(modules.datetime.date(index // 12, index % 12 + 1, 1).isoformat()) }}
{%- endmacro %}

{# The first month the pipeline knows: history before FEATURE_STORE_START_MONTH does not exist. #}
{% macro start_month() -%}
    {{ return(env_var('FEATURE_STORE_START_MONTH', '2023-01') ~ '-01') }}
{%- endmacro %}

{# One row per feature month of the run: (feature_month DATE). #}
{% macro feature_months_relation() -%}
    {%- for month in window_months() %}
    select {{ date_literal(month) }} as feature_month
    {%- if not loop.last %} union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{% macro date_literal(iso) -%}
    {{ return(adapter.dispatch('date_literal', 'feature_store')(iso)) }}
{%- endmacro %}
{% macro default__date_literal(iso) -%}
    cast('{{ iso }}' as date)
{%- endmacro %}

{# A DATE expression moved by n whole months (first-of-month stays first-of-month). #}
{% macro add_months(date_expr, n) -%}
    {{ return(adapter.dispatch('add_months', 'feature_store')(date_expr, n)) }}
{%- endmacro %}
{% macro duckdb__add_months(date_expr, n) -%}
    cast({{ date_expr }} + to_months({{ n }}) as date)
{%- endmacro %}
{% macro default__add_months(date_expr, n) -%}
    add_months({{ date_expr }}, {{ n }})
{%- endmacro %}

{# The first day of the month of a timestamp or date, as a DATE. #}
{% macro month_of(ts_expr) -%}
    {{ return(adapter.dispatch('month_of', 'feature_store')(ts_expr)) }}
{%- endmacro %}
{% macro default__month_of(ts_expr) -%}
    cast(date_trunc('month', {{ ts_expr }}) as date)
{%- endmacro %}

{# A DATE expression moved back by an integer number of days. #}
{% macro subtract_days(date_expr, days_expr) -%}
    {{ return(adapter.dispatch('subtract_days', 'feature_store')(date_expr, days_expr)) }}
{%- endmacro %}
{% macro duckdb__subtract_days(date_expr, days_expr) -%}
    cast({{ date_expr }} - cast({{ days_expr }} as integer) as date)
{%- endmacro %}
{% macro default__subtract_days(date_expr, days_expr) -%}
    date_sub({{ date_expr }}, {{ days_expr }})
{%- endmacro %}

{# Whole days from one DATE to another. #}
{% macro days_between(start_date, end_date) -%}
    {{ return(adapter.dispatch('days_between', 'feature_store')(start_date, end_date)) }}
{%- endmacro %}
{% macro duckdb__days_between(start_date, end_date) -%}
    cast(date_diff('day', cast({{ start_date }} as date), cast({{ end_date }} as date)) as integer)
{%- endmacro %}
{% macro default__days_between(start_date, end_date) -%}
    datediff(cast({{ end_date }} as date), cast({{ start_date }} as date))
{%- endmacro %}
