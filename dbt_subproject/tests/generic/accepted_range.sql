{#
  The column is between min_value and max_value, both included; NULL passes. dbt-core has no
  range test: this is dbt_utils' `accepted_range` (same name and arguments, inclusive bounds),
  which cannot be installed here. Restricted to the run's months by the test's `where` config.
#}
{% test accepted_range(model, column_name, min_value, max_value) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}
{% endtest %}
