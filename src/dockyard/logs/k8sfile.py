"""Read conmon's k8s-file logs with Docker's json-file semantics.

conmon writes ``<RFC3339Nano with offset> <stdout|stderr> <F|P> <content>\\n`` records; a record
maps to one Docker log entry: its bytes are the content plus ``\\n`` when the tag is ``F``
(``P`` marks a chunk that did not end a line). ``since``/``until`` keep entries with
``since <= time <= until`` (moby's logfile.go); ``tail`` counts entries from the end.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LogEntry", "LogFollower", "format_timestamp", "parse_record", "read_entries"]


@dataclass(frozen=True)
class LogEntry:
    stream: int  # 1 stdout, 2 stderr
    time_ns: int  # Unix nanoseconds, UTC
    data: bytes


def _parse_time_ns(text: bytes) -> int:
    """Parse ``2026-11-28T00:57:34.949088275+00:00`` to Unix ns without losing the nanoseconds."""
    s = text.decode("ascii")
    main, _, rest = s.partition(".")
    frac = ""
    offset = "+00:00"
    for i, ch in enumerate(rest):
        if ch in "+-Z":
            frac, offset = rest[:i], rest[i:]
            break
    else:
        frac = rest
    if offset == "Z":
        offset = "+00:00"
    base = dt.datetime.fromisoformat(main + offset)
    nanos = int((frac + "000000000")[:9]) if frac else 0
    return int(base.timestamp()) * 1_000_000_000 + nanos


def parse_record(line: bytes) -> LogEntry | None:
    """One k8s-file record (without its final newline) → entry; None for garbage."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    stamp, stream, tag = parts[0], parts[1], parts[2]
    content = parts[3] if len(parts) == 4 else b""
    try:
        time_ns = _parse_time_ns(stamp)
    except ValueError:
        return None
    number = 2 if stream == b"stderr" else 1
    data = content + b"\n" if tag == b"F" else content
    return LogEntry(number, time_ns, data)


def format_timestamp(time_ns: int) -> str:
    """Docker's ``--timestamps`` prefix: RFC 3339 UTC with 9 fractional digits."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    base = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def _iter_file(path: Path) -> Iterator[LogEntry]:
    try:
        with path.open("rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    break  # a record still being written
                entry = parse_record(raw[:-1])
                if entry is not None:
                    yield entry
    except FileNotFoundError:
        return


def read_entries(
    path: Path,
    *,
    since_ns: int = 0,
    until_ns: int = 0,
    tail: int = -1,
    streams: frozenset[int] = frozenset({1, 2}),
) -> list[LogEntry]:
    """Entries of ``path`` (and rotated ``path.1`` … older first) filtered like ``docker logs``."""
    files = []
    for n in range(9, 0, -1):
        rotated = Path(f"{path}.{n}")
        if rotated.exists():
            files.append(rotated)
    files.append(path)
    out: list[LogEntry] = []
    for file in files:
        for entry in _iter_file(file):
            if entry.stream not in streams:
                continue
            if since_ns and entry.time_ns < since_ns:
                continue
            if until_ns and entry.time_ns > until_ns:
                continue
            out.append(entry)
    if tail >= 0:
        out = out[len(out) - tail :] if tail else []
    return out


class LogFollower:
    """Yields records appended to a log after an offset; notices truncation and replacement.

    conmon rotates by truncating through a tmp+rename, so the follower compares the inode
    of its open file with the path's while still holding the old fd.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file = None
        self._ino = -1
        self._buffer = b""
        self._open(seek_end=True)

    def _open(self, *, seek_end: bool) -> None:
        try:
            f = self._path.open("rb")
        except FileNotFoundError:
            self._file = None
            return
        if seek_end:
            f.seek(0, os.SEEK_END)
        self._file = f  # type: ignore[assignment]
        self._ino = os.fstat(f.fileno()).st_ino

    def poll(self) -> list[LogEntry]:
        out: list[LogEntry] = []
        if self._file is None:
            self._open(seek_end=False)
            if self._file is None:
                return out
        assert self._file is not None
        data = self._file.read()  # type: ignore[unreachable]
        if data:
            self._buffer += data
            *lines, self._buffer = self._buffer.split(b"\n")
            for line in lines:
                entry = parse_record(line)
                if entry is not None:
                    out.append(entry)
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return out
        if st.st_ino != self._ino or st.st_size < self._file.tell():
            self._file.close()
            self._buffer = b""
            self._open(seek_end=False)
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()  # type: ignore[unreachable]
            self._file = None
