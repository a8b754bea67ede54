"""Handing memory back before a subprocess does the heavy work.

A run's peak memory is this process's resident set plus dbt's (a subprocess that DuckDB fills up to its memory
limit). Memory that earlier steps freed, such as the ZIP income frames of two million clients, stays resident in
the allocators' caches (Arrow's mimalloc pool, glibc's arenas) and would sit under dbt's peak: about 0.3 GiB at the
benchmark's full shape (docs/performance.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc


def release_freed_memory() -> None:
    """Return to the OS what this process has freed: Python's garbage, Arrow's unused pool, glibc's free arenas.

    Nothing in use is touched. Where an allocator does not offer it (no glibc), that part is skipped.
    """
    gc.collect()
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except ImportError:  # pragma: no cover - pyarrow comes with pandas 3 here
        pass
    libc = ctypes.util.find_library("c")
    if libc:
        trim = getattr(ctypes.CDLL(libc), "malloc_trim", None)
        if trim is not None:
            trim(0)
