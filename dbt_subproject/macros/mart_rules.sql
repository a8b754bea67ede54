{# Rules shared by the analytical marts and the clinic features (docs/marts.md). Thresholds are vars with defaults in dbt_project.yml. #}

{# Months in the marts' lookback window, M-n+1..M. At most 12: Dagster maps a mart month to 12 months of upstream partitions. #}
{% macro marts_lookback_months() -%}
    {%- set months = var('marts_lookback_months') | int -%}
    {%- if months < 1 or months > 12 -%}
        {{ exceptions.raise_compiler_error("marts_lookback_months must be between 1 and 12, got " ~ var('marts_lookback_months')) }}
    {%- endif -%}
    {{ return(months) }}
{%- endmacro %}

{# The first aggregation month a run over [min_date, max_date) reads for windows of `months` months: none before the start month. #}
{% macro window_history_start(months) -%}
    {#- ISO dates compare as strings. -#}
    {{ return([shift_month(run_min_date(), 1 - months), start_month()] | max) }}
{%- endmacro %}

{# A client's status from the days since its last purchase: active, at_risk or churned; null when it never purchased. #}
{% macro client_status(days_since_last_purchase) -%}
    case
        when {{ days_since_last_purchase }} is null then null
        when {{ days_since_last_purchase }} <= {{ var('client_active_days') }} then 'active'
        when {{ days_since_last_purchase }} <= {{ var('client_churn_days') }} then 'at_risk'
        else 'churned'
    end
{%- endmacro %}

{#
  An RFM score from 1 to 5: 1 + floor(5 x (rows of the partition with a strictly worse
  value) / (rows of the partition)). Ties share the lower score; with n rows and no ties
  each score holds a fifth of them. `better` says which direction is better.
#}
{% macro quintile_score(value, partition_by, better='higher') -%}
    cast(1 + floor(
        5 * (rank() over (partition by {{ partition_by }} order by {{ value }} {{ 'asc' if better == 'higher' else 'desc' }}) - 1)
        / cast(count(*) over (partition by {{ partition_by }}) as double)
    ) as integer)
{%- endmacro %}

{#
  Each client's purchases and revenue in the lookback window of every month of the run,
  from the monthly financials: the body of a CTE, next to a `feature_months` CTE. A
  purchase is an in-clinic visit (a date with a line of revenue > 0) or a completed HD order.
#}
{% macro client_lookback_financials(lookback) -%}
    select
        feature_months.feature_month,
        financials.client_id,
        sum(financials.inclinic_revenue) as inclinic_revenue,
        sum(financials.hd_revenue) as hd_revenue,
        sum(financials.inclinic_visits) as inclinic_visits,
        sum(financials.hd_orders) as hd_orders
    from {{ ref('client_monthly_financials') }} as financials
    {{ join_lookback_window('financials', lookback) }}
    where {{ in_run_windows('financials', lookback) }}
    group by feature_months.feature_month, financials.client_id
{%- endmacro %}

{# Each month of `relation_alias` (its activity_month) joined to every month of the `feature_months` CTE whose lookback window holds it. #}
{% macro join_lookback_window(relation_alias, lookback) -%}
    inner join feature_months
        on {{ relation_alias }}.activity_month >= {{ add_months('feature_months.feature_month', 1 - lookback) }}
        and {{ relation_alias }}.activity_month <= feature_months.feature_month
{%- endmacro %}

{# Only the months the run's windows read: from window_history_start to the run's last month. #}
{% macro in_run_windows(relation_alias, lookback) -%}
    {{ relation_alias }}.activity_month >= {{ date_literal(window_history_start(lookback)) }}
        and {{ relation_alias }}.activity_month < {{ date_literal(run_max_date()) }}
{%- endmacro %}

{# The group of an in-clinic category (docs/marts.md): a service done in the clinic, a product taken home, or other. #}
{% macro category_group(category) -%}
    case
        when {{ category }} in ('vaccines', 'diagnostics', 'dental', 'surgery') then 'service'
        when {{ category }} in ('pharmacy', 'parasiticides', 'food') then 'product'
        else 'other'
    end
{%- endmacro %}

{#
  The cohort marts' history (client_cohorts, cohort_health): each client-month of the monthly financials from the
  start month to the run's last month, with its revenue and whether it holds a purchase (an in-clinic line with
  revenue > 0 or a completed HD order).
#}
{% macro cohort_financials() -%}
    select
        client_id,
        activity_month,
        inclinic_revenue + hd_revenue as revenue,
        case when last_purchase_date is not null then 1 else 0 end as purchased
    from {{ ref('client_monthly_financials') }}
    where activity_month >= {{ date_literal(start_month()) }}
        and activity_month < {{ date_literal(run_max_date()) }}
{%- endmacro %}

{#
  Each client's first-purchase month over cohort_financials' months: its first_purchase cohort. It reads
  cohort_financials as a subquery rather than a model's financials CTE: read once, the CTE is not materialized by
  DuckDB (0.7 s of 3.5 s for cohort_health at 2M clients and 13 months).
#}
{% macro first_purchase_months() -%}
    select client_id, min(activity_month) as cohort_month
    from ({{ cohort_financials() }}) as financials
    where purchased = 1
    group by client_id
{%- endmacro %}
