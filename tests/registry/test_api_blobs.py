"""Blob endpoints: GET/HEAD with digests and ranges, DELETE, repository scoping."""

from __future__ import annotations

import os

import pytest

from tests.registry.conftest import Server, sha256

pytestmark = pytest.mark.unit


def test_get_and_head_blob(any_registry: Server) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    digest = any_registry.push_blob("lib/app", data)
    r = any_registry.request("GET", f"/v2/lib/app/blobs/{digest}")
    assert r.status == 200
    assert r.body == data
    assert r.header("Docker-Content-Digest") == digest
    assert r.header("Content-Type") == "application/octet-stream"
    assert r.header("Accept-Ranges") == "bytes"
    assert r.header("Docker-Distribution-API-Version") == "registry/2.0"
    h = any_registry.request("HEAD", f"/v2/lib/app/blobs/{digest}")
    assert h.status == 200 and h.body == b""
    assert h.header("Content-Length") == str(len(data))
    assert h.header("Docker-Content-Digest") == digest


def test_empty_blob(registry: Server) -> None:
    digest = registry.push_blob("e", b"")
    r = registry.request("GET", f"/v2/e/blobs/{digest}")
    assert (r.status, r.body, r.header("Content-Length")) == (200, b"", "0")


def test_unknown_blob_is_404_blob_unknown(registry: Server) -> None:
    registry.push_blob("r", b"x")
    missing = sha256(b"not pushed")
    r = registry.request("GET", f"/v2/r/blobs/{missing}")
    assert r.status == 404 and r.codes() == ["BLOB_UNKNOWN"]
    h = registry.request("HEAD", f"/v2/r/blobs/{missing}")
    assert h.status == 404 and h.body == b""


def test_blob_is_scoped_to_its_repository(registry: Server) -> None:
    digest = registry.push_blob("one", b"shared bytes")
    assert registry.request("GET", f"/v2/two/blobs/{digest}").status == 404
    # pushing it again elsewhere stores no second copy but links it there too
    registry.push_blob("two", b"shared bytes")
    assert registry.request("GET", f"/v2/two/blobs/{digest}").status == 200


@pytest.mark.parametrize(
    ("header", "status", "body", "content_range"),
    [
        ("bytes=0-3", 206, b"0123", "bytes 0-3/10"),
        ("bytes=4-", 206, b"456789", "bytes 4-9/10"),
        ("bytes=-3", 206, b"789", "bytes 7-9/10"),
        ("bytes=8-100", 206, b"89", "bytes 8-9/10"),
        ("bytes=-50", 206, b"0123456789", "bytes 0-9/10"),
        ("bytes=0-1,4-5", 200, b"0123456789", None),  # several ranges: ignored
        ("lines=1-2", 200, b"0123456789", None),  # not bytes: ignored
        ("bytes=5-2", 200, b"0123456789", None),  # backwards: ignored
    ],
)
def test_range_requests(
    registry: Server, header: str, status: int, body: bytes, content_range: str | None
) -> None:
    digest = registry.push_blob("rng", b"0123456789")
    r = registry.request("GET", f"/v2/rng/blobs/{digest}", headers={"Range": header})
    assert r.status == status
    assert r.body == body
    assert r.header("Content-Range") == content_range
    assert r.header("Docker-Content-Digest") == digest


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=10-20", "bytes=-0"])
def test_unsatisfiable_range_is_416(registry: Server, header: str) -> None:
    digest = registry.push_blob("rng", b"0123456789")
    r = registry.request("GET", f"/v2/rng/blobs/{digest}", headers={"Range": header})
    assert r.status == 416
    assert r.header("Content-Range") == "bytes */10"
    assert r.codes() == ["SIZE_INVALID"]


def test_head_with_range(registry: Server) -> None:
    digest = registry.push_blob("rng", b"0123456789")
    r = registry.request("HEAD", f"/v2/rng/blobs/{digest}", headers={"Range": "bytes=2-5"})
    assert r.status == 206 and r.header("Content-Length") == "4" and r.body == b""


def test_if_none_match_answers_304(registry: Server) -> None:
    digest = registry.push_blob("c", b"cached")
    r = registry.request("GET", f"/v2/c/blobs/{digest}", headers={"If-None-Match": f'"{digest}"'})
    assert r.status == 304 and r.body == b""


def test_malformed_digest_is_400_digest_invalid(registry: Server) -> None:
    for bad in ("sha256:xyz", "md5:abcd", "sha256:" + "A" * 64, "nodigest"):
        r = registry.request("GET", f"/v2/r/blobs/{bad}")
        assert r.status == 400, bad
        assert r.codes() == ["DIGEST_INVALID"]


def test_sha512_blobs_are_supported(registry: Server) -> None:
    import hashlib

    data = b"sha512 content"
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    r = registry.request("POST", f"/v2/s/blobs/uploads/?digest={digest}", data)
    assert r.status == 201
    got = registry.request("GET", f"/v2/s/blobs/{digest}")
    assert got.status == 200 and got.body == data


def test_delete_blob(registry: Server) -> None:
    digest = registry.push_blob("d", b"to delete")
    r = registry.request("DELETE", f"/v2/d/blobs/{digest}")
    assert r.status == 202
    assert registry.request("GET", f"/v2/d/blobs/{digest}").status == 404
    again = registry.request("DELETE", f"/v2/d/blobs/{digest}")
    assert again.status == 404 and again.codes() == ["BLOB_UNKNOWN"]


def test_delete_blob_keeps_other_repositories_links(registry: Server) -> None:
    digest = registry.push_blob("a", b"shared")
    registry.push_blob("b", b"shared")
    assert registry.request("DELETE", f"/v2/a/blobs/{digest}").status == 202
    assert registry.request("GET", f"/v2/b/blobs/{digest}").body == b"shared"


def test_delete_blob_disabled_is_405_unsupported(make_registry: object) -> None:
    server = make_registry(delete=False)  # type: ignore[operator]
    digest = server.push_blob("d", b"kept")
    r = server.request("DELETE", f"/v2/d/blobs/{digest}")
    assert r.status == 405 and r.codes() == ["UNSUPPORTED"]
    assert server.request("GET", f"/v2/d/blobs/{digest}").status == 200
