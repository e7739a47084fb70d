"""The embedded DNS server: 127.0.0.11:53 inside each container on a user-defined network.

The listening sockets are created inside the container's namespace (``socket_in_netns``) and
served by the daemon's event loop: no process, no thread per container. Names of containers
on the same user-defined networks (container name, aliases, short ID) are answered from
``lookup``; anything else is forwarded, from the host's namespace, to the host's resolvers
(loopback resolvers included, since forwarding happens on the host).

``answer`` is pure (bytes in, bytes or None out) and unit-tested without sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.networks.netlink import socket_in_netns

__all__ = ["DNS_ADDRESS", "DNSServer", "Lookup", "answer", "host_resolvers"]

log = logging.getLogger(__name__)

DNS_ADDRESS = "127.0.0.11"
_TTL = 600
_FORWARD_TIMEOUT = 3.0

Lookup = Callable[[str], list[str] | None]
"""name (lower case, no trailing dot) → IPv4 addresses, or None when the name is not ours."""


def host_resolvers(resolv_conf: str) -> list[tuple[str, int]]:
    servers = []
    for line in resolv_conf.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver" and ":" not in fields[1]:
            servers.append((fields[1], 53))
    return servers


def answer(query: bytes, lookup: Lookup) -> bytes | None:
    """The reply to ``query`` when it asks for names of ours; None: forward it."""
    from dnslib import QTYPE, RR, A, DNSRecord  # on first query: dnslib costs ~4 MiB

    try:
        record = DNSRecord.parse(query)
    except Exception:
        return None
    if not record.questions:
        return None
    question = record.questions[0]
    name = str(question.qname).rstrip(".").lower()
    addresses = lookup(name)
    if addresses is None:
        return None
    reply = record.reply()
    reply.header.ra = 1
    if question.qtype in (QTYPE.A, QTYPE.ANY):
        for addr in addresses:
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(addr), ttl=_TTL))
    # AAAA: IPv6 is not assigned, so an empty NOERROR answer, like Docker.
    return bytes(reply.pack())


def _servfail(query: bytes) -> bytes | None:
    from dnslib import RCODE, DNSRecord

    try:
        record = DNSRecord.parse(query)
    except Exception:
        return None
    reply = record.reply()
    reply.header.rcode = RCODE.SERVFAIL
    return bytes(reply.pack())


class _Forwarder(asyncio.DatagramProtocol):
    def __init__(self, done: asyncio.Future[bytes]) -> None:
        self.done = done

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.done.done():
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


async def forward(query: bytes, upstreams: list[tuple[str, int]]) -> bytes | None:
    loop = asyncio.get_running_loop()
    for upstream in upstreams:
        done: asyncio.Future[bytes] = loop.create_future()
        transport, _ = await loop.create_datagram_endpoint(
            lambda done=done: _Forwarder(done),  # type: ignore[misc]
            remote_addr=upstream,
        )
        try:
            transport.sendto(query)
            return await asyncio.wait_for(done, _FORWARD_TIMEOUT)
        except (TimeoutError, OSError):
            continue
        finally:
            transport.close()
    return _servfail(query)


class _UDPServer(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server.spawn(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        out = await self.server.resolve(data)
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)


@dataclass
class DNSServer:
    """The resolver of one container."""

    lookup: Lookup
    upstreams: list[tuple[str, int]]
    _udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.base_events.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resolve(self, query: bytes) -> bytes | None:
        local = answer(query, self.lookup)
        if local is not None:
            return local
        return await forward(query, self.upstreams)

    async def start(self, netns: Path, address: str = DNS_ADDRESS, port: int = 53) -> None:
        udp, tcp = await asyncio.to_thread(_sockets_in, netns, address, port)
        loop = asyncio.get_running_loop()
        try:
            self._udp, _ = await loop.create_datagram_endpoint(lambda: _UDPServer(self), sock=udp)
            self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp)
        except BaseException:
            udp.close()
            tcp.close()
            await self.close()
            raise

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readexactly(2)
                query = await reader.readexactly(struct.unpack("!H", head)[0])
                out = await self.resolve(query)
                if out is None:
                    break
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 2)
            self._tcp = None
        for task in list(self._tasks):
            task.cancel()


def _sockets_in(netns: Path, address: str, port: int) -> tuple[socket.socket, socket.socket]:
    udp = socket_in_netns(netns, socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket_in_netns(netns, socket.AF_INET, socket.SOCK_STREAM)
    try:
        udp.bind((address, port))
        udp.setblocking(False)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((address, port))
        tcp.listen(64)
        tcp.setblocking(False)
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return udp, tcp
