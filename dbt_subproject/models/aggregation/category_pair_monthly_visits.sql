-- The month's in-clinic basket matrix: for each ordered pair of product categories, the visits whose
-- basket holds both; on the diagonal (a category paired with itself), the visits holding the category.
-- Every visit falls in one month, so these counts add up over months: product_affinity sums its window
-- of this small table (at most 64 rows a month) instead of re-reading the window's lines.
{%- set categories = inclinic_categories() + ['other'] %}

-- a visit is one client on one date; its basket is the set of categories of its lines with revenue > 0,
-- kept as one integer with a bit per category
with baskets as (
    select
        event_month,
        bit_or(case product_category
            {%- for category in categories %}
            when '{{ category }}' then {{ 2 ** loop.index0 }}
            {%- endfor %}
        end) as basket
    from {{ ref('inclinic_transactions') }}
    where revenue > 0
        and {{ in_window('event_month') }}
    group by event_month, client_id, transaction_date
),

-- at most 2^8 distinct baskets a month: the pairs are expanded from these, not from the visits
basket_visits as (
    select event_month, basket, count(*) as visits
    from baskets
    group by event_month, basket
),

month_visits as (
    select event_month, sum(visits) as month_visits
    from basket_visits
    group by event_month
),

category_bits as (
    {%- for category in categories %}
    select '{{ category }}' as product_category, {{ 2 ** loop.index0 }} as bit{% if not loop.last %} union all{% endif %}
    {%- endfor %}
)

select
    basket_visits.event_month as activity_month,
    category.product_category,
    paired.product_category as paired_category,
    cast(sum(basket_visits.visits) as bigint) as visits,
    cast(month_visits.month_visits as bigint) as month_visits
from basket_visits
inner join category_bits as category
    on (basket_visits.basket & category.bit) != 0
inner join category_bits as paired
    on (basket_visits.basket & paired.bit) != 0
inner join month_visits
    on basket_visits.event_month = month_visits.event_month
group by basket_visits.event_month, category.product_category, paired.product_category, month_visits.month_visits
