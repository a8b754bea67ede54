"""One dbt invocation of a step: its own target folder, the build's months in its environment, and dbt's parse of the
project kept for the next invocation on the same warehouse.

dbt re-parses the whole project (about 4 s on the reference machine, docs/performance.md) unless the target folder
holds a `partial_parse.msgpack` made under the same profile and --vars. The profile names the warehouse's path, so a
parse is kept per warehouse, beside it (`parse_cache`); the months never go in --vars (`dbt_window_env`). dbt checks
the kept parse itself (project files, profile, vars, its version) and re-parses what changed, so a stale or foreign
file costs a full parse, never a wrong build.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from feature_store_assets.defs.dbt.planning import RUN_TARGET_PREFIX

PARTIAL_PARSE_FILE = "partial_parse.msgpack"
PARSE_CACHE_FOLDER = ".dbt"


def parse_cache(warehouse: Path) -> Path:
    """Where dbt's parse for this warehouse is kept: `<warehouse's folder>/.dbt/<warehouse>.partial_parse.msgpack`."""
    warehouse = Path(warehouse)
    return warehouse.parent / PARSE_CACHE_FOLDER / f"{warehouse.name}.{PARTIAL_PARSE_FILE}"


def new_target(target_root: Path, warehouse: Path) -> Path:
    """A dbt invocation's own target folder (removed afterwards unless the build failed: dbt's error names its log),
    holding the warehouse's kept parse when there is one."""
    target = Path(tempfile.mkdtemp(dir=target_root, prefix=f"{RUN_TARGET_PREFIX}{os.getpid()}-"))
    cache = parse_cache(warehouse)
    try:
        shutil.copyfile(cache, target / PARTIAL_PARSE_FILE)
    except OSError:  # none kept yet (or unreadable): dbt parses the whole project
        pass
    return target


def keep_parse(target: Path, warehouse: Path) -> None:
    """Keep the parse dbt wrote into `target` for the warehouse's next invocation (replaced whole, never half)."""
    parsed = Path(target) / PARTIAL_PARSE_FILE
    cache = parse_cache(warehouse)
    partial = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(parsed, partial)
        os.replace(partial, cache)
    except OSError:  # a cache: the next invocation parses the whole project, never fails for it
        partial.unlink(missing_ok=True)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in os.environ while dbt's process starts (dagster-dbt hands it a copy of os.environ), then as before."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
