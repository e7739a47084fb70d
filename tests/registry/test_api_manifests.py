"""Manifest endpoints: push by tag and digest, exact bytes, media types and content
negotiation, reference checks, tags on PUT, deletion of manifests and tags."""

from __future__ import annotations

import json

import pytest

from tests.registry.conftest import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    MakeRegistry,
    Server,
    index_bytes,
    manifest_bytes,
    sha256,
)

pytestmark = pytest.mark.unit


def _image(server: Server, name: str, seed: str, **kw: object) -> bytes:
    config = json.dumps({"seed": seed}).encode()
    layer = f"layer {seed}".encode()
    server.push_blob(name, config)
    server.push_blob(name, layer)
    return manifest_bytes(config, [layer], **kw)  # type: ignore[arg-type]


def test_push_by_tag_and_pull_by_tag_and_digest(any_registry: Server) -> None:
    data = _image(any_registry, "app", "a")
    digest = sha256(data)
    r = any_registry.push_manifest("app", "v1", data)
    assert r.header("Location") == f"/v2/app/manifests/{digest}"
    assert r.header("Docker-Content-Digest") == digest
    for ref in ("v1", digest):
        got = any_registry.request(
            "GET", f"/v2/app/manifests/{ref}", headers={"Accept": OCI_MANIFEST}
        )
        assert got.status == 200
        assert got.body == data  # exactly the pushed bytes (indented JSON)
        assert got.header("Content-Type") == OCI_MANIFEST
        assert got.header("Docker-Content-Digest") == digest
        head = any_registry.request("HEAD", f"/v2/app/manifests/{ref}")
        assert head.status == 200 and head.body == b""
        assert head.header("Content-Length") == str(len(data))
        assert head.header("Docker-Content-Digest") == digest


def test_push_by_digest(registry: Server) -> None:
    data = _image(registry, "app", "b")
    digest = sha256(data)
    r = registry.push_manifest("app", digest, data)
    assert r.header("Docker-Content-Digest") == digest
    assert registry.request("GET", f"/v2/app/manifests/{digest}").body == data


def test_push_by_digest_with_tag_params(registry: Server) -> None:
    data = _image(registry, "app", "c")
    digest = sha256(data)
    r = registry.request(
        "PUT",
        f"/v2/app/manifests/{digest}?tag=1.0&tag=1&tag=latest",
        data,
        {"Content-Type": OCI_MANIFEST},
    )
    assert r.status == 201
    assert r.header("OCI-Tag") == "1.0, 1, latest"
    assert registry.request("GET", "/v2/app/tags/list").json()["tags"] == ["1", "1.0", "latest"]


