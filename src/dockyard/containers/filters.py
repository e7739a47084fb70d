"""Docker's ``filters`` query parameter and its time values."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

from dockyard.errors import InvalidArgument

__all__ = ["parse_filters", "parse_time"]


def parse_filters(raw: str | None) -> dict[str, list[str]]:
    """``{"name":{"x":true}}`` (current) or ``{"name":["x"]}`` (old clients) → ``{"name": ["x"]}``."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise InvalidArgument("invalid filter: invalid JSON") from None
    if not isinstance(data, dict):
        raise InvalidArgument("invalid filter: expected an object")
    out: dict[str, list[str]] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out[key] = [k for k, v in value.items() if v]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
    return out


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$")
_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_time(value: str, now: float | None = None) -> float:
    """Unix seconds from ``1700000000[.5]``, an RFC 3339 date, or a Go duration (``10m`` ago)."""
    now = time.time() if now is None else now
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    m = _DURATION.match(value)
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    text = value.replace("Z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(f"invalid time value: {value}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()
