-- What each eligible client is worth: revenue, orders and average order value in the lookback window, an annual run rate, a value tier and the client's status (docs/marts.md).
{%- set lookback = marts_lookback_months() %}

with feature_months as (
    {{ feature_months_relation() }}
),

clients as (
    select
        client_id,
        feature_month,
        clinic_id,
        days_since_last_purchase,
        -- created_at's month, back from E by the tenure
        {{ month_of(subtract_days(add_months('feature_month', 1), 'tenure_days')) }} as created_month
    from {{ ref('client_features') }}
    where {{ in_window('feature_month') }}
),

lookback_financials as (
    {{ client_lookback_financials(lookback) }}
),

client_months as (
    select
        clients.client_id,
        clients.feature_month,
        clients.clinic_id,
        clients.days_since_last_purchase,
        -- the months of the window the client could buy in: not before its creation, the window or the pipeline's history
        {{ months_between(
            'greatest(clients.created_month, ' ~ add_months('clients.feature_month', 1 - lookback) ~ ', ' ~ date_literal(start_month()) ~ ')',
            'clients.feature_month'
        ) }} + 1 as observed_months,
        coalesce(financials.inclinic_revenue, 0) as inclinic_revenue,
        coalesce(financials.hd_revenue, 0) as hd_revenue,
        coalesce(financials.inclinic_revenue, 0) + coalesce(financials.hd_revenue, 0) as total_revenue,
        coalesce(financials.inclinic_visits, 0) as inclinic_visits,
        coalesce(financials.hd_orders, 0) as hd_orders
    from clients
    left join lookback_financials as financials
        on clients.client_id = financials.client_id and clients.feature_month = financials.feature_month
),

valued as (
    select
        *,
        inclinic_visits + hd_orders as orders,
        cast(total_revenue as double) * 12 / observed_months as estimated_annual_value
    from client_months
)

select
    client_id,
    feature_month as snapshot_month,
    clinic_id,
    cast({{ lookback }} as integer) as lookback_months,
    cast(observed_months as integer) as observed_months,
    cast(inclinic_revenue as double) as inclinic_revenue,
    cast(hd_revenue as double) as hd_revenue,
    cast(total_revenue as double) as total_revenue,
    cast(inclinic_visits as integer) as inclinic_visits,
    cast(hd_orders as integer) as hd_orders,
    cast(orders as integer) as orders,
    case when orders > 0 then cast(total_revenue as double) / orders end as avg_order_value,
    estimated_annual_value,
    case
        when estimated_annual_value >= {{ var('high_value_annual_threshold') }} then 'high'
        when estimated_annual_value >= {{ var('medium_value_annual_threshold') }} then 'medium'
        when estimated_annual_value > 0 then 'low'
        else 'none'
    end as value_tier,
    -- the same rule and thresholds as client_rfm's status
    {{ client_status('days_since_last_purchase') }} as client_status
from valued
