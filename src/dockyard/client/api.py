"""Typed Engine API client: one method per endpoint, parsed JSON back.

The client behaves on the wire like the docker CLI (see ``docker-cli-wire.md``):

- Version negotiation: an unversioned ``HEAD /_ping`` (``GET`` if HEAD is refused) on the
  first request; every later path is prefixed ``/v{min(1.44, Api-Version)}/``. A missing
  ``Api-Version`` header means 1.24. ``DOCKYARD_API_VERSION``/``DOCKER_API_VERSION`` skip it.
- Serial requests reuse one keep-alive connection. Requests whose body arrives later
  (wait, logs, pull, load, save) get their own connection and come back as a
  ``StreamResponse`` as soon as the headers are in. Hijacks (attach, exec start) get their
  own socket and come back as a ``HijackedStream`` after ``101``.
- Errors: a 4xx/5xx (or 304) answer raises the ``dockyard.errors`` class for its status with
  the daemon's message (``{"message": …}`` or the plain body): 400 ``InvalidArgument``,
  401 ``Unauthorized``, 403 ``Forbidden``, 404 ``NotFound``, 409 ``Conflict``,
  304 ``NotModified``, 503 ``Unavailable``, other 5xx ``SystemError`` (other 4xx
  ``InvalidArgument``). ``ResponseError`` marks them as the daemon's words. An unreachable
  daemon raises ``ConnectionFailed``; a broken protocol exchange raises ``ProtocolError``.
"""

from __future__ import annotations

import json
import os
import select
import socket
import threading

from dockyard.client import http11
from dockyard.errors import (
    Conflict,
    DockyardError,
    Forbidden,
    InvalidArgument,
    NotFound,
    NotModified,
    SystemError,
    Unauthorized,
    Unavailable,
    Unsupported,
)

from .streams import HijackedStream
from .transport import (
    HTTP_HOST_HEADER,
    ConnectionFailed,
    Endpoint,
    open_connection,
    open_socket,
    parse_host,
    resolve_host,
)
from .wire import encode_filters, encode_query, go_json, quote

TYPE_CHECKING = False  # not typing's: the CLI's start-up path imports this module
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any, BinaryIO, TypeAlias

    from .wire import QueryValue

    JSON: TypeAlias = Any
    JSONDict: TypeAlias = dict[str, Any]
    Filters: TypeAlias = Mapping[str, Iterable[str]]

__all__ = [
    "API_VERSION",
    "MIN_API_VERSION",
    "Client",
    "PingResult",
    "ProtocolError",
    "Response",
    "StreamResponse",
    "WaitHandle",
    "error_for_status",
    "is_response_error",
    "version_less",
]

API_VERSION = "1.44"
MIN_API_VERSION = "1.24"
CLIENT_VERSION = "0.1.0"
USER_AGENT = f"Dockyard-Client/{CLIENT_VERSION} (linux)"
EMPTY_AUTH = "e30="  # base64url("{}"): what docker sends without credentials
_UPLOAD_CHUNK = 32 * 1024
_PATH_SAFE = "$&+,/:;=@"


class ProtocolError(DockyardError):
    """The daemon answered in a way the protocol does not allow (not its error message)."""


_STATUS_ERRORS: dict[int, type[DockyardError]] = {
    304: NotModified,
    400: InvalidArgument,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    500: SystemError,
    501: Unsupported,
    503: Unavailable,
}

# Exceptions created from a daemon answer carry this marker attribute, so the CLI can say
# "Error response from daemon: …" for them and nothing for its own errors.
_RESPONSE_MARK = "_dockyard_response_status"


def error_for_status(status: int, message: str) -> DockyardError:
    """The typed error for an HTTP status, like errdefs.FromStatusCode."""
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = InvalidArgument if 400 <= status < 500 else SystemError
    exc = cls(message)
    setattr(exc, _RESPONSE_MARK, status)
    return exc


def is_response_error(exc: BaseException) -> bool:
    """True if ``exc`` carries a message the daemon sent (not one the client made up)."""
    return getattr(exc, _RESPONSE_MARK, None) is not None


