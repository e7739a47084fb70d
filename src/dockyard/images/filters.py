"""Pure helpers for ``GET /images/json`` filters: Go ``path.Match`` patterns and times.

``familiar_match`` is docker/distribution's ``reference.FamiliarMatch``: the pattern is
matched against the familiar string (``busybox:latest``) and, failing that, against the
familiar name (``busybox``). ``*`` does not cross ``/``.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache

from dockyard.errors import InvalidArgument
from dockyard.oci.image import parse_rfc3339
from dockyard.reference import Reference

__all__ = ["familiar_match", "parse_timestamp", "path_match"]

_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i >= n:
                raise InvalidArgument("syntax error in pattern")
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = i + 1
            negate = j < n and pattern[j] == "^"
            if negate:
                j += 1
            body: list[str] = []
            while j < n and (pattern[j] != "]" or not body):
                ch = pattern[j]
                if ch == "\\":
                    j += 1
                    if j >= n:
                        raise InvalidArgument("syntax error in pattern")
                    ch = pattern[j]
                if ch == "-" and body and j + 1 < n and pattern[j + 1] != "]":
                    body.append("-")
                else:
                    body.append(re.escape(ch))
                j += 1
            if j >= n:
                raise InvalidArgument("syntax error in pattern")
            out.append("[" + ("^" if negate else "") + "".join(body) + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def path_match(pattern: str, name: str) -> bool:
    """Go's ``path.Match``; ``InvalidArgument`` for a malformed pattern."""
    return bool(_compile(pattern).match(name))


def familiar_match(pattern: str, ref: Reference) -> bool:
    """``reference.FamiliarMatch``: the familiar string, else the familiar name."""
    return path_match(pattern, ref.familiar()) or path_match(pattern, ref.familiar_name)


def parse_timestamp(value: str, *, now: float | None = None) -> float:
    """A filter time (``until``): Unix seconds (``1700000000.5``), RFC 3339, or a Go
    duration before now (``10m``, ``1h30m``). ``InvalidArgument`` otherwise."""
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    matches = list(_DURATION_RE.finditer(value))
    if matches and "".join(m.group(0) for m in matches) == value:
        seconds = sum(float(m.group(1)) * _UNITS[m.group(2)] for m in matches)
        return (time.time() if now is None else now) - seconds
    try:
        return parse_rfc3339(value).timestamp()
    except InvalidArgument:
        raise InvalidArgument(f"invalid timestamp {value!r}") from None
