"""Names the Python side shares with the dbt project and the published file, defined once.

No Dagster here: the serving processes (serving/published.py) import it too.
"""

from __future__ import annotations

# The feature table: its model (the ledger's `model` column, the manifest's node name) and its relation.
FEATURE_MODEL = "client_features"
FEATURES_TABLE = f"features.{FEATURE_MODEL}"
# The ledger of materialized months (warehouse.py), in the warehouse and in its published copy.
LEDGER = "quality.materialized_months"
