-- One row per eligible client per feature month: the client feature store (docs/features.md).
{%- set min_date = run_min_date() %}
{%- set max_date = run_max_date() %}
{#- Aggregates before the start month do not exist for the pipeline; ISO dates compare as strings. #}
{%- set history_start = [shift_month(min_date, -11), start_month()] | max %}
{%- set categories = inclinic_categories() + ['other'] %}

with feature_months as (
    {{ feature_months_relation() }}
),

-- eligible in M: home clinic integrated (complete) and created before E, the first day of M+1
eligible_clients as (
    select
        feature_months.feature_month,
        {{ add_months('feature_months.feature_month', 1) }} as feature_end,
        clients.client_id,
        clients.clinic_id,
        clients.created_at
    from feature_months
    inner join {{ ref('integrated_clients') }} as clients
        on clients.created_at < {{ add_months('feature_months.feature_month', 1) }}
),

monthly_financials as (
    select *
    from {{ ref('client_monthly_financials') }}
    where activity_month >= {{ date_literal(history_start) }}
        and activity_month < {{ date_literal(max_date) }}
),

financials_windowed as (
    select
        feature_months.feature_month,
        financials.client_id,
        sum(case when financials.activity_month = feature_months.feature_month then financials.inclinic_revenue else 0 end) as inclinic_revenue_1m,
        sum(financials.inclinic_revenue) as inclinic_revenue_12m,
        sum(financials.inclinic_visits) as inclinic_visits_12m,
        sum(case when financials.activity_month = feature_months.feature_month then financials.hd_revenue else 0 end) as hd_revenue_1m,
        sum(financials.hd_revenue) as hd_revenue_12m,
        sum(financials.hd_orders) as hd_orders_12m
    from monthly_financials as financials
    inner join feature_months
        on financials.activity_month >= {{ add_months('feature_months.feature_month', -11) }}
        and financials.activity_month <= feature_months.feature_month
    group by feature_months.feature_month, financials.client_id
),

inclinic_mix_12m as (
    select
        feature_months.feature_month,
        mix.client_id,
        {%- for category in categories %}
        sum(mix.revenue_{{ category }}) as revenue_{{ category }}_12m{% if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ ref('client_monthly_inclinic_mix') }} as mix
    inner join feature_months
        on mix.activity_month >= {{ add_months('feature_months.feature_month', -11) }}
        and mix.activity_month <= feature_months.feature_month
    where mix.activity_month >= {{ date_literal(history_start) }}
        and mix.activity_month < {{ date_literal(max_date) }}
    group by feature_months.feature_month, mix.client_id
),

web_3m as (
    select
        feature_months.feature_month,
        web.client_id,
        sum(web.sessions) as web_sessions_3m,
        sum(web.orders) as web_orders_3m
    from {{ ref('client_monthly_web_engagement') }} as web
    inner join feature_months
        on web.activity_month >= {{ add_months('feature_months.feature_month', -2) }}
        and web.activity_month <= feature_months.feature_month
    where web.activity_month >= {{ date_literal(history_start) }}
        and web.activity_month < {{ date_literal(max_date) }}
    group by feature_months.feature_month, web.client_id
),

