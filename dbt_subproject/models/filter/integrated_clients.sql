-- Clients whose home clinic's integration is complete: the only clients whose data is trusted.
-- A view, so every monthly run sees the landing zone's current clinics and clients without a second dbt invocation.
-- On Spark a table rebuilt by every build: the same freshness, and Parquet files the DuckDB side can read.
{{ config(materialized='table' if target.type == 'spark' else 'view', tags=['monthly']) }}

select
    clients.client_id,
    clients.clinic_id,
    clients.created_at,
    clinics.practice_type
from {{ landing_zone_table('clients') }} as clients
inner join {{ landing_zone_table('clinics') }} as clinics
    on clients.clinic_id = clinics.clinic_id
where clinics.integration_status = 'complete'
