"""The Engine API client against a tiny in-test daemon on a unix socket.

``FakeDaemon`` is also used by the CLI tests: it records every request (method, path,
headers, body, connection) and answers from handlers registered per method and path regex.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dockyard.client import (
    Client,
    ConnectionFailed,
    ProtocolError,
    encode_frame,
    is_response_error,
)
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
)

pytestmark = pytest.mark.unit


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    conn: int

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes] | None = None
    upgrade: Callable[[socket.socket], None] | None = None

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode() + b"\n"


def json_reply(value: Any, status: int = 200) -> Reply:
    return Reply(status, value, {"Content-Type": "application/json"})


def error_reply(status: int, message: str) -> Reply:
    return Reply(status, {"message": message}, {"Content-Type": "application/json"})


Handler = Callable[[Request], Reply]
_REASONS = {
    101: "UPGRADED",
    200: "OK",
    201: "Created",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
}


def _constant(reply: Reply) -> Handler:
    return lambda _request: reply


class FakeDaemon:
    """Engine API stand-in: ``HEAD/GET /_ping`` answer ``Api-Version: api_version``."""

    def __init__(self, directory: Path, api_version: str | None = "1.44") -> None:
        self.path = str(directory / "fake.sock")
        self.api_version = api_version
        self.requests: list[Request] = []
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.head_ping_status = 200
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._conn_counter = 0
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    def on(self, method: str, pattern: str, handler: Handler | Reply) -> None:
        """Answer ``method`` on paths fully matching ``pattern`` (version prefix removed)."""
        fn: Handler = _constant(handler) if isinstance(handler, Reply) else handler
        self.routes.insert(0, (method, re.compile(pattern), fn))

    def lines(self) -> list[str]:
        """``METHOD target`` of every request, in arrival order."""
        return [f"{r.method} {r.target}" for r in self.requests]

    def __enter__(self) -> FakeDaemon:
        self._server.bind(self.path)
        self._server.listen(16)
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped = True
        # Wake the blocked accept() before closing: a closed descriptor number can be
        # reused by the next test's socket, which the old accept thread would then serve.
        try:
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._threads[0].join(5)
        self._server.close()
        for conn in self._conns:
            try:
                conn.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._conn_counter += 1
                cid = self._conn_counter
                self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn, cid), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket, cid: int) -> None:
        reader = conn.makefile("rb")
        try:
            while True:
                line = reader.readline()
                if not line:
                    return
                method, target, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    hline = reader.readline().decode()
                    if hline in ("\r\n", "\n", ""):
                        break
                    name, _, value = hline.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = b""
                if "chunked" in headers.get("transfer-encoding", ""):
                    while True:
                        size = int(reader.readline().strip() or b"0", 16)
                        if size == 0:
                            reader.readline()
                            break
                        body += reader.read(size)
                        reader.readline()
                elif "content-length" in headers:
                    body = reader.read(int(headers["content-length"]))
                request = Request(method, target, headers, body, cid)
                with self._lock:
                    self.requests.append(request)
                reply = self._dispatch(request)
                if not self._respond(conn, method, reply):
                    return
        except (OSError, ValueError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _dispatch(self, request: Request) -> Reply:
        path = request.path
        if path == "/_ping":
            headers = {"Ostype": "linux", "Docker-Experimental": "false"}
            if self.api_version:
                headers["Api-Version"] = self.api_version
            if request.method == "HEAD":
                return Reply(self.head_ping_status, b"", headers)
            return Reply(200, b"OK", headers)
        unversioned = re.sub(r"^/v[0-9.]+", "", path)
        for method, pattern, handler in self.routes:
            if method == request.method and pattern.fullmatch(unversioned):
                return handler(request)
        return error_reply(404, "page not found")

    def _respond(self, conn: socket.socket, method: str, reply: Reply) -> bool:
        reason = _REASONS.get(reply.status, "Status")
        if reply.upgrade is not None:
            head = (
                f"HTTP/1.1 101 UPGRADED\r\nContent-Type: "
                f"{reply.headers.get('Content-Type', 'application/vnd.docker.raw-stream')}\r\n"
                "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
            )
            conn.sendall(head.encode())
            reply.upgrade(conn)
            return False
        lines = [f"HTTP/1.1 {reply.status} {reason}"]
        lines += [f"{k}: {v}" for k, v in reply.headers.items()]
        if reply.chunks is not None:
            lines.append("Transfer-Encoding: chunked")
            conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            for chunk in reply.chunks:
                if chunk:
                    conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            conn.sendall(b"0\r\n\r\n")
            return True
        payload = reply.payload()
        if reply.status not in (204, 304) and not (100 <= reply.status < 200):
            lines.append(f"Content-Length: {len(payload) if method != 'HEAD' else 0}")
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        if method != "HEAD" and reply.status not in (204, 304):
            conn.sendall(payload)
        return True


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[FakeDaemon]:
    with FakeDaemon(tmp_path) as fake:
        yield fake


# --------------------------------------------------------------------------- negotiation


def test_negotiates_the_lower_of_server_and_client_version(tmp_path: Path) -> None:
    with FakeDaemon(tmp_path, api_version="1.41") as fake:
        fake.on("GET", "/version", json_reply({"ApiVersion": "1.41"}))
        client = Client(fake.host)
        client.version()
        assert fake.lines() == ["HEAD /_ping", "GET /v1.41/version"]
        assert fake.requests[0].headers["host"] == "api.moby.localhost"


def test_newer_server_is_capped_at_1_44(tmp_path: Path) -> None:
    with FakeDaemon(tmp_path, api_version="1.50") as fake:
        fake.on("GET", "/info", json_reply({}))
        Client(fake.host).info()
        assert fake.lines()[-1] == "GET /v1.44/info"


def test_missing_api_version_header_means_1_24(tmp_path: Path) -> None:
    with FakeDaemon(tmp_path, api_version=None) as fake:
        fake.on("GET", "/info", json_reply({}))
        Client(fake.host).info()
        assert fake.lines()[-1] == "GET /v1.24/info"


def test_refused_head_ping_retries_with_get(daemon: FakeDaemon) -> None:
    daemon.head_ping_status = 405
    daemon.on("GET", "/info", json_reply({}))
    Client(daemon.host).info()
    assert daemon.lines() == ["HEAD /_ping", "GET /_ping", "GET /v1.44/info"]


def test_env_api_version_skips_the_ping(
    daemon: FakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_API_VERSION", "1.43")
    daemon.on("GET", "/info", json_reply({}))
    Client(daemon.host).info()
    assert daemon.lines() == ["GET /v1.43/info"]


def test_serial_requests_share_one_connection(daemon: FakeDaemon) -> None:
    daemon.on("GET", "/info", json_reply({}))
    client = Client(daemon.host)
    client.info()
    client.info()
    assert {r.conn for r in daemon.requests} == {1}


def test_query_strings_follow_go_url_values(daemon: FakeDaemon) -> None:
    daemon.on("GET", "/containers/json", json_reply([]))
    Client(daemon.host).containers_list(
        all=True, limit=2, filters={"name": ["w p"], "label": ["a=b"]}
    )
    assert daemon.lines()[-1] == (
        "GET /v1.44/containers/json?all=1&filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D"
        "%2C%22name%22%3A%7B%22w+p%22%3Atrue%7D%7D&limit=2"
    )


def test_bodiless_post_sends_content_length_zero(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/containers/x/start", Reply(204))
    assert Client(daemon.host).container_start("x") is True
    assert daemon.requests[-1].headers["content-length"] == "0"


def test_json_bodies_are_go_encoded(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/containers/w/exec", json_reply({"Id": "e1"}, 201))
    Client(daemon.host).exec_create("w", {"Cmd": ["sh", "-c", "a > b && c"]})
    request = daemon.requests[-1]
    assert request.body == b'{"Cmd":["sh","-c","a \\u003e b \\u0026\\u0026 c"]}'
    assert request.headers["content-type"] == "application/json"


def test_image_names_are_not_escaped_in_paths(daemon: FakeDaemon) -> None:
    daemon.on("DELETE", "/images/.*", json_reply([]))
    Client(daemon.host).image_remove("127.0.0.1:5921/pulltest:v1")
    assert daemon.lines()[-1] == "DELETE /v1.44/images/127.0.0.1:5921/pulltest:v1"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidArgument),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (500, SystemError),
        (503, Unavailable),
        (502, SystemError),
        (418, InvalidArgument),
    ],
)
def test_error_status_maps_to_typed_error(
    daemon: FakeDaemon, status: int, cls: type[DockyardError]
) -> None:
    daemon.on("GET", "/containers/nosuch/json", error_reply(status, "No such container: nosuch"))
    with pytest.raises(cls) as info:
        Client(daemon.host).container_inspect("nosuch")
    assert info.value.message == "No such container: nosuch"
    assert is_response_error(info.value)


def test_plain_text_error_body_is_the_message(daemon: FakeDaemon) -> None:
    daemon.on(
        "GET",
        "/info",
        Reply(400, "client version 1.11 is too old\n", {"Content-Type": "text/plain"}),
    )
    with pytest.raises(InvalidArgument, match=r"^client version 1\.11 is too old$"):
        Client(daemon.host).info()


def test_empty_error_body_says_which_route(daemon: FakeDaemon) -> None:
    daemon.on("GET", "/containers/nosuch/json", Reply(404, b""))
    with pytest.raises(NotFound) as info:
        Client(daemon.host).container_inspect("nosuch")
    assert info.value.message.startswith(
        "request returned 404 Not Found for API route and version "
    )
    assert "/v1.44/containers/nosuch/json" in info.value.message


def test_not_modified_is_success_for_start_and_stop(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/containers/w/start", Reply(304))
    daemon.on("POST", "/containers/w/stop", Reply(304))
    daemon.on("POST", "/containers/w/kill", Reply(304))
    client = Client(daemon.host)
    assert client.container_start("w") is False
    assert client.container_stop("w", timeout=1) is False
    with pytest.raises(NotModified):
        client.container_kill("w")
    assert daemon.lines()[-2] == "POST /v1.44/containers/w/stop?t=1"


def test_unreachable_daemon_is_connection_failed(tmp_path: Path) -> None:
    client = Client(f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(ConnectionFailed, match="Cannot connect to the Dockyard daemon at unix://"):
        client.info()


def test_reused_connection_closed_by_daemon_is_retried(daemon: FakeDaemon) -> None:
    daemon.on("GET", "/info", Reply(200, b"{}", {"Content-Type": "application/json"}))
    client = Client(daemon.host)
    client.info()
    for conn in list(daemon._conns):
        conn.shutdown(socket.SHUT_RDWR)
    assert client.info() == {}


# --------------------------------------------------------------------------- streams


def test_wait_returns_after_headers_and_blocks_for_the_body(daemon: FakeDaemon) -> None:
    release = threading.Event()

    def body() -> Iterator[bytes]:
        yield b""
        release.wait(5)
        yield b'{"Error":null,"StatusCode":7}\n'

    daemon.on(
        "POST",
        "/containers/c1/wait",
        lambda r: Reply(200, headers={"Content-Type": "application/json"}, chunks=body()),
    )
    daemon.on("POST", "/containers/c1/start", Reply(204))
    client = Client(daemon.host)
    waiter = client.container_wait("c1", condition="next-exit")
    client.container_start("c1")  # possible only because the wait answered its headers
    release.set()
    assert waiter.result() == {"Error": None, "StatusCode": 7}
    wait_req, start_req = daemon.requests[-2:]
    assert wait_req.target == "/v1.44/containers/c1/wait?condition=next-exit"
    assert wait_req.conn != start_req.conn


def test_hijack_streams_both_ways_and_half_closes(daemon: FakeDaemon) -> None:
    received: list[bytes] = []

    def echo(sock: socket.socket) -> None:
        data = b""
        while True:
            chunk = sock.recv(100)
            if not chunk:
                break
            data += chunk
        received.append(data)
        sock.sendall(encode_frame(1, b"got " + data))
        sock.close()

    daemon.on("POST", "/containers/c1/attach", Reply(upgrade=echo))
    conn = Client(daemon.host).container_attach("c1", stdin=True)
    conn.sendall(b"hello")
    conn.close_write()
    out = b""
    while chunk := conn.recv():
        out += chunk
    assert received == [b"hello"]
    assert out == encode_frame(1, b"got hello")
    request = daemon.requests[-1]
    assert request.target == "/v1.44/containers/c1/attach?stderr=1&stdin=1&stdout=1&stream=1"
    assert request.headers["upgrade"] == "tcp"
    assert request.headers["connection"] == "Upgrade"


def test_hijack_error_and_missing_upgrade(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/containers/nosuch/attach", error_reply(404, "No such container: nosuch"))
    daemon.on("POST", "/exec/e1/start", json_reply({}))
    client = Client(daemon.host)
    with pytest.raises(NotFound, match="No such container: nosuch"):
        client.container_attach("nosuch")
    with pytest.raises(ProtocolError, match="unable to upgrade to tcp, received 200"):
        client.exec_start("e1")


def test_exec_start_body_has_console_size_at_1_42_and_later(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/exec/e1/start", Reply(upgrade=lambda s: s.close()))
    Client(daemon.host).exec_start("e1", tty=True, console_size=(30, 100)).close()
    assert daemon.requests[-1].json() == {"Detach": False, "Tty": True, "ConsoleSize": [30, 100]}


def test_load_uploads_chunked_tar(daemon: FakeDaemon) -> None:
    daemon.on(
        "POST",
        "/images/load",
        lambda r: json_reply({"stream": f"Loaded {len(r.body)} bytes\n"}),
    )
    payload = bytes(range(256)) * 300
    with Client(daemon.host).image_load([payload[:40000], payload[40000:]], quiet=True) as resp:
        assert json.loads(resp.read_all()) == {"stream": f"Loaded {len(payload)} bytes\n"}
    request = daemon.requests[-1]
    assert request.target == "/v1.44/images/load?quiet=1"
    assert request.headers["transfer-encoding"] == "chunked"
    assert request.headers["content-type"] == "application/x-tar"
    assert request.body == payload


def test_pull_sends_registry_auth(daemon: FakeDaemon) -> None:
    daemon.on("POST", "/images/create", json_reply({"status": "ok"}))
    with Client(daemon.host).image_create("docker.io/library/busybox", tag="latest") as resp:
        resp.read_all()
    request = daemon.requests[-1]
    assert (
        request.target == "/v1.44/images/create?fromImage=docker.io%2Flibrary%2Fbusybox&tag=latest"
    )
    assert request.headers["x-registry-auth"] == "e30="
