-- Each integrated client's in-clinic net revenue per product category in a month.
select
    client_id,
    event_month as activity_month,
    {%- for category in inclinic_categories() + ['other'] %}
    sum(case when product_category = '{{ category }}' then revenue else 0 end) as revenue_{{ category }}{% if not loop.last %},{% endif %}
    {%- endfor %}
from {{ ref('inclinic_transactions') }}
where {{ in_window('event_month') }}
group by client_id, event_month
