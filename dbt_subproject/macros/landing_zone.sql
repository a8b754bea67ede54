{#
  Reading the raw landing zone (DATA_CONTRACT.md). The contract's columns and
  types are declared once, in models/sources.yml; these macros read them from
  the graph. Month tables are read by an explicit list of the window's files,
  so a month only ever opens its own folder: a corrupt file elsewhere cannot
  break it, and a month with no files yields no rows (its row-count check
  fails) instead of an error.
#}

{# The contract's columns of a landing-zone table, as an ordered {name: type} mapping. #}
{% macro landing_zone_columns(table_name) -%}
    {%- set node = graph.sources['source.feature_store.landing_zone.' ~ table_name] -%}
    {%- set columns = {} -%}
    {%- for column in node.columns.values() -%}
        {%- do columns.update({column.name: column.data_type}) -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}

{% macro landing_zone_dir() -%}
    {{ return(env_var('FEATURE_STORE_RAW_DIR', '../data/raw')) }}
{%- endmacro %}

{# A reference table of the landing zone (clinics, clients), with the contract's columns. #}
{% macro landing_zone_table(table_name) -%}
    {{ return(adapter.dispatch('landing_zone_table', 'feature_store')(table_name)) }}
{%- endmacro %}
{% macro duckdb__landing_zone_table(table_name) -%}
    {%- set relation = source('landing_zone', table_name) -%}
    {%- if not execute -%}{{ return(relation) }}{%- endif -%}
    {%- set columns = landing_zone_columns(table_name) -%}
    (select
        {%- for name, type in columns.items() %}
        cast({{ name }} as {{ type }}) as {{ name }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from read_parquet('{{ landing_zone_dir() }}/{{ table_name }}.parquet'))
{%- endmacro %}

{#
  The rows of a monthly event table filed under the run's months, with the
  contract's columns and `folder_month` (the month of the folder, 'YYYY-MM').
#}
{% macro landing_zone_events(table_name) -%}
    {{ return(adapter.dispatch('landing_zone_events', 'feature_store')(table_name)) }}
{%- endmacro %}
{% macro duckdb__landing_zone_events(table_name) -%}
    {%- set relation = source('landing_zone', table_name) -%}
    {%- if not execute -%}{{ return(relation) }}{%- endif -%}
    {%- set columns = landing_zone_columns(table_name) -%}
    {%- set globs = [] -%}
    {%- for month in window_months() -%}
        {%- do globs.append("select file from glob('" ~ landing_zone_dir() ~ "/" ~ table_name ~ "/month=" ~ month[:7] ~ "/*.parquet')") -%}
    {%- endfor -%}
    {%- set files = run_query(globs | join(' union all ') ~ ' order by file').columns[0].values() -%}
    {%- if files | length == 0 %}
    (select
        {%- for name, type in columns.items() %}
        cast(null as {{ type }}) as {{ name }},
        {%- endfor %}
        cast(null as varchar) as folder_month
    where 1 = 0)
    {%- else %}
    (select
        {%- for name, type in columns.items() %}
        cast({{ name }} as {{ type }}) as {{ name }},
        {%- endfor %}
        month as folder_month
    from read_parquet(
        [{% for file in files %}'{{ file | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% endfor %}],
        hive_partitioning = true,
        hive_types = {'month': 'VARCHAR'}
    ))
    {%- endif %}
{%- endmacro %}
