"""Local terminal ↔ hijacked container stream, like the docker CLI's ``hijackedIOStreamer``.

- ``pump``: stdin → socket on a thread (half-close at EOF, or at once when there is no
  stdin), socket → stdout/stderr on the calling thread (demultiplexed unless TTY), detach
  keys (Ctrl-P Ctrl-Q) recognised client-side in TTY mode.
- ``raw_terminal``: put the local terminal in raw mode for ``-it``, restore it after.
- ``SignalProxy``: forward the signals the CLI receives as ``POST …/kill?signal=NAME``
  (``--sig-proxy``), and on ``SIGWINCH`` resize the container's TTY.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading

from dockyard.client import StreamError, demux
from dockyard.client.streams import copy_raw

TYPE_CHECKING = False  # not typing's: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import BinaryIO

    from dockyard.client import Client, HijackedStream

__all__ = [
    "DetachRequested",
    "SignalProxy",
    "is_terminal",
    "pump",
    "raw_terminal",
    "resize_tty",
    "tty_size",
]

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q
_FORWARDED = (
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGUSR1",
    "SIGUSR2",
    "SIGTERM",
    "SIGALRM",
    "SIGWINCH",
)


class DetachRequested(Exception):
    """The user typed the detach key sequence."""


def is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def tty_size(fd: int = 1) -> tuple[int, int]:
    """``(rows, cols)`` of the terminal on ``fd``, ``(0, 0)`` when it is not one."""
    if not is_terminal(fd):
        return 0, 0
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return 0, 0
    return size.lines, size.columns


@contextlib.contextmanager
def raw_terminal(fd: int = 0, enabled: bool = True) -> Iterator[Callable[[], None]]:
    """Raw mode on ``fd`` (cfmakeraw, as moby/term does); yields a restore function."""
    if not enabled or not is_terminal(fd):
        yield lambda: None
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    restored = False

    def restore() -> None:
        nonlocal restored
        if not restored:
            restored = True
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(fd, termios.TCSANOW, saved)

    tty.setraw(fd, termios.TCSANOW)
    try:
        yield restore
    finally:
        restore()


def parse_detach_keys(spec: str | None) -> bytes:
    """docker's ``term.ToBytes``: ``ctrl-p,ctrl-q`` or single characters, comma separated."""
    if not spec:
        return DEFAULT_DETACH_KEYS
    out = bytearray()
    for part in spec.split(","):
        part = part.strip()
        if part.lower().startswith("ctrl-") and len(part) == 6:
            ch = part[5].lower()
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
            elif ch == "@":
                out.append(0)
            elif ch in "[\\]^_":
                out.append(0x1B + "[\\]^_".index(ch))
            else:
                raise ValueError(f"invalid detach key: {part}")
        elif len(part) == 1:
            out.append(ord(part))
        else:
            raise ValueError(f"invalid detach key: {part}")
    return bytes(out)


