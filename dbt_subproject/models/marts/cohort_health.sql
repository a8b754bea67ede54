-- Cohort health over all clinics, by signup month (clients.created_at) and by first-purchase month: retention, churn, revenue per client and a health class per month since start (docs/marts.md).
{#-
  A run adds the cells of its own months. Cohort membership and cumulative revenue read the monthly financials
  from the start month to the run's last month (client-month rows, small), as client_cohorts does.
#}

with financials as (
    {{ cohort_financials() }}
),

first_purchases as (
    {{ first_purchase_months() }}
),

clients as (
    select
        feature_month,
        client_id,
        days_since_last_purchase,
        -- created_at's month, back from E by the tenure; history before the start month does not exist
        greatest(
            {{ month_of(subtract_days(add_months('feature_month', 1), 'tenure_days')) }},
            {{ date_literal(start_month()) }}
        ) as signup_month
    from {{ ref('client_features') }}
    where {{ in_window('feature_month') }}
),

-- each eligible client of a snapshot month with its two cohort months (no first purchase yet: null)
client_months as (
    select
        clients.feature_month,
        clients.client_id,
        case when {{ client_status('clients.days_since_last_purchase') }} = 'churned' then 1 else 0 end as churned,
        clients.signup_month,
        first_purchases.cohort_month as first_purchase_month
    from clients
    left join first_purchases
        on clients.client_id = first_purchases.client_id
        and first_purchases.cohort_month <= clients.feature_month
),

-- one pass over each client's months up to the snapshot month serves both cohorts: the snapshot month's revenue and
-- purchase, and the revenue since each cohort month (both cohort months are at most the snapshot month)
client_history as (
    select
        client_months.feature_month,
        client_months.client_id,
        client_months.churned,
        client_months.signup_month,
        client_months.first_purchase_month,
        coalesce(sum(case when financials.activity_month = client_months.feature_month then financials.revenue end), 0) as revenue,
        coalesce(max(case when financials.activity_month = client_months.feature_month then financials.purchased end), 0) as purchased,
        coalesce(sum(case when financials.activity_month >= client_months.signup_month then financials.revenue end), 0) as revenue_since_signup,
        coalesce(sum(case when financials.activity_month >= client_months.first_purchase_month then financials.revenue end), 0) as revenue_since_first_purchase
    from client_months
    left join financials
        on client_months.client_id = financials.client_id
        and financials.activity_month >= coalesce(
            case when client_months.first_purchase_month < client_months.signup_month then client_months.first_purchase_month end,
            client_months.signup_month
        )
        and financials.activity_month <= client_months.feature_month
    group by
        client_months.feature_month,
        client_months.client_id,
        client_months.churned,
        client_months.signup_month,
        client_months.first_purchase_month
),

-- each client in its two cohorts (a client that never purchased only in its signup cohort)
member_months as (
    select 'signup' as cohort_type, signup_month as cohort_month, feature_month, client_id, churned, revenue, purchased, revenue_since_signup as cumulative_revenue
    from client_history
    union all
    select 'first_purchase', first_purchase_month, feature_month, client_id, churned, revenue, purchased, revenue_since_first_purchase
    from client_history
    where first_purchase_month is not null
),

cells as (
    select
        cohort_type,
        cohort_month,
        feature_month,
        {{ months_between('cohort_month', 'feature_month') }} as months_since_start,
        count(*) as cohort_clients,
        sum(purchased) as active_clients,
        sum(churned) as churned_clients,
        sum(revenue) as revenue,
        sum(cumulative_revenue) as cumulative_revenue
    from member_months
    group by cohort_type, cohort_month, feature_month
),

rates as (
    select
        *,
        cast(active_clients as double) / cohort_clients as retention_rate,
        cast(churned_clients as double) / cohort_clients as churn_rate
    from cells
)

select
    cohort_type,
    cohort_month,
    feature_month as snapshot_month,
    months_since_start,
    cohort_month = {{ date_literal(start_month()) }} as is_start_cohort,
    cast(cohort_clients as integer) as cohort_clients,
    cast(active_clients as integer) as active_clients,
    cast(churned_clients as integer) as churned_clients,
    retention_rate,
    churn_rate,
    cast(revenue as double) as revenue,
    cast(revenue as double) / cohort_clients as revenue_per_client,
    cast(cumulative_revenue as double) as cumulative_revenue,
    cast(cumulative_revenue as double) / cohort_clients as cumulative_revenue_per_client,
    case
        when months_since_start = 0 then 'new'
        when churn_rate >= {{ var('cohort_unhealthy_churn_rate') }} or retention_rate < {{ var('cohort_unhealthy_retention_rate') }} then 'unhealthy'
        when retention_rate >= {{ var('cohort_healthy_retention_rate') }} then 'healthy'
        else 'watch'
    end as health_class
from rates
