"""The part of ``http.client`` the CLI uses, without its import cost.

``http.client`` pulls in ``email.parser`` and ``ssl`` (~25 ms), a quarter of a ``dockyard
run``. This module speaks just what the Engine API needs: requests with a byte or chunked
body, and responses framed by Content-Length, chunked encoding, or connection close.
Names and behaviour follow ``http.client`` so callers read the same.
"""

from __future__ import annotations

import socket

TYPE_CHECKING = False  # not typing's: the CLI's start-up path imports this module
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import BinaryIO

__all__ = [
    "HTTPConnection",
    "HTTPException",
    "HTTPResponse",
    "IncompleteRead",
    "RemoteDisconnected",
]

_METHODS_EXPECTING_BODY = {"PATCH", "POST", "PUT"}
_MAX_LINE = 65536
_MAX_HEADERS = 200


class HTTPException(Exception):
    pass


class IncompleteRead(HTTPException):
    def __init__(self, partial: bytes, expected: int | None = None) -> None:
        super().__init__(f"IncompleteRead({len(partial)} bytes read, {expected} more expected)")
        self.partial = partial
        self.expected = expected


class RemoteDisconnected(ConnectionResetError, HTTPException):
    pass


class HTTPResponse:
    """A response read from ``sock``; the body is read on demand."""

    def __init__(self, sock: socket.socket, method: str) -> None:
        self._fp: BinaryIO | None = sock.makefile("rb")  # type: ignore[assignment]
        line = self._readline()
        if not line:
            raise RemoteDisconnected("Remote end closed connection without response")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise HTTPException(f"malformed status line: {line!r}")
        self.version = 10 if parts[0] == "HTTP/1.0" else 11
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self._headers: list[tuple[str, str]] = []
        while True:
            raw = self._readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            if len(self._headers) > _MAX_HEADERS:
                raise HTTPException("got more than 200 headers")
            name, _, value = raw.decode("latin-1").partition(":")
            self._headers.append((name.strip(), value.strip()))
        self.headers = self._headers
        connection = (self.getheader("Connection") or "").lower()
        self.chunked = "chunked" in (self.getheader("Transfer-Encoding") or "").lower()
        self.length: int | None = None
        self._chunk_left: int | None = None
        self._done = False
        no_body = method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200
        if no_body:
            self.length = 0
        elif not self.chunked:
            declared = self.getheader("Content-Length")
            if declared is not None and declared.strip().isdigit():
                self.length = int(declared)
        self.will_close = (
            connection == "close"
            or (self.version == 10 and connection != "keep-alive")
            or (not self.chunked and self.length is None)
        )
        if self.length == 0:
            self._finish()

    def _readline(self) -> bytes:
        assert self._fp is not None
        line = self._fp.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise HTTPException("header line too long")
        return line

    def getheaders(self) -> list[tuple[str, str]]:
        return list(self._headers)

    def getheader(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        values = [v for k, v in self._headers if k.lower() == wanted]
        return ", ".join(values) if values else default

    def _finish(self) -> None:
        self._done = True
        if self._fp is not None:
            self._fp.close()
            self._fp = None

    def _next_chunk(self) -> int:
        """Size of the next chunk; 0 at the end (trailers consumed)."""
        if self._chunk_left:
            return self._chunk_left
        if self._chunk_left == 0:
            self._readline()  # CRLF ending the previous chunk
        line = self._readline()
        if not line:
            raise IncompleteRead(b"")
        try:
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        except ValueError:
            raise HTTPException(f"bad chunk size line: {line!r}") from None
        if size == 0:
            while self._readline() not in (b"\r\n", b"\n", b""):
                pass
        self._chunk_left = size
        return size

    def read1(self, amt: int = 65536) -> bytes:
        """Up to ``amt`` bytes with at most one read from the socket; ``b""`` at the end."""
        if self._done or self._fp is None:
            return b""
        if self.chunked:
            left = self._next_chunk()
            if left == 0:
                self._finish()
                return b""
            data = self._fp.read1(min(amt, left))  # type: ignore[attr-defined]
            if not data:
                raise IncompleteRead(b"", left)
            self._chunk_left = left - len(data)
            return bytes(data)
        if self.length is not None:
            if self.length == 0:
                self._finish()
                return b""
            data = self._fp.read1(min(amt, self.length))  # type: ignore[attr-defined]
            if not data:
                raise IncompleteRead(b"", self.length)
            self.length -= len(data)
            if self.length == 0:
                self._finish()
            return bytes(data)
        data = self._fp.read1(amt)  # type: ignore[attr-defined]
        if not data:
            self._finish()
        return bytes(data)

    def read(self, amt: int | None = None) -> bytes:
        if amt is not None:
            out = bytearray()
            while len(out) < amt:
                data = self.read1(amt - len(out))
                if not data:
                    break
                out += data
            return bytes(out)
        parts: list[bytes] = []
        while True:
            data = self.read1(1 << 20)
            if not data:
                return b"".join(parts)
            parts.append(data)

    def close(self) -> None:
        self._finish()


class HTTPConnection:
    """One HTTP/1.1 connection; subclasses override ``connect`` to pick the transport."""

    def __init__(self, host: str, port: int | None = None, timeout: float | None = None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self._method = "GET"

    def connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port or 80), timeout=self.timeout)

    def request(
        self,
        method: str,
        url: str,
        body: bytes | str | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if self.sock is None:
            self.connect()
        assert self.sock is not None
        hdrs = dict(headers or {})
        lower = {k.lower() for k in hdrs}
        lines = [f"{method} {url} HTTP/1.1"]
        if "host" not in lower:
            host = self.host if self.port in (None, 80) else f"{self.host}:{self.port}"
            lines.append(f"Host: {host}")
        chunks: Iterable[bytes] | None = None
        payload = b""
        if body is None:
            if method.upper() in _METHODS_EXPECTING_BODY and "content-length" not in lower:
                lines.append("Content-Length: 0")
        elif isinstance(body, (bytes, bytearray, str)):
            payload = body.encode("utf-8") if isinstance(body, str) else bytes(body)
            if "content-length" not in lower:
                lines.append(f"Content-Length: {len(payload)}")
        else:
            chunks = body
            if "transfer-encoding" not in lower:
                lines.append("Transfer-Encoding: chunked")
        lines.extend(f"{k}: {v}" for k, v in hdrs.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._method = method.upper()
        if chunks is None:
            self.sock.sendall(head + payload)
            return
        self.sock.sendall(head)
        for chunk in chunks:
            if chunk:
                self.sock.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        self.sock.sendall(b"0\r\n\r\n")

    def getresponse(self) -> HTTPResponse:
        if self.sock is None:
            raise HTTPException("not connected")
        return HTTPResponse(self.sock, self._method)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
