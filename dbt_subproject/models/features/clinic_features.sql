-- One row per complete clinic with eligible clients per feature month: its clients, revenue, HD adoption, revenue ranks, ZIP income and category mix, built from the client features (docs/marts.md).
{%- set categories = inclinic_categories() + ['other'] %}
{#- The same 12m window as client_features: M-11..M, none before the start month. #}
{%- set history_start = window_history_start(12) %}

with client_months as (
    select
        client_id,
        feature_month,
        clinic_id,
        inclinic_revenue_1m,
        hd_revenue_1m,
        inclinic_revenue_12m,
        hd_revenue_12m,
        hd_orders_12m,
        clinic_revenue_12m,
        zip_avg_agi,
        {{ client_status('days_since_last_purchase') }} as status,
        -- created in M: the tenure reaches back no further than M's first day
        case
            when tenure_days <= {{ days_between('feature_month', add_months('feature_month', 1)) }} then 1 else 0
        end as is_new
    from {{ ref('client_features') }}
    where {{ in_window('feature_month') }}
),

-- the clinic's practice type, to rank it among its peers
clinic_practice_types as (
    select distinct clinic_id, practice_type
    from {{ ref('integrated_clients') }}
),

-- category revenue stays DECIMAL, so the shares of a clinic add up to 1. The clients' clinics are read from the table,
-- not from client_months: DuckDB then knows their number and builds the join on them, not on the 12 months of mix.
category_revenue_12m as (
    select
        clients.feature_month,
        clients.clinic_id,
        {%- for category in categories %}
        sum(mix.revenue_{{ category }}) as revenue_{{ category }}_12m,
        {%- endfor %}
        sum({% for category in categories %}mix.revenue_{{ category }}{% if not loop.last %} + {% endif %}{% endfor %}) as inclinic_revenue_12m
    from (
        select feature_month, client_id, clinic_id
        from {{ ref('client_features') }}
        where {{ in_window('feature_month') }}
    ) as clients
    inner join {{ ref('client_monthly_inclinic_mix') }} as mix
        on clients.client_id = mix.client_id
        and mix.activity_month >= {{ add_months('clients.feature_month', -11) }}
        and mix.activity_month <= clients.feature_month
    where mix.activity_month >= {{ date_literal(history_start) }}
        and mix.activity_month < {{ date_literal(run_max_date()) }}
    group by clients.feature_month, clients.clinic_id
),

clinics as (
    select
        feature_month,
        clinic_id,
        count(*) as clients_eligible,
        sum(case when status = 'active' then 1 else 0 end) as clients_active,
        sum(case when status = 'at_risk' then 1 else 0 end) as clients_at_risk,
        sum(case when status = 'churned' then 1 else 0 end) as clients_lapsed,
        sum(is_new) as clients_new,
        sum(case when status = 'active' and hd_orders_12m > 0 then 1 else 0 end) as active_clients_with_hd,
        sum(inclinic_revenue_1m) as inclinic_revenue_1m,
        sum(hd_revenue_1m) as hd_revenue_1m,
        sum(inclinic_revenue_12m) as inclinic_revenue_12m,
        sum(hd_revenue_12m) as hd_revenue_12m,
        -- client_features summed the clinic's revenue exactly: the same value ranks here
        max(clinic_revenue_12m) as total_revenue_12m,
        avg(zip_avg_agi) as client_zip_avg_agi_mean
    from client_months
    group by feature_month, clinic_id
)

select
    clinics.clinic_id,
    clinics.feature_month,
    types.practice_type,
    cast(clinics.clients_eligible as integer) as clients_eligible,
    cast(clinics.clients_active as integer) as clients_active,
    cast(clinics.clients_at_risk as integer) as clients_at_risk,
    cast(clinics.clients_lapsed as integer) as clients_lapsed,
    cast(clinics.clients_new as integer) as clients_new,
    clinics.inclinic_revenue_1m,
    clinics.hd_revenue_1m,
    clinics.inclinic_revenue_1m + clinics.hd_revenue_1m as total_revenue_1m,
    clinics.inclinic_revenue_12m,
    clinics.hd_revenue_12m,
    clinics.total_revenue_12m,
    case
        when clinics.clients_active > 0
            then cast(clinics.active_clients_with_hd as double) / clinics.clients_active
    end as hd_adoption_rate,
    clinics.total_revenue_12m / clinics.clients_eligible as avg_client_revenue_12m,
    cast(percent_rank() over (
        partition by clinics.feature_month order by clinics.total_revenue_12m
    ) as double) as revenue_pctl_global_12m,
    cast(percent_rank() over (
        partition by clinics.feature_month, types.practice_type order by clinics.total_revenue_12m
    ) as double) as revenue_pctl_in_practice_type_12m,
    cast(clinics.client_zip_avg_agi_mean as double) as client_zip_avg_agi_mean,
    {%- for category in categories %}
    case
        when mix.inclinic_revenue_12m > 0
            then cast(mix.revenue_{{ category }}_12m as double) / cast(mix.inclinic_revenue_12m as double)
    end as inclinic_share_{{ category }}_12m{% if not loop.last %},{% endif %}
    {%- endfor %}
from clinics
left join clinic_practice_types as types
    on clinics.clinic_id = types.clinic_id
left join category_revenue_12m as mix
    on clinics.feature_month = mix.feature_month and clinics.clinic_id = mix.clinic_id