def _error_message(status: int, reason: str, body: bytes, content_type: str, url: str) -> str:
    text = body.decode("utf-8", "replace")
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return str(data["message"])
    text = text.strip()
    if text:
        return text
    return (
        f"request returned {status} {reason} for API route and version {url}, "
        "check if the server supports the requested API version"
    )


def version_less(a: str, b: str) -> bool:
    """Compare dotted API versions numerically (``1.9 < 1.44``)."""

    def key(v: str) -> tuple[int, ...]:
        out: list[int] = []
        for part in v.split("."):
            try:
                out.append(int(part))
            except ValueError:
                out.append(0)
        return tuple(out)

    return key(a) < key(b)


def _quote_path(text: str) -> str:
    return quote(text, safe=_PATH_SAFE)


class PingResult:
    """What ``/_ping`` told us about the daemon."""

    __slots__ = ("api_version", "builder_version", "experimental", "os_type", "swarm")

    def __init__(
        self,
        api_version: str | None,
        os_type: str,
        experimental: bool,
        builder_version: str,
        swarm: str,
    ) -> None:
        self.api_version = api_version
        self.os_type = os_type
        self.experimental = experimental
        self.builder_version = builder_version
        self.swarm = swarm

    def __repr__(self) -> str:
        return f"PingResult(api_version={self.api_version!r}, os_type={self.os_type!r})"


class Response:
    """A fully read response."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"Response(status={self.status!r}, reason={self.reason!r})"

    def json(self) -> JSON:
        if not self.body.strip():
            return None
        return json.loads(self.body)


class StreamResponse:
    """A 2xx response whose body is read incrementally from its own connection."""

    def __init__(self, conn: http11.HTTPConnection, resp: http11.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def read(self, size: int = 65536) -> bytes:
        """Some bytes (at most ``size``) as soon as they arrive; ``b""`` at the end."""
        try:
            return self._resp.read1(size)
        except (http11.IncompleteRead, ConnectionResetError) as exc:
            raise ProtocolError(f"unexpected EOF reading the response: {exc}") from exc

    def read_all(self) -> bytes:
        try:
            return self._resp.read()
        except (http11.IncompleteRead, ConnectionResetError) as exc:
            raise ProtocolError(f"unexpected EOF reading the response: {exc}") from exc

    def fileno(self) -> int:
        sock = self._conn.sock
        return sock.fileno() if sock is not None else -1

    def close(self) -> None:
        """Drop the connection (the daemon sees EOF and stops streaming)."""
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._conn.close()

    def __enter__(self) -> StreamResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WaitHandle:
    """A pending ``POST /containers/{id}/wait``: headers are in, the body comes at exit."""

    def __init__(self, stream: StreamResponse) -> None:
        self._stream = stream

    def result(self) -> JSONDict:
        """Block until the container's wait condition is met; ``{"StatusCode": …, "Error": …}``."""
        body = self._stream.read_all()
        self._stream.close()
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ProtocolError(f"invalid wait response: {body[:200]!r}") from exc
        if not isinstance(data, dict):
            raise ProtocolError(f"invalid wait response: {body[:200]!r}")
        return data

    def close(self) -> None:
        self._stream.close()