def test_wrong_digest_reference_is_digest_invalid(registry: Server) -> None:
    data = _image(registry, "app", "d")
    wrong = sha256(b"something else")
    r = registry.request("PUT", f"/v2/app/manifests/{wrong}", data, {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.codes() == ["DIGEST_INVALID"]
    assert registry.request("GET", f"/v2/app/manifests/{sha256(data)}").status == 404


def test_missing_blobs_are_manifest_blob_unknown(registry: Server) -> None:
    config, layers = b'{"c":1}', [b"layer-1", b"layer-2"]
    registry.push_blob("app", layers[0])  # config and layer-2 are missing
    data = manifest_bytes(config, layers)
    r = registry.request("PUT", "/v2/app/manifests/v1", data, {"Content-Type": OCI_MANIFEST})
    assert r.status == 400
    assert r.codes() == ["MANIFEST_BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"]
    missing = {e["detail"]["digest"] for e in r.json()["errors"]}
    assert missing == {sha256(config), sha256(layers[1])}
    assert registry.request("GET", "/v2/app/manifests/v1").status == 404


def test_blob_in_another_repository_does_not_count(registry: Server) -> None:
    config, layer = b'{"c":2}', b"layer elsewhere"
    registry.push_blob("other", config)
    registry.push_blob("other", layer)
    data = manifest_bytes(config, [layer])
    r = registry.request("PUT", "/v2/app/manifests/v1", data, {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.codes() == ["MANIFEST_BLOB_UNKNOWN"] * 2


def test_foreign_layers_with_urls_need_not_exist(registry: Server) -> None:
    config = b'{"foreign":1}'
    registry.push_blob("win", config)
    obj = json.loads(manifest_bytes(config, []))
    obj["layers"] = [
        {
            "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "digest": sha256(b"far away"),
            "size": 8,
            "urls": ["https://example.invalid/layer"],
        }
    ]
    r = registry.request(
        "PUT", "/v2/win/manifests/v1", json.dumps(obj).encode(), {"Content-Type": OCI_MANIFEST}
    )
    assert r.status == 201


def test_declared_size_must_match(registry: Server) -> None:
    config, layer = b'{"s":1}', b"sized layer"
    registry.push_blob("app", config)
    registry.push_blob("app", layer)
    obj = json.loads(manifest_bytes(config, [layer]))
    obj["layers"][0]["size"] = 999
    r = registry.request(
        "PUT", "/v2/app/manifests/v1", json.dumps(obj).encode(), {"Content-Type": OCI_MANIFEST}
    )
    assert r.status == 400 and r.codes() == ["SIZE_INVALID"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"schemaVersion": 1, "name": "x", "fsLayers": []}',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}',
        b'{"schemaVersion": 2, "mediaType": "text/plain", "config": {}}',
        b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:abc", "size": 1}}',
        b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "md5:ab", "size": 1}}',
        b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:'
        + b"a" * 64
        + b'", "size": -1}}',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}',
    ],
)
def test_invalid_manifests_are_manifest_invalid(registry: Server, body: bytes) -> None:
    r = registry.request("PUT", "/v2/app/manifests/bad", body, {"Content-Type": OCI_MANIFEST})
    assert r.status == 400 and r.codes() == ["MANIFEST_INVALID"], body


def test_content_type_must_agree_with_media_type(registry: Server) -> None:
    data = _image(registry, "app", "ct")
    r = registry.request("PUT", "/v2/app/manifests/v1", data, {"Content-Type": DOCKER_MANIFEST})
    assert r.status == 400 and r.codes() == ["MANIFEST_INVALID"]
    # parameters on Content-Type are ignored
    r = registry.request(
        "PUT", "/v2/app/manifests/v1", data, {"Content-Type": OCI_MANIFEST + "; charset=utf-8"}
    )
    assert r.status == 201


def test_manifest_without_media_type_field_is_served_as_oci(registry: Server) -> None:
    data = _image(registry, "app", "nomt", media_type=None)
    registry.push_manifest("app", "v1", data)
    r = registry.request("GET", "/v2/app/manifests/v1")
    assert r.header("Content-Type") == OCI_MANIFEST and r.body == data


def test_docker_schema2_manifest_and_list(registry: Server) -> None:
    config, layer = b'{"docker":1}', b"docker layer"
    registry.push_blob("d", config)
    registry.push_blob("d", layer)
    m = manifest_bytes(
        config,
        [layer],
        media_type=DOCKER_MANIFEST,
        config_type=DOCKER_CONFIG,
        layer_type=DOCKER_LAYER,
    )
    registry.push_manifest("d", "amd64", m, DOCKER_MANIFEST)
    lst = index_bytes(
        [(m, DOCKER_MANIFEST, {"os": "linux", "architecture": "amd64"})], media_type=DOCKER_LIST
    )
    registry.push_manifest("d", "latest", lst, DOCKER_LIST)
    r = registry.request(
        "GET", "/v2/d/manifests/latest", headers={"Accept": f"{DOCKER_LIST}, {DOCKER_MANIFEST}"}
    )
    assert r.header("Content-Type") == DOCKER_LIST and r.body == lst


