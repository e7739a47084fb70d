"""Render JSON progress messages like docker's ``jsonmessage.DisplayJSONMessagesStream``.

On a terminal, each layer ``id`` keeps its own line, updated in place with cursor moves and
a bar drawn from ``progressDetail``; elsewhere progress updates are dropped and every other
message becomes one line (``id: status``). An ``errorDetail`` ends the stream with
``JSONMessageError`` (its ``code``, or 1).
"""

from __future__ import annotations

import time

TYPE_CHECKING = False  # not typing's: ``run`` imports this module for JSONMessageError
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any, TextIO

__all__ = ["JSONMessageError", "display_messages", "progress_string"]


class JSONMessageError(Exception):
    """An error reported inside a progress stream."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def progress_string(detail: Mapping[str, Any], width: int, now: float | None = None) -> str:
    """``JSONProgress.String()``: ``[=====>     ]  1.2MB/4.1MB 3s``."""
    from .formatting import go_duration, human_size

    current = int(detail.get("current") or 0)
    total = int(detail.get("total") or 0)
    units = str(detail.get("units") or "")
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        if not units:
            return f"{human_size(current):>8}"
        return f"{current} {units}"
    percentage = int(current / total * 100) // 2
    percentage = min(percentage, 50)
    bar = ""
    if width > 110:
        bar = "[" + "=" * percentage + ">" + " " * max(0, 50 - percentage) + "] "
    numbers = ""
    if detail.get("hidecounts"):
        numbers = ""
    elif not units:
        numbers = f"{human_size(current):>8}/{human_size(total)}"
        if current > total:
            numbers = f"{human_size(current):>8}"
    else:
        numbers = f"{current}/{total} {units}"
        if current > total:
            numbers = f"{current} {units}"
    left = ""
    start = int(detail.get("start") or 0)
    if current > 0 and start > 0 and percentage < 50:
        elapsed = (time.time() if now is None else now) - start
        remaining = (total - current) * (elapsed / current)
        left = " " + go_duration(remaining)
    return bar + numbers + left


def display_messages(
    messages: Iterable[Any],
    out: TextIO,
    *,
    is_terminal: bool,
    width: int = 80,
    aux: Callable[[Mapping[str, Any]], None] | None = None,
) -> None:
    """Write ``messages`` to ``out``; raise ``JSONMessageError`` on an in-stream error."""
    ids: dict[str, int] = {}
    for jm in messages:
        if not isinstance(jm, dict):
            continue
        if jm.get("aux") is not None:
            if aux is not None:
                aux(jm)
            continue
        has_progress = "progressDetail" in jm and jm["progressDetail"] is not None
        jm_id = str(jm.get("id") or "")
        diff = 0
        if jm_id and (has_progress or jm.get("progress")):
            line = ids.get(jm_id)
            if line is None:
                line = len(ids)
                ids[jm_id] = line
                if is_terminal:
                    out.write("\n")
            diff = len(ids) - line
            if is_terminal and diff > 0:
                out.write(f"\x1b[{diff}A")
        else:
            ids = {}
        _display_one(jm, out, is_terminal, width, has_progress)
        if jm_id and is_terminal and diff > 0:
            out.write(f"\x1b[{diff}B")
        out.flush()


def _display_one(
    jm: Mapping[str, Any], out: TextIO, is_terminal: bool, width: int, has_progress: bool
) -> None:
    error = jm.get("errorDetail")
    if error or jm.get("error"):
        detail = error if isinstance(error, dict) else {}
        message = str(detail.get("message") or jm.get("error") or "")
        raise JSONMessageError(message, int(detail.get("code") or 0))
    stream = jm.get("stream")
    progress = progress_string(jm.get("progressDetail") or {}, width) if has_progress else ""
    endl = ""
    if is_terminal and not stream and has_progress:
        out.write("\x1b[2K\r")
        endl = "\r"
    elif has_progress and progress:
        return  # no progress bars off a terminal
    if jm.get("id"):
        out.write(f"{jm['id']}: ")
    if jm.get("from"):
        out.write(f"(from {jm['from']}) ")
    status = str(jm.get("status") or "")
    if has_progress and is_terminal:
        out.write(f"{status} {progress}{endl}")
    elif jm.get("progress"):
        out.write(f"{status} {jm['progress']}{endl}")
    elif stream:
        out.write(f"{stream}{endl}")
    else:
        out.write(f"{status}{endl}\n")
