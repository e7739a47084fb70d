"""Where the daemon is and how to open a connection to it.

Host selection follows the docker CLI: ``-H/--host``, else ``DOCKYARD_HOST``, else
``DOCKER_HOST``, else ``unix:///run/dockyard/dockyard.sock``. ``unix://`` and plain
``tcp://`` (no TLS) are supported; anything else raises ``InvalidArgument``.

Every connection failure surfaces as ``ConnectionFailed`` (an ``Unavailable``), with the
wording users know from Docker, so callers never see a raw ``OSError`` from connect.
"""

from __future__ import annotations

import errno
import os
import socket

from dockyard.client import http11
from dockyard.errors import InvalidArgument, Unavailable

TYPE_CHECKING = False  # not typing's: the CLI's start-up path imports this module
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_SOCKET",
    "HTTP_HOST_HEADER",
    "ConnectionFailed",
    "Endpoint",
    "UnixHTTPConnection",
    "open_connection",
    "open_socket",
    "parse_host",
    "resolve_host",
]

DEFAULT_SOCKET = "/run/dockyard/dockyard.sock"
DEFAULT_HOST = f"unix://{DEFAULT_SOCKET}"
DEFAULT_TCP_PORT = 2375
# What the docker CLI sends as Host over a unix socket; daemons ignore it.
HTTP_HOST_HEADER = "api.moby.localhost"


class ConnectionFailed(Unavailable):
    """The daemon could not be reached at all (no socket, refused, permission denied)."""


class Endpoint:
    """A parsed daemon address: ``scheme`` is ``unix`` (``address`` is a path) or ``tcp``."""

    __slots__ = ("address", "port", "scheme")

    def __init__(self, scheme: str, address: str, port: int = 0) -> None:
        self.scheme = scheme
        self.address = address
        self.port = port

    def _key(self) -> tuple[str, str, int]:
        return (self.scheme, self.address, self.port)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Endpoint) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Endpoint(scheme={self.scheme!r}, address={self.address!r}, port={self.port!r})"

    @property
    def url(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.address}"
        return f"tcp://{self.address}:{self.port}"


def resolve_host(flag: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The host URL to use: the flag, then ``DOCKYARD_HOST``, ``DOCKER_HOST``, the default."""
    env = os.environ if environ is None else environ
    for candidate in (flag, env.get("DOCKYARD_HOST"), env.get("DOCKER_HOST")):
        if candidate:
            return candidate
    return DEFAULT_HOST


def parse_host(host: str) -> Endpoint:
    """Parse ``unix:///path``, ``tcp://host:port`` (or bare ``host:port``) like docker does.

    Raises ``InvalidArgument`` for malformed addresses and unsupported schemes.
    """
    text = host.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "tcp", text
    scheme = scheme.lower()
    if scheme == "unix":
        return Endpoint("unix", rest or DEFAULT_SOCKET)
    if scheme in ("tcp", "http"):
        hostport = rest.split("/", 1)[0]
        if not hostport:
            raise InvalidArgument(f"Invalid bind address format: {host}")
        name, port = _split_host_port(hostport, host)
        return Endpoint("tcp", name or "127.0.0.1", port)
    raise InvalidArgument(f"unsupported host scheme {scheme!r} in {host}: use unix:// or tcp://")


def _split_host_port(hostport: str, original: str) -> tuple[str, int]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise InvalidArgument(f"Invalid bind address format: {original}")
        name, tail = hostport[1:end], hostport[end + 1 :]
        port_text = tail[1:] if tail.startswith(":") else ""
    elif hostport.count(":") == 1:
        name, port_text = hostport.split(":")
    else:
        name, port_text = hostport, ""
    if not port_text:
        return name, DEFAULT_TCP_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidArgument(f"Invalid bind address format: {original}")
    return name, int(port_text)


def _connect_error(endpoint: Endpoint, exc: OSError) -> ConnectionFailed:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ConnectionFailed(
            "permission denied while trying to connect to the Dockyard daemon socket at "
            f"{endpoint.url}: dial {endpoint.scheme} {endpoint.address}: connect: permission denied"
        )
    return ConnectionFailed(
        f"Cannot connect to the Dockyard daemon at {endpoint.url}. Is the dockyard daemon running?"
    )


def open_socket(endpoint: Endpoint, timeout: float | None = None) -> socket.socket:
    """A connected stream socket to the daemon; raises ``ConnectionFailed``."""
    try:
        if endpoint.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(endpoint.address)
            except BaseException:
                sock.close()
                raise
            return sock
        sock = socket.create_connection((endpoint.address, endpoint.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    except OSError as exc:
        raise _connect_error(endpoint, exc) from exc


class UnixHTTPConnection(http11.HTTPConnection):
    """HTTP/1.1 over a unix socket (docker-py's ``unixconn`` idea, stdlib only)."""

    def __init__(self, path: str, timeout: float | None = None) -> None:
        super().__init__(HTTP_HOST_HEADER, timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = open_socket(Endpoint("unix", self.socket_path), self.timeout)


class _TCPHTTPConnection(http11.HTTPConnection):
    def __init__(self, endpoint: Endpoint, timeout: float | None = None) -> None:
        super().__init__(endpoint.address, endpoint.port, timeout=timeout)
        self.endpoint = endpoint

    def connect(self) -> None:
        self.sock = open_socket(self.endpoint, self.timeout)


def open_connection(endpoint: Endpoint, timeout: float | None = None) -> http11.HTTPConnection:
    """A not-yet-connected HTTP/1.1 connection (it connects on the first request)."""
    if endpoint.scheme == "unix":
        return UnixHTTPConnection(endpoint.address, timeout)
    return _TCPHTTPConnection(endpoint, timeout)
