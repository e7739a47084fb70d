"""Docker's ``go-units`` wording, shared by the daemon (``Up 3 minutes`` in ``ps``) and the
CLI (``2 hours ago``). Pure."""

from __future__ import annotations

import math
import re

__all__ = ["human_duration", "ram_in_bytes"]

_BYTES_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """go-units ``RAMInBytes``: ``64m`` → 67108864 (binary units, case-insensitive);
    ``ValueError("invalid size: '…'")`` otherwise."""
    m = _BYTES_RE.match(text.strip())
    if not m:
        raise ValueError(f"invalid size: '{text}'")
    return int(float(m.group(1)) * _BYTE_UNITS[m.group(2).lower()])


def human_duration(seconds: float) -> str:
    """``units.HumanDuration``: ``Less than a second``, ``2 minutes``, ``About an hour``…"""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = math.floor(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"
