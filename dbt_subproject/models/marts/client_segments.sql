-- Which clients get which campaign this month: each RFM client's segment and status, its value tier, and the segment's action and priority from the segment_actions seed (docs/marts.md).

with rfm as (
    select client_id, snapshot_month, clinic_id, segment, status
    from {{ ref('client_rfm') }}
    where {{ in_window('snapshot_month') }}
),

value as (
    select client_id, snapshot_month, value_tier, estimated_annual_value
    from {{ ref('client_value') }}
    where {{ in_window('snapshot_month') }}
)

select
    rfm.client_id,
    rfm.snapshot_month,
    rfm.clinic_id,
    rfm.segment,
    rfm.status,
    value.value_tier,
    value.estimated_annual_value,
    actions.recommended_action,
    cast(actions.priority as integer) as action_priority
from rfm
left join value
    on rfm.client_id = value.client_id and rfm.snapshot_month = value.snapshot_month
-- a segment missing from the seed keeps its clients, without an action (the not_null test fails the month)
left join {{ ref('segment_actions') }} as actions
    on rfm.segment = actions.segment
