"""Blob uploads: monolithic, POST+PUT, chunked PATCH with Content-Range, status, resume,
cancel, cross-repository mount, verification and what stays invisible on failure."""

from __future__ import annotations

import asyncio
import http.client
import os
import socket
import time

import pytest

from dockyard.registry.handlers.base import STATE_KEY
from dockyard.registry.storage import paths
from tests.registry.conftest import MakeRegistry, Server, sha256

pytestmark = pytest.mark.unit


def _blob_data_exists(server: Server, digest: str) -> bool:
    async def check() -> bool:
        try:
            await server.driver.stat(paths.blob_data_path(digest))
        except Exception:
            return False
        return True

    return server.run(check())


def test_monolithic_post(any_registry: Server) -> None:
    data = b"monolithic"
    digest = sha256(data)
    r = any_registry.request("POST", f"/v2/m/blobs/uploads/?digest={digest}", data)
    assert r.status == 201
    assert r.header("Location") == f"/v2/m/blobs/{digest}"
    assert r.header("Docker-Content-Digest") == digest
    assert any_registry.request("GET", r.header("Location") or "").body == data


def test_post_then_put(any_registry: Server) -> None:
    data = os.urandom(2 * 1024 * 1024 + 3)
    digest = sha256(data)
    r = any_registry.request("POST", "/v2/pp/blobs/uploads/")
    assert r.status == 202
    location = r.header("Location") or ""
    uuid = r.header("Docker-Upload-UUID")
    assert uuid and location == f"/v2/pp/blobs/uploads/{uuid}"
    assert r.header("Range") == "0-0"
    put = any_registry.request("PUT", f"{location}?digest={digest}", data)
    assert put.status == 201
    assert put.header("Location") == f"/v2/pp/blobs/{digest}"
    assert put.header("Docker-Content-Digest") == digest
    assert any_registry.request("GET", f"/v2/pp/blobs/{digest}").body == data
    # the session is gone once committed
    assert any_registry.request("GET", location).status == 404


def test_chunked_upload_with_status_and_resume(any_registry: Server) -> None:
    data = os.urandom(100_000)
    digest = sha256(data)
    location = any_registry.start_upload("ch")
    a, b = data[:40_000], data[40_000:]
    r = any_registry.request(
        "PATCH",
        location,
        a,
        {"Content-Range": f"0-{len(a) - 1}", "Content-Type": "application/octet-stream"},
    )
    assert r.status == 202
    assert r.header("Range") == f"0-{len(a) - 1}"
    location = r.header("Location") or ""
    st = any_registry.request("GET", location)
    assert st.status == 204
    assert st.header("Range") == f"0-{len(a) - 1}"
    assert st.header("Location") == location
    assert st.header("Docker-Upload-UUID") == location.rsplit("/", 1)[1]
    r2 = any_registry.request("PATCH", location, b, {"Content-Range": f"{len(a)}-{len(data) - 1}"})
    assert r2.status == 202 and r2.header("Range") == f"0-{len(data) - 1}"
    put = any_registry.request("PUT", f"{location}?digest={digest}")
    assert put.status == 201
    assert any_registry.request("GET", f"/v2/ch/blobs/{digest}").body == data


def test_streamed_patch_without_content_range(registry: Server) -> None:
    data = b"streamed in one PATCH"
    location = registry.start_upload("st")
    r = registry.request("PATCH", location, data)
    assert r.status == 202 and r.header("Range") == f"0-{len(data) - 1}"
    assert registry.request("PUT", f"{location}?digest={sha256(data)}").status == 201


def test_final_chunk_in_put(registry: Server) -> None:
    data = b"first half|second half"
    location = registry.start_upload("fc")
    registry.request("PATCH", location, data[:11], {"Content-Range": "0-10"})
    put = registry.request(
        "PUT",
        f"{location}?digest={sha256(data)}",
        data[11:],
        {"Content-Range": f"11-{len(data) - 1}"},
    )
    assert put.status == 201
    assert registry.request("GET", f"/v2/fc/blobs/{sha256(data)}").body == data


def test_out_of_order_chunk_is_416(registry: Server) -> None:
    location = registry.start_upload("ooo")
    r = registry.request("PATCH", location, b"later", {"Content-Range": "5-9"})
    assert r.status == 416
    assert r.codes() == ["BLOB_UPLOAD_INVALID"]
    assert r.header("Range") == "0-0"
    assert r.header("Location") == location
    ok = registry.request("PATCH", location, b"first", {"Content-Range": "0-4"})
    assert ok.status == 202
    # retrying the same chunk is out of order now
    again = registry.request("PATCH", location, b"first", {"Content-Range": "0-4"})
    assert again.status == 416 and again.header("Range") == "0-4"