def _read_head(sock: socket.socket) -> tuple[int, str, dict[str, str], bytes]:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ProtocolError("the daemon closed the connection before answering")
        buffer += chunk
        if len(buffer) > 1 << 20:
            raise ProtocolError("response headers too large")
    head, rest = buffer.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ProtocolError(f"malformed response status line: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers, rest


def _read_body(sock: socket.socket, headers: Mapping[str, str], rest: bytes) -> bytes:
    """The body of a non-upgraded answer on a raw socket (error bodies are small)."""

    def more() -> bytes:
        return sock.recv(65536)

    if "chunked" in headers.get("transfer-encoding", "").lower():
        data, out = rest, b""
        while True:
            while b"\r\n" not in data:
                chunk = more()
                if not chunk:
                    return out
                data += chunk
            size_line, data = data.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return out
            while len(data) < size + 2:
                chunk = more()
                if not chunk:
                    return out + data[:size]
                data += chunk
            out += data[:size]
            data = data[size + 2 :]
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        want = int(length)
        data = rest
        while len(data) < want:
            chunk = more()
            if not chunk:
                break
            data += chunk
        return data[:want]
    data = rest
    while True:
        chunk = more()
        if not chunk:
            return data
        data += chunk


def _peer_closed(conn: http11.HTTPConnection) -> bool:
    """True if an idle connection has become readable (EOF or junk): not reusable."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _iter_upload(source: BinaryIO | Iterable[bytes]) -> Iterable[bytes]:
    if hasattr(source, "read"):
        reader: BinaryIO = source  # type: ignore[assignment]
        while True:
            chunk = reader.read(_UPLOAD_CHUNK)
            if not chunk:
                return
            yield chunk
    else:
        for chunk in source:  # type: ignore[union-attr]
            if chunk:
                yield chunk


class Client:
    """An Engine API client for one daemon. Not thread-safe: use ``clone()`` per thread."""

    def __init__(
        self,
        host: str | None = None,
        *,
        api_version: str | None = None,
        timeout: float | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.host = resolve_host(host)
        self.endpoint: Endpoint = parse_host(self.host)
        self.timeout = timeout
        self.user_agent = user_agent
        env_version = os.environ.get("DOCKYARD_API_VERSION") or os.environ.get("DOCKER_API_VERSION")
        self._version: str | None = api_version or env_version or None
        self._ping: PingResult | None = None
        self._conn: http11.HTTPConnection | None = None
        self._conn_used = False
        self._lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------

    def clone(self) -> Client:
        """A client for the same daemon and API version with its own connection."""
        other = Client(self.host, api_version=self._version, timeout=self.timeout)
        other.user_agent = self.user_agent
        other._ping = self._ping
        return other

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def api_version(self) -> str:
        """The negotiated API version (pings the daemon the first time)."""
        if self._version is None:
            self.negotiate()
        assert self._version is not None
        return self._version

    @property
    def server_api_version(self) -> str | None:
        return self._ping.api_version if self._ping else None

    def negotiate(self) -> None:
        ping = self.ping()
        server = ping.api_version or MIN_API_VERSION
        self._version = server if version_less(server, API_VERSION) else API_VERSION

    def _path(self, path: str, query: Mapping[str, QueryValue] | None, versioned: bool) -> str:
        url = f"/v{self.api_version}{path}" if versioned else path
        qs = encode_query(query) if query else ""
        return f"{url}?{qs}" if qs else url

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent}
        if extra:
            headers.update(extra)
        return headers

    def _send(
        self,
        conn: http11.HTTPConnection,
        method: str,
        url: str,
        body: bytes | Iterable[bytes] | None,
        headers: Mapping[str, str],
    ) -> http11.HTTPResponse:
        try:
            conn.request(method, url, body=body, headers=dict(headers))
            return conn.getresponse()
        except ConnectionFailed:
            raise
        except (OSError, http11.HTTPException) as exc:
            conn.close()
            raise ConnectionFailed(
                f"error during connect to {self.endpoint.url}: {method} {url}: {exc}"
            ) from exc

    def _raise_for(self, resp: http11.HTTPResponse, url: str) -> None:
        status = resp.status
        if status < 400 and status != 304:
            return
        try:
            body = resp.read()
        except (OSError, http11.HTTPException):
            body = b""
        message = _error_message(
            status, resp.reason, body, resp.getheader("Content-Type") or "", self._display_url(url)
        )
        raise error_for_status(status, message)

    def _display_url(self, url: str) -> str:
        if self.endpoint.scheme == "unix":
            return f"http://{quote(self.endpoint.address, safe='')}{url}"
        return f"http://{self.endpoint.address}:{self.endpoint.port}{url}"

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, QueryValue] | None = None,
        body: bytes | None = None,
        json_body: JSON = None,
        headers: Mapping[str, str] | None = None,
        versioned: bool = True,
    ) -> Response:
        """One request on the shared keep-alive connection, body read in full.

        Raises the typed error for a 4xx/5xx/304 answer, ``ConnectionFailed`` if the
        daemon cannot be reached.
        """
        extra = dict(headers or {})
        if json_body is not None:
            body = go_json(json_body).encode()
            extra.setdefault("Content-Type", "application/json")
        url = self._path(path, query, versioned)
        hdrs = self._headers(extra)
        with self._lock:
            for attempt in (0, 1):
                if self._conn is not None and _peer_closed(self._conn):
                    # The daemon closed the idle keep-alive connection: don't send into it.
                    self._conn.close()
                    self._conn = None
                if self._conn is None:
                    self._conn = open_connection(self.endpoint, self.timeout)
                    self._conn_used = False
                conn = self._conn
                try:
                    conn.request(method, url, body=body, headers=hdrs)
                    resp = conn.getresponse()
                except ConnectionFailed:
                    self._conn = None
                    raise
                except (
                    http11.RemoteDisconnected,
                    ConnectionResetError,
                    BrokenPipeError,
                ) as exc:
                    # A reused keep-alive connection may have been closed by the daemon.
                    conn.close()
                    self._conn = None
                    if attempt == 0 and self._conn_used:
                        continue
                    raise ConnectionFailed(
                        f"error during connect to {self.endpoint.url}: {method} {url}: {exc}"
                    ) from exc
                except (OSError, http11.HTTPException) as exc:
                    conn.close()
                    self._conn = None
                    raise ConnectionFailed(
                        f"error during connect to {self.endpoint.url}: {method} {url}: {exc}"
                    ) from exc
                self._conn_used = True
                try:
                    self._raise_for(resp, url)
                    data = resp.read()
                except (OSError, http11.HTTPException) as exc:
                    conn.close()
                    self._conn = None
                    raise ProtocolError(f"error reading response: {exc}") from exc
                if resp.will_close:
                    conn.close()
                    self._conn = None
                return Response(
                    resp.status,
                    resp.reason,
                    {k.lower(): v for k, v in resp.getheaders()},
                    data,
                )
        raise AssertionError("unreachable")

    def stream(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, QueryValue] | None = None,
        body: bytes | Iterable[bytes] | None = None,
        json_body: JSON = None,
        headers: Mapping[str, str] | None = None,
    ) -> StreamResponse:
        """A request on its own connection; returns once the response headers arrive."""
        extra = dict(headers or {})
        if json_body is not None:
            body = go_json(json_body).encode()
            extra.setdefault("Content-Type", "application/json")
        url = self._path(path, query, True)
        conn = open_connection(self.endpoint, self.timeout)
        resp = self._send(conn, method, url, body, self._headers(extra))
        try:
            self._raise_for(resp, url)
        finally:
            if resp.status >= 400 or resp.status == 304:
                conn.close()
        return StreamResponse(conn, resp)

    def hijack(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, QueryValue] | None = None,
        json_body: JSON = None,
    ) -> HijackedStream:
        """Send an upgrade request on a new socket; return the raw stream after ``101``."""
        url = self._path(path, query, True)
        if json_body is not None:
            payload = go_json(json_body).encode()
            content_type = "application/json"
        else:
            payload = b""
            content_type = "text/plain"
        head = (
            f"{method} {url} HTTP/1.1\r\n"
            f"Host: {HTTP_HOST_HEADER}\r\n"
            f"User-Agent: {self.user_agent}\r\n"
            f"Content-Length: {len(payload)}\r\n"
            "Connection: Upgrade\r\n"
            f"Content-Type: {content_type}\r\n"
            "Upgrade: tcp\r\n"
            "\r\n"
        )
        sock = open_socket(self.endpoint, self.timeout)
        try:
            sock.sendall(head.encode("latin-1") + payload)
            status, reason, headers, rest = _read_head(sock)
            if status == 101:
                sock.settimeout(None)
                return HijackedStream(sock, rest, headers.get("content-type", ""))
            body = _read_body(sock, headers, rest)
        except OSError as exc:
            sock.close()
            raise ConnectionFailed(
                f"error during connect to {self.endpoint.url}: {method} {url}: {exc}"
            ) from exc
        except BaseException:
            sock.close()
            raise
        sock.close()
        if status >= 400 or status == 304:
            message = _error_message(
                status, reason, body, headers.get("content-type", ""), self._display_url(url)
            )
            raise error_for_status(status, message)
        raise ProtocolError(f"unable to upgrade to tcp, received {status}")

    # -- system ---------------------------------------------------------------------

    def ping(self) -> PingResult:
        """``HEAD /_ping`` (``GET`` when HEAD is refused); never raises for its status."""
        resp: Response | None = None
        try:
            resp = self.request("HEAD", "/_ping", versioned=False)
        except ConnectionFailed:
            raise
        except DockyardError as exc:
            status = getattr(exc, _RESPONSE_MARK, 0)
            if status != 500:
                resp = None
        if resp is None:
            try:
                resp = self.request("GET", "/_ping", versioned=False)
            except ConnectionFailed:
                raise
            except DockyardError:
                resp = Response(500, "", {}, b"")
        headers = resp.headers
        self._ping = PingResult(
            api_version=headers.get("api-version") or None,
            os_type=headers.get("ostype", ""),
            experimental=headers.get("docker-experimental", "") == "true",
            builder_version=headers.get("builder-version", ""),
            swarm=headers.get("swarm", ""),
        )
        return self._ping

    def version(self) -> JSONDict:
        return dict(self.request("GET", "/version").json())

    def info(self) -> JSONDict:
        return dict(self.request("GET", "/info").json())

    # -- containers -----------------------------------------------------------------

    def containers_list(
        self,
        *,
        all: bool = False,
        limit: int | None = None,
        size: bool = False,
        filters: Filters | None = None,
    ) -> list[JSONDict]:
        query: dict[str, QueryValue] = {"all": all, "size": size}
        if limit is not None and limit > 0:
            query["limit"] = limit
        if filters:
            query["filters"] = encode_filters(filters)
        return list(self.request("GET", "/containers/json", query=query).json() or [])

    def container_create(
        self, config: JSONDict, *, name: str | None = None, platform: str | None = None
    ) -> JSONDict:
        query: dict[str, QueryValue] = {"name": name or None, "platform": platform or None}
        return dict(
            self.request("POST", "/containers/create", query=query, json_body=config).json()
        )

    def container_inspect(self, name: str, *, size: bool = False) -> JSONDict:
        return dict(self.container_inspect_raw(name, size=size)[0])

    def container_inspect_raw(self, name: str, *, size: bool = False) -> tuple[JSON, bytes]:
        resp = self.request("GET", f"/containers/{_quote_path(name)}/json", query={"size": size})
        return resp.json(), resp.body

    def container_start(self, name: str, *, detach_keys: str | None = None) -> bool:
        """Start; ``False`` if it was already running (304), which is not an error."""
        try:
            self.request(
                "POST", f"/containers/{_quote_path(name)}/start", query={"detachKeys": detach_keys}
            )
        except NotModified:
            return False
        return True

    def container_stop(
        self, name: str, *, timeout: int | None = None, signal: str | None = None
    ) -> bool:
        """Stop; ``False`` if it was not running (304), which is not an error."""
        query: dict[str, QueryValue] = {"signal": signal or None, "t": timeout}
        try:
            self.request("POST", f"/containers/{_quote_path(name)}/stop", query=query)
        except NotModified:
            return False
        return True

    def container_restart(
        self, name: str, *, timeout: int | None = None, signal: str | None = None
    ) -> None:
        query: dict[str, QueryValue] = {"signal": signal or None, "t": timeout}
        self.request("POST", f"/containers/{_quote_path(name)}/restart", query=query)

    def container_kill(self, name: str, *, signal: str | None = None) -> None:
        self.request("POST", f"/containers/{_quote_path(name)}/kill", query={"signal": signal})

    def container_remove(
        self, name: str, *, force: bool = False, volumes: bool = False, link: bool = False
    ) -> None:
        query: dict[str, QueryValue] = {"force": force, "link": link, "v": volumes}
        self.request("DELETE", f"/containers/{_quote_path(name)}", query=query)

    def container_wait(self, name: str, *, condition: str | None = None) -> WaitHandle:
        """Start waiting; returns once the daemon has accepted the wait (headers sent)."""
        stream = self.stream(
            "POST", f"/containers/{_quote_path(name)}/wait", query={"condition": condition}
        )
        return WaitHandle(stream)

    def container_logs(
        self,
        name: str,
        *,
        stdout: bool = True,
        stderr: bool = True,
        follow: bool = False,
        since: str | None = None,
        until: str | None = None,
        timestamps: bool = False,
        tail: str | None = None,
        details: bool = False,
    ) -> StreamResponse:
        query: dict[str, QueryValue] = {
            "details": details,
            "follow": follow,
            "since": since or None,
            "stderr": stderr,
            "stdout": stdout,
            "tail": tail,
            "timestamps": timestamps,
            "until": until or None,
        }
        return self.stream("GET", f"/containers/{_quote_path(name)}/logs", query=query)

    def container_attach(
        self,
        name: str,
        *,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        stream: bool = True,
        logs: bool = False,
        detach_keys: str | None = None,
    ) -> HijackedStream:
        query: dict[str, QueryValue] = {
            "detachKeys": detach_keys or None,
            "logs": logs,
            "stderr": stderr,
            "stdin": stdin,
            "stdout": stdout,
            "stream": stream,
        }
        return self.hijack("POST", f"/containers/{_quote_path(name)}/attach", query=query)

    def container_resize(self, name: str, *, height: int, width: int) -> None:
        self.request(
            "POST", f"/containers/{_quote_path(name)}/resize", query={"h": height, "w": width}
        )

    def containers_prune(self, *, filters: Filters | None = None) -> JSONDict:
        query: dict[str, QueryValue] = {"filters": encode_filters(filters) if filters else None}
        return dict(self.request("POST", "/containers/prune", query=query).json() or {})

    # -- exec -----------------------------------------------------------------------

    def exec_create(self, container: str, config: JSONDict) -> JSONDict:
        return dict(
            self.request(
                "POST", f"/containers/{_quote_path(container)}/exec", json_body=config
            ).json()
        )

    def _exec_start_body(
        self, detach: bool, tty: bool, console_size: Sequence[int] | None
    ) -> JSONDict:
        body: JSONDict = {"Detach": detach, "Tty": tty}
        if console_size is not None and not version_less(self.api_version, "1.42"):
            body["ConsoleSize"] = list(console_size)
        return body

    def exec_start(
        self, exec_id: str, *, tty: bool = False, console_size: Sequence[int] | None = None
    ) -> HijackedStream:
        """Start an exec attached: the hijacked stream of its stdio."""
        body = self._exec_start_body(False, tty, console_size)
        return self.hijack("POST", f"/exec/{_quote_path(exec_id)}/start", json_body=body)

    def exec_start_detached(
        self, exec_id: str, *, tty: bool = False, console_size: Sequence[int] | None = None
    ) -> None:
        body = self._exec_start_body(True, tty, console_size)
        self.request("POST", f"/exec/{_quote_path(exec_id)}/start", json_body=body)

    def exec_inspect(self, exec_id: str) -> JSONDict:
        return dict(self.request("GET", f"/exec/{_quote_path(exec_id)}/json").json())

    def exec_resize(self, exec_id: str, *, height: int, width: int) -> None:
        self.request(
            "POST", f"/exec/{_quote_path(exec_id)}/resize", query={"h": height, "w": width}
        )

    # -- images ---------------------------------------------------------------------

    def images_list(
        self,
        *,
        all: bool = False,
        filters: Filters | None = None,
        shared_size: bool = False,
        digests: bool = False,
    ) -> list[JSONDict]:
        query: dict[str, QueryValue] = {
            "all": all,
            "digests": digests,
            "filters": encode_filters(filters) if filters else None,
            "shared-size": shared_size,
        }
        return list(self.request("GET", "/images/json", query=query).json() or [])

    def image_inspect(self, name: str) -> JSONDict:
        return dict(self.image_inspect_raw(name)[0])

    def image_inspect_raw(self, name: str) -> tuple[JSON, bytes]:
        resp = self.request("GET", f"/images/{_quote_path(name)}/json")
        return resp.json(), resp.body

    def image_create(
        self,
        from_image: str,
        *,
        tag: str | None = None,
        platform: str | None = None,
        registry_auth: str = EMPTY_AUTH,
    ) -> StreamResponse:
        """Pull: ``fromImage`` is the full normalised name; the answer is JSON progress."""
        query: dict[str, QueryValue] = {
            "fromImage": from_image,
            "platform": platform or None,
            "tag": tag or None,
        }
        return self.stream(
            "POST", "/images/create", query=query, headers={"X-Registry-Auth": registry_auth}
        )

    def image_push(
        self, name: str, *, tag: str | None = None, registry_auth: str = EMPTY_AUTH
    ) -> StreamResponse:
        """Push: ``name`` is the familiar name, unescaped in the path as docker sends it
        (``/images/127.0.0.1:5000/app/push``); no ``tag`` pushes every tag. The answer is
        JSON progress; errors after the first line come inside it."""
        return self.stream(
            "POST",
            f"/images/{_quote_path(name)}/push",
            query={"tag": tag or None},
            headers={"X-Registry-Auth": registry_auth},
        )

    def image_load(self, data: BinaryIO | Iterable[bytes], *, quiet: bool) -> StreamResponse:
        """Upload a docker-archive (chunked, 32 KiB chunks); the answer is JSON progress."""
        return self.stream(
            "POST",
            "/images/load",
            query={"quiet": "1" if quiet else "0"},
            body=_iter_upload(data),
            headers={"Content-Type": "application/x-tar"},
        )

    def image_save(self, names: Sequence[str]) -> StreamResponse:
        return self.stream("GET", "/images/get", query={"names": list(names)})

    def image_tag(self, source: str, repo: str, tag: str | None) -> None:
        self.request(
            "POST", f"/images/{_quote_path(source)}/tag", query={"repo": repo, "tag": tag or None}
        )

    def image_remove(
        self, name: str, *, force: bool = False, noprune: bool = False
    ) -> list[JSONDict]:
        query: dict[str, QueryValue] = {"force": force, "noprune": noprune}
        return list(
            self.request("DELETE", f"/images/{_quote_path(name)}", query=query).json() or []
        )

    # -- registries -----------------------------------------------------------------

    def registry_login(self, auth: Mapping[str, str]) -> JSONDict:
        """``POST /auth`` with the auth-config JSON (``username``, ``password``,
        ``serveraddress`` …); ``{"Status": …, "IdentityToken": …}``. Refused credentials
        raise ``Unauthorized`` with the daemon's words."""
        return dict(self.request("POST", "/auth", json_body=dict(auth)).json() or {})

    # -- other objects (for the generic inspect) -------------------------------------

    def network_inspect_raw(self, name: str) -> tuple[JSON, bytes]:
        resp = self.request("GET", f"/networks/{_quote_path(name)}")
        return resp.json(), resp.body

    def volume_inspect_raw(self, name: str) -> tuple[JSON, bytes]:
        resp = self.request("GET", f"/volumes/{_quote_path(name)}")
        return resp.json(), resp.body

    def plugin_inspect_raw(self, name: str) -> tuple[JSON, bytes]:
        resp = self.request("GET", f"/plugins/{_quote_path(name)}/json")
        return resp.json(), resp.body