class _EscapeFilter:
    """Pass input through, holding back a possible detach sequence until it is decided."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for byte in data:
            candidate = self.held + bytes([byte])
            if self.keys.startswith(candidate):
                if candidate == self.keys:
                    self.held = b""
                    return bytes(out), True
                self.held = candidate
            else:
                out += candidate
                self.held = b""
        return bytes(out), False


def pump(
    conn: HijackedStream,
    *,
    stdin: BinaryIO | None,
    stdout: BinaryIO | None,
    stderr: BinaryIO | None,
    tty: bool,
    detach_keys: bytes | None = None,
    on_output_end: Callable[[], None] | None = None,
) -> None:
    """Copy until the daemon closes the stream.

    Raises ``DetachRequested`` if the detach keys were typed, ``StreamError`` for a
    malformed stream or a daemon error frame.
    """
    detached = threading.Event()
    if stdin is None:
        conn.close_write()
    else:
        thread = threading.Thread(
            target=_copy_input,
            args=(conn, stdin, detach_keys if tty else None, detached),
            name="dockyard-stdin",
            daemon=True,
        )
        thread.start()

    def read() -> bytes:
        if detached.is_set():
            return b""
        return conn.recv()

    try:
        if stdout is None and stderr is None:
            while read():
                pass
        elif tty:
            assert stdout is not None
            copy_raw(read, stdout)
        else:
            demux(read, stdout, stderr)
    except OSError as exc:
        if not detached.is_set():
            raise StreamError(str(exc)) from exc
    finally:
        if on_output_end is not None:
            on_output_end()
    if detached.is_set():
        raise DetachRequested()


def _copy_input(
    conn: HijackedStream, stdin: BinaryIO, keys: bytes | None, detached: threading.Event
) -> None:
    escape = _EscapeFilter(keys) if keys else None
    fd = stdin.fileno()
    try:
        while True:
            try:
                data = os.read(fd, 32 * 1024)
            except InterruptedError:
                continue
            if not data:
                break
            if escape is not None:
                data, hit = escape.feed(data)
                if hit:
                    if data:
                        conn.sendall(data)
                    detached.set()
                    with contextlib.suppress(OSError):
                        conn.sock.shutdown(2)
                    return
            if data:
                conn.sendall(data)
    except OSError:
        pass
    conn.close_write()


def resize_tty(client: Client, target: str, *, is_exec: bool, size: tuple[int, int]) -> None:
    """``POST …/resize?h=&w=``; a 0×0 size is never sent (as docker)."""
    rows, cols = size
    if rows == 0 and cols == 0:
        return
    from dockyard.errors import DockyardError

    with contextlib.suppress(DockyardError):
        if is_exec:
            client.exec_resize(target, height=rows, width=cols)
        else:
            client.container_resize(target, height=rows, width=cols)


class SignalProxy:
    """Forward signals to a container and/or follow terminal resizes, from a thread.

    Signal handlers only enqueue; a worker thread with its own connection makes the
    requests, so a handler never blocks or reuses a busy connection.
    """

    def __init__(
        self,
        client: Client,
        container_id: str,
        *,
        forward: bool,
        resize_target: str | None = None,
        resize_is_exec: bool = False,
    ) -> None:
        self.client = client.clone()
        self.container_id = container_id
        self.forward = forward
        self.resize_target = resize_target
        self.resize_is_exec = resize_is_exec
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._previous: dict[int, object] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> SignalProxy:
        if threading.current_thread() is not threading.main_thread():
            return self
        names = list(_FORWARDED) if self.forward else []
        if self.resize_target is not None and "SIGWINCH" not in names:
            names.append("SIGWINCH")
        for name in names:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except (OSError, ValueError):
                continue
        self._thread = threading.Thread(target=self._run, name="dockyard-signals", daemon=True)
        self._thread.start()
        return self

    def watch_resize(self, target: str, *, is_exec: bool) -> None:
        """Resize the TTY to the terminal now, then again on every SIGWINCH."""
        self.resize_target = target
        self.resize_is_exec = is_exec
        self._resize()
        if threading.current_thread() is threading.main_thread():
            winch = getattr(signal, "SIGWINCH", None)
            if winch is not None and winch not in self._previous:
                self._previous[winch] = signal.signal(winch, self._handle)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dockyard-signals", daemon=True)
            self._thread.start()

    def _handle(self, signum: int, _frame: object) -> None:
        self._queue.put(signal.Signals(signum).name)

    def _run(self) -> None:
        from dockyard.errors import DockyardError

        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.forward and item in _FORWARDED:
                with contextlib.suppress(DockyardError):
                    self.client.container_kill(self.container_id, signal=item[3:])
            if item == "SIGWINCH":
                self._resize()

    def _resize(self) -> None:
        if self.resize_target is None:
            return
        resize_tty(self.client, self.resize_target, is_exec=self.resize_is_exec, size=tty_size(1))

    def stop(self) -> None:
        for signum, handler in self._previous.items():
            with contextlib.suppress(OSError, ValueError, TypeError):
                signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()
        self._queue.put(None)

    def __enter__(self) -> SignalProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def binary_stdio() -> tuple[BinaryIO, BinaryIO, BinaryIO]:
    return sys.stdin.buffer, sys.stdout.buffer, sys.stderr.buffer
