"""The authorization hook: each route's Access list, refusals with their headers, extra
routes, and ``build_authorizer``'s choice. Authorizers here are small real fakes."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
from aiohttp import web

from dockyard.registry import errcode
from dockyard.registry.access import Access, AllowAll, Authorizer, build_authorizer
from dockyard.registry.errcode import RegistryError
from tests.registry.conftest import OCI_MANIFEST, MakeRegistry, manifest_bytes, sha256

pytestmark = pytest.mark.unit


class Recorder:
    """Grants everything, remembering what was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[Access]]] = []

    async def authorize(self, request: web.Request, access: list[Access]) -> None:
        self.calls.append((request.method, request.path, list(access)))

    def routes(self) -> list[web.RouteDef]:
        return []


class Policy:
    """Grants only the scopes listed; anonymous (no Authorization header) gets 401."""

    def __init__(self, granted: set[str]) -> None:
        self.granted = granted

    async def authorize(self, request: web.Request, access: list[Access]) -> None:
        if "Authorization" not in request.headers:
            raise RegistryError(
                errcode.UNAUTHORIZED,
                headers={"WWW-Authenticate": 'Bearer realm="http://auth.test/token"'},
                detail=[a.scope() for a in access],
            )
        for a in access:
            for action in a.actions:
                if f"{a.type}:{a.name}:{action}" not in self.granted:
                    raise RegistryError(errcode.DENIED, detail={"scope": a.scope()})

    def routes(self) -> list[web.RouteDef]:
        async def token(request: web.Request) -> web.Response:
            return web.json_response({"token": "t"})

        return [web.get("/auth/token", token)]


def _repo(name: str, *actions: str) -> Access:
    return Access("repository", name, frozenset(actions))


def test_access_scope_spelling() -> None:
    assert _repo("lib/x", "push", "pull").scope() == "repository:lib/x:pull,push"
    assert Access.repository("a", "pull") == _repo("a", "pull")
    assert isinstance(AllowAll(), Authorizer)
    assert isinstance(Recorder(), Authorizer)


def test_every_route_asks_for_the_right_access(make_registry: MakeRegistry) -> None:
    rec = Recorder()
    s = make_registry(authorizer=rec)
    config, layer = b'{"a":1}', b"layer"
    d_cfg = s.push_blob("r", config)
    s.push_blob("r", layer)
    data = manifest_bytes(config, [layer])
    s.push_manifest("r", "v1", data)
    loc = s.start_upload("r")
    rec.calls.clear()
    expectations: list[tuple[str, str, bytes | None, list[Access]]] = [
        ("GET", "/v2/", None, []),
        ("GET", "/v2/_catalog", None, [Access("registry", "catalog", frozenset({"*"}))]),
        ("GET", "/v2/r/tags/list", None, [_repo("r", "pull")]),
        ("GET", "/v2/r/manifests/v1", None, [_repo("r", "pull")]),
        ("HEAD", "/v2/r/manifests/v1", None, [_repo("r", "pull")]),
        ("PUT", "/v2/r/manifests/v2", data, [_repo("r", "push", "pull")]),
        ("GET", f"/v2/r/blobs/{d_cfg}", None, [_repo("r", "pull")]),
        ("HEAD", f"/v2/r/blobs/{d_cfg}", None, [_repo("r", "pull")]),
        ("GET", f"/v2/r/referrers/{sha256(data)}", None, [_repo("r", "pull")]),
        ("POST", "/v2/r/blobs/uploads/", None, [_repo("r", "push", "pull")]),
        ("PATCH", loc, b"x", [_repo("r", "push", "pull")]),
        ("GET", loc, None, [_repo("r", "push", "pull")]),
        ("DELETE", loc, None, [_repo("r", "push", "pull")]),
        (
            "POST",
            f"/v2/other/blobs/uploads/?mount={d_cfg}&from=r",
            None,
            [_repo("other", "push", "pull"), _repo("r", "pull")],
        ),
        ("DELETE", "/v2/r/manifests/v2", None, [_repo("r", "delete")]),
        ("DELETE", f"/v2/r/blobs/{d_cfg}", None, [_repo("r", "delete")]),
    ]
    for method, path, body, access in expectations:
        rec.calls.clear()
        r = s.request(method, path, body, {"Content-Type": OCI_MANIFEST} if body else None)
        assert r.status < 400, (method, path, r.status, r.body)
        assert rec.calls and rec.calls[0][2] == access, (method, path, rec.calls)


def test_unauthorized_carries_www_authenticate(make_registry: MakeRegistry) -> None:
    s = make_registry(authorizer=Policy(set()))
    r = s.request("GET", "/v2/")
    assert r.status == 401
    assert r.codes() == ["UNAUTHORIZED"]
    assert r.header("WWW-Authenticate") == 'Bearer realm="http://auth.test/token"'
    assert r.header("Docker-Distribution-API-Version") == "registry/2.0"
    r = s.request("GET", "/v2/x/manifests/latest")
    assert r.status == 401 and r.json()["errors"][0]["detail"] == ["repository:x:pull"]


