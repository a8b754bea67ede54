-- Which in-clinic product categories are bought together on the same visit: support, confidence and lift over the lookback window, per snapshot month (docs/marts.md).
{%- set lookback = marts_lookback_months() %}

with feature_months as (
    {{ feature_months_relation() }}
),

-- a visit is one client on one date; its basket is the categories it bought (lines with revenue > 0)
visit_categories as (
    select distinct
        client_id,
        transaction_date,
        event_month,
        product_category
    from {{ ref('inclinic_transactions') }}
    where revenue > 0
        and event_month >= {{ date_literal(window_history_start(lookback)) }}
        and event_month < {{ date_literal(var('max_date')) }}
),

window_visit_categories as (
    select
        feature_months.feature_month,
        visit_categories.client_id,
        visit_categories.transaction_date,
        visit_categories.product_category
    from visit_categories
    inner join feature_months
        on visit_categories.event_month >= {{ add_months('feature_months.feature_month', 1 - lookback) }}
        and visit_categories.event_month <= feature_months.feature_month
),

window_visits as (
    select feature_month, count(*) as visits
    from (select distinct feature_month, client_id, transaction_date from window_visit_categories) as visits
    group by feature_month
),

category_visits as (
    select feature_month, product_category, count(*) as category_visits
    from window_visit_categories
    group by feature_month, product_category
),

pair_visits as (
    select
        antecedent.feature_month,
        antecedent.product_category as antecedent_category,
        consequent.product_category as consequent_category,
        count(*) as pair_visits
    from window_visit_categories as antecedent
    inner join window_visit_categories as consequent
        on antecedent.feature_month = consequent.feature_month
        and antecedent.client_id = consequent.client_id
        and antecedent.transaction_date = consequent.transaction_date
        and antecedent.product_category != consequent.product_category
    group by antecedent.feature_month, antecedent.product_category, consequent.product_category
),

rules as (
    select
        pairs.feature_month,
        pairs.antecedent_category,
        pairs.consequent_category,
        window_visits.visits,
        antecedent.category_visits as antecedent_visits,
        consequent.category_visits as consequent_visits,
        pairs.pair_visits,
        cast(pairs.pair_visits as double) / window_visits.visits as support,
        cast(pairs.pair_visits as double) / antecedent.category_visits as confidence,
        -- one division of exact integer products: equal lifts stay equal, so ties rank by confidence
        cast(pairs.pair_visits * window_visits.visits as double)
            / cast(antecedent.category_visits * consequent.category_visits as double) as lift
    from pair_visits as pairs
    inner join window_visits
        on pairs.feature_month = window_visits.feature_month
    inner join category_visits as antecedent
        on pairs.feature_month = antecedent.feature_month and pairs.antecedent_category = antecedent.product_category
    inner join category_visits as consequent
        on pairs.feature_month = consequent.feature_month and pairs.consequent_category = consequent.product_category
)

select
    feature_month as snapshot_month,
    cast({{ lookback }} as integer) as lookback_months,
    antecedent_category,
    consequent_category,
    cast(visits as integer) as visits,
    cast(antecedent_visits as integer) as antecedent_visits,
    cast(consequent_visits as integer) as consequent_visits,
    cast(pair_visits as integer) as pair_visits,
    support,
    confidence,
    lift,
    cast(row_number() over (
        partition by feature_month, antecedent_category
        order by lift desc, confidence desc, consequent_category
    ) as integer) as recommendation_rank
from rules
where support >= cast('{{ var("affinity_min_support") }}' as double)
