-- Clients whose home clinic's integration is complete: the only clients whose data is trusted.
-- Not monthly (no `monthly` tag): an unpartitioned asset, rebuilt in every run's dbt build before the months'
-- models that read it (defs/dbt/assets.py, dbt_models). A view, so it always reads the landing zone's current
-- clinics and clients; on Spark a table: the same freshness, and Parquet files the DuckDB side can read.
{{ config(materialized='table' if target.type == 'spark' else 'view') }}

select
    clients.client_id,
    clients.clinic_id,
    clients.created_at,
    clinics.practice_type
from {{ landing_zone_table('clients') }} as clients
inner join {{ landing_zone_table('clinics') }} as clinics
    on clients.clinic_id = clinics.clinic_id
where clinics.integration_status = 'complete'
