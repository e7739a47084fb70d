"""Exit files: conmon writes ``<exit-dir>/<cid>`` (decimal status, no newline) when a container
ends, atomically (``<cid>.XXXXXX`` + rename), after the log is complete (notes §3).

``ExitWatcher`` reports each exit file once, also those written while the daemon was down
(they are there when it starts). It wakes on inotify ``IN_MOVED_TO``/``IN_CLOSE_WRITE`` (via
ctypes; the stdlib has no binding) and falls back to polling every 0.2 s where inotify is not
available; a slow rescan also runs with inotify, as a safety net against lost events. The
file's mtime is the finish time (Podman and CRI-O use it as ``FinishedAt``).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

__all__ = ["ExitWatcher", "read_exit_file"]

log = logging.getLogger(__name__)

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len


def read_exit_file(path: Path) -> tuple[int, float] | None:
    """``(status, mtime)`` of one exit file; ``None`` if it is missing or not (yet) a number."""
    try:
        with open(path, "rb") as f:
            data = f.read(64)
            mtime = os.fstat(f.fileno()).st_mtime
    except OSError:
        return None
    try:
        return int(data.strip()), mtime
    except ValueError:
        return None


def _is_exit_name(name: str) -> bool:
    return bool(name) and "." not in name  # skips conmon's <cid>.XXXXXX temp files


class _Inotify:
    """A non-blocking inotify fd watching one directory."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def open(cls, directory: Path) -> _Inotify | None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fd = int(libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC))
            if fd < 0:
                return None
            mask = IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF
            wd = int(libc.inotify_add_watch(fd, os.fsencode(directory), mask))
            if wd < 0:
                os.close(fd)
                return None
            return cls(fd)
        except (OSError, AttributeError):
            return None

    def drain(self) -> bool:
        """Read all queued events; True if the watch is gone (directory removed or moved).
        Which file changed does not matter: the caller rescans the (small) directory."""
        gone = False
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return gone
            if not buf:
                return gone
            offset = 0
            while offset + _EVENT.size <= len(buf):
                _wd, mask, _cookie, length = _EVENT.unpack_from(buf, offset)
                offset += _EVENT.size + length
                if mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
                    gone = True

    def close(self) -> None:
        os.close(self.fd)


class ExitWatcher:
    """Calls ``on_exit(cid, status, finished_at)`` once per exit file appearing in ``exit_dir``.

    The callback is awaited before the next file is looked at; it is expected to remove the
    file (``Runtime.remove_exit_file``) once the exit is recorded. A file that stays is not
    reported again unless it is replaced (new inode or mtime) — e.g. by the next run of a
    restarted container. Exceptions from the callback are logged and do not stop the watcher.
    ``run`` returns only by cancellation.
    """

    def __init__(
        self, exit_dir: Path, *, poll_interval: float = 0.2, rescan_interval: float = 5.0
    ) -> None:
        self.exit_dir = Path(exit_dir)
        self.poll_interval = poll_interval
        self.rescan_interval = rescan_interval
        self._seen: dict[str, tuple[int, int]] = {}

    async def run(self, on_exit: Callable[[str, int, float], Awaitable[None]]) -> None:
        self.exit_dir.mkdir(parents=True, exist_ok=True)
        inotify = _Inotify.open(self.exit_dir)  # watch first, then scan: nothing slips between
        if inotify is None:
            log.info("inotify unavailable; polling %s", self.exit_dir)
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        if inotify is not None:
            loop.add_reader(inotify.fd, wake.set)
        try:
            while True:
                await self._scan(on_exit)
                if inotify is None:
                    await asyncio.sleep(self.poll_interval)
                    continue
                # A plain await on the event plus a timer, not asyncio.wait_for: in 3.11
                # wait_for swallows a cancellation that coincides with the event firing.
                timer = loop.call_later(self.rescan_interval, wake.set)
                try:
                    await wake.wait()
                finally:
                    timer.cancel()
                wake.clear()
                if inotify.drain():  # directory removed or moved: recreate it and poll from now on
                    loop.remove_reader(inotify.fd)
                    inotify.close()
                    inotify = None
                    self.exit_dir.mkdir(parents=True, exist_ok=True)
        finally:
            if inotify is not None:
                loop.remove_reader(inotify.fd)
                inotify.close()

    async def _scan(self, on_exit: Callable[[str, int, float], Awaitable[None]]) -> None:
        try:
            names = [n for n in os.listdir(self.exit_dir) if _is_exit_name(n)]
        except FileNotFoundError:
            self.exit_dir.mkdir(parents=True, exist_ok=True)
            names = []
        for gone in set(self._seen) - set(names):
            del self._seen[gone]
        for name in sorted(names):
            path = self.exit_dir / name
            try:
                st = os.stat(path)
            except OSError:
                continue
            identity = (st.st_ino, st.st_mtime_ns)
            if self._seen.get(name) == identity:
                continue
            result = read_exit_file(path)
            if result is None:
                continue  # a non-atomic writer mid-write; its close will wake us again
            self._seen[name] = identity
            code, finished_at = result
            try:
                await on_exit(name, code, finished_at)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("exit callback failed for %s", name)
