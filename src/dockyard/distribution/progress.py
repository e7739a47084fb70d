"""Docker's JSON progress messages for pull and push, byte for byte. Pure.

A pull stream, as dockerd writes it (docker CLI 28 renders bars from these)::

    {"status":"Pulling from library/busybox","id":"latest"}
    {"status":"Pulling fs layer","progressDetail":{},"id":"581cdebca008"}
    {"status":"Downloading","progressDetail":{"current":65536,"total":4066162},
     "progress":"[>      …]  65.54kB/4.066MB","id":"581cdebca008"}
    {"status":"Verifying Checksum","progressDetail":{},"id":"581cdebca008"}
    {"status":"Download complete","progressDetail":{},"id":"581cdebca008"}
    {"status":"Extracting","progressDetail":{…},"progress":"…","id":"581cdebca008"}
    {"status":"Pull complete","progressDetail":{},"id":"581cdebca008"}
    {"status":"Digest: sha256:…"}
    {"status":"Status: Downloaded newer image for busybox:latest"}

``id`` is the first 12 hex digits of the layer blob's digest (of the diff ID when pushing).
The bar string is go-units' ``HumanSize`` plus moby's ``JSONProgress.String()`` at the
daemon's fixed width (200 columns: bar shown, no time left).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "Progress",
    "ProgressTracker",
    "human_size",
    "message",
    "progress_bar",
    "progress_message",
]

Progress = Callable[[dict[str, Any]], None]
"""Receives one JSON message; must be safe to call from any thread."""

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BAR_WIDTH = 50


def human_size(size: float) -> str:
    """go-units ``HumanSize``: decimal units, 4 significant digits (``65.54kB``, ``4.066MB``)."""
    i = 0
    while size >= 1000.0 and i < len(_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.4g}{_UNITS[i]}"


def progress_bar(current: int, total: int) -> str:
    """moby ``JSONProgress.String()`` for byte counts at width 200."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    percentage = min(int(current / total * 100) // 2, _BAR_WIDTH)
    spaces = max(_BAR_WIDTH - percentage, 0)
    bar = f"[{'=' * percentage}>{' ' * spaces}] "
    if current > total:
        numbers = f"{human_size(current):>8}"
    else:
        numbers = f"{human_size(current):>8}/{human_size(total)}"
    return bar + numbers


def message(status: str, id: str | None = None, *, detail: bool = True) -> dict[str, Any]:
    """A status line; per-layer lines carry an empty ``progressDetail`` as dockerd's do."""
    out: dict[str, Any] = {"status": status}
    if id is not None:
        if detail:
            out["progressDetail"] = {}
        out["id"] = id
    return out


def progress_message(status: str, id: str, current: int, total: int) -> dict[str, Any]:
    return {
        "status": status,
        "progressDetail": {"current": current, "total": total},
        "progress": progress_bar(current, total),
        "id": id,
    }


class ProgressTracker:
    """Throttles one layer's byte progress to a message per ``interval`` seconds (and the
    first and last), as moby's progress reader does; thread-safe."""

    def __init__(
        self,
        report: Progress,
        status: str,
        id: str,
        total: int,
        *,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._report = report
        self._status = status
        self._id = id
        self._total = total
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last = -1.0
        self.current = 0

    def update(self, current: int) -> None:
        with self._lock:
            self.current = current
            now = self._clock()
            if self._last >= 0 and now - self._last < self._interval and current < self._total:
                return
            self._last = now
        self._report(progress_message(self._status, self._id, current, self._total))

    def add(self, n: int) -> None:
        self.update(self.current + n)
