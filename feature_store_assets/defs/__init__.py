"""The Dagster definitions, one folder per part of the pipeline; definitions.py assembles them."""