def test_index_requires_child_manifests(registry: Server) -> None:
    child = _image(registry, "multi", "child")
    idx = index_bytes([(child, OCI_MANIFEST, {"os": "linux", "architecture": "amd64"})])
    r = registry.request("PUT", "/v2/multi/manifests/latest", idx, {"Content-Type": OCI_INDEX})
    assert r.status == 400 and r.codes() == ["MANIFEST_BLOB_UNKNOWN"]
    assert r.json()["errors"][0]["detail"]["digest"] == sha256(child)
    registry.push_manifest("multi", sha256(child), child)
    r = registry.request("PUT", "/v2/multi/manifests/latest", idx, {"Content-Type": OCI_INDEX})
    assert r.status == 201


def test_nested_index(registry: Server) -> None:
    child = _image(registry, "n", "leaf")
    registry.push_manifest("n", sha256(child), child)
    inner = index_bytes([(child, OCI_MANIFEST, None)])
    registry.push_manifest("n", sha256(inner), inner, OCI_INDEX)
    outer = index_bytes([(inner, OCI_INDEX, None)])
    registry.push_manifest("n", "outer", outer, OCI_INDEX)
    assert registry.request("GET", "/v2/n/manifests/outer").body == outer


def test_content_negotiation(registry: Server) -> None:
    data = _image(registry, "neg", "x")
    registry.push_manifest("neg", "v1", data)
    for accept in (
        OCI_MANIFEST,
        f"{DOCKER_MANIFEST}, {OCI_MANIFEST};q=0.5",
        "*/*",
        "application/*",
    ):
        r = registry.request("GET", "/v2/neg/manifests/v1", headers={"Accept": accept})
        assert r.status == 200, accept
    r = registry.request("GET", "/v2/neg/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert r.status == 404 and r.codes() == ["MANIFEST_UNKNOWN"]
    r = registry.request("HEAD", "/v2/neg/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert r.status == 404
    by_digest = f"/v2/neg/manifests/{sha256(data)}"
    r = registry.request("GET", by_digest, headers={"Accept": DOCKER_MANIFEST})
    assert r.status == 200 and r.header("Content-Type") == OCI_MANIFEST


def test_index_by_tag_falls_back_to_linux_amd64_for_old_clients(registry: Server) -> None:
    amd = _image(registry, "fb", "amd64")
    arm = _image(registry, "fb", "arm64")
    registry.push_manifest("fb", sha256(amd), amd)
    registry.push_manifest("fb", sha256(arm), arm)
    idx = index_bytes(
        [
            (arm, OCI_MANIFEST, {"os": "linux", "architecture": "arm64"}),
            (amd, OCI_MANIFEST, {"os": "linux", "architecture": "amd64"}),
        ]
    )
    registry.push_manifest("fb", "latest", idx, OCI_INDEX)
    r = registry.request("GET", "/v2/fb/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert r.status == 200
    assert r.body == amd and r.header("Docker-Content-Digest") == sha256(amd)
    # by digest the client named exact bytes: it gets them, whatever Accept says
    r = registry.request("GET", f"/v2/fb/manifests/{sha256(idx)}", headers={"Accept": OCI_MANIFEST})
    assert r.status == 200 and r.body == idx and r.header("Content-Type") == OCI_INDEX


def test_retag_moves_the_tag(registry: Server) -> None:
    one = _image(registry, "rt", "1")
    two = _image(registry, "rt", "2")
    registry.push_manifest("rt", "latest", one)
    registry.push_manifest("rt", "latest", two)
    assert registry.request("GET", "/v2/rt/manifests/latest").body == two
    # the old revision is still there by digest
    assert registry.request("GET", f"/v2/rt/manifests/{sha256(one)}").body == one


def test_unknown_manifest_is_404(registry: Server) -> None:
    r = registry.request("GET", "/v2/none/manifests/latest")
    assert r.status == 404 and r.codes() == ["MANIFEST_UNKNOWN"]
    r = registry.request("GET", f"/v2/none/manifests/{sha256(b'x')}")
    assert r.status == 404 and r.codes() == ["MANIFEST_UNKNOWN"]
    assert registry.request("HEAD", "/v2/none/manifests/latest").status == 404


def test_invalid_references(registry: Server) -> None:
    r = registry.request("GET", "/v2/app/manifests/sha256:totallywrong")
    assert r.status == 400 and r.codes() == ["DIGEST_INVALID"]
    r = registry.request("PUT", "/v2/app/manifests/sha256:totallywrong", b"{}")
    assert r.status == 400 and r.codes() == ["DIGEST_INVALID"]
    r = registry.request("GET", "/v2/app/manifests/-badtag")
    assert r.status == 400 and r.codes() == ["MANIFEST_INVALID"]
    r = registry.request("GET", "/v2/app/manifests/" + "t" * 129)
    assert r.status == 400 and r.codes() == ["MANIFEST_INVALID"]
    data = _image(registry, "app", "tq")
    r = registry.request(
        "PUT", f"/v2/app/manifests/{sha256(data)}?tag=-bad", data, {"Content-Type": OCI_MANIFEST}
    )
    assert r.status == 400 and r.codes() == ["MANIFEST_INVALID"]


def test_manifest_too_large_is_413(registry: Server) -> None:
    big = b'{"schemaVersion": 2, "pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    r = registry.request("PUT", "/v2/app/manifests/big", big, {"Content-Type": OCI_MANIFEST})
    assert r.status == 413 and r.codes() == ["MANIFEST_INVALID"]


def test_delete_manifest_by_digest_removes_its_tags(any_registry: Server) -> None:
    data = _image(any_registry, "del", "x")
    digest = sha256(data)
    any_registry.push_manifest("del", "v1", data)
    any_registry.push_manifest("del", "v2", data)
    keep = _image(any_registry, "del", "keep")
    any_registry.push_manifest("del", "keep", keep)
    r = any_registry.request("DELETE", f"/v2/del/manifests/{digest}")
    assert r.status == 202
    assert any_registry.request("GET", f"/v2/del/manifests/{digest}").status == 404
    assert any_registry.request("GET", "/v2/del/manifests/v1").status == 404
    assert any_registry.request("GET", "/v2/del/tags/list").json()["tags"] == ["keep"]
    again = any_registry.request("DELETE", f"/v2/del/manifests/{digest}")
    assert again.status == 404 and again.codes() == ["MANIFEST_UNKNOWN"]


def test_delete_tag_keeps_the_manifest(registry: Server) -> None:
    data = _image(registry, "dt", "x")
    registry.push_manifest("dt", "v1", data)
    registry.push_manifest("dt", "v2", data)
    assert registry.request("DELETE", "/v2/dt/manifests/v1").status == 202
    assert registry.request("GET", "/v2/dt/manifests/v1").status == 404
    assert registry.request("GET", "/v2/dt/manifests/v2").status == 200
    assert registry.request("GET", f"/v2/dt/manifests/{sha256(data)}").status == 200
    r = registry.request("DELETE", "/v2/dt/manifests/v1")
    assert r.status == 404 and r.codes() == ["MANIFEST_UNKNOWN"]


def test_delete_disabled_is_405(make_registry: MakeRegistry) -> None:
    server = make_registry(delete=False)
    data = _image(server, "nd", "x")
    server.push_manifest("nd", "v1", data)
    for ref in ("v1", sha256(data)):
        r = server.request("DELETE", f"/v2/nd/manifests/{ref}")
        assert r.status == 405 and r.codes() == ["UNSUPPORTED"]
    assert server.request("GET", "/v2/nd/manifests/v1").status == 200


def test_if_none_match_on_manifest(registry: Server) -> None:
    data = _image(registry, "etag", "x")
    registry.push_manifest("etag", "v1", data)
    r = registry.request(
        "GET", "/v2/etag/manifests/v1", headers={"If-None-Match": f'"{sha256(data)}"'}
    )
    assert r.status == 304
