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

{# Every month of the run has rows: a month whose files are missing (or all rejected) fails here, before anything downstream is built. #}
{% test rows_in_every_window_month(model, month_column) %}
with run_months as (
    {{ feature_months_relation() }}
),

counts as (
    select {{ month_column }} as month, count(*) as row_count
    from {{ model }}
    where {{ in_window(month_column) }}
    group by {{ month_column }}
)

select run_months.feature_month as empty_month
from run_months
left join counts on run_months.feature_month = counts.month
where counts.row_count is null
{% endtest %}
