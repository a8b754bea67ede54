"""The DuckDB warehouse: short-lived connections, the ledger of materialized months, Spark's views."""
