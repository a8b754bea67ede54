{#
  Reading the raw landing zone (docs/data-contract.md). The contract's columns and
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

{# A contract type in the adapter's dialect (Spark has no unsized VARCHAR). #}
{% macro landing_zone_type(data_type) -%}
    {{ return(adapter.dispatch('landing_zone_type', 'feature_store')(data_type)) }}
{%- endmacro %}
{% macro default__landing_zone_type(data_type) -%}
    {{ return(data_type) }}
{%- endmacro %}
{% macro spark__landing_zone_type(data_type) -%}
    {{ return('string' if data_type == 'varchar' else data_type) }}
{%- endmacro %}

{% macro landing_zone_dir() -%}
    {{ return(env_var('FEATURE_STORE_RAW_DIR', '../data/raw')) }}
{%- endmacro %}

{# A reference table of the landing zone (clinics, clients), with the contract's columns. #}
{% macro landing_zone_table(table_name) -%}
    {%- set relation = source('landing_zone', table_name) -%}
    {%- if not execute -%}{{ return(relation) }}{%- endif -%}
    {%- set columns = landing_zone_columns(table_name) -%}
    (select
        {%- for name, type in columns.items() %}
        cast({{ name }} as {{ landing_zone_type(type) }}) as {{ name }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ parquet_file(landing_zone_dir() ~ '/' ~ table_name ~ '.parquet') }})
{%- endmacro %}

{# One Parquet file, read in place. #}
{% macro parquet_file(path) -%}
    {{ return(adapter.dispatch('parquet_file', 'feature_store')(path)) }}
{%- endmacro %}
{% macro duckdb__parquet_file(path) -%}
    read_parquet({{ sql_string(path) }})
{%- endmacro %}
{# Spark names the file by a backquoted identifier, where a backquote is doubled. #}
{% macro spark__parquet_file(path) -%}
    parquet.`{{ path | replace('`', '``') }}`
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
        {%- do globs.append('select file from glob(' ~ sql_string(landing_zone_dir() ~ '/' ~ table_name ~ '/month=' ~ month[:7] ~ '/*.parquet') ~ ')') -%}
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
        [{% for file in files %}{{ sql_string(file) }}{% if not loop.last %}, {% endif %}{% endfor %}],
        hive_partitioning = true,
        hive_types = {'month': 'VARCHAR'}
    ))
    {%- endif %}
{%- endmacro %}

{#
  Spark: a monthly table is an external table over its folder, partitioned by the
  `month=YYYY-MM` folders and declared with the contract's schema (created, and its
  folders registered, when a model reads it): a query on the run's months only lists
  and opens their folders, and a month without files yields no rows.
#}
{% macro spark__landing_zone_events(table_name) -%}
    {%- set relation = source('landing_zone', table_name) -%}
    {%- if not execute -%}{{ return(relation) }}{%- endif -%}
    {%- set columns = landing_zone_columns(table_name) -%}
    {%- set table = 'landing_zone.' ~ table_name -%}
    {%- do run_query('create database if not exists landing_zone') -%}
    {%- do run_query('drop table if exists ' ~ table) -%}
    {%- set ddl -%}
        create table {{ table }} (
            {%- for name, type in columns.items() %}
            {{ name }} {{ landing_zone_type(type) }},
            {%- endfor %}
            month string
        ) using parquet partitioned by (month) location {{ sql_string(landing_zone_dir() ~ '/' ~ table_name) }}
    {%- endset -%}
    {%- do run_query(ddl) -%}
    {%- do run_query('alter table ' ~ table ~ ' recover partitions') -%}
    (select
        {%- for name, type in columns.items() %}
        {{ name }},
        {%- endfor %}
        month as folder_month
    from {{ table }}
    where month in ({% for month in window_months() %}'{{ month[:7] }}'{% if not loop.last %}, {% endif %}{% endfor %}))
{%- endmacro %}

{#
  A table the Python assets own (reference.client_zip_income). DuckDB reads it in the
  warehouse; Spark reads the Parquet copy the asset writes under FEATURE_STORE_SPARK_DIR.
#}
{% macro reference_table(table_name) -%}
    {{ return(adapter.dispatch('reference_table', 'feature_store')(table_name)) }}
{%- endmacro %}
{% macro default__reference_table(table_name) -%}
    {{ return(source('reference', table_name)) }}
{%- endmacro %}
{% macro spark__reference_table(table_name) -%}
    {%- set relation = source('reference', table_name) -%}
    {%- if not execute -%}{{ return(relation) }}{%- endif -%}
    (select * from {{ parquet_file(env_var('FEATURE_STORE_SPARK_DIR', '../data/spark') ~ '/reference/' ~ table_name) }})
{%- endmacro %}
