"""The authorizers and the token endpoint over real HTTP, in-process (aiohttp test server).

A small app stands in for the registry: each route asks the authorizer for a fixed access list
and errors are written with the registry's own ``errcode.error_response``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization

from dockyard.errors import InvalidArgument
from dockyard.registry import errcode
from dockyard.registry.access import Access, Authorizer
from dockyard.registry.auth import build, jwt

pytestmark = pytest.mark.unit

USERS = {"alice": "alice-pw", "bob": "bob-pw"}
ACL = [
    {"account": "alice", "type": "*", "name": "*", "actions": ["*"]},
    {"account": "bob", "name": "bob/*", "actions": ["pull", "push"]},
    {"account": "", "name": "public/*", "actions": ["pull"]},
]

ROUTES: dict[str, list[Access]] = {
    "/v2/": [],
    "/pull/{name}": [],
    "/push/{name}": [],
    "/delete/{name}": [],
    "/catalog": [Access("registry", "catalog", frozenset({"*"}))],
}


def _access(request: web.Request) -> list[Access]:
    path = request.path
    if path.startswith("/pull/"):
        return [Access.repository(request.match_info["name"].replace("~", "/"), "pull")]
    if path.startswith("/push/"):
        return [Access.repository(request.match_info["name"].replace("~", "/"), "push", "pull")]
    if path.startswith("/delete/"):
        return [Access.repository(request.match_info["name"].replace("~", "/"), "delete")]
    return ROUTES[path]


def make_app(authorizer: Authorizer) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        try:
            await authorizer.authorize(request, _access(request))
        except errcode.RegistryError as exc:
            return errcode.error_response(exc)
        return web.json_response({"ok": True})

    app = web.Application()
    for path in ROUTES:
        app.router.add_get(path, handler)
    app.add_routes(authorizer.routes())
    return app


def with_client(
    authorizer: Authorizer,
    body: Callable[[TestClient[web.Request, web.Application]], Awaitable[None]],
) -> None:
    async def go() -> None:
        async with TestClient(TestServer(make_app(authorizer))) as client:
            await body(client)

    asyncio.run(go())


def basic(user: str, password: str | None = None) -> dict[str, str]:
    raw = f"{user}:{USERS[user] if password is None else password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    path.write_text(
        "".join(
            f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode()}\n"
            for u, p in USERS.items()
        )
    )
    return path


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    key = jwt.generate_signing_key()
    path = tmp_path / "token.key"
    path.write_bytes(
        key.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


# -- htpasswd -------------------------------------------------------------------------------------


def test_basic_auth_challenges_and_grants(htpasswd: Path) -> None:
    auth = build({"htpasswd": {"realm": "my realm", "path": str(htpasswd)}})

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        resp = await client.get("/pull/foo")
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="my realm"'
        doc = await resp.json()
        assert doc["errors"][0]["code"] == "UNAUTHORIZED"
        assert doc["errors"][0]["detail"] == [
            {"Type": "repository", "Name": "foo", "Action": "pull"}
        ]
        resp = await client.get("/v2/")
        assert resp.status == 401
        for headers in (
            basic("alice", "wrong"),
            {"Authorization": "Basic !!!"},
            {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
            {"Authorization": "Bearer abc"},
        ):
            resp = await client.get("/push/foo", headers=headers)
            assert resp.status == 401, headers
        for path in ("/v2/", "/pull/foo", "/push/foo", "/delete/foo", "/catalog"):
            resp = await client.get(path, headers=basic("bob"))
            assert resp.status == 200, path  # without an ACL every user may do everything

    with_client(auth, body)


def test_basic_auth_with_acl_denies_with_403(htpasswd: Path) -> None:
    auth = build({"htpasswd": {"realm": "r", "path": str(htpasswd), "acl": ACL}})

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        assert (await client.get("/push/bob~app", headers=basic("bob"))).status == 200
        resp = await client.get("/push/alice~app", headers=basic("bob"))
        assert resp.status == 403
        assert "WWW-Authenticate" not in resp.headers
        assert (await resp.json())["errors"][0]["code"] == "DENIED"
        assert (await client.get("/delete/bob~app", headers=basic("bob"))).status == 403
        assert (await client.get("/catalog", headers=basic("alice"))).status == 200
        assert (await client.get("/catalog", headers=basic("bob"))).status == 403
        assert (await client.get("/v2/", headers=basic("bob"))).status == 200

    with_client(auth, body)


def test_basic_readonly_anonymous(htpasswd: Path) -> None:
    auth = build({"readonly_anonymous": True, "htpasswd": {"realm": "r", "path": str(htpasswd)}})

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        assert (await client.get("/pull/anything")).status == 200
        assert (await client.get("/push/anything")).status == 401
        assert (await client.get("/delete/anything")).status == 401
        assert (await client.get("/catalog")).status == 401
        assert (await client.get("/v2/")).status == 401  # how clients learn the realm
        assert (await client.get("/pull/anything", headers=basic("bob", "bad"))).status == 401
        assert (await client.get("/push/anything", headers=basic("bob"))).status == 200

    with_client(auth, body)


# -- tokens ---------------------------------------------------------------------------------------


def token_config(htpasswd: Path, keyfile: Path, **extra: Any) -> dict[str, Any]:
    return {
        "token": {
            "service": "svc",
            "issuer": "iss",
            "key": str(keyfile),
            "users": str(htpasswd),
            "acl": ACL,
            **extra,
        }
    }


def claims_of(token: str) -> dict[str, Any]:
    return dict(json.loads(jwt.b64url_decode(token.split(".")[1])))


async def get_token(
    client: TestClient[web.Request, web.Application],
    *scopes: str,
    user: str | None = None,
    **params: str,
) -> dict[str, Any]:
    query = [("service", "svc"), *(("scope", s) for s in scopes), *params.items()]
    resp = await client.get("/token", params=query, headers=basic(user) if user else {})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    return dict(await resp.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_token_flow_like_docker_hub(htpasswd: Path, keyfile: Path) -> None:
    auth = build(token_config(htpasswd, keyfile))

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        resp = await client.get("/push/bob~app")
        assert resp.status == 401
        realm = f"http://{client.host}:{client.port}/token"
        assert resp.headers["WWW-Authenticate"] == (
            f'Bearer realm="{realm}",service="svc",scope="repository:bob/app:pull,push"'
        )
        resp = await client.get("/v2/")
        assert resp.headers["WWW-Authenticate"] == f'Bearer realm="{realm}",service="svc"'

        got = await get_token(client, "repository:bob/app:pull,push", user="bob")
        assert got["token"] == got["access_token"]
        assert got["expires_in"] == 300
        assert time.strptime(got["issued_at"], "%Y-%m-%dT%H:%M:%SZ")
        claims = claims_of(got["token"])
        assert claims["iss"] == "iss" and claims["aud"] == "svc" and claims["sub"] == "bob"
        assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] == claims["iat"]
        assert claims["access"] == [
            {"type": "repository", "name": "bob/app", "actions": ["pull", "push"]}
        ]
        assert (await client.get("/push/bob~app", headers=bearer(got["token"]))).status == 200
        assert (await client.get("/v2/", headers=bearer(got["token"]))).status == 200
        # The token is for bob/app only.
        resp = await client.get("/push/bob~other", headers=bearer(got["token"]))
        assert resp.status == 401
        assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
        assert 'scope="repository:bob/other:pull,push"' in resp.headers["WWW-Authenticate"]

        # Asking for more than the ACL allows is not an error: the token says less.
        got = await get_token(
            client, "repository:alice/app:pull,push", "repository:bob/x:pull,delete", user="bob"
        )
        assert claims_of(got["token"])["access"] == [
            {"type": "repository", "name": "bob/x", "actions": ["pull"]}
        ]
        resp = await client.get("/pull/alice~app", headers=bearer(got["token"]))
        assert resp.status == 401 and "insufficient_scope" in resp.headers["WWW-Authenticate"]

        # Anonymous callers get what the ACL gives the empty account.
        got = await get_token(client, "repository:public/base:pull,push", "repository:bob/x:pull")
        assert claims_of(got["token"])["access"] == [
            {"type": "repository", "name": "public/base", "actions": ["pull"]}
        ]
        assert claims_of(got["token"])["sub"] == ""
        assert "refresh_token" not in got

        got = await get_token(client, "registry:catalog:*", user="alice")
        assert (await client.get("/catalog", headers=bearer(got["token"]))).status == 200

    with_client(auth, body)


def test_token_endpoint_errors(htpasswd: Path, keyfile: Path) -> None:
    auth = build(token_config(htpasswd, keyfile))

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        resp = await client.get("/token", params={"service": "svc"}, headers=basic("bob", "nope"))
        assert resp.status == 401
        assert (await resp.json())["error"] == "invalid_grant"
        assert resp.headers["WWW-Authenticate"].startswith("Basic realm=")
        resp = await client.get("/token", params={"service": "svc"}, headers=basic("mallory", "x"))
        assert resp.status == 401
        resp = await client.get(
            "/token", params={"service": "svc"}, headers={"Authorization": "Digest x"}
        )
        assert resp.status == 401
        resp = await client.get("/token", params={"service": "other"})
        assert resp.status == 400 and (await resp.json())["error"] == "invalid_request"
        resp = await client.get("/token", params={"service": "svc", "scope": "garbage"})
        assert resp.status == 400 and (await resp.json())["error"] == "invalid_scope"
        resp = await client.post("/token", data={"grant_type": "client_credentials"})
        assert resp.status == 400 and (await resp.json())["error"] == "unsupported_grant_type"
        resp = await client.post(
            "/token", data={"grant_type": "password", "username": "bob", "password": "x"}
        )
        assert resp.status == 401 and (await resp.json())["error"] == "invalid_grant"
        resp = await client.post(
            "/token", data={"grant_type": "refresh_token", "refresh_token": "a.b.c"}
        )
        assert resp.status == 401

    with_client(auth, body)


def test_oauth2_post_and_refresh_tokens(htpasswd: Path, keyfile: Path) -> None:
    auth = build(token_config(htpasswd, keyfile))

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        form = {
            "grant_type": "password",
            "username": "bob",
            "password": USERS["bob"],
            "service": "svc",
            "scope": "repository:bob/app:pull,push repository:public/x:pull",
            "client_id": "docker",
            "access_type": "offline",
        }
        resp = await client.post("/token", data=form)
        assert resp.status == 200, await resp.text()
        got = await resp.json()
        assert got["scope"] == "repository:bob/app:pull,push"
        refresh = got["refresh_token"]
        assert (
            await client.get("/push/bob~app", headers=bearer(got["access_token"]))
        ).status == 200
        # A refresh token is never an access token.
        resp = await client.get("/pull/bob~app", headers=bearer(refresh))
        assert resp.status == 401 and 'error="invalid_token"' in resp.headers["WWW-Authenticate"]

        resp = await client.post(
            "/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh,
                "service": "svc",
                "scope": "repository:bob/app:pull",
                "client_id": "docker",
                "access_type": "offline",
            },
        )
        again = await resp.json()
        assert resp.status == 200 and again["refresh_token"] == refresh
        assert claims_of(again["access_token"])["access"][0]["actions"] == ["pull"]
        # An access token is never a refresh token.
        resp = await client.post(
            "/token", data={"grant_type": "refresh_token", "refresh_token": again["access_token"]}
        )
        assert resp.status == 401

        got = await get_token(client, "repository:bob/app:pull", user="bob", offline_token="true")
        assert claims_of(got["refresh_token"])["aud"] == "svc#refresh"

        # Removing the user from htpasswd ends their refresh tokens.
        htpasswd.write_text(htpasswd.read_text().split("\n", 1)[0] + "\n")  # alice only
        settings = auth.settings if hasattr(auth, "settings") else None
        assert settings is not None and settings.users is not None
        settings.users._checked_at = 0.0
        resp = await client.post(
            "/token", data={"grant_type": "refresh_token", "refresh_token": refresh}
        )
        assert resp.status == 401

    with_client(auth, body)


def test_tokens_that_must_be_refused(htpasswd: Path, keyfile: Path, tmp_path: Path) -> None:
    auth = build(token_config(htpasswd, keyfile))
    key = jwt.load_signing_key(keyfile)
    other = jwt.generate_signing_key("RSA")
    now = int(time.time())
    good = {
        "iss": "iss",
        "aud": "svc",
        "sub": "x",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "access": [{"type": "repository", "name": "a", "actions": ["pull"]}],
    }
    cases = {
        "ok": (jwt.sign(good, key), 200),
        "other key": (jwt.sign(good, other), 401),
        "expired": (jwt.sign({**good, "exp": now - 120}, key), 401),
        "not yet": (jwt.sign({**good, "nbf": now + 120}, key), 401),
        "issuer": (jwt.sign({**good, "iss": "evil"}, key), 401),
        "audience": (jwt.sign({**good, "aud": "elsewhere"}, key), 401),
        "audience list": (jwt.sign({**good, "aud": ["elsewhere", "svc"]}, key), 200),
        "garbage": ("not-a-jwt", 401),
        "bad access": (jwt.sign({**good, "access": "all"}, key), 401),
    }

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        for name, (token, status) in cases.items():
            resp = await client.get("/pull/a", headers=bearer(token))
            assert resp.status == status, name
            if status == 401:
                assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"], name
                assert (await resp.json())["errors"][0]["code"] == "UNAUTHORIZED"

    with_client(auth, body)


def test_verify_only_registry_trusts_a_cert_bundle(
    htpasswd: Path, keyfile: Path, tmp_path: Path
) -> None:
    """A registry without a key of its own, trusting an external token server's certificate."""
    key = jwt.load_signing_key(keyfile)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(
        jwt.self_signed_certificate(key, "issuer").public_bytes(serialization.Encoding.PEM)
    )
    auth = build(
        {
            "token": {
                "realm": "https://auth.example/token",
                "service": "svc",
                "issuer": "iss",
                "rootcertbundle": str(bundle),
            }
        }
    )
    assert auth.routes() == []
    now = int(time.time())
    token = jwt.sign(
        {
            "iss": "iss",
            "aud": "svc",
            "exp": now + 60,
            "access": [{"type": "repository", "name": "a", "actions": ["pull"]}],
        },
        key,
    )

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        resp = await client.get("/pull/a")
        assert resp.headers["WWW-Authenticate"].startswith(
            'Bearer realm="https://auth.example/token"'
        )
        assert (await client.get("/pull/a", headers=bearer(token))).status == 200

    with_client(auth, body)