def test_out_of_order_final_chunk_in_put_is_416(registry: Server) -> None:
    location = registry.start_upload("ooo")
    registry.request("PATCH", location, b"abc", {"Content-Range": "0-2"})
    r = registry.request(
        "PUT", f"{location}?digest={sha256(b'abcdef')}", b"def", {"Content-Range": "4-6"}
    )
    assert r.status == 416


def test_malformed_content_range_is_400(registry: Server) -> None:
    location = registry.start_upload("cr")
    r = registry.request("PATCH", location, b"x", {"Content-Range": "bananas"})
    assert r.status == 400 and r.codes() == ["BLOB_UPLOAD_INVALID"]


def test_chunk_length_not_matching_range_is_size_invalid(registry: Server) -> None:
    location = registry.start_upload("sz")
    r = registry.request("PATCH", location, b"four", {"Content-Range": "0-9"})
    assert r.status == 400 and r.codes() == ["SIZE_INVALID"]
    # nothing was appended: the declared length was checked before writing
    assert registry.request("GET", location).header("Range") == "0-0"


def test_wrong_digest_on_put_stores_nothing(any_registry: Server) -> None:
    data = b"the real bytes"
    wrong = sha256(b"other bytes")
    location = any_registry.start_upload("wd")
    r = any_registry.request("PUT", f"{location}?digest={wrong}", data)
    assert r.status == 400 and r.codes() == ["DIGEST_INVALID"]
    assert any_registry.request("GET", f"/v2/wd/blobs/{wrong}").status == 404
    assert any_registry.request("GET", f"/v2/wd/blobs/{sha256(data)}").status == 404
    assert not _blob_data_exists(any_registry, wrong)
    assert not _blob_data_exists(any_registry, sha256(data))
    # and the session is gone
    assert any_registry.request("GET", location).status == 404


def test_wrong_digest_on_monolithic_post_stores_nothing(registry: Server) -> None:
    wrong = sha256(b"claimed")
    r = registry.request("POST", f"/v2/wd/blobs/uploads/?digest={wrong}", b"actual")
    assert r.status == 400 and r.codes() == ["DIGEST_INVALID"]
    assert not _blob_data_exists(registry, wrong)
    assert not _blob_data_exists(registry, sha256(b"actual"))


def test_put_without_digest_is_digest_invalid(registry: Server) -> None:
    location = registry.start_upload("nd")
    r = registry.request("PUT", location, b"x")
    assert r.status == 400 and r.codes() == ["DIGEST_INVALID"]
    r = registry.request("PUT", f"{location}?digest=sha256:short", b"x")
    assert r.status == 400 and r.codes() == ["DIGEST_INVALID"]


def test_unsupported_digest_algorithm(registry: Server) -> None:
    r = registry.request("POST", "/v2/alg/blobs/uploads/?digest-algorithm=md5")
    assert r.status == 400 and r.codes() == ["DIGEST_INVALID"]
    r = registry.request("POST", "/v2/alg/blobs/uploads/?digest-algorithm=sha512")
    assert r.status == 202


def test_unknown_upload_is_404(registry: Server) -> None:
    fake = "/v2/u/blobs/uploads/0b5fbb3e-6f4e-4b6a-9d0e-3a0bdfb2d7c1"
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        suffix = f"?digest={sha256(b'')}" if method == "PUT" else ""
        r = registry.request(method, fake + suffix, b"" if method in ("PATCH", "PUT") else None)
        assert r.status == 404, method
        assert r.codes() == ["BLOB_UPLOAD_UNKNOWN"]
    # ids outside the grammar are simply unknown (no path is built from them)
    r = registry.request("GET", "/v2/u/blobs/uploads/..%2F..%2Fetc")
    assert r.status == 404


def test_upload_belongs_to_its_repository(registry: Server) -> None:
    location = registry.start_upload("mine")
    other = location.replace("/v2/mine/", "/v2/theirs/")
    r = registry.request("PATCH", other, b"x")
    assert r.status == 404 and r.codes() == ["BLOB_UPLOAD_UNKNOWN"]


def test_cancel_upload(registry: Server) -> None:
    location = registry.start_upload("cancel")
    registry.request("PATCH", location, b"some bytes")
    r = registry.request("DELETE", location)
    assert r.status == 204
    assert registry.request("GET", location).status == 404
    assert registry.request("DELETE", location).status == 404


def test_mount_from_other_repository(any_registry: Server) -> None:
    digest = any_registry.push_blob("src/repo", b"layer to share")
    r = any_registry.request("POST", f"/v2/dst/repo/blobs/uploads/?mount={digest}&from=src/repo")
    assert r.status == 201
    assert r.header("Location") == f"/v2/dst/repo/blobs/{digest}"
    assert r.header("Docker-Content-Digest") == digest
    assert any_registry.request("GET", f"/v2/dst/repo/blobs/{digest}").body == b"layer to share"


