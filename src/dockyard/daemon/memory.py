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
    if _LIBC is not None and hasattr(_LIBC, "mallopt"):
        _LIBC.mallopt(_M_ARENA_MAX, count)


def release() -> None:
    """Collect garbage, then return free heap pages to the system (glibc's malloc_trim)."""
    gc.collect()
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)
