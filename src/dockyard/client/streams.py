"""Stream framing used by the Engine API, without I/O where possible.

- ``FrameDecoder``: the 8-byte multiplexed header ``[stream, 0, 0, 0, len_be32]`` that
  non-TTY attach, logs and exec use (stream 1 stdout, 2 stderr, 3 a daemon-side error).
- ``JSONMessageDecoder``: consecutive JSON values, as pull/load/build progress sends them
  (each followed by ``\\r\\n``, but any whitespace or none is accepted, like Go's decoder).
- ``HijackedStream``: the raw two-way socket left after ``101 UPGRADED``.
"""

from __future__ import annotations

import json
import socket
import struct

TYPE_CHECKING = False  # not typing's: the CLI's start-up path imports this module
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, BinaryIO

__all__ = [
    "STDERR",
    "STDIN",
    "STDOUT",
    "SYSERR",
    "FrameDecoder",
    "HijackedStream",
    "JSONMessageDecoder",
    "StreamError",
    "copy_raw",
    "demux",
    "encode_frame",
    "iter_json_messages",
]

STDIN, STDOUT, STDERR, SYSERR = 0, 1, 2, 3
_HEADER = struct.Struct(">BxxxL")
_READ_SIZE = 65536


class StreamError(Exception):
    """The stream was malformed, or the daemon reported an error inside it (stream 3)."""


def encode_frame(stream: int, payload: bytes) -> bytes:
    """One multiplexed frame (what the daemon writes; used by tests and fakes)."""
    return _HEADER.pack(stream, len(payload)) + payload


class FrameDecoder:
    """Incremental decoder: ``feed`` bytes as they arrive, get complete frames back.

    Frames may be split across reads at any byte. ``close`` raises ``StreamError`` if
    the input ended inside a frame.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        frames: list[tuple[int, bytes]] = []
        while len(self._buffer) >= _HEADER.size:
            stream, length = _HEADER.unpack_from(self._buffer)
            if stream not in (STDIN, STDOUT, STDERR, SYSERR):
                raise StreamError(f"Unrecognized input header: {stream}")
            end = _HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append((stream, bytes(self._buffer[_HEADER.size : end])))
            del self._buffer[:end]
        return frames

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def close(self) -> None:
        if self._buffer:
            raise StreamError("unexpected EOF inside a multiplexed frame")


def demux(read: Callable[[], bytes], stdout: BinaryIO | None, stderr: BinaryIO | None) -> None:
    """Copy a multiplexed stream to ``stdout``/``stderr`` until ``read`` returns ``b""``.

    Like Go's ``stdcopy.StdCopy``: stream 0 and 1 go to stdout, 2 to stderr, and a
    stream-3 frame raises ``StreamError`` carrying the daemon's message. Output is
    flushed after every read so interleaving stays close to the container's.
    """
    decoder = FrameDecoder()
    while True:
        data = read()
        if not data:
            break
        touched: set[int] = set()
        for stream, payload in decoder.feed(data):
            if stream == SYSERR:
                raise StreamError(payload.decode("utf-8", "replace"))
            target = stderr if stream == STDERR else stdout
            if target is not None:
                target.write(payload)
                touched.add(id(target))
        for target in (stdout, stderr):
            if target is not None and id(target) in touched:
                target.flush()
    decoder.close()


def copy_raw(read: Callable[[], bytes], out: BinaryIO) -> None:
    """Copy an unframed (TTY) stream until ``read`` returns ``b""``."""
    while True:
        data = read()
        if not data:
            return
        out.write(data)
        out.flush()


class JSONMessageDecoder:
    """Incremental decoder for a sequence of JSON values (progress messages)."""

    def __init__(self) -> None:
        self._buffer = ""
        self._pending = b""
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[Any]:
        raw = self._pending + data
        try:
            text = raw.decode("utf-8")
            self._pending = b""
        except UnicodeDecodeError as exc:
            if exc.start < len(raw) - 3:
                raise StreamError(f"invalid UTF-8 in message stream: {exc}") from exc
            text = raw[: exc.start].decode("utf-8")
            self._pending = raw[exc.start :]
        self._buffer += text
        values: list[Any] = []
        while True:
            start = _skip_ws(self._buffer)
            if start == len(self._buffer):
                self._buffer = ""
                break
            try:
                value, end = self._decoder.raw_decode(self._buffer, start)
            except json.JSONDecodeError:
                # Most likely an incomplete value; wait for more data.
                self._buffer = self._buffer[start:]
                break
            values.append(value)
            self._buffer = self._buffer[end:]
        return values

    def close(self) -> None:
        rest = self._buffer.strip()
        if rest or self._pending:
            try:
                self._decoder.decode(rest)
            except json.JSONDecodeError as exc:
                raise StreamError(f"invalid message in stream: {exc}") from exc
            raise StreamError("invalid message in stream")


def _skip_ws(text: str) -> int:
    i = 0
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def iter_json_messages(read: Callable[[], bytes]) -> Iterator[Any]:
    """Yield each JSON message as soon as it is complete."""
    decoder = JSONMessageDecoder()
    while True:
        data = read()
        if not data:
            break
        yield from decoder.feed(data)
    decoder.close()


class HijackedStream:
    """The raw bidirectional byte stream of an upgraded (hijacked) connection.

    ``recv`` returns bytes already read past the response headers first. ``close_write``
    half-closes (sends FIN) so the daemon sees stdin's end but can keep writing.
    """

    def __init__(self, sock: socket.socket, initial: bytes = b"", content_type: str = "") -> None:
        self.sock = sock
        self._initial = initial
        self.content_type = content_type
        self._write_closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, size: int = _READ_SIZE) -> bytes:
        if self._initial:
            data, self._initial = self._initial[:size], self._initial[size:]
            return data
        try:
            return self.sock.recv(size)
        except (ConnectionResetError, BrokenPipeError):
            return b""

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        if self._write_closed:
            return
        self._write_closed = True
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        """Close both ways; a ``recv`` blocked in another thread returns ``b""``."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> HijackedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
