{#
  Generic tests restricted to the run's months, so their cost does not grow with
  history. `month_column` is the model's month key.
#}

{% test unique_in_window(model, combination, month_column) %}
select {{ combination | join(', ') }}, count(*) as copies
from {{ model }}
where {{ in_window(month_column) }}
group by {{ combination | join(', ') }}
having count(*) > 1
{% endtest %}

{% test not_null_in_window(model, column_name, month_column) %}
select {{ column_name }}
from {{ model }}
where {{ in_window(month_column) }} and {{ column_name }} is null
{% endtest %}

{% test between_in_window(model, column_name, month_column, min_value, max_value) %}
select {{ column_name }}
from {{ model }}
where {{ in_window(month_column) }}
    and ({{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }})
{% endtest %}

{% test accepted_values_in_window(model, column_name, month_column, values) %}
select {{ column_name }}
from {{ model }}
where {{ in_window(month_column) }}
    and {{ column_name }} not in ('{{ values | join("', '") }}')
{% endtest %}

{# NULL exactly when the condition holds (e.g. a share is NULL exactly when its denominator is <= 0). #}
{% test null_exactly_when_in_window(model, column_name, month_column, condition) %}
select {{ column_name }}
from {{ model }}
where {{ in_window(month_column) }}
    and (({{ column_name }} is null) != coalesce({{ condition }}, false))
{% endtest %}
