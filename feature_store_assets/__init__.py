"""Client feature store for veterinary-clinic analytics: Dagster assets over dbt and DuckDB."""
