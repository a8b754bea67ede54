"""The Dagster resources: the data contract's settings, and the DuckDB files the assets and checks open.

`FeatureStoreResource` carries every setting to every asset. It also holds the warehouse's run lock (runs.py) for the whole run: the process executing the
run takes it when the run's resources are set up, before the first step, and lets it go when
they are torn down, so a second run on the same warehouse is refused before it writes anything.

`DuckDBFile` is dagster-duckdb's `DuckDBResource` (resource keys `warehouse` and `analytics`): the
Python assets and checks open their connections through it, one per unit of work, closed before
dbt runs (warehouse/connections.py). docs/architecture.md, Connections, lists what cannot use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pydantic
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from feature_store_assets.core.settings import Settings, settings_fields

# Every asset that writes the warehouse shares this pool: DuckDB allows one writer per file.
WAREHOUSE_POOL = "duckdb_warehouse"


class _FeatureStoreResource(dg.ConfigurableResource):
    """Every setting of settings.py but the secrets (one string field per Settings field, same name), and the run lock."""

    _locked: bool = PrivateAttr(default=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureStoreResource:
        return cls(**{name: str(getattr(settings, name)) for name in settings_fields(secrets=False)})

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
        return Settings.from_env(
            {setting.env: getattr(self, name) for name, setting in settings_fields(secrets=False).items()}
        )


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
        if f.repr  # no secret (the API key) in a run's config, which the Dagster UI shows
    },
)


class DuckDBFile(DuckDBResource):
    """A DuckDB file of the store, opened by dagster-duckdb's DuckDBResource with the pipeline's session settings.

    `connection_config` holds the memory limit, so it applies from the first statement. Three things
    `get_connection` does not do are done here: read-only connections (it always opens read-write; a
    DuckDB configuration of `access_mode = READ_ONLY` is what `read_only=True` sets), closing the
    connection when the unit of work raises, and the session's TimeZone (UTC), which DuckDB 2 refuses
    in a connection's configuration (ICU is not loaded yet) and accepts once connected.
    """

    @classmethod
    def for_file(cls, path: Path, settings: Settings) -> DuckDBFile:
        return cls(database=str(path), connection_config={"memory_limit": settings.duckdb_memory_limit})

    @property
    def path(self) -> Path:
        return Path(self.database)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """One connection for one unit of work (read-only where it only reads), closed when it ends."""
        if read_only:
            if not self.path.exists():  # DuckDBResource would retry for about 100 s before failing
                raise FileNotFoundError(f"{self.path}: the DuckDB file does not exist (nothing has written it yet)")
            config: dict[str, Any] = {**self.connection_config, "access_mode": "READ_ONLY"}
            resource: DuckDBResource = DuckDBResource(database=self.database, connection_config=config)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            resource = self
        with resource.get_connection() as con:
            try:
                con.execute("set TimeZone = 'UTC'")  # as warehouse/connections.py's limit_memory
                yield con
            finally:
                con.close()


def resources_from_settings(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources of the Python assets and checks: every setting, the warehouse and the analytics file."""
    return {
        "feature_store": FeatureStoreResource.from_settings(settings),
        "warehouse": DuckDBFile.for_file(settings.warehouse, settings),
        "analytics": DuckDBFile.for_file(settings.analytics, settings),
    }
