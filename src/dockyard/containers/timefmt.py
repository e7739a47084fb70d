"""Docker's time strings: RFC 3339 with nanoseconds, and the Go zero time for "never"."""

from __future__ import annotations

import datetime as dt
import time

from dockyard.units import human_duration

__all__ = ["ZERO_TIME", "human_duration", "now_ns", "rfc3339"]

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_ns() -> int:
    return time.time_ns()


def rfc3339(ns: int) -> str:
    if not ns:
        return ZERO_TIME
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"