{#-
  days_since_last_purchase looks at all history. Rather than re-reading it, a run
  starts from the snapshot of the month before its window (last purchase = last day
  of that month - days_since_last_purchase) and adds the window's monthly aggregates.
  Clients absent from that snapshot (not eligible then, or no snapshot yet) fall back
  to the monthly aggregates before the window.
#}
previous_snapshot as (
    {%- if is_incremental() %}
    select
        client_id,
        case
            when days_since_last_purchase is not null
                then {{ subtract_days(date_literal(min_date), 'days_since_last_purchase + 1') }}
        end as last_purchase_date
    from {{ this }}
    where feature_month = {{ date_literal(shift_month(min_date, -1)) }}
    {%- else %}
    select cast(null as bigint) as client_id, cast(null as date) as last_purchase_date
    where 1 = 0
    {%- endif %}
),

purchases_before_window as (
    select
        financials.client_id,
        max(financials.last_purchase_date) as last_purchase_date
    from {{ ref('client_monthly_financials') }} as financials
    where financials.activity_month >= {{ date_literal(start_month()) }}
        and financials.activity_month < {{ date_literal(min_date) }}
        and financials.last_purchase_date is not null
        and not exists (
            select 1 from previous_snapshot where previous_snapshot.client_id = financials.client_id
        )
    group by financials.client_id
),

last_purchase_candidates as (
    select feature_months.feature_month, known.client_id, known.last_purchase_date
    from feature_months
    cross join (
        select client_id, last_purchase_date from previous_snapshot where last_purchase_date is not null
        union all
        select client_id, last_purchase_date from purchases_before_window
    ) as known
    union all
    select feature_months.feature_month, financials.client_id, financials.last_purchase_date
    from monthly_financials as financials
    inner join feature_months
        on financials.activity_month >= {{ date_literal(min_date) }}
        and financials.activity_month <= feature_months.feature_month
    where financials.last_purchase_date is not null
),

last_purchase as (
    select feature_month, client_id, max(last_purchase_date) as last_purchase_date
    from last_purchase_candidates
    group by feature_month, client_id
),

client_months as (
    select
        eligible.client_id,
        eligible.feature_month,
        eligible.feature_end,
        eligible.clinic_id,
        eligible.created_at,
        coalesce(financials.inclinic_revenue_1m, 0) as inclinic_revenue_1m,
        coalesce(financials.inclinic_revenue_12m, 0) as inclinic_revenue_12m,
        coalesce(financials.inclinic_visits_12m, 0) as inclinic_visits_12m,
        coalesce(financials.hd_revenue_1m, 0) as hd_revenue_1m,
        coalesce(financials.hd_revenue_12m, 0) as hd_revenue_12m,
        coalesce(financials.hd_orders_12m, 0) as hd_orders_12m,
        -- money stays DECIMAL until the output, so sums and percent-rank ties are exact
        coalesce(financials.inclinic_revenue_12m, 0) + coalesce(financials.hd_revenue_12m, 0) as total_revenue_12m,
        last_purchase.last_purchase_date,
        coalesce(web.web_sessions_3m, 0) as web_sessions_3m,
        coalesce(web.web_orders_3m, 0) as web_orders_3m,
        {%- for category in categories %}
        coalesce(mix.revenue_{{ category }}_12m, 0) as revenue_{{ category }}_12m{% if not loop.last %},{% endif %}
        {%- endfor %}
    from eligible_clients as eligible
    left join financials_windowed as financials
        on eligible.client_id = financials.client_id and eligible.feature_month = financials.feature_month
    left join inclinic_mix_12m as mix
        on eligible.client_id = mix.client_id and eligible.feature_month = mix.feature_month
    left join web_3m as web
        on eligible.client_id = web.client_id and eligible.feature_month = web.feature_month
    left join last_purchase
        on eligible.client_id = last_purchase.client_id and eligible.feature_month = last_purchase.feature_month
),

ranked as (
    select
        *,
        percent_rank() over (partition by feature_month, clinic_id order by inclinic_revenue_12m) as inclinic_revenue_pctl_in_clinic_12m,
        percent_rank() over (partition by feature_month, clinic_id order by hd_revenue_12m) as hd_revenue_pctl_in_clinic_12m,
        percent_rank() over (partition by feature_month, clinic_id order by total_revenue_12m) as total_revenue_pctl_in_clinic_12m,
        percent_rank() over (partition by feature_month order by total_revenue_12m) as total_revenue_pctl_global_12m,
        sum(total_revenue_12m) over (partition by feature_month, clinic_id) as clinic_revenue_12m
    from client_months
),

-- one value per clinic with at least one eligible client, ranked among those clinics
clinic_ranks as (
    select
        feature_month,
        clinic_id,
        percent_rank() over (partition by feature_month order by clinic_revenue_12m) as clinic_revenue_pctl_global_12m
    from (select distinct feature_month, clinic_id, clinic_revenue_12m from ranked) as clinics
)

select
    ranked.client_id,
    ranked.feature_month,
    ranked.clinic_id,
    {{ days_between('ranked.created_at', 'ranked.feature_end') }} as tenure_days,
    cast(ranked.inclinic_revenue_1m as double) as inclinic_revenue_1m,
    cast(ranked.inclinic_revenue_12m as double) as inclinic_revenue_12m,
    cast(ranked.inclinic_visits_12m as integer) as inclinic_visits_12m,
    cast(ranked.hd_revenue_1m as double) as hd_revenue_1m,
    cast(ranked.hd_revenue_12m as double) as hd_revenue_12m,
    cast(ranked.hd_orders_12m as integer) as hd_orders_12m,
    cast(ranked.total_revenue_12m as double) as total_revenue_12m,
    case
        when ranked.total_revenue_12m > 0
            then cast(ranked.hd_revenue_12m as double) / cast(ranked.total_revenue_12m as double)
    end as hd_revenue_share_12m,
    {{ days_between('ranked.last_purchase_date', subtract_days('ranked.feature_end', 1)) }} as days_since_last_purchase,
    cast(ranked.web_sessions_3m as integer) as web_sessions_3m,
    cast(ranked.web_orders_3m as integer) as web_orders_3m,
    case
        when ranked.web_sessions_3m > 0
            then cast(ranked.web_orders_3m as double) / cast(ranked.web_sessions_3m as double)
    end as web_conversion_rate_3m,
    {%- for category in categories %}
    case
        when ranked.inclinic_revenue_12m > 0
            then cast(ranked.revenue_{{ category }}_12m as double) / cast(ranked.inclinic_revenue_12m as double)
    end as inclinic_share_{{ category }}_12m,
    {%- endfor %}
    cast(ranked.inclinic_revenue_pctl_in_clinic_12m as double) as inclinic_revenue_pctl_in_clinic_12m,
    cast(ranked.hd_revenue_pctl_in_clinic_12m as double) as hd_revenue_pctl_in_clinic_12m,
    cast(ranked.total_revenue_pctl_in_clinic_12m as double) as total_revenue_pctl_in_clinic_12m,
    cast(ranked.total_revenue_pctl_global_12m as double) as total_revenue_pctl_global_12m,
    cast(ranked.clinic_revenue_12m as double) as clinic_revenue_12m,
    cast(clinic_ranks.clinic_revenue_pctl_global_12m as double) as clinic_revenue_pctl_global_12m,
    zip.zip_code,
    zip.zip_income_match,
    zip.zip_avg_agi,
    zip.zip_avg_agi_pctl
from ranked
inner join clinic_ranks
    on ranked.feature_month = clinic_ranks.feature_month and ranked.clinic_id = clinic_ranks.clinic_id
left join {{ reference_table('client_zip_income') }} as zip
    on ranked.client_id = zip.client_id
