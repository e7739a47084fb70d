"""Give memory back to the system after big one-off jobs (image load, pull, save, build).

CPython's objects live in glibc's malloc heaps; after unpacking a large image the freed
space stays mapped in the daemon until ``malloc_trim`` returns it. Worker threads would
each get their own 64 MiB arena; two arenas are plenty for a daemon that is mostly idle.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

__all__ = ["limit_arenas", "release"]

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


_LIBC = _libc()


def limit_arenas(count: int = 2) -> None:
    """At most ``count`` malloc arenas, and big buffers (> 512 KiB: 1 MiB upload chunks,
    layer reads) always in their own mappings: setting the threshold turns off glibc's
    dynamic threshold, which would otherwise move those chunks into the heap, where the
    small objects allocated between them keep the freed pages from going back. asyncio's
    256 KiB socket reads stay below it: mapping those on every read halves proxy
    throughput."""
    if _LIBC is not None and hasattr(_LIBC, "mallopt"):
        _LIBC.mallopt(_M_ARENA_MAX, count)
        _LIBC.mallopt(_M_MMAP_THRESHOLD, 512 * 1024)


def release() -> None:
    """Collect garbage, then return free heap pages to the system (glibc's malloc_trim)."""
    gc.collect()
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)
