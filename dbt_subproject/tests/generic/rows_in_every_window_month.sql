{#
  Every month of the run has rows: a month whose files are missing (or all rejected) fails here,
  before anything downstream is built. No built-in test compares a table with the run's months;
  `month_column` is the model's month key.
#}
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
