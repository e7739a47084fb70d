"""The userland proxy: forwards a published host port to a container's address, in-process.

One listener per published port, served by the daemon's event loop (Docker runs one
``docker-proxy`` process per port). It serves what iptables cannot: connections to the host's
loopback addresses, and everything when iptables is off. Binding the listener is also how a
host port is reserved: a port already taken fails here, before the container starts.

``bind_listener`` raises ``Conflict`` with Docker's wording when the port is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from dataclasses import dataclass, field

from dockyard import errors

__all__ = ["PortProxy", "bind_listener", "free_port"]

log = logging.getLogger(__name__)

_CHUNK = 256 * 1024
_UDP_IDLE = 60.0


def bind_listener(proto: str, host_ip: str, host_port: int) -> socket.socket:
    """A bound (TCP: listening) non-blocking socket on ``host_ip:host_port``; 0 picks a port."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host_ip or "0.0.0.0", host_port))
        if kind == socket.SOCK_STREAM:
            sock.listen(512)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise errors.Conflict(
                f"driver failed programming external connectivity on endpoint: Bind for "
                f"{host_ip or '0.0.0.0'}:{host_port} failed: port is already allocated"
            ) from None
        raise errors.SystemError(
            f"error while binding {proto} {host_ip or '0.0.0.0'}:{host_port}: {exc.strerror}"
        ) from None
    return sock


def free_port(proto: str, host_ip: str) -> int:
    """A port the kernel considers free now (for ``-P`` without a proxy)."""
    sock = bind_listener(proto, host_ip, 0)
    try:
        return int(sock.getsockname()[1])
    finally:
        sock.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


class _UDPUpstream(asyncio.DatagramProtocol):
    def __init__(self, reply: asyncio.DatagramTransport, client: tuple[str, int]) -> None:
        self.reply = reply
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.reply.sendto(data, self.client)


class _UDPFront(asyncio.DatagramProtocol):
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[tuple[str, int], tuple[asyncio.DatagramTransport, float]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        flow = self.flows.get(addr)
        if flow is not None:
            flow[0].sendto(data)
            self.flows[addr] = (flow[0], loop.time())
            return
        task = loop.create_task(self._open(addr, data))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _open(self, addr: tuple[str, int], data: bytes) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UDPUpstream(self.transport, addr),  # type: ignore[arg-type]
            remote_addr=self.target,
        )
        self.flows[addr] = (transport, loop.time())
        transport.sendto(data)

    def close(self) -> None:
        for transport, _ in self.flows.values():
            transport.close()
        self.flows.clear()
        if self.transport is not None:
            self.transport.close()


@dataclass
class PortProxy:
    """One published port: a listener on the host, forwarding to ``target``."""

    proto: str
    sock: socket.socket
    target: tuple[str, int]
    _server: asyncio.base_events.Server | None = None
    _udp: _UDPFront | None = None
    _conns: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def host_port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.proto == "tcp":
            self._server = await asyncio.start_server(self._serve, sock=self.sock)
        else:
            front = _UDPFront(self.target)
            await loop.create_datagram_endpoint(lambda: front, sock=self.sock)
            self._udp = front

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream_writer = await asyncio.open_connection(*self.target)
            self._conns.add(upstream_writer)
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(up_reader, writer))
        except (ConnectionError, OSError) as exc:
            log.debug("proxy to %s: %s", self.target, exc)
        finally:
            for w in (writer, upstream_writer):
                if w is not None:
                    self._conns.discard(w)
                    w.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._conns):
                w.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        if self._udp is not None:
            self._udp.close()
        self.sock.close()
