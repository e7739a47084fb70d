"""Messages to conmon's ``ctl`` FIFO (notes §5.5): terminal resize and log reopen.

The FIFO takes ``"<type> <height> <width>\\n"``: type 1 resizes the pty, type 2 reopens the log.
conmon 2.1.6 applies only the first line of each ``read()`` (fixed in 2.2.0), so two messages
that arrive together lose the second. ``CtlChannel`` therefore keeps ≥ 100 ms between
messages and coalesces a burst of resizes into the latest size.

The FIFO is opened ``O_WRONLY|O_NONBLOCK`` for every message: ``ENXIO`` (no reader: conmon is
gone) and ``ENOENT`` are ignored, and a blocking open on a stale FIFO — which would hang forever
— never happens. Only send resizes for TTY containers: without a pty conmon forwards them into
a FIFO nobody reads, and enough of them would block its main loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from pathlib import Path

__all__ = ["MIN_INTERVAL", "CtlChannel", "write_ctl"]

MIN_INTERVAL = 0.1  # seconds between two messages (conmon 2.1.6 ctl bug)
_IGNORED = (errno.ENXIO, errno.ENOENT, errno.EAGAIN, errno.EPIPE, errno.ENOTDIR)


def write_ctl(path: Path, message: str) -> bool:
    """Write one message; ``False`` if conmon is not there to read it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in _IGNORED:
            return False
        raise
    try:
        os.write(fd, message.encode("ascii"))
        return True
    except OSError as e:
        if e.errno in _IGNORED:
            return False
        raise
    finally:
        os.close(fd)


class CtlChannel:
    """Rate-limited messages to one ctl FIFO.

    ``resize`` and ``reopen_log`` never block the event loop: a message that would come too
    soon after the previous one is kept (resizes coalesced to the latest) and sent by a timer.
    Outside an event loop the caller's thread sleeps out the remaining interval instead.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._last = -MIN_INTERVAL
        self._pending_resize: tuple[int, int] | None = None
        self._pending_reopen = False
        self._timer: asyncio.TimerHandle | None = None

    @property
    def idle(self) -> bool:
        return (
            self._timer is None
            and self._pending_resize is None
            and not self._pending_reopen
            and time.monotonic() - self._last > MIN_INTERVAL
        )

    def resize(self, height: int, width: int) -> None:
        """Ask for a ``height`` x ``width`` terminal; zero or negative sizes are ignored."""
        if height <= 0 or width <= 0:
            return
        self._pending_resize = (int(height), int(width))
        self._pump()

    def reopen_log(self) -> None:
        """Make conmon reopen (recreate, empty) its log file, after the engine rotated it."""
        self._pending_reopen = True
        self._pump()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending_resize = None
        self._pending_reopen = False

    def _next_message(self) -> str | None:
        if self._pending_resize is not None:
            h, w = self._pending_resize
            self._pending_resize = None
            return f"1 {h} {w}\n"
        if self._pending_reopen:
            self._pending_reopen = False
            return "2 0 0\n"
        return None

    def _pump(self) -> None:
        if self._timer is not None:
            return  # the timer will send the latest pending message
        while True:
            wait = self._last + MIN_INTERVAL - time.monotonic()
            if wait > 0:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    time.sleep(wait)
                    continue
                self._timer = loop.call_later(wait, self._fire)
                return
            message = self._next_message()
            if message is None:
                return
            with contextlib.suppress(OSError):
                write_ctl(self.path, message)
            self._last = time.monotonic()

    def _fire(self) -> None:
        self._timer = None
        self._pump()
