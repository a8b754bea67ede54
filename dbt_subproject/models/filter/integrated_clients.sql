-- Clients whose home clinic's integration is complete: the only clients whose data is trusted.
{{ config(materialized='table') }}

select
    clients.client_id,
    clients.clinic_id,
    clients.created_at,
    clinics.practice_type
from {{ landing_zone_table('clients') }} as clients
inner join {{ landing_zone_table('clinics') }} as clinics
    on clients.clinic_id = clinics.clinic_id
where clinics.integration_status = 'complete'
