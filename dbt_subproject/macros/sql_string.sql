{#
  A value (a path, a month) as a SQL string literal of the adapter's dialect: every path that
  goes into SQL (read_parquet, glob, Spark's location) goes through it, so a folder named
  `o'brien` works. DuckDB doubles a quote. Spark SQL reads a backslash as an escape character
  (`\n`, `\'`): there a backslash is doubled and a quote escaped with one.
#}
{% macro sql_string(value) -%}
    {{ return(adapter.dispatch('sql_string', 'feature_store')(value | string)) }}
{%- endmacro %}
{% macro default__sql_string(value) -%}
    {{ return("'" ~ value.replace("'", "''") ~ "'") }}
{%- endmacro %}
{% macro spark__sql_string(value) -%}
    {{ return("'" ~ value.replace("\\", "\\\\").replace("'", "\\'") ~ "'") }}
{%- endmacro %}
