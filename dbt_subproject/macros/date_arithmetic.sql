{#
  Date arithmetic in SQL, on dbt's cross-database macros (dbt.dateadd, dbt.datediff,
  dbt.date_trunc, dbt.cast: each adapter brings its dialect). These only fix the result
  types, which the models' columns keep on every adapter: a DATE stays a DATE, a count
  of days or months is an INTEGER.
#}

{# An ISO date ('2024-03-01') as a DATE literal. #}
{% macro date_literal(iso) -%}
    {{ return(dbt.cast(dbt.string_literal(iso), 'date')) }}
{%- endmacro %}

{# A DATE expression moved by n whole months (first-of-month stays first-of-month). #}
{% macro add_months(date_expr, n) -%}
    {{ return(dbt.cast(dbt.dateadd('month', n, date_expr), 'date')) }}
{%- endmacro %}

{# A DATE expression moved back by an integer number of days. #}
{% macro subtract_days(date_expr, days_expr) -%}
    {{ return(dbt.cast(dbt.dateadd('day', '-(' ~ days_expr ~ ')', date_expr), 'date')) }}
{%- endmacro %}

{# The first day of the month of a timestamp or date, as a DATE. #}
{% macro month_of(ts_expr) -%}
    {{ return(dbt.cast(dbt.date_trunc('month', ts_expr), 'date')) }}
{%- endmacro %}

{# Whole days from one date (or timestamp: its date) to another. #}
{% macro days_between(start_date, end_date) -%}
    {{ return(dbt.cast(dbt.datediff(dbt.cast(start_date, 'date'), dbt.cast(end_date, 'date'), 'day'), 'integer')) }}
{%- endmacro %}

{# Months from one first-of-month DATE to another (2024-01-01 to 2024-03-01 is 2). #}
{% macro months_between(start_month, end_month) -%}
    {{ return(dbt.cast(dbt.datediff(start_month, end_month, 'month'), 'integer')) }}
{%- endmacro %}