def test_mount_of_missing_blob_falls_back_to_upload(registry: Server) -> None:
    registry.push_blob("src", b"something else")
    missing = sha256(b"never pushed")
    r = registry.request("POST", f"/v2/dst/blobs/uploads/?mount={missing}&from=src")
    assert r.status == 202
    assert (r.header("Location") or "").startswith("/v2/dst/blobs/uploads/")


def test_mount_without_from_finds_a_readable_repository(registry: Server) -> None:
    _data, _ = registry.push_image("origin", "v1", layers=[b"findable layer"])
    digest = sha256(b"findable layer")
    r = registry.request("POST", f"/v2/elsewhere/blobs/uploads/?mount={digest}")
    assert r.status == 201
    assert registry.request("GET", f"/v2/elsewhere/blobs/{digest}").status == 200
    # a digest nobody has: an upload session instead
    r = registry.request("POST", f"/v2/elsewhere/blobs/uploads/?mount={sha256(b'none')}")
    assert r.status == 202


def test_mount_with_bad_digest_or_source_name(registry: Server) -> None:
    r = registry.request("POST", "/v2/dst/blobs/uploads/?mount=sha256:nope&from=src")
    assert r.status == 400 and r.codes() == ["DIGEST_INVALID"]
    r = registry.request("POST", f"/v2/dst/blobs/uploads/?mount={sha256(b'x')}&from=Bad..Name")
    assert r.status == 400 and r.codes() == ["NAME_INVALID"]


def test_concurrent_pushes_of_the_same_blob(make_registry: MakeRegistry) -> None:
    server = make_registry(driver="filesystem")
    data = os.urandom(512 * 1024)
    digest = sha256(data)
    locations = [server.start_upload(f"c{i}") for i in range(8)]

    async def put(loc: str) -> int:
        return (
            await asyncio.to_thread(server.request, "PUT", f"{loc}?digest={digest}", data)
        ).status

    async def all_puts() -> list[int]:
        return list(await asyncio.gather(*(put(loc) for loc in locations)))

    assert asyncio.run(all_puts()) == [201] * 8
    for i in range(8):
        assert server.request("GET", f"/v2/c{i}/blobs/{digest}").body == data


def test_client_disconnect_mid_upload_leaves_nothing_visible(registry: Server) -> None:
    data = os.urandom(300_000)
    digest = sha256(data)
    location = registry.start_upload("dc")
    # send headers promising the whole blob, half the body, then vanish
    with socket.create_connection(("127.0.0.1", registry.port)) as sock:
        head = (
            f"PUT {location}?digest={digest} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {len(data)}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        sock.sendall(head.encode() + data[:100_000])
    # the blob is not visible, and the session can be resumed from what arrived
    for _ in range(100):
        st = registry.request("GET", location)
        if st.status == 204 and st.header("Range") != "0-0":
            break
        time.sleep(0.02)
    assert registry.request("GET", f"/v2/dc/blobs/{digest}").status == 404
    assert not _blob_data_exists(registry, digest)
    st = registry.request("GET", location)
    assert st.status == 204
    got = int((st.header("Range") or "0-0").split("-")[1]) + 1
    assert 0 < got <= 100_000
    r = registry.request("PATCH", location, data[got:], {"Content-Range": f"{got}-{len(data) - 1}"})
    assert r.status == 202
    assert registry.request("PUT", f"{location}?digest={digest}").status == 201
    assert registry.request("GET", f"/v2/dc/blobs/{digest}").body == data


def test_chunked_transfer_encoding_body(registry: Server) -> None:
    data = b"sent with Transfer-Encoding: chunked" * 1000
    location = registry.start_upload("te")
    conn = http.client.HTTPConnection("127.0.0.1", registry.port, timeout=10)
    try:
        conn.request("PATCH", location, body=iter([data[:5000], data[5000:]]), encode_chunked=True)
        r = conn.getresponse()
        r.read()
        assert r.status == 202
    finally:
        conn.close()
    assert registry.request("PUT", f"{location}?digest={sha256(data)}").status == 201


def test_resume_after_restart_rehashes(make_registry: MakeRegistry) -> None:
    """The running hash is lost with the process; finishing re-reads the session file."""
    server = make_registry(driver="filesystem")
    data = os.urandom(200_000)
    location = server.start_upload("rs")
    server.request("PATCH", location, data[:50_000], {"Content-Range": "0-49999"})
    state = server.app[STATE_KEY]
    state.registry.sessions._hashes.clear()  # what a restart does
    server.request("PATCH", location, data[50_000:], {"Content-Range": f"50000-{len(data) - 1}"})
    assert server.request("PUT", f"{location}?digest={sha256(data)}").status == 201
    assert server.request("GET", f"/v2/rs/blobs/{sha256(data)}").body == data
