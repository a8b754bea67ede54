-- RFM scores, behavioural segment and status of every eligible client that ever purchased, per snapshot month (docs/marts.md).
{%- set lookback = marts_lookback_months() %}

with feature_months as (
    {{ feature_months_relation() }}
),

-- recency comes from client_features, over all history; clients that never purchased have no recency and no row
purchasers as (
    select
        client_id,
        feature_month,
        clinic_id,
        days_since_last_purchase
    from {{ ref('client_features') }}
    where {{ in_window('feature_month') }}
        and days_since_last_purchase is not null
),

lookback_financials as (
    {{ client_lookback_financials(lookback) }}
),

client_months as (
    select
        purchasers.client_id,
        purchasers.feature_month,
        purchasers.clinic_id,
        purchasers.days_since_last_purchase,
        coalesce(financials.inclinic_visits, 0) + coalesce(financials.hd_orders, 0) as purchases,
        -- money stays DECIMAL until the output, so monetary ties are exact
        coalesce(financials.inclinic_revenue, 0) + coalesce(financials.hd_revenue, 0) as revenue
    from purchasers
    left join lookback_financials as financials
        on purchasers.client_id = financials.client_id and purchasers.feature_month = financials.feature_month
),

-- only clients with a purchase in the window are scored, against each other
scores as (
    select
        client_id,
        feature_month,
        {{ quintile_score('days_since_last_purchase', 'feature_month', better='lower') }} as recency_score,
        {{ quintile_score('purchases', 'feature_month') }} as frequency_score,
        {{ quintile_score('revenue', 'feature_month') }} as monetary_score
    from client_months
    where purchases > 0
)

select
    client_months.client_id,
    client_months.feature_month as snapshot_month,
    client_months.clinic_id,
    cast({{ lookback }} as integer) as lookback_months,
    cast(client_months.days_since_last_purchase as integer) as days_since_last_purchase,
    cast(client_months.purchases as integer) as purchases,
    cast(client_months.revenue as double) as revenue,
    scores.recency_score,
    scores.frequency_score,
    scores.monetary_score,
    case
        when scores.client_id is not null then {{ dbt.concat([
            dbt.cast('scores.recency_score', dbt.type_string()),
            dbt.cast('scores.frequency_score', dbt.type_string()),
            dbt.cast('scores.monetary_score', dbt.type_string()),
        ]) }}
    end as rfm_code,
    -- the first rule that matches wins
    case
        when scores.client_id is null then 'lost'
        when scores.recency_score = 1 and scores.frequency_score = 1 then 'lost'
        when scores.recency_score >= 4 and scores.frequency_score >= 4 and scores.monetary_score >= 4 then 'champions'
        when scores.recency_score >= 3 and scores.frequency_score >= 4 then 'loyal'
        when scores.recency_score >= 4 and scores.frequency_score = 1 then 'new'
        when scores.recency_score >= 3 then 'potential_loyalist'
        when scores.frequency_score >= 3 then 'at_risk'
        else 'hibernating'
    end as segment,
    {{ client_status('client_months.days_since_last_purchase') }} as status
from client_months
left join scores
    on client_months.client_id = scores.client_id and client_months.feature_month = scores.feature_month
