{#
  At most one row per combination of the columns. dbt-core's `unique` takes one column and
  skips NULLs; this counts a NULL as a value (two rows with a NULL key fail), like dbt_utils'
  test of the same name and arguments, which cannot be installed here (only PyPI is reachable).
  Restricted to the run's months by the test's `where` config, like the built-in tests.
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(', ') }}, count(*) as copies
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}
