"""Names the Python side shares with the dbt project and the published file, defined once.

No Dagster here: the serving processes (serving/published.py) import it too.
"""

from __future__ import annotations

# The schema of the feature views (the dbt models of the features layer), and the marts analysts query.
FEATURES_SCHEMA = "features"
MARTS_SCHEMA = "marts"
# The feature table: its model (the ledger's `model` column, the manifest's node name) and its relation.
# It is the default feature view: bare feature names in requests are its features.
FEATURE_MODEL = "client_features"
FEATURES_TABLE = f"{FEATURES_SCHEMA}.{FEATURE_MODEL}"
# The ledger of materialized months (warehouse.py), in the warehouse and in its published copy.
LEDGER = "quality.materialized_months"
