"""Handing memory back before a subprocess does the heavy work.

A run's peak memory is this process's resident set plus dbt's (a subprocess that DuckDB fills up to its memory
limit). Memory that earlier steps freed, such as the ZIP income frames of two million clients, stays resident in
the allocators' caches (Arrow's mimalloc pool, glibc's arenas) and would sit under dbt's peak: about 0.3 GiB at the
benchmark's full shape (docs/performance.md).
"""

from __future__ import annotations

import ctypes
import gc

import pyarrow


def release_freed_memory() -> None:
    """Return to the OS what this process has freed: Python's garbage, Arrow's unused pool, glibc's free arenas.

    Nothing in use is touched. Without glibc (no `malloc_trim` among the process's symbols) that part is skipped.
    """
    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)
