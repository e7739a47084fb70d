"""Every /v2/ route of the real app asks for the right scope, and a token with exactly that scope
gets through (bearer tokens from the built-in token server, in-process)."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path

import bcrypt
import pytest
from cryptography.hazmat.primitives import serialization

from dockyard.registry.auth import build, jwt
from tests.registry.conftest import MakeRegistry, Server, manifest_bytes, sha256
from tests.registry.interop_helpers import parse_challenge

pytestmark = pytest.mark.unit

ALICE = "Basic " + base64.b64encode(b"alice:pw").decode()
UPLOAD = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def server(make_registry: MakeRegistry, tmp_path: Path) -> Server:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(4)).decode()}\n")
    key = jwt.generate_signing_key()
    keyfile = tmp_path / "token.key"
    keyfile.write_bytes(
        key.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    authorizer = build(
        {
            "token": {
                "service": "svc",
                "issuer": "iss",
                "key": str(keyfile),
                "users": str(htpasswd),
            }
        }
    )
    return make_registry(authorizer=authorizer)


def token(server: Server, scope: str) -> str:
    query = urllib.parse.urlencode([("service", "svc"), *(("scope", s) for s in scope.split())])
    r = server.request("GET", f"/token?{query}", headers={"Authorization": ALICE})
    assert r.status == 200, r.body
    return str(json.loads(r.body)["token"])


def bearer(server: Server, scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(server, scope)}"} if scope else {}


def seed(server: Server) -> tuple[str, str]:
    """An image in ``r`` (pushed with a push token); returns (manifest digest, config digest)."""
    headers = bearer(server, "repository:r:pull,push")
    config, layer = b'{"seed":1}', b"seed layer"
    for blob in (config, layer):
        r = server.request("POST", f"/v2/r/blobs/uploads/?digest={sha256(blob)}", blob, headers)
        assert r.status == 201, r.body
    data = manifest_bytes(config, [layer])
    r = server.request(
        "PUT",
        "/v2/r/manifests/t",
        data,
        {**headers, "Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert r.status == 201, r.body
    return sha256(data), sha256(config)


ROUTES = [
    ("GET", "/v2/", ""),
    ("GET", "/v2/_catalog", "registry:catalog:*"),
    ("GET", "/v2/r/tags/list", "repository:r:pull"),
    ("GET", "/v2/r/manifests/t", "repository:r:pull"),
    ("HEAD", "/v2/r/manifests/t", "repository:r:pull"),
    ("PUT", "/v2/r/manifests/t2", "repository:r:pull,push"),
    ("DELETE", "/v2/r/manifests/{manifest}", "repository:r:delete"),
    ("GET", "/v2/r/blobs/{config}", "repository:r:pull"),
    ("HEAD", "/v2/r/blobs/{config}", "repository:r:pull"),
    ("DELETE", "/v2/r/blobs/{config}", "repository:r:delete"),
    ("GET", "/v2/r/referrers/{manifest}", "repository:r:pull"),
    ("POST", "/v2/r/blobs/uploads/", "repository:r:pull,push"),
    (
        "POST",
        "/v2/s/blobs/uploads/?mount={config}&from=r",
        "repository:s:pull,push repository:r:pull",
    ),
    ("GET", f"/v2/r/blobs/uploads/{UPLOAD}", "repository:r:pull,push"),
    ("PATCH", f"/v2/r/blobs/uploads/{UPLOAD}", "repository:r:pull,push"),
    ("PUT", f"/v2/r/blobs/uploads/{UPLOAD}?digest={{config}}", "repository:r:pull,push"),
    ("DELETE", f"/v2/r/blobs/uploads/{UPLOAD}", "repository:r:pull,push"),
]


@pytest.mark.parametrize("method,path,scope", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_route_asks_for_its_scope(server: Server, method: str, path: str, scope: str) -> None:
    manifest, config = seed(server)
    path = path.format(manifest=manifest, config=config)

    r = server.request(method, path)
    assert r.status == 401
    _, params = parse_challenge(r.header("WWW-Authenticate") or "")
    assert params.get("scope", "") == scope
    assert params["service"] == "svc"

    if scope:
        # One action short of the scope: refused with insufficient_scope.
        weaker = " ".join(s.rsplit(":", 1)[0] + ":nothing" for s in scope.split())
        r = server.request(method, path, headers=bearer(server, weaker))
        assert r.status == 401
        assert (
            parse_challenge(r.header("WWW-Authenticate") or "")[1]["error"] == "insufficient_scope"
        )

    r = server.request(method, path, headers=bearer(server, scope) or {"Authorization": ALICE})
    if not scope:
        # /v2/ takes any valid token; Basic credentials are not a token.
        assert r.status == 401
        r = server.request(method, path, headers={"Authorization": f"Bearer {token(server, '')}"})
    assert r.status not in (401, 403), (r.status, r.body)
