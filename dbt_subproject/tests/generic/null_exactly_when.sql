{#
  The column is NULL exactly when the condition holds (e.g. a share is NULL exactly when its
  denominator is <= 0): no built-in test says "NULL if and only if". Restricted to the run's
  months by the test's `where` config.
#}
{% test null_exactly_when(model, column_name, condition) %}
select {{ column_name }}
from {{ model }}
where ({{ column_name }} is null) != coalesce({{ condition }}, false)
{% endtest %}
