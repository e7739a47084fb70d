"""Docker's stream framings: JSON-lines progress, the 8-byte multiplexed frame, and connection hijack.

Hijack (attach, exec start): the transport is taken away from aiohttp *before* the 101 is
written, so no byte the client sends after it can reach aiohttp's parser, and a client's
half-close (FIN when its stdin ends) keeps the socket open for the output that follows.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

from aiohttp import web

__all__ = ["Hijacked", "JsonStream", "frame", "hijack"]

STDOUT = 1
STDERR = 2
SYSERR = 3


def frame(stream: int, payload: bytes) -> bytes:
    """One multiplexed frame: ``[stream, 0, 0, 0, len_be32] + payload``."""
    return struct.pack(">BxxxI", stream, len(payload)) + payload


class JsonStream:
    """A chunked ``application/json`` response of messages each ended by CRLF, flushed one by one."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self.response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        self.response.enable_chunked_encoding()
        self._started = False

    async def start(self) -> None:
        if not self._started:
            self._started = True
            await self.response.prepare(self._request)

    async def send(self, message: dict[str, Any]) -> None:
        await self.start()
        await self.response.write(json.dumps(message).encode() + b"\r\n")

    async def error(self, message: str, code: int | None = None) -> None:
        detail: dict[str, Any] = {"message": message}
        if code is not None:
            detail["code"] = code
        await self.send({"errorDetail": detail, "error": message})

    async def finish(self) -> web.StreamResponse:
        await self.start()
        await self.response.write_eof()
        return self.response


class _HijackProtocol(asyncio.Protocol):
    def __init__(self, queue: asyncio.Queue[bytes | None]) -> None:
        self._queue = queue

    def data_received(self, data: bytes) -> None:
        self._queue.put_nowait(data)

    def eof_received(self) -> bool:
        self._queue.put_nowait(b"")
        return True  # keep the write side open after the client's FIN

    def connection_lost(self, exc: Exception | None) -> None:
        self._queue.put_nowait(None)


class Hijacked:
    """A raw two-way byte stream after ``101 UPGRADED``.

    ``read()`` returns data, ``b""`` once at the client's half-close, and ``None`` when the
    connection is gone. ``close()`` ends the connection and releases aiohttp's handler.
    """

    def __init__(self, request: web.Request, queue: asyncio.Queue[bytes | None]) -> None:
        self._request = request
        self._queue = queue
        transport = request.transport
        assert transport is not None
        self._transport = transport
        self.client_gone = False
        self.stdin_closed = False

    async def read(self) -> bytes | None:
        if self.client_gone:
            return None
        data = await self._queue.get()
        if data is None:
            self.client_gone = True
        elif data == b"":
            self.stdin_closed = True
        return data

    def write(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    async def drain(self) -> None:
        # Back-pressure: wait while the kernel buffer is full.
        while (
            not self._transport.is_closing() and self._transport.get_write_buffer_size() > 1 << 20
        ):
            await asyncio.sleep(0.01)

    @property
    def closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._transport.close()
        protocol = self._request.protocol
        if protocol is not None:
            protocol.force_close()


async def hijack(
    request: web.Request, content_type: str, extra_headers: dict[str, str] | None = None
) -> Hijacked:
    """Take over the connection and answer ``101 UPGRADED`` (what the docker CLI requires)."""
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("client went away")
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    transport.set_protocol(_HijackProtocol(queue))
    head = [
        "HTTP/1.1 101 UPGRADED",
        f"Content-Type: {content_type}",
        "Connection: Upgrade",
        "Upgrade: tcp",
    ]
    for key, value in (extra_headers or {}).items():
        head.append(f"{key}: {value}")
    transport.write(("\r\n".join(head) + "\r\n\r\n").encode())
    return Hijacked(request, queue)


def done_response() -> web.Response:
    """What a hijacking handler returns to aiohttp once it has closed the connection itself."""
    return web.Response()