def test_token_readonly_anonymous(htpasswd: Path, keyfile: Path) -> None:
    auth = build({"readonly_anonymous": True, **token_config(htpasswd, keyfile)})

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        assert (await client.get("/pull/alice~private")).status == 200
        assert (await client.get("/push/alice~private")).status == 401
        got = await get_token(client, "repository:alice/private:pull,push")
        assert claims_of(got["token"])["access"] == [
            {"type": "repository", "name": "alice/private", "actions": ["pull"]}
        ]

    with_client(auth, body)


def test_token_path_follows_the_realm(htpasswd: Path, keyfile: Path) -> None:
    auth = build(
        token_config(htpasswd, keyfile, realm="http://127.0.0.1:1/auth/v2/token", expiration=900)
    )

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        assert (await client.get("/token")).status == 404
        resp = await client.get("/auth/v2/token", params={"service": "svc"})
        assert resp.status == 200 and (await resp.json())["expires_in"] == 900

    with_client(auth, body)


@pytest.mark.parametrize(
    "config,match",
    [
        ({}, "exactly one"),
        ({"htpasswd": {}, "token": {}}, "exactly one"),
        ({"silly": {}}, "unknown keys"),
        ({"readonly_anonymous": "yes", "htpasswd": {"path": "x"}}, "readonly_anonymous"),
        ({"htpasswd": {"realm": "r"}}, "path is required"),
        ({"htpasswd": {"path": "/nonexistent/htpasswd"}}, "cannot read"),
        ({"htpasswd": "x"}, "mapping"),
        ({"token": {"service": "s", "issuer": "i"}}, "needs a key"),
        ({"token": {"issuer": "i", "key": "k"}}, "service is required"),
        ({"token": {"service": "s", "issuer": "i", "key": "/nonexistent"}}, "cannot load"),
        (
            {"token": {"service": "s", "issuer": "i", "rootcertbundle": "/nonexistent"}},
            "cannot load",
        ),
        ({"token": {"service": "s", "issuer": "i", "jwks": "/nonexistent"}}, "cannot load"),
        ({"token": {"service": "s", "issuer": "i", "color": 1}}, "unknown keys"),
    ],
)
def test_build_rejects_bad_config(config: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        build(config)


def test_build_token_option_errors(htpasswd: Path, keyfile: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="expiration"):
        build(token_config(htpasswd, keyfile, expiration=5))
    with pytest.raises(InvalidArgument, match="acl"):
        build(token_config(htpasswd, keyfile, acl={"not": "a list"}))
    cert_only = tmp_path / "c.pem"
    cert_only.write_bytes(
        jwt.self_signed_certificate(jwt.load_signing_key(keyfile), "x").public_bytes(
            serialization.Encoding.PEM
        )
    )
    with pytest.raises(InvalidArgument, match="needs key"):
        build(
            {
                "token": {
                    "service": "s",
                    "issuer": "i",
                    "rootcertbundle": str(cert_only),
                    "users": str(htpasswd),
                }
            }
        )


def test_jwks_file_is_trusted(keyfile: Path, tmp_path: Path) -> None:
    key = jwt.load_signing_key(keyfile)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwt.public_jwk(key.public), "kid": "my-key"}]}))
    auth = build({"token": {"service": "svc", "issuer": "iss", "jwks": str(jwks)}})
    now = int(time.time())
    claims = {
        "iss": "iss",
        "aud": "svc",
        "exp": now + 60,
        "access": [{"type": "repository", "name": "a", "actions": ["pull"]}],
    }
    named = jwt.sign(claims, key, header={"alg": "ES256", "kid": "my-key"})

    async def body(client: TestClient[web.Request, web.Application]) -> None:
        assert (await client.get("/pull/a", headers=bearer(named))).status == 200
        assert (await client.get("/pull/a", headers=bearer(jwt.sign(claims, key)))).status == 200

    with_client(auth, body)
