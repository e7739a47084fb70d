"""Every error code, the envelope, the headers every response carries, read-only mode, rate
limiting, and the registration table itself."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dockyard.registry import errcode
from dockyard.registry.config import RateLimit
from dockyard.registry.errcode import RegistryError, error_response, from_exception
from dockyard.registry.storage import InMemoryDriver
from dockyard.registry.storage.errors import ManifestBlobUnknown
from tests.registry.conftest import OCI_MANIFEST, MakeRegistry, Resp, Server, manifest_bytes, sha256

pytestmark = pytest.mark.unit

SPEC_CODES = {
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
}


def _assert_envelope(r: Resp, code: str, status: int) -> dict[str, Any]:
    assert r.status == status, (r.status, r.body)
    assert r.header("Content-Type") == "application/json"
    assert r.header("Docker-Distribution-API-Version") == "registry/2.0"
    body = r.json()
    assert set(body) == {"errors"}
    first = body["errors"][0]
    assert first["code"] == code
    assert isinstance(first["message"], str) and first["message"]
    assert set(first) <= {"code", "message", "detail"}
    return dict(first)


def test_registration_table() -> None:
    codes = errcode.registered()
    names = [c.name for c in codes]
    assert len(names) == len(set(names))
    # 4xx bodies only use the spec's codes; each spec code is registered under its own name
    assert {c.value for c in codes if c.status < 500} == SPEC_CODES
    assert set(names) >= SPEC_CODES
    statuses = {c.name: c.status for c in codes}
    assert statuses["BLOB_UNKNOWN"] == 404
    assert statuses["BLOB_UPLOAD_INVALID"] == 400
    assert statuses["BLOB_UPLOAD_UNKNOWN"] == 404
    assert statuses["DIGEST_INVALID"] == 400
    assert statuses["MANIFEST_BLOB_UNKNOWN"] == 400
    assert statuses["MANIFEST_INVALID"] == 400
    assert statuses["MANIFEST_UNKNOWN"] == 404
    assert statuses["NAME_INVALID"] == 400
    assert statuses["NAME_UNKNOWN"] == 404
    assert statuses["SIZE_INVALID"] == 400
    assert statuses["UNAUTHORIZED"] == 401
    assert statuses["DENIED"] == 403
    assert statuses["UNSUPPORTED"] == 405
    assert statuses["TOOMANYREQUESTS"] == 429
    assert all(c.value.replace("_", "").isalpha() and c.value.isupper() for c in codes)


def test_register_twice_is_refused() -> None:
    with pytest.raises(RuntimeError):
        errcode._register("BLOB_UNKNOWN", "again", 404, "duplicate")


def test_error_response_writes_every_entry_and_headers() -> None:
    err = RegistryError(
        errcode.UNAUTHORIZED,
        "who are you",
        {"realm": "x"},
        headers={"WWW-Authenticate": 'Basic realm="x"'},
        also=[RegistryError(errcode.DENIED)],
    )
    resp = error_response(err)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="x"'
    assert resp.body is not None
    body = json.loads(bytes(resp.body))  # type: ignore[arg-type]
    assert body == {
        "errors": [
            {"code": "UNAUTHORIZED", "message": "who are you", "detail": {"realm": "x"}},
            {"code": "DENIED", "message": "requested access to the resource is denied"},
        ]
    }


def test_from_exception_maps_missing_blobs_to_one_error_each() -> None:
    mapped = from_exception(ManifestBlobUnknown(["sha256:" + "a" * 64, "sha256:" + "b" * 64]))
    assert mapped is not None
    assert [e["code"] for e in mapped.entries()] == ["MANIFEST_BLOB_UNKNOWN"] * 2
    assert from_exception(ValueError("x")) is None


def test_blob_unknown(registry: Server) -> None:
    r = registry.request("GET", f"/v2/a/blobs/{sha256(b'?')}")
    assert _assert_envelope(r, "BLOB_UNKNOWN", 404)["detail"] == {"digest": sha256(b"?")}


def test_blob_upload_invalid(registry: Server) -> None:
    loc = registry.start_upload("a")
    _assert_envelope(
        registry.request("PATCH", loc, b"x", {"Content-Range": "x-y"}), "BLOB_UPLOAD_INVALID", 400
    )
    # and its 416 variant for out-of-order chunks
    _assert_envelope(
        registry.request("PATCH", loc, b"x", {"Content-Range": "3-3"}), "BLOB_UPLOAD_INVALID", 416
    )


def test_blob_upload_unknown(registry: Server) -> None:
    r = registry.request("GET", "/v2/a/blobs/uploads/0b5fbb3e-6f4e-4b6a-9d0e-3a0bdfb2d7c1")
    _assert_envelope(r, "BLOB_UPLOAD_UNKNOWN", 404)


def test_digest_invalid(registry: Server) -> None:
    r = registry.request("POST", f"/v2/a/blobs/uploads/?digest={sha256(b'a')}", b"b")
    detail = _assert_envelope(r, "DIGEST_INVALID", 400)["detail"]
    assert detail == {"expected": sha256(b"a"), "actual": sha256(b"b")}


def test_manifest_blob_unknown(registry: Server) -> None:
    data = manifest_bytes(b"{}", [])
    r = registry.request("PUT", "/v2/a/manifests/v1", data, {"Content-Type": OCI_MANIFEST})
    _assert_envelope(r, "MANIFEST_BLOB_UNKNOWN", 400)


def test_manifest_invalid(registry: Server) -> None:
    r = registry.request("PUT", "/v2/a/manifests/v1", b"{", {"Content-Type": OCI_MANIFEST})
    _assert_envelope(r, "MANIFEST_INVALID", 400)


def test_manifest_unknown(registry: Server) -> None:
    _assert_envelope(registry.request("GET", "/v2/a/manifests/v1"), "MANIFEST_UNKNOWN", 404)


@pytest.mark.parametrize(
    "name",
    [
        "UPPER",
        "a..b",
        "-lead",
        "trail-",
        "a//b",
        "a/.hidden",
        "..",
        "a/../b",
        "%2e%2e/etc",
        "..%2F..%2Fetc",
        "a" * 256,
        "a/b_",
        "a___b",
    ],
)
def test_name_invalid(registry: Server, name: str) -> None:
    r = registry.request("GET", f"/v2/{name}/tags/list")
    _assert_envelope(r, "NAME_INVALID", 400)
    r = registry.request("POST", f"/v2/{name}/blobs/uploads/")
    _assert_envelope(r, "NAME_INVALID", 400)
    r = registry.request("GET", f"/v2/{name}/manifests/latest")
    _assert_envelope(r, "NAME_INVALID", 400)


def test_long_valid_names_and_separators_are_accepted(registry: Server) -> None:
    for name in ("a" * 255, "a.b_c__d---e/f0", "x/y/z/w"):
        registry.push_image(name, "v1")
        assert registry.request("GET", f"/v2/{name}/tags/list").status == 200


def test_name_unknown(registry: Server) -> None:
    _assert_envelope(registry.request("GET", "/v2/nothing/tags/list"), "NAME_UNKNOWN", 404)


def test_size_invalid(registry: Server) -> None:
    loc = registry.start_upload("a")
    _assert_envelope(
        registry.request("PATCH", loc, b"abc", {"Content-Range": "0-9"}), "SIZE_INVALID", 400
    )


def test_unsupported_method(registry: Server) -> None:
    r = registry.request("PATCH", "/v2/a/manifests/v1")
    _assert_envelope(r, "UNSUPPORTED", 405)
    assert set((r.header("Allow") or "").split(", ")) == {"DELETE", "GET", "HEAD", "PUT"}


def test_unknown_route_is_404(registry: Server) -> None:
    r = registry.request("GET", "/v2/a/unknown/thing")
    assert r.status == 404
    assert registry.request("GET", "/nothing").status == 404


def test_version_check(registry: Server) -> None:
    for path in ("/v2/", "/v2"):
        r = registry.request("GET", path)
        assert r.status == 200 and r.json() == {}
        assert r.header("Docker-Distribution-API-Version") == "registry/2.0"
    assert registry.request("HEAD", "/v2/").status == 200


def test_read_only_mode_refuses_every_write(make_registry: MakeRegistry) -> None:
    server = make_registry(readonly=True)
    d = sha256(b"x")
    for method, path in [
        ("POST", "/v2/a/blobs/uploads/"),
        ("POST", f"/v2/a/blobs/uploads/?digest={d}"),
        ("PUT", "/v2/a/manifests/v1"),
        ("DELETE", "/v2/a/manifests/v1"),
        ("DELETE", f"/v2/a/blobs/{d}"),
        ("PATCH", "/v2/a/blobs/uploads/0b5fbb3e-6f4e-4b6a-9d0e-3a0bdfb2d7c1"),
    ]:
        r = server.request(method, path, b"x")
        detail = _assert_envelope(r, "UNSUPPORTED", 405)
        assert "read-only" in r.json()["errors"][0]["message"], (method, path, detail)
    # reads still work
    assert server.request("GET", "/v2/").status == 200
    assert server.request("GET", "/v2/_catalog").status == 200


def test_too_many_requests(make_registry: MakeRegistry) -> None:
    server = make_registry(ratelimit=RateLimit(rate=0.5, burst=3))
    statuses = [server.request("GET", "/v2/").status for _ in range(5)]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]
    r = server.request("GET", "/v2/")
    _assert_envelope(r, "TOOMANYREQUESTS", 429)
    assert int(r.header("Retry-After") or "0") >= 1


class _BrokenDriver(InMemoryDriver):
    """Storage that fails under the registry: a disk error must become a logged 500."""

    async def stat(self, path: str) -> Any:
        raise OSError(5, "Input/output error")


def test_storage_failure_is_500_unknown(loop_thread: Any, tmp_path: Any) -> None:
    from aiohttp import web

    from dockyard.registry.app import create_app
    from dockyard.registry.config import RegistryConfig
    from tests.registry.conftest import Server

    async def build() -> web.Application:
        return create_app(RegistryConfig(), driver=_BrokenDriver())

    server = Server(loop_thread, loop_thread.run(build()), _BrokenDriver())
    server.start()
    try:
        r = server.request("GET", f"/v2/a/blobs/{sha256(b'x')}")
        assert r.status == 500
        assert r.json()["errors"][0]["code"] == "UNKNOWN"
        assert r.header("Docker-Distribution-API-Version") == "registry/2.0"
    finally:
        server.stop()


def test_every_response_has_api_version_header(registry: Server) -> None:
    digest = registry.push_blob("h", b"x")
    for method, path in [
        ("GET", "/v2/"),
        ("GET", f"/v2/h/blobs/{digest}"),
        ("HEAD", f"/v2/h/blobs/{digest}"),
        ("GET", "/v2/h/manifests/none"),
        ("POST", "/v2/h/blobs/uploads/"),
        ("GET", "/v2/_catalog"),
        ("GET", "/v2/UPPER/tags/list"),
    ]:
        r = registry.request(method, path)
        assert r.header("Docker-Distribution-API-Version") == "registry/2.0", (method, path)
