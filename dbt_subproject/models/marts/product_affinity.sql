-- Which in-clinic product categories are bought together on the same visit: support, confidence and lift over the lookback window, per snapshot month (docs/marts.md).
{%- set lookback = marts_lookback_months() %}

with feature_months as (
    {{ feature_months_relation() }}
),

-- the monthly basket matrices of the window, added up: visits, category visits (the diagonal) and pair visits
window_matrix as (
    select
        feature_months.feature_month,
        matrix.product_category,
        matrix.paired_category,
        sum(matrix.visits) as visits
    from {{ ref('category_pair_monthly_visits') }} as matrix
    {{ join_lookback_window('matrix', lookback) }}
    where {{ in_run_windows('matrix', lookback) }}
    group by feature_months.feature_month, matrix.product_category, matrix.paired_category
),

window_visits as (
    select feature_months.feature_month, sum(months.month_visits) as visits
    from (select distinct activity_month, month_visits from {{ ref('category_pair_monthly_visits') }}) as months
    {{ join_lookback_window('months', lookback) }}
    group by feature_months.feature_month
),

category_visits as (
    select feature_month, product_category, visits as category_visits
    from window_matrix
    where product_category = paired_category
),

pair_visits as (
    select
        feature_month,
        product_category as antecedent_category,
        paired_category as consequent_category,
        visits as pair_visits
    from window_matrix
    where product_category != paired_category
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
