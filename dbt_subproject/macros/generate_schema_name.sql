{# Layers land in schemas named exactly after them (filtered, aggregation, features, quality), not <target>_<layer>. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
