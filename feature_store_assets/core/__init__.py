"""What every part shares: settings, names, months, partitions, the Dagster resource and paths."""
