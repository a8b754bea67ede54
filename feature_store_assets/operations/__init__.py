"""Operating the store: the one Dagster instance, the run lock and dead runs, run logs."""
