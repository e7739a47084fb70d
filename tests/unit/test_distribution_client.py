"""The registry client's HTTP behaviour against a small in-process fake registry on 127.0.0.1:
bearer tokens with scopes, basic auth, retries, re-authentication; and streamed ingest."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from dockyard.content.store import ContentStore
from dockyard.distribution.auth import AuthConfig
from dockyard.distribution.client import RegistryClient, Repository, RetryPolicy
from dockyard.distribution.endpoints import Endpoint
from dockyard.distribution.errors import RegistryError, RegistryUnreachable
from dockyard.distribution.ingest import StreamIngest
from dockyard.errors import InvalidArgument

pytestmark = pytest.mark.unit

MANIFEST = (
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'
    + b"0" * 64
    + b'","size":2},"layers":[]}'
)
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)


class FakeRegistry:
    """``auth`` is "none", "basic" or "bearer"; tokens carry their scopes."""

    def __init__(self, auth: str = "none") -> None:
        self.auth = auth
        self.token_requests: list[dict[str, Any]] = []
        self.fail_next = 0
        self.requests: list[str] = []
        self.port = 0

    def _challenge(self, scope: str = "") -> dict[str, str]:
        if self.auth == "basic":
            return {"WWW-Authenticate": 'Basic realm="fake"'}
        value = f'Bearer realm="http://127.0.0.1:{self.port}/token",service="fake"'
        if scope:
            value += f',scope="{scope}",error="insufficient_scope"'
        return {"WWW-Authenticate": value}

    def _allowed(self, request: web.Request, scope: str) -> bool:
        header = request.headers.get("Authorization", "")
        if self.auth == "none":
            return True
        if self.auth == "basic":
            return header == "Basic " + base64.b64encode(b"u:p").decode()
        return header.startswith("Bearer ") and scope in header[len("Bearer ") :].split("|")

    def _denied(self, scope: str = "") -> web.Response:
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        return web.Response(
            status=401, body=body, headers=self._challenge(scope), content_type="application/json"
        )

    async def token(self, request: web.Request) -> web.Response:
        entry = {"query": list(request.query.items()), "auth": request.headers.get("Authorization")}
        if request.method == "POST":
            entry["form"] = dict(await request.post())
        self.token_requests.append(entry)
        if (
            entry["auth"] is not None
            and entry["auth"] != "Basic " + base64.b64encode(b"u:p").decode()
        ):
            return web.json_response({"details": "incorrect username or password"}, status=401)
        scopes = request.query.getall("scope", [])
        return web.json_response({"token": "|".join(scopes), "expires_in": 300})

    async def ping(self, request: web.Request) -> web.Response:
        self.requests.append("ping")
        if not self._allowed(request, ""):
            return self._denied()
        return web.json_response({})

    async def manifest(self, request: web.Request) -> web.Response:
        self.requests.append("manifest")
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=503)
        scope = f"repository:{request.match_info['name']}:pull"
        if not self._allowed(request, scope):
            return self._denied(scope)
        return web.Response(
            body=MANIFEST, content_type="application/vnd.oci.image.manifest.v1+json"
        )

    async def mount(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        need = [f"repository:{name}:pull,push"]
        if "from" in request.query:
            need.append(f"repository:{request.query['from']}:pull")
        header = request.headers.get("Authorization", "")
        granted = header[len("Bearer ") :].split("|")
        if not all(s in granted for s in need):
            return self._denied(" ".join(need))
        return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/x"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v2/", self.ping)
        app.router.add_get("/token", self.token)
        app.router.add_post("/token", self.token)
        app.router.add_get("/v2/{name:.+}/manifests/{ref}", self.manifest)
        app.router.add_post("/v2/{name:.+}/blobs/uploads/", self.mount)
        return app


def run(fake: FakeRegistry, body: Callable[[aiohttp.ClientSession, str], Awaitable[None]]) -> None:
    async def main() -> None:
        runner = web.AppRunner(fake.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        fake.port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as http:
                await body(http, f"http://127.0.0.1:{fake.port}")
        finally:
            await runner.cleanup()

    asyncio.run(main())


def test_anonymous_bearer_token_with_scope() -> None:
    fake = FakeRegistry("bearer")

    async def body(http: aiohttp.ClientSession, url: str) -> None:
        client = RegistryClient(
            http, Endpoint(url), AuthConfig(), scopes=("repository:a/b:pull",), retry=FAST
        )
        await client.ping()
        got = await Repository(client, "a/b").get_manifest("latest")
        assert got.data == MANIFEST
        assert got.digest == "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
        await Repository(client, "a/b").get_manifest("v2")  # token reused

    run(fake, body)
    assert len(fake.token_requests) == 1
    assert fake.token_requests[0] == {
        "query": [("service", "fake"), ("scope", "repository:a/b:pull")],
        "auth": None,
    }


def test_credentialed_bearer_token_and_wrong_password() -> None:
    fake = FakeRegistry("bearer")

    async def body(http: aiohttp.ClientSession, url: str) -> None:
        client = RegistryClient(
            http, Endpoint(url), AuthConfig("u", "p"), scopes=("repository:a:pull",), retry=FAST
        )
        await client.ping()
        await Repository(client, "a").get_manifest("latest")
        bad = RegistryClient(
            http, Endpoint(url), AuthConfig("u", "wrong"), scopes=("repository:a:pull",), retry=FAST
        )
        await bad.ping()
        with pytest.raises(RegistryError) as err:
            await Repository(bad, "a").get_manifest("latest")
        assert str(err.value) == (
            f'Get "{url}/v2/a/manifests/latest": unauthorized: incorrect username or password'
        )

    run(fake, body)
    assert ("account", "u") in fake.token_requests[0]["query"]


def test_identity_token_uses_oauth_post() -> None:
    fake = FakeRegistry("bearer")

    async def body(http: aiohttp.ClientSession, url: str) -> None:
        client = RegistryClient(
            http, Endpoint(url), AuthConfig(identity_token="rt"), scopes=("repository:a:pull",)
        )
        await client.ping()
        with pytest.raises(RegistryError):  # the fake grants the form's scope only via GET
            await Repository(client, "a").get_manifest("latest")

    run(fake, body)
    form = fake.token_requests[0]["form"]
    assert form["grant_type"] == "refresh_token" and form["refresh_token"] == "rt"
    assert form["client_id"] == "docker" and form["scope"] == "repository:a:pull"


def test_insufficient_scope_gets_a_wider_token() -> None:
    fake = FakeRegistry("bearer")

    async def body(http: aiohttp.ClientSession, url: str) -> None:
        client = RegistryClient(
            http, Endpoint(url), AuthConfig(), scopes=("repository:dst:pull,push",), retry=FAST
        )
        await client.ping()
        assert await Repository(client, "dst").mount_blob("sha256:" + "a" * 64, "src") is None

    run(fake, body)
    scopes = [[v for k, v in r["query"] if k == "scope"] for r in fake.token_requests]
    assert scopes == [
        ["repository:dst:pull,push"],
        ["repository:dst:pull,push", "repository:src:pull"],
    ]


def test_basic_auth() -> None:
    fake = FakeRegistry("basic")

    async def body(http: aiohttp.ClientSession, url: str) -> None:
        client = RegistryClient(http, Endpoint(url), AuthConfig("u", "p"), retry=FAST)
        await client.ping()
        await Repository(client, "a").get_manifest("latest")
        anonymous = RegistryClient(http, Endpoint(url), AuthConfig(), retry=FAST)
        await anonymous.ping()
        with pytest.raises(RegistryError) as err:
            await Repository(anonymous, "a").get_manifest("latest")
        assert str(err.value) == f'Get "{url}/v2/a/manifests/latest": no basic auth credentials'
        wrong = RegistryClient(http, Endpoint(url), AuthConfig("u", "x"), retry=FAST)
        await wrong.ping()
        assert await wrong.check_login() == 401

    run(fake, body)


def test_5xx_is_retried_with_backoff() -> None:
    fake = FakeRegistry("none")
    fake.fail_next = 2

    async def body(http: aiohttp.ClientSession, url: str) -> None:
        client = RegistryClient(http, Endpoint(url), AuthConfig(), retry=FAST)
        await Repository(client, "a").get_manifest("latest")
        fake.fail_next = 5
        with pytest.raises(RegistryError) as err:
            await Repository(client, "a").get_manifest("latest")
        assert err.value.status == 503

    run(fake, body)
    assert fake.requests.count("manifest") == 3 + 3


def test_unreachable_registry() -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            client = RegistryClient(http, Endpoint("http://127.0.0.1:9"), AuthConfig(), retry=FAST)
            with pytest.raises(RegistryUnreachable) as err:
                await client.ping()
            assert str(err.value) == (
                'Get "http://127.0.0.1:9/v2/": dial tcp 127.0.0.1:9: connect: connection refused'
            )

    asyncio.run(main())


# -- streamed ingest ----------------------------------------------------------------------------


def _ingest(store: ContentStore, chunks: list[bytes], expected: str, size: int) -> str:
    async def main() -> str:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            sink = StreamIngest(store, pool, expected, size)
            sink.start()
            try:
                for chunk in chunks:
                    await sink.write(chunk)
                return await sink.finish()
            except BaseException as exc:
                await sink.abort(exc)
                raise

    return asyncio.run(main())


def test_stream_ingest_verifies_while_streaming(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "content")
    data = [bytes([i]) * 300_000 for i in range(20)]  # more chunks than the pipe holds
    digest = "sha256:" + hashlib.sha256(b"".join(data)).hexdigest()
    assert _ingest(store, data, digest, sum(map(len, data))) == digest
    assert store.has(digest)
    wrong = "sha256:" + "f" * 64
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        _ingest(store, [b"other"] * 3, wrong, 15)
    with pytest.raises(InvalidArgument, match="size mismatch"):
        _ingest(store, [b"x" * 10] * 30, wrong, 100)  # too long: the store stops reading
    assert not store.has(wrong)
    assert list((tmp_path / "content" / "ingest").iterdir()) == []


def test_stream_ingest_abort_leaves_nothing(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "content")

    async def main() -> None:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            sink = StreamIngest(store, pool, "sha256:" + "e" * 64, 1000)
            sink.start()
            await sink.write(b"x" * 100)
            await sink.abort(ConnectionResetError("gone"))

    asyncio.run(main())
    assert list((tmp_path / "content" / "ingest").iterdir()) == []
    assert store.walk() == []
