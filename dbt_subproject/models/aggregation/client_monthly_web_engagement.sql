-- Each integrated client's activity on the e-commerce site in a month.
select
    client_id,
    event_month as activity_month,
    cast(count(*) as integer) as sessions,
    cast(sum(orders) as integer) as orders,
    cast(sum(page_views) as integer) as page_views,
    cast(sum(product_views) as integer) as product_views,
    cast(sum(add_to_cart_events) as integer) as add_to_cart_events
from {{ ref('web_sessions') }}
where {{ in_window('event_month') }}
group by client_id, event_month
