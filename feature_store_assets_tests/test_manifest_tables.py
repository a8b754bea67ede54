"""The Python side learns the demo's tables from the dbt manifest (dbt.monthly_lineage), not from a list."""

from feature_store_assets.cli.main import format_row_counts
from feature_store_assets.core.names import FEATURE_MODEL, FEATURES_TABLE
from feature_store_assets.defs.dbt.project import load_manifest, monthly_lineage


def test_the_demo_counts_the_filter_layer_and_the_feature_tables_lineage_in_layer_order():
    tables = monthly_lineage(load_manifest(), FEATURE_MODEL)
    relations = [relation for relation, _ in tables]
    # every table the demo listed before, in layer order, each with its unique_key month column
    assert relations[:4] == [
        "filtered.hd_orders",
        "filtered.inclinic_transactions",
        "filtered.web_sessions",
        "quality.rejected_rows",
    ]
    assert relations[-1] == FEATURES_TABLE
    assert "aggregation.client_monthly_financials" in relations
    assert "marts.client_rfm" not in relations  # not a table client_features is built from
    assert dict(tables)["aggregation.client_monthly_financials"] == "activity_month"
    assert dict(tables)[FEATURES_TABLE] == "feature_month"
    shown = format_row_counts({"2023-01": {FEATURES_TABLE: 1234}}, tables).splitlines()
    assert shown[0].split()[1:] == [relation.split(".")[1] for relation in relations]
    assert shown[1].split()[-1] == "1,234" and shown[1].split()[1] == "0"
