"""The Dagster resource carrying the data contract's settings to every asset.

It also holds the warehouse's run lock (runs.py) for the whole run: the process executing the
run takes it when the run's resources are set up, before the first step, and lets it go when
they are torn down, so a second run on the same warehouse is refused before it writes anything.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path

import dagster as dg
import pydantic
from pydantic import PrivateAttr

from feature_store_assets.core.settings import Settings, settings_fields

# Every asset that writes the warehouse shares this pool: DuckDB allows one writer per file.
WAREHOUSE_POOL = "duckdb_warehouse"


class _FeatureStoreResource(dg.ConfigurableResource):
    """Every setting of settings.py (one string field per Settings field, same name), and the run lock."""

    _locked: bool = PrivateAttr(default=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureStoreResource:
        return cls(**{name: str(getattr(settings, name)) for name in settings_fields()})

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        from feature_store_assets.defs.checks.freshness import FRESHNESS_JOB
        from feature_store_assets.operations import runs

        run = context.dagster_run
        if run is not None and run.job_name == FRESHNESS_JOB:
            return  # reads only the analytics file: it runs beside any run
        if run is not None and context.instance is not None:
            tags = runs.process_tags()
            if any(run.tags.get(key) != value for key, value in tags.items()):
                context.instance.add_run_tags(run.run_id, tags)  # a run worker: the reaper can tell if it dies
        command = f"Dagster run of {run.job_name}" if run is not None else None
        runs.acquire(Path(self.warehouse), run.run_id if run is not None else None, command)
        self._locked = True

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        from feature_store_assets.operations import runs

        if self._locked:
            runs.release(Path(self.warehouse))
            self._locked = False

    @property
    def settings(self) -> Settings:
        return Settings.from_env({setting.env: getattr(self, name) for name, setting in settings_fields().items()})


# The fields follow Settings': a field Settings requires is required here too, the others default to "" (unset:
# Settings' default). Settings.from_env turns the strings back into paths and numbers and validates them.
FeatureStoreResource = pydantic.create_model(
    "FeatureStoreResource",
    __base__=_FeatureStoreResource,
    __module__=__name__,
    __doc__="Paths, start month and the other settings of one feature store (see settings.py for their meaning).",
    **{
        f.name: (str, ...) if f.default is MISSING and f.default_factory is MISSING else (str, "")
        for f in fields(Settings)
    },
)
