"""Registry test fixtures: a real HTTP server on 127.0.0.1 (ephemeral port) per test, and a
tiny synchronous client over ``http.client``.

The application runs on one event loop in a background thread for the whole session; each
``registry`` gets its own app and storage (in memory unless a test asks for the filesystem),
so tests are independent. Every server is stopped at teardown, also on failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from dockyard.registry.access import Authorizer
from dockyard.registry.app import create_app
from dockyard.registry.config import RateLimit, RegistryConfig
from dockyard.registry.storage import FilesystemDriver, InMemoryDriver, StorageDriver

T = TypeVar("T")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
EMPTY_JSON = b"{}"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_bytes(
    config: bytes,
    layers: list[bytes],
    *,
    media_type: str | None = OCI_MANIFEST,
    config_type: str = OCI_CONFIG,
    layer_type: str = OCI_LAYER,
    subject: tuple[bytes, str] | None = None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
    indent: int | None = 2,
) -> bytes:
    """An image manifest over ``config`` and ``layers`` (pretty-printed on purpose: the
    registry must keep bytes exactly)."""
    obj: dict[str, Any] = {"schemaVersion": 2}
    if media_type is not None:
        obj["mediaType"] = media_type
    if artifact_type is not None:
        obj["artifactType"] = artifact_type
    obj["config"] = {"mediaType": config_type, "digest": sha256(config), "size": len(config)}
    obj["layers"] = [{"mediaType": layer_type, "digest": sha256(b), "size": len(b)} for b in layers]
    if subject is not None:
        data, mt = subject
        obj["subject"] = {"mediaType": mt, "digest": sha256(data), "size": len(data)}
    if annotations:
        obj["annotations"] = annotations
    return json.dumps(obj, indent=indent).encode()


def index_bytes(
    children: list[tuple[bytes, str, dict[str, str] | None]],
    *,
    media_type: str = OCI_INDEX,
    subject: tuple[bytes, str] | None = None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
) -> bytes:
    obj: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type is not None:
        obj["artifactType"] = artifact_type
    entries = []
    for data, mt, platform in children:
        entry: dict[str, Any] = {"mediaType": mt, "digest": sha256(data), "size": len(data)}
        if platform:
            entry["platform"] = platform
        entries.append(entry)
    obj["manifests"] = entries
    if subject is not None:
        data, mt = subject
        obj["subject"] = {"mediaType": mt, "digest": sha256(data), "size": len(data)}
    if annotations:
        obj["annotations"] = annotations
    return json.dumps(obj, indent="\t").encode()


@dataclass
class Resp:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def codes(self) -> list[str]:
        return [e["code"] for e in self.json()["errors"]]


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class Server:
    """A running registry: ``request`` speaks raw HTTP/1.1 to it over TCP."""

    loop: LoopThread
    app: web.Application
    driver: StorageDriver
    runner: web.AppRunner | None = None
    port: int = 0
    default_headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        async def _start() -> int:
            # aiohttp keeps reading an unread request body for up to ``lingering_time`` after
            # an early error response (so the client is not reset before it reads it), and a
            # shutdown waits for that; one second keeps teardown quick after a 413.
            self.runner = web.AppRunner(self.app, access_log=None, lingering_time=1.0)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            return int(self.runner.addresses[0][1])

        self.port = self.loop.run(_start())

    def stop(self) -> None:
        if self.runner is not None:
            self.loop.run(self.runner.cleanup())
            self.runner = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Resp:
        target = urlsplit(path)
        if target.scheme:  # absolute Location
            path = target.path + (f"?{target.query}" if target.query else "")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            all_headers = {**self.default_headers, **(headers or {})}
            conn.request(method, path, body=body, headers=all_headers)
            r = conn.getresponse()
            data = r.read()
            return Resp(r.status, r.headers, data)
        finally:
            conn.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coro)

    # -- helpers for the common flows -------------------------------------------------------

    def push_blob(self, name: str, data: bytes) -> str:
        digest = sha256(data)
        r = self.request(
            "POST",
            f"/v2/{name}/blobs/uploads/?digest={digest}",
            data,
            {"Content-Type": "application/octet-stream"},
        )
        assert r.status == 201, (r.status, r.body)
        return digest

    def push_manifest(
        self, name: str, ref: str, data: bytes, media_type: str = OCI_MANIFEST
    ) -> Resp:
        r = self.request("PUT", f"/v2/{name}/manifests/{ref}", data, {"Content-Type": media_type})
        assert r.status == 201, (r.status, r.body)
        return r

    def push_image(
        self, name: str, tag: str, layers: list[bytes] | None = None, config: bytes | None = None
    ) -> tuple[bytes, str]:
        config = config if config is not None else json.dumps({"name": name, "tag": tag}).encode()
        layers = layers if layers is not None else [f"layer of {name}:{tag}".encode()]
        self.push_blob(name, config)
        for layer in layers:
            self.push_blob(name, layer)
        data = manifest_bytes(config, layers)
        self.push_manifest(name, tag, data)
        return data, sha256(data)

    def start_upload(self, name: str) -> str:
        r = self.request("POST", f"/v2/{name}/blobs/uploads/")
        assert r.status == 202, (r.status, r.body)
        location = r.header("Location")
        assert location
        return location


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.stop()


MakeRegistry = Callable[..., Server]


@pytest.fixture
def make_registry(loop_thread: LoopThread, tmp_path: Path) -> Iterator[MakeRegistry]:
    servers: list[Server] = []

    def make(
        *,
        driver: str = "inmemory",
        delete: bool = True,
        readonly: bool = False,
        authorizer: Authorizer | None = None,
        ratelimit: RateLimit | None = None,
        raw: dict[str, Any] | None = None,
    ) -> Server:
        if driver == "filesystem":
            root = tmp_path / f"store{len(servers)}"
            drv: StorageDriver = FilesystemDriver(root)
        else:
            drv = InMemoryDriver()
        cfg = RegistryConfig(
            storage=driver,
            root=tmp_path,
            delete_enabled=delete,
            readonly=readonly,
            ratelimit=ratelimit,
            raw=raw or {},
        )

        async def build() -> web.Application:
            return create_app(cfg, driver=drv, authorizer=authorizer)

        app = loop_thread.run(build())
        server = Server(loop_thread, app, drv)
        server.start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def registry(make_registry: MakeRegistry) -> Server:
    """A registry with in-memory storage and deletes enabled."""
    return make_registry()


@pytest.fixture(params=["inmemory", "filesystem"])
def any_registry(request: pytest.FixtureRequest, make_registry: MakeRegistry) -> Server:
    """The same registry on each storage driver."""
    return make_registry(driver=request.param)
