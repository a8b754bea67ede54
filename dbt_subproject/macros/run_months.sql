{# The run's months ([min_date, max_date): run_min_date() and run_max_date() below), computed in Jinja, and what each month-incremental model does with them. #}

{#
  The run's window. Dagster hands it over in the environment (FEATURE_STORE_RUN_MIN_DATE,
  FEATURE_STORE_RUN_MAX_DATE), read only while dbt executes: a --vars that changes every
  run, or an env var read while parsing, would make dbt re-parse the project on each run
  (seconds per build, docs/performance.md). By hand: `--vars '{min_date: ..., max_date: ...}'`,
  with those variables unset.
#}
{% macro run_min_date() -%}
    {{ return(run_window_bound('min_date')) }}
{%- endmacro %}
{% macro run_max_date() -%}
    {{ return(run_window_bound('max_date')) }}
{%- endmacro %}
{% macro run_window_bound(name) -%}
    {%- set from_env = env_var('FEATURE_STORE_RUN_' ~ name | upper, '') if execute else '' -%}
    {{ return(from_env or var(name)) }}
{%- endmacro %}

{#
  The `where` config of the tests of a monthly model (dbt's documented override): the
  placeholders __run_min_date__ and __run_max_date__ become the run's window. A `where` is
  rendered when dbt parses; the placeholders are filled when the test runs.
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set where = where | replace('__run_min_date__', date_literal(run_min_date()))
            | replace('__run_max_date__', date_literal(run_max_date())) -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}

{# The feature months of this run: every first-of-month in [min_date, max_date), as ISO strings. #}
{% macro window_months() -%}
    {%- set first = modules.datetime.date.fromisoformat(run_min_date()) -%}
    {%- set stop = modules.datetime.date.fromisoformat(run_max_date()) -%}
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

{# The run's month window as a predicate on a first-of-month DATE column. #}
{% macro in_window(month_column) -%}
    {{ month_column }} >= {{ date_literal(run_min_date()) }} and {{ month_column }} < {{ date_literal(run_max_date()) }}
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