def test_denied_is_403_and_nothing_happens(make_registry: MakeRegistry) -> None:
    s = make_registry(authorizer=Policy({"repository:r:pull"}))
    auth = {"Authorization": "Bearer t"}
    digest = sha256(b"blob")
    r = s.request("POST", f"/v2/r/blobs/uploads/?digest={digest}", b"blob", auth)
    assert r.status == 403 and r.codes() == ["DENIED"]
    assert s.request("GET", f"/v2/r/blobs/{digest}", headers=auth).status == 404
    r = s.request("DELETE", f"/v2/r/blobs/{digest}", headers=auth)
    assert r.status == 403


def test_authorization_comes_before_validation(make_registry: MakeRegistry) -> None:
    s = make_registry(authorizer=Policy(set()))
    # a manifest naming missing blobs, unauthenticated: 401, not MANIFEST_BLOB_UNKNOWN
    data = manifest_bytes(b"{}", [b"missing"])
    r = s.request("PUT", "/v2/r/manifests/v1", data, {"Content-Type": OCI_MANIFEST})
    assert r.status == 401
    r = s.request("PUT", f"/v2/r/blobs/uploads/{'0' * 8}-0000-0000-0000-{'0' * 12}?digest=x")
    assert r.status == 401


def test_cross_mount_needs_pull_on_the_source(make_registry: MakeRegistry) -> None:
    grants = {"repository:src:pull", "repository:src:push", "repository:dst:push"}
    grants |= {"repository:dst:pull"}
    policy = Policy(grants)
    s = make_registry(authorizer=policy)
    auth = {"Authorization": "Bearer t"}
    digest = sha256(b"shared")
    r = s.request("POST", f"/v2/src/blobs/uploads/?digest={digest}", b"shared", auth)
    assert r.status == 201
    r = s.request("POST", f"/v2/dst/blobs/uploads/?mount={digest}&from=src", headers=auth)
    assert r.status == 201
    policy.granted.discard("repository:src:pull")
    r = s.request("POST", f"/v2/dst2/blobs/uploads/?mount={digest}&from=src", headers=auth)
    assert r.status == 403


def test_mount_without_from_only_from_pullable_repositories(make_registry: MakeRegistry) -> None:
    policy = Policy({"repository:secret:push", "repository:secret:pull"})
    s = make_registry(authorizer=policy)
    auth = {"Authorization": "Bearer t"}
    config, layer = b'{"secret":1}', b"secret layer"
    for blob in (config, layer):
        s.request("POST", f"/v2/secret/blobs/uploads/?digest={sha256(blob)}", blob, auth)
    data = manifest_bytes(config, [layer])
    r = s.request("PUT", "/v2/secret/manifests/v1", data, {**auth, "Content-Type": OCI_MANIFEST})
    assert r.status == 201
    # a pusher of "mine" who cannot read "secret" does not get its layer by digest alone
    policy.granted = {"repository:mine:push", "repository:mine:pull"}
    r = s.request("POST", f"/v2/mine/blobs/uploads/?mount={sha256(layer)}", headers=auth)
    assert r.status == 202
    assert s.request("GET", f"/v2/mine/blobs/{sha256(layer)}", headers=auth).status == 404
    # once they may read it, the same request mounts
    policy.granted.add("repository:secret:pull")
    r = s.request("POST", f"/v2/mine/blobs/uploads/?mount={sha256(layer)}", headers=auth)
    assert r.status == 201


def test_authorizer_routes_are_served(make_registry: MakeRegistry) -> None:
    s = make_registry(authorizer=Policy(set()))
    r = s.request("GET", "/auth/token")
    assert r.status == 200 and r.json() == {"token": "t"}


def test_build_authorizer_without_auth_allows_all() -> None:
    assert isinstance(build_authorizer({}), AllowAll)
    assert isinstance(build_authorizer({"auth": {}}), AllowAll)
    assert isinstance(build_authorizer({"auth": None}), AllowAll)


def test_build_authorizer_hands_the_auth_section_to_the_auth_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[dict[str, Any]] = []
    fake = types.ModuleType("dockyard.registry.auth")

    def build(auth_config: dict[str, Any]) -> Authorizer:
        seen.append(auth_config)
        return Policy(set())

    fake.build = build  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dockyard.registry.auth", fake)
    auth = {"htpasswd": {"realm": "r", "path": "/x"}}
    authorizer = build_authorizer({"auth": auth, "storage": {}})
    assert isinstance(authorizer, Policy)
    assert seen == [auth]


def test_build_authorizer_rejects_a_non_mapping() -> None:
    with pytest.raises(ValueError):
        build_authorizer({"auth": "yes"})
