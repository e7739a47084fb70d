"""One client connection to a conmon attach socket (notes §5), as asyncio reads and writes.

The socket is ``AF_UNIX``/``SOCK_SEQPACKET``: every message from conmon is one header byte
(2 = stdout, 3 = stderr; TTY output is always 2) plus ≤ 8192 bytes of payload; stdin goes the
other way as raw messages of ≤ 32768 bytes (conmon drops the rest of a bigger message). conmon
never replays: a client sees only output produced while it is connected. At container exit
conmon closes its clients before the exit file is written, so EOF comes first.

Lifecycle: ``connect`` → any number of ``read``/``write`` (one reader and one writer at a time)
→ optionally ``close_stdin`` (half-close; closes the container's stdin unless conmon was started
with ``--leave-stdin-open``) → ``close``. ``close`` may be called from any task at any time;
a pending ``read`` then returns ``None`` and a pending ``write`` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path

from dockyard.errors import Conflict

__all__ = ["STDIN_CHUNK", "AttachStream", "connect_seqpacket"]

STDIN_CHUNK = 32768  # conmon reads stdin messages with a 32 KiB buffer
_RECV_SIZE = 65536  # ≥ 8193; SEQPACKET truncates messages longer than the buffer
_SUN_PATH_MAX = 108
_STREAMS = {2: 1, 3: 2}  # conmon header → Docker stream number


async def connect_seqpacket(path: Path) -> socket.socket:
    """Connect to a SEQPACKET socket; paths of ≥ 108 bytes go through an ``O_PATH`` fd and
    ``/proc/self/fd/N`` (Podman's trick). Raises ``Conflict`` if nothing listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    fd: int | None = None
    try:
        target = os.fsencode(path)
        if len(target) >= _SUN_PATH_MAX:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            target = f"/proc/self/fd/{fd}".encode()
        await asyncio.get_running_loop().sock_connect(sock, target)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as e:
        sock.close()
        raise Conflict(f"container is not running: no monitor listens on {path}") from e
    except BaseException:
        sock.close()
        raise
    finally:
        if fd is not None:
            os.close(fd)
    return sock


class AttachStream:
    """stdout/stderr in, stdin out, over one attach connection."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._fd = sock.fileno()
        self._closed = False
        self._stdin_closed = False
        self._readers: list[asyncio.Future[None]] = []
        self._writers: list[asyncio.Future[None]] = []

    @classmethod
    async def connect(cls, path: Path) -> AttachStream:
        return cls(await connect_seqpacket(path))

    @property
    def closed(self) -> bool:
        return self._closed

    async def _wait(self, writable: bool) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        waiters = self._writers if writable else self._readers
        add = loop.add_writer if writable else loop.add_reader
        remove = loop.remove_writer if writable else loop.remove_reader

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        add(self._fd, ready)
        waiters.append(fut)
        try:
            await fut
        finally:
            waiters.remove(fut)
            if not self._closed:
                remove(self._fd)

    async def read(self) -> tuple[int, bytes] | None:
        """Next ``(stream, payload)``, stream already Docker's (1 stdout, 2 stderr); ``None`` at
        EOF, on ``ECONNRESET`` (seen when an exec failed) or after ``close``."""
        while not self._closed:
            try:
                msg = self._sock.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                await self._wait(writable=False)
                continue
            except (ConnectionResetError, BrokenPipeError):
                return None
            except OSError:
                if self._closed:
                    return None
                raise
            if not msg:
                return None
            stream = _STREAMS.get(msg[0])
            if stream is None or len(msg) == 1:
                continue  # header-only or unknown header: nothing to deliver
            return stream, msg[1:]
        return None

    async def write(self, data: bytes) -> None:
        """Send stdin, split into ≤ 32768-byte messages. Waits while conmon applies back-pressure
        (the container is not reading). Data written after the connection or the container's
        stdin has gone is dropped, as in Docker."""
        view = memoryview(data)
        for start in range(0, len(view), STDIN_CHUNK):
            chunk = view[start : start + STDIN_CHUNK]
            while True:
                if self._closed or self._stdin_closed:
                    return
                try:
                    self._sock.send(chunk)
                    break
                except (BlockingIOError, InterruptedError):
                    await self._wait(writable=True)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self._stdin_closed = True
                    return

    def close_stdin(self) -> None:
        """Half-close: conmon sees the client's EOF (closes the container's stdin under ``-i``
        without ``--leave-stdin-open``). Output can still be read."""
        if self._closed or self._stdin_closed:
            return
        self._stdin_closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Drop the connection; pending ``read``/``write`` calls return. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for waiters, writable in ((self._readers, False), (self._writers, True)):
            if waiters and loop is not None:
                (loop.remove_writer if writable else loop.remove_reader)(self._fd)
            for fut in list(waiters):
                if not fut.done():
                    fut.set_result(None)
        self._sock.close()

    def __del__(self) -> None:
        if not self._closed:
            with contextlib.suppress(Exception):
                self._sock.close()
