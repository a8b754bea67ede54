-- Monthly cohorts of clients by first-purchase month, per home clinic: size, retention and revenue in each month since the start (docs/marts.md).
{#-
  A run adds the cells of its own months. Cohort membership and cumulative revenue read the
  monthly financials from the start month to the run's last month (client-month rows, small);
  only months up to each snapshot count, so a cell does not depend on how months were grouped into runs.
#}

with feature_months as (
    {{ feature_months_relation() }}
),

financials as (
    {{ cohort_financials() }}
),

first_purchases as (
    {{ first_purchase_months() }}
),

-- the eligible clients of each snapshot month whose first purchase is not after it
members as (
    select
        clients.feature_month,
        clients.client_id,
        clients.clinic_id,
        first_purchases.cohort_month
    from {{ ref('client_features') }} as clients
    inner join first_purchases
        on clients.client_id = first_purchases.client_id
        and first_purchases.cohort_month <= clients.feature_month
    where {{ in_window('clients.feature_month') }}
),

member_months as (
    select
        members.feature_month,
        members.client_id,
        members.clinic_id,
        members.cohort_month,
        sum(case when financials.activity_month = members.feature_month then financials.revenue else 0 end) as revenue,
        max(case when financials.activity_month = members.feature_month then financials.purchased else 0 end) as purchased,
        -- revenue before the cohort month (returns without a purchase) belongs to no cohort
        sum(financials.revenue) as cumulative_revenue
    from members
    inner join financials
        on members.client_id = financials.client_id
        and financials.activity_month >= members.cohort_month
        and financials.activity_month <= members.feature_month
    group by members.feature_month, members.client_id, members.clinic_id, members.cohort_month
),

cells as (
    select
        clinic_id,
        cohort_month,
        feature_month,
        count(*) as cohort_clients,
        sum(purchased) as active_clients,
        sum(revenue) as revenue,
        sum(cumulative_revenue) as cumulative_revenue
    from member_months
    group by clinic_id, cohort_month, feature_month
)

select
    clinic_id,
    cohort_month,
    feature_month as snapshot_month,
    {{ months_between('cohort_month', 'feature_month') }} as months_since_start,
    -- history before the start month does not exist: its cohort also holds every earlier client
    cohort_month = {{ date_literal(start_month()) }} as is_start_cohort,
    cast(cohort_clients as integer) as cohort_clients,
    cast(active_clients as integer) as active_clients,
    cast(active_clients as double) / cohort_clients as retention_rate,
    cast(revenue as double) as revenue,
    cast(cumulative_revenue as double) as cumulative_revenue,
    cast(cumulative_revenue as double) / cohort_clients as cumulative_revenue_per_client
from cells
