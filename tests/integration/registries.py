"""Registries for pull/push tests, all on 127.0.0.1: the CNCF registry (Debian's
``docker-registry``), our ``dockyard-registry`` when it is installed, and a tiny in-process fake
for the bad-input cases a real registry never produces (corrupt layers, odd errors, tokens)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.integration.daemon import VENV_BIN

CNCF_REGISTRY = "/usr/bin/docker-registry"
DOCKYARD_REGISTRY = VENV_BIN / "dockyard-registry"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MANIFEST_ACCEPT = ", ".join(
    [
        OCI_INDEX,
        OCI_MANIFEST,
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def kinds() -> list[str]:
    out = []
    if Path(CNCF_REGISTRY).exists():
        out.append("cncf")
    if DOCKYARD_REGISTRY.exists():
        out.append("dockyard")
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """One registry process on 127.0.0.1 with its own storage; killed by PID."""

    def __init__(self, kind: str, base: Path, *, htpasswd: Path | None = None) -> None:
        self.kind = kind
        self.base = base
        self.root = base / "data"
        self.port = free_port()
        self.htpasswd = htpasswd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        if self.kind == "dockyard":
            return [str(DOCKYARD_REGISTRY), "serve", "--addr", self.host, "--root", str(self.root)]
        config = self.base / "config.yml"
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.root}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {self.host}",
        ]
        if self.htpasswd is not None:
            lines += [
                "auth:",
                "  htpasswd:",
                "    realm: basic-realm",
                f"    path: {self.htpasswd}",
            ]
        config.write_text("\n".join(lines) + "\n")
        return [CNCF_REGISTRY, "serve", str(config)]

    def start(self, timeout: float = 20) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.base / "registry.log").open("ab")
        self.proc = subprocess.Popen(
            self._argv(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry exited: {(self.base / 'registry.log').read_text()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.request("GET", "/v2/")[0] in (200, 401):
                    return
            time.sleep(0.05)
        raise RuntimeError("registry did not answer")

    def kill9(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def close(self) -> None:
        self.kill9()
        shutil.rmtree(self.base, ignore_errors=True)

    # -- raw /v2/ ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            hdrs = dict(headers or {})
            if auth is not None:
                hdrs["Authorization"] = (
                    "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
                )
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def put_blob(self, repo: str, data: bytes) -> str:
        digest = digest_of(data)
        status, _, _ = self.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if status == 200:
            return digest
        status, headers, body = self.request("POST", f"/v2/{repo}/blobs/uploads/", b"")
        assert status == 202, (status, body)
        location = headers["Location"]
        if location.startswith("http"):
            location = location.split(self.host, 1)[1]
        sep = "&" if "?" in location else "?"
        status, _, body = self.request(
            "PUT",
            f"{location}{sep}digest={digest}",
            data,
            {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        assert status == 201, (status, body)
        return digest

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        status, _, body = self.request(
            "PUT", f"/v2/{repo}/manifests/{ref}", data, {"Content-Type": media_type}
        )
        assert status == 201, (status, body)
        return digest_of(data)

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str]:
        status, headers, body = self.request(
            "GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_ACCEPT}
        )
        assert status == 200, (status, body)
        return body, headers.get("Content-Type", "")

    def get_blob(self, repo: str, digest: str) -> bytes:
        status, _, body = self.request("GET", f"/v2/{repo}/blobs/{digest}")
        assert status == 200, (status, body)
        return body


def layer_tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1704067200
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def image(layers: list[bytes], *, arch: str = "amd64") -> tuple[bytes, bytes]:
    """(config, manifest) of an OCI image made of uncompressed tar ``layers``."""
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer) for layer in layers]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer)}
                for layer in layers
            ],
        }
    ).encode()
    return config, manifest


class FakeRegistry:
    """A minimal /v2/ server in a thread: serves what is put in ``manifests``/``blobs``;
    ``corrupt`` blobs are served with one byte flipped; ``errors`` maps a repository to an OCI
    error (status, code, message); ``bearer`` requires tokens from its own ``/token``."""

    def __init__(self, *, bearer: bool = False) -> None:
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.corrupt: set[str] = set()
        self.errors: dict[str, tuple[int, str, str]] = {}
        self.bearer = bearer
        self.token_queries: list[list[tuple[str, str]]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add_image(self, repo: str, tag: str, layers: list[bytes]) -> tuple[str, str]:
        """Serve an image; returns (config digest = image ID, manifest digest)."""
        config, manifest = image(layers)
        for blob in (config, *layers):
            self.blobs[digest_of(blob)] = blob
        self.manifests[(repo, tag)] = (manifest, OCI_MANIFEST)
        self.manifests[(repo, digest_of(manifest))] = (manifest, OCI_MANIFEST)
        return digest_of(config), digest_of(manifest)

    def _authorized(self, request: web.Request) -> bool:
        if not self.bearer:
            return True
        return request.headers.get("Authorization", "").startswith("Bearer good-")

    def _challenge(self) -> web.Response:
        return web.json_response(
            {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
            status=401,
            headers={"WWW-Authenticate": f'Bearer realm="http://{self.host}/token",service="fake"'},
        )

    async def _token(self, request: web.Request) -> web.Response:
        self.token_queries.append(list(request.query.items()))
        header = request.headers.get("Authorization")
        if header is not None and header != "Basic " + base64.b64encode(b"user:right").decode():
            return web.json_response({"details": "incorrect username or password"}, status=401)
        return web.json_response({"token": "good-" + "-".join(request.query.getall("scope", []))})

    async def _ping(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._challenge()
        return web.json_response({})

    def _error(self, repo: str) -> web.Response | None:
        if repo in self.errors:
            status, code, message = self.errors[repo]
            return web.json_response(
                {"errors": [{"code": code, "message": message}]}, status=status
            )
        return None

    async def _manifest(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._challenge()
        repo, ref = request.match_info["name"], request.match_info["ref"]
        error = self._error(repo)
        if error is not None:
            return error
        found = self.manifests.get((repo, ref))
        if found is None:
            return web.json_response(
                {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]},
                status=404,
            )
        data, media_type = found
        return web.Response(
            body=data,
            headers={"Content-Type": media_type, "Docker-Content-Digest": digest_of(data)},
        )

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._challenge()
        digest = request.match_info["digest"]
        data = self.blobs.get(digest)
        if data is None:
            return web.json_response(
                {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]}, status=404
            )
        if digest in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        return web.Response(body=data, content_type="application/octet-stream")

    def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v2/", self._ping)
        app.router.add_get("/token", self._token)
        app.router.add_route("*", "/v2/{name:.+}/manifests/{ref}", self._manifest)
        app.router.add_route("*", "/v2/{name:.+}/blobs/{digest}", self._blob)
        self._thread.start()

        async def setup() -> int:
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            return int(self._runner.addresses[0][1])

        self.port = asyncio.run_coroutine_threadsafe(setup(), self._loop).result(10)

    def close(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextlib.contextmanager
def fake_registry(
    setup: Callable[[FakeRegistry], Any] | None = None, **kw: Any
) -> Iterator[FakeRegistry]:
    fake = FakeRegistry(**kw)
    fake.start()
    try:
        if setup is not None:
            setup(fake)
        yield fake
    finally:
        fake.close()
