-- What to suggest to the buyers of each in-clinic category: the top association rules of product_affinity, with a strength class, an evidence level and a message for a UI, per snapshot month (docs/marts.md).

with rules as (
    select *
    from {{ ref('product_affinity') }}
    where {{ in_window('snapshot_month') }}
),

-- a rule is a recommendation when the pair is bought together more often than chance; affinity's rank orders by lift first
recommendations as (
    select
        rules.*,
        reverse.confidence as reverse_confidence,
        cast(round(rules.confidence * 100) as integer) as confidence_percent,
        cast(round(rules.lift * 10) as integer) as lift_tenths
    from rules
    -- the same pair the other way round (B -> A): support is symmetric, so it is always there
    inner join rules as reverse
        on rules.snapshot_month = reverse.snapshot_month
        and rules.antecedent_category = reverse.consequent_category
        and rules.consequent_category = reverse.antecedent_category
    where rules.lift > 1
        and rules.recommendation_rank <= {{ var('recommendations_per_category') }}
)

select
    snapshot_month,
    lookback_months,
    antecedent_category as source_category,
    consequent_category as recommended_category,
    recommendation_rank,
    {{ category_group('antecedent_category') }} as source_category_group,
    {{ category_group('consequent_category') }} as recommended_category_group,
    {{ category_group('antecedent_category') }} != {{ category_group('consequent_category') }} as cross_category,
    pair_visits,
    support,
    confidence,
    reverse_confidence,
    lift,
    case
        when lift >= {{ var('recommendation_strong_lift') }} and confidence >= {{ var('recommendation_strong_confidence') }} then 'strong'
        when lift >= {{ var('recommendation_moderate_lift') }} and confidence >= {{ var('recommendation_moderate_confidence') }} then 'moderate'
        else 'weak'
    end as strength,
    case
        when pair_visits >= {{ var('recommendation_high_evidence_visits') }} then 'high'
        when pair_visits >= {{ var('recommendation_medium_evidence_visits') }} then 'medium'
        else 'low'
    end as confidence_level,
    {{ dbt.concat([
        "'Buyers of '", 'antecedent_category', "': suggest '", 'consequent_category',
        "' (bought on '", dbt.cast('confidence_percent', dbt.type_string()), "'% of their visits, '",
        dbt.cast(dbt.cast('floor(lift_tenths / 10.0)', 'integer'), dbt.type_string()), "'.'",
        dbt.cast('lift_tenths % 10', dbt.type_string()), "'x as often as by chance)'",
    ]) }} as message
from recommendations
