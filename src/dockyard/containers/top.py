"""``docker top``: the host's ``ps`` output, cut down to the container's processes.

dockerd runs ``ps`` on the host with the caller's ``ps_args`` (default ``-ef``) plus
``-q PID,…`` (retrying without it: some options cannot be combined with ``q``), then keeps
the rows whose ``PID`` column belongs to the container. This module is the ``ps`` adapter
(``run_ps``, an argv list with a timeout) and moby's output parser (``parse_ps_output``,
pure: it finds the column boundaries from the header and the rows, so that a ``CMD`` cell
with spaces stays one cell).

Errors (moby's words): ``SystemError`` ``ps: <first line of ps's stderr>``, ``option
--no-headers is not allowed``, ``Couldn't find PID field in ps output``, ``Unexpected pid
'x': …``, ``specifying "user=PID" is not allowed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Collection, Sequence
from typing import Any

from dockyard import errors

__all__ = ["parse_ps_output", "ps_args_list", "run_ps", "validate_ps_args"]

_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_NO_HEADERS = {
    "--no-header",
    "--no-headers",
    "--no-heading",
    "--no-headings",
    "--noheader",
    "--noheaders",
    "--noheading",
    "--noheadings",
}
_RENAMED_PID = re.compile(r"\s+(\S*)=\s*(PID\S*)")
_ASCII_SPACE = re.compile(r"[\t\n\f\r ]+")


def validate_ps_args(ps_args: str) -> None:
    """Refuse a ``-o user=PID``-style rename of another column to ``PID`` (moby#24358)."""
    for key, value in _RENAMED_PID.findall(ps_args):
        if key != "pid":
            raise errors.SystemError(f'specifying "{key}={value}" is not allowed')


def ps_args_list(ps_args: str) -> list[str]:
    """``ps_args`` split on spaces like moby (``-ef`` when empty); header-less output refused."""
    args = [a for a in (ps_args or "-ef").split(" ") if a]
    for arg in args:
        if arg in _NO_HEADERS:
            raise errors.SystemError(f"option {arg} is not allowed")
    return args


def _fields(text: str) -> list[str]:
    return [f for f in _ASCII_SPACE.split(text) if f]


def parse_ps_output(output: str, pids: Collection[int]) -> dict[str, Any]:
    """``{"Titles": [...], "Processes": [[...], ...]}`` for the rows of ``pids``.

    Column boundaries: each title's start moves left to the first position where every
    row has a blank (moby's ``parsePSOutput``); the last column takes the rest of the line.
    Thread rows (``PID`` ``-``, from ``-L``/``m``) follow the process row before them.
    """
    lines = output.split("\n")
    titles = _fields(lines[0])
    try:
        pid_index = titles.index("PID")
    except ValueError:
        raise errors.SystemError("Couldn't find PID field in ps output") from None
    spans = [[m.start(), m.end()] for m in re.finditer(r"\S+", lines[0])]
    if not spans:
        raise errors.SystemError("Couldn't find PID field in ps output")
    spans[0][0] = 0
    rows = lines[1:]
    for i in range(1, len(spans)):
        start = spans[i][0] - 1
        while True:
            blocked = any(len(row) > start and not row[start].isspace() for row in rows)
            if start < spans[i - 1][1]:
                break
            if not blocked:
                spans[i][0] = start
                break
            start -= 1
    wanted = set(pids)
    processes: list[list[str]] = []
    previous_kept = False
    for row in rows:
        if not row:
            continue
        cells = []
        for i, (begin, _) in enumerate(spans):
            end = spans[i + 1][0] if i + 1 < len(spans) else len(row)
            cells.append(row[begin:end].strip())
        value = cells[pid_index]
        if value == "-":
            if previous_kept:
                processes.append(_merge(cells, len(titles)))
            continue
        try:
            pid = int(value)
        except ValueError:
            raise errors.SystemError(
                f"Unexpected pid '{value}': strconv.Atoi: parsing \"{value}\": invalid syntax"
            ) from None
        previous_kept = pid in wanted
        if previous_kept:
            processes.append(_merge(cells, len(titles)))
    return {"Titles": titles, "Processes": processes}


def _merge(cells: list[str], width: int) -> list[str]:
    """As many cells as titles, the overhanging ones joined into the last."""
    return [*cells[: width - 1], " ".join(cells[width - 1 :])]


async def _ps(argv: Sequence[str], timeout: float) -> tuple[int, bytes, bytes]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"PATH": _PATH, "LC_ALL": "C"},
        )
    except OSError as e:
        raise errors.SystemError(f"ps: {e.strerror or e}") from e
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise errors.SystemError(f"ps: timed out after {timeout:g}s") from None
    assert proc.returncode is not None
    return proc.returncode, out, err


async def run_ps(args: Sequence[str], pids: Sequence[int], *, timeout: float = 30.0) -> str:
    """``ps ARGS -qPID,…``, or ``ps ARGS`` when that fails; the output as text."""
    query = "-q" + ",".join(str(p) for p in pids)
    rc, out, err = await _ps(["ps", *args, query], timeout)
    if rc != 0:
        rc, out, err = await _ps(["ps", *args], timeout)
        if rc != 0:
            first = err.decode(errors="replace").split("\n", 1)[0]
            raise errors.SystemError(f"ps: {first or f'exit status {rc}'}")
    return out.decode(errors="replace")
