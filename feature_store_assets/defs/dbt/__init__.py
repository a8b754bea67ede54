"""The dbt project's models as Dagster assets: the manifest, the translator, the monthly step and its planning."""
