"""Signal names as Docker accepts them: ``KILL``, ``SIGKILL``, ``9``; ``Invalid signal: X`` otherwise."""

from __future__ import annotations

import signal as _signal

from dockyard.errors import InvalidArgument

__all__ = ["parse_signal"]


def parse_signal(value: str | int | None, default: int = _signal.SIGKILL) -> int:
    if value is None or value == "":
        return default
    text = str(value).strip()
    if text.isdigit():
        number = int(text)
        if 0 < number < 65:
            return number
        raise InvalidArgument(f"Invalid signal: {value}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith("SIGRTMIN+") or name.startswith("SIGRTMAX-"):
        base = _signal.SIGRTMIN if name.startswith("SIGRTMIN") else _signal.SIGRTMAX
        try:
            off = int(name[9:])
        except ValueError:
            raise InvalidArgument(f"Invalid signal: {value}") from None
        return int(base + off if base == _signal.SIGRTMIN else base - off)
    try:
        return int(getattr(_signal.Signals, name))
    except AttributeError:
        raise InvalidArgument(f"Invalid signal: {value}") from None
