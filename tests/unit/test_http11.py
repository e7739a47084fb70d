"""The client's small HTTP/1.1: framing of responses and requests over a real socketpair."""

from __future__ import annotations

import socket
import threading

import pytest

from dockyard.client import http11

pytestmark = pytest.mark.unit


class _Conn(http11.HTTPConnection):
    def __init__(self, sock: socket.socket) -> None:
        super().__init__("api.moby.localhost")
        self.sock = sock


def _exchange(
    response: bytes, method: str = "GET", body: object = None
) -> tuple[bytes, http11.HTTPResponse]:
    client, server = socket.socketpair()
    received = bytearray()

    def serve() -> None:
        while b"\r\n\r\n" not in received:
            received.extend(server.recv(65536))
        if b"chunked" in received.split(b"\r\n\r\n")[0]:
            while not received.endswith(b"0\r\n\r\n"):
                received.extend(server.recv(65536))
        server.sendall(response)
        server.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=serve)
    thread.start()
    conn = _Conn(client)
    conn.request(method, "/v1.44/x", body=body, headers={"User-Agent": "t"})  # type: ignore[arg-type]
    resp = conn.getresponse()
    thread.join(5)
    return bytes(received), resp


def test_content_length_body_and_headers() -> None:
    req, resp = _exchange(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    assert req.startswith(b"GET /v1.44/x HTTP/1.1\r\nHost: api.moby.localhost\r\n")
    assert resp.status == 200 and resp.reason == "OK"
    assert resp.getheader("content-type") == "application/json"
    assert resp.read() == b"{}" and resp.read() == b""
    assert not resp.will_close


def test_chunked_body_read1_respects_chunks() -> None:
    _, resp = _exchange(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n"
    )
    assert resp.read1(2) == b"ab"
    assert resp.read1(10) == b"c"
    assert resp.read1(10) == b"de"
    assert resp.read1(10) == b""


def test_close_delimited_body() -> None:
    _, resp = _exchange(b"HTTP/1.0 200 OK\r\n\r\nuntil-close")
    assert resp.will_close
    assert resp.read() == b"until-close"


@pytest.mark.parametrize(
    ("method", "status"),
    [("HEAD", "200 OK"), ("POST", "204 No Content"), ("POST", "304 Not Modified")],
)
def test_bodiless_responses(method: str, status: str) -> None:
    req, resp = _exchange(
        f"HTTP/1.1 {status}\r\nContent-Length: 99\r\n\r\n".encode(), method=method
    )
    assert resp.read() == b""
    if method == "POST":
        assert b"Content-Length: 0\r\n" in req


def test_truncated_body_raises_incomplete_read() -> None:
    _, resp = _exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    with pytest.raises(http11.IncompleteRead):
        resp.read()


def test_no_response_is_remote_disconnected() -> None:
    with pytest.raises(http11.RemoteDisconnected):
        _exchange(b"")


def test_iterable_body_is_sent_chunked() -> None:
    req, resp = _exchange(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        method="POST",
        body=iter([b"ab", b"", b"cde"]),
    )
    head, _, payload = req.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert payload == b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
    assert resp.status == 200
