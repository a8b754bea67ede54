"""The raw landing zone as external assets: Dagster shows them, never materializes them."""

import dagster as dg

from feature_store_assets.defs.landing_zone.validation import EVENT_TABLES, REFERENCE_TABLES

DESCRIPTIONS = {
    "clinics": "Clinics and their integration status (clinics.parquet).",
    "clients": "Pet owners and their home clinic (clients.parquet).",
    "transactions_inclinic": "In-clinic purchase lines, one folder per month (transactions_inclinic/month=YYYY-MM/).",
    "transactions": "Online orders, home delivery and other channels, one folder per month (transactions/month=YYYY-MM/).",
    "web_sessions": "E-commerce site sessions, one folder per month (web_sessions/month=YYYY-MM/).",
}


def landing_zone_specs(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetSpec]:
    specs = [
        dg.AssetSpec(
            ["landing_zone", table], group_name="landing_zone", description=DESCRIPTIONS[table], kinds={"parquet"}
        )
        for table in REFERENCE_TABLES
    ]
    specs += [
        dg.AssetSpec(
            ["landing_zone", table],
            group_name="landing_zone",
            description=DESCRIPTIONS[table],
            partitions_def=partitions_def,
            kinds={"parquet"},
        )
        for table in EVENT_TABLES
    ]
    return specs
