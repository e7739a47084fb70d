"""The OCI distribution-spec conformance workflows, written as tests: pull, push, content
discovery, content management. Each step mirrors a check of the upstream suite
(``conformance/0{1,2,3,4}_*_test.go``, named in the step's message) and holds to the stricter
of what the spec requires and what this registry promises; every workflow runs on both
storage drivers. The upstream suite pushes its own content, so each workflow does too."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.registry.conftest import (
    EMPTY_JSON,
    OCI_INDEX,
    OCI_MANIFEST,
    Resp,
    Server,
    index_bytes,
    manifest_bytes,
    sha256,
)

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
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
DUMMY = "sha256:" + "b" * 64
ANNOTATION = "org.opencontainers.conformance.test"


def ok(r: Resp) -> bool:
    return 200 <= r.status < 300


def post_put(s: Server, name: str, data: bytes) -> Resp:
    r = s.request("POST", f"/v2/{name}/blobs/uploads/")
    assert r.status == 202
    return s.request(
        "PUT",
        f"{r.header('Location')}?digest={sha256(data)}",
        data,
        {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
    )


def test_pull(any_registry: Server) -> None:
    s, name = any_registry, "conformance/pull"
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    layer = os.urandom(4096)
    manifest = manifest_bytes(config, [layer], indent=None)
    # Setup
    assert ok(post_put(s, name, config)), "Populate registry with test blob"
    assert ok(post_put(s, name, layer)), "Populate registry with test layer"
    r = s.push_manifest(name, "tagtest0", manifest)
    assert ok(r), "Populate registry with test manifest"
    tags = s.request("GET", f"/v2/{name}/tags/list").json()["tags"]
    assert tags == ["tagtest0"], "Get the name of a tag"
    tag = tags[0]

    # Pull blobs
    r = s.request("HEAD", f"/v2/{name}/blobs/{DUMMY}")
    assert r.status == 404, "HEAD request to nonexistent blob should result in 404 response"
    r = s.request("HEAD", f"/v2/{name}/blobs/{sha256(config)}")
    assert r.status == 200, "HEAD request to existing blob should yield 200"
    assert r.header("Docker-Content-Digest") == sha256(config)
    assert r.header("Content-Length") == str(len(config))
    r = s.request("GET", f"/v2/{name}/blobs/{DUMMY}")
    assert r.status == 404, "GET nonexistent blob should result in 404 response"
    r = s.request("GET", f"/v2/{name}/blobs/{sha256(config)}")
    assert r.status == 200 and r.body == config, "GET request to existing blob URL should yield 200"
    assert r.header("Docker-Content-Digest") == sha256(config)

    # Pull manifests
    accept = {"Accept": OCI_MANIFEST}
    r = s.request("HEAD", f"/v2/{name}/manifests/.INVALID_MANIFEST_NAME")
    assert r.status in (400, 404), "HEAD request to nonexistent manifest should return 404"
    r = s.request("HEAD", f"/v2/{name}/manifests/nonexistent")
    assert r.status == 404
    r = s.request("HEAD", f"/v2/{name}/manifests/{sha256(manifest)}", headers=accept)
    assert r.status == 200, "HEAD request to manifest path (digest) should yield 200 response"
    assert r.header("Docker-Content-Digest") == sha256(manifest)
    assert r.header("Content-Length") == str(len(manifest))
    r = s.request("HEAD", f"/v2/{name}/manifests/{tag}", headers=accept)
    assert r.status == 200, "HEAD request to manifest path (tag) should yield 200 response"
    assert r.header("Docker-Content-Digest") == sha256(manifest)
    r = s.request("GET", f"/v2/{name}/manifests/nonexistent")
    assert r.status == 404, "GET nonexistent manifest should return 404"
    r = s.request("GET", f"/v2/{name}/manifests/{sha256(manifest)}", headers=accept)
    assert r.status == 200 and r.body == manifest, "GET manifest path (digest) should yield 200"
    r = s.request("GET", f"/v2/{name}/manifests/{tag}", headers=accept)
    assert r.status == 200 and r.body == manifest, "GET manifest path (tag) should yield 200"
    assert r.header("Content-Type") == OCI_MANIFEST

    # Error codes
    r = s.request(
        "PUT",
        f"/v2/{name}/manifests/sha256:totallywrong",
        b'{"schemaVersion": 2, "config": "nope"}',
        {"Content-Type": OCI_MANIFEST},
    )
    assert r.status in (400, 404), "400 response body should contain OCI-conforming JSON message"
    assert r.status == 400 and r.json()["errors"] and r.codes()[0] in SPEC_CODES

    # Teardown
    assert ok(s.request("DELETE", f"/v2/{name}/manifests/{sha256(manifest)}"))
    assert ok(s.request("DELETE", f"/v2/{name}/blobs/{sha256(config)}"))
    assert ok(s.request("DELETE", f"/v2/{name}/blobs/{sha256(layer)}"))


def test_push(any_registry: Server) -> None:
    s, name, cross = any_registry, "conformance/push", "conformance/crossmount"
    blob_a = os.urandom(1000)
    blob_b = os.urandom(2000)
    chunk1, chunk2 = blob_b[:1000], blob_b[1000:]
    ref_blob = b"reference blob A"
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": 1}).encode()
    layer = os.urandom(2048)

    # Setup
    assert ok(post_put(s, name, EMPTY_JSON)) and sha256(EMPTY_JSON) == EMPTY_JSON_DIGEST
    assert ok(post_put(s, name, ref_blob)), "Upload blob needed for further tests"

    # Blob Upload Streamed
    r = s.request("POST", f"/v2/{name}/blobs/uploads/")
    assert r.header("Location")
    r = s.request(
        "PATCH", r.header("Location") or "", blob_a, {"Content-Type": "application/octet-stream"}
    )
    assert r.status == 202, "PATCH request with blob in body should yield 202 response"
    r = s.request("PUT", f"{r.header('Location')}?digest={sha256(blob_a)}")
    assert r.status == 201 and r.header("Location"), "PUT to session URL with digest → 201"

    # Blob Upload Monolithic
    r = s.request("GET", f"/v2/{name}/blobs/{DUMMY}")
    assert r.status == 404, "GET nonexistent blob should result in 404 response"
    r = s.request(
        "POST",
        f"/v2/{name}/blobs/uploads/?digest={sha256(config)}",
        config,
        {"Content-Type": "application/octet-stream"},
    )
    assert r.status in (201, 202) and r.header("Location"), "POST with digest and blob → 201/202"
    monolithic = r.status
    r = s.request("GET", f"/v2/{name}/blobs/{sha256(config)}")
    assert r.status == (404 if monolithic == 202 else 200), "GET blob from prior request"
    r = s.request("POST", f"/v2/{name}/blobs/uploads/")
    assert r.status == 202, "POST request should yield a session ID"
    r = s.request("PUT", f"{r.header('Location')}?digest={sha256(config)}", config)
    assert r.status == 201 and r.header("Location"), "PUT upload of a blob should yield a 201"
    assert s.request("GET", f"/v2/{name}/blobs/{sha256(config)}").status == 200
    assert post_put(s, name, layer).status == 201, "PUT upload of a layer blob should yield 201"
    assert s.request("GET", f"/v2/{name}/blobs/{sha256(layer)}").status == 200

    # Blob Upload Chunked
    r = s.request("POST", f"/v2/{name}/blobs/uploads/", b"", {"Content-Length": "0"})
    assert r.header("Location") and r.header("OCI-Chunk-Min-Length") is None
    r = s.request(
        "PATCH",
        r.header("Location") or "",
        chunk2,
        {
            "Content-Range": f"{len(chunk1)}-{len(blob_b) - 1}",
            "Content-Type": "application/octet-stream",
        },
    )
    assert r.status == 416, "Out-of-order blob upload should return 416"
    prev = s.request("POST", f"/v2/{name}/blobs/uploads/", b"", {"Content-Length": "0"})
    first_range = f"0-{len(chunk1) - 1}"
    r = s.request("PATCH", prev.header("Location") or "", chunk1, {"Content-Range": first_range})
    assert r.status == 202 and r.header("Range") == first_range, "PATCH with first chunk → 202"
    r = s.request("PATCH", prev.header("Location") or "", chunk1, {"Content-Range": first_range})
    assert r.status == 416, "Retry previous blob chunk should return 416"
    r = s.request("GET", prev.header("Location") or "")
    assert r.status == 204 and r.header("Location"), "Get on stale blob upload → 204"
    assert r.header("Range") == first_range
    r = s.request(
        "PATCH",
        r.header("Location") or "",
        chunk2,
        {"Content-Range": f"{len(chunk1)}-{len(blob_b) - 1}"},
    )
    assert r.status == 202 and r.header("Range") == f"0-{len(blob_b) - 1}", "second chunk → 202"
    r = s.request(
        "PUT", f"{r.header('Location')}?digest={sha256(blob_b)}", b"", {"Content-Length": "0"}
    )
    assert r.status == 201 and r.header("Location"), "PUT request with digest should return 201"

    # Cross-Repository Blob Mount
    r = s.request("POST", f"/v2/{cross}/blobs/uploads/?mount={DUMMY}")
    assert r.status == 202 and r.header("Location"), "mount without from → session id"
    r = s.request("POST", f"/v2/{cross}/blobs/uploads/?mount={sha256(blob_a)}&from={name}")
    assert r.status in (201, 202), "POST to mount another repository's blob → 201 or 202"
    assert r.status == 201
    assert r.header("Location") == f"/v2/{cross}/blobs/{sha256(blob_a)}"
    assert s.request("GET", r.header("Location") or "").status == 200, "GET within cross-mount"
    # automatic content discovery (mount without from) is enabled here: it mounts
    r = s.request("POST", f"/v2/{cross}2/blobs/uploads/?mount={sha256(blob_a)}")
    assert r.status in (201, 202)

    # Manifest Upload
    manifest = manifest_bytes(config, [layer], indent=None)
    r = s.request("GET", f"/v2/{name}/manifests/nonexistent")
    assert r.status == 404, "GET nonexistent manifest should return 404"
    for i in range(4):
        r = s.request(
            "PUT", f"/v2/{name}/manifests/test{i}", manifest, {"Content-Type": OCI_MANIFEST}
        )
        assert r.status == 201 and r.header("Location"), "PUT should accept a manifest upload"
    empty_layers = manifest_bytes(config, [], indent=None)
    r = s.request(
        "PUT", f"/v2/{name}/manifests/emptylayer", empty_layers, {"Content-Type": OCI_MANIFEST}
    )
    assert r.status == 201, "Registry should accept a manifest upload with no layers"
    r = s.request(
        "GET", f"/v2/{name}/manifests/{sha256(manifest)}", headers={"Accept": OCI_MANIFEST}
    )
    assert r.status == 200, "GET request to manifest URL (digest) should yield 200 response"
    config_type = manifest_bytes(
        EMPTY_JSON, [ref_blob], config_type="application/vnd.oci.conformance", indent=None
    )
    r = s.request(
        "PUT",
        f"/v2/{name}/manifests/{sha256(config_type)}",
        config_type,
        {"Content-Type": OCI_MANIFEST},
    )
    assert ok(r), "manifest with custom config/mediaType (as artifact type)"
    artifact = manifest_bytes(
        EMPTY_JSON,
        [ref_blob],
        config_type="application/vnd.oci.empty.v1+json",
        artifact_type="application/vnd.oci.conformance",
        indent=None,
    )
    r = s.request(
        "PUT", f"/v2/{name}/manifests/{sha256(artifact)}", artifact, {"Content-Type": OCI_MANIFEST}
    )
    assert ok(r), "manifest with custom artifactType"
    idx = index_bytes(
        [(manifest, OCI_MANIFEST, None)],
        artifact_type="application/vnd.food.stand",
        annotations={ANNOTATION: "test index"},
    )
    r = s.request("PUT", f"/v2/{name}/manifests/{sha256(idx)}", idx, {"Content-Type": OCI_INDEX})
    assert ok(r), "Registry should accept a manifest upload with image index"
    nested = index_bytes([(idx, OCI_INDEX, None)], annotations={ANNOTATION: "test index"})
    r = s.request(
        "PUT", f"/v2/{name}/manifests/{sha256(nested)}", nested, {"Content-Type": OCI_INDEX}
    )
    assert ok(r), "Registry should accept a manifest upload with nested image index"
    dangling = manifest_bytes(
        EMPTY_JSON,
        [ref_blob],
        config_type="application/vnd.oci.empty.v1+json",
        subject=(b"never pushed", OCI_MANIFEST),
        indent=None,
    )
    r = s.request(
        "PUT", f"/v2/{name}/manifests/{sha256(dangling)}", dangling, {"Content-Type": OCI_MANIFEST}
    )
    assert ok(r), "PUT manifest with 'dangling' subject must not fail"
    assert r.header("OCI-Subject") == sha256(b"never pushed")

    # Teardown
    for digest in (sha256(manifest), sha256(config_type), sha256(artifact), sha256(empty_layers)):
        assert ok(s.request("DELETE", f"/v2/{name}/manifests/{digest}"))
    for digest in (sha256(config), sha256(layer), EMPTY_JSON_DIGEST):
        assert s.request("DELETE", f"/v2/{name}/blobs/{digest}").status in (202, 404)


def _setup_discovery(s: Server, name: str) -> dict[str, Any]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": 4}).encode()
    layer = os.urandom(1024)
    ref_a, ref_b = b"test ref blob A", b"test ref blob B"
    image = manifest_bytes(config, [layer], indent=None)
    missing = manifest_bytes(config, [b"other layer"], indent=None)
    type_a, type_b = (
        "application/vnd.nhl.peanut.butter.bagel",
        "application/vnd.nba.strawberry.jam.croissant",
    )
    for blob in (EMPTY_JSON, ref_a):
        assert ok(post_put(s, name, blob))

    def ref(
        blob: bytes, subject: bytes, config_type: str | None, art: str | None, note: str
    ) -> bytes:
        if config_type is not None:
            return manifest_bytes(
                EMPTY_JSON,
                [blob],
                config_type=config_type,
                layer_type=type_a,
                subject=(subject, OCI_MANIFEST),
                annotations={ANNOTATION: note},
                indent=None,
            )
        return manifest_bytes(
            EMPTY_JSON,
            [blob],
            config_type="application/vnd.oci.empty.v1+json",
            layer_type=art or "",
            artifact_type=art,
            subject=(subject, OCI_MANIFEST),
            annotations={ANNOTATION: note},
            indent=None,
        )

    a_config = ref(ref_a, image, type_a, None, "test config a")
    a_layer = ref(ref_a, image, None, type_a, "test layer a")
    out: dict[str, Any] = {"image": image, "missing": missing, "type_a": type_a}
    # referrers pushed before their subject
    for m in (a_config, a_layer):
        r = s.request("PUT", f"/v2/{name}/manifests/{sha256(m)}", m, {"Content-Type": OCI_MANIFEST})
        assert ok(r) and r.header("OCI-Subject") == sha256(image)
    idx = index_bytes(
        [(a_config, OCI_MANIFEST, None), (a_layer, OCI_MANIFEST, None)],
        subject=(image, OCI_MANIFEST),
        artifact_type="application/vnd.food.stand",
        annotations={ANNOTATION: "test index"},
    )
    r = s.request("PUT", f"/v2/{name}/manifests/{sha256(idx)}", idx, {"Content-Type": OCI_INDEX})
    assert ok(r) and r.header("OCI-Subject") == sha256(image)
    assert ok(post_put(s, name, config)) and ok(post_put(s, name, layer))
    assert ok(
        s.request("PUT", f"/v2/{name}/manifests/tagtest0", image, {"Content-Type": OCI_MANIFEST})
    )
    # and after it
    assert ok(post_put(s, name, ref_b))
    b_config = ref(ref_b, image, type_b, None, "test config b")
    b_layer = ref(ref_b, image, None, type_b, "test layer b")
    for m in (b_config, b_layer):
        r = s.request("PUT", f"/v2/{name}/manifests/{sha256(m)}", m, {"Content-Type": OCI_MANIFEST})
        assert ok(r) and r.header("OCI-Subject") == sha256(image)
    c_layer = ref(ref_b, missing, None, type_b, "test layer c")
    r = s.request(
        "PUT", f"/v2/{name}/manifests/{sha256(c_layer)}", c_layer, {"Content-Type": OCI_MANIFEST}
    )
    assert ok(r) and r.header("OCI-Subject") == sha256(missing)
    out["notes"] = {
        sha256(a_config): "test config a",
        sha256(a_layer): "test layer a",
        sha256(idx): "test index",
        sha256(b_config): "test config b",
        sha256(b_layer): "test layer b",
    }
    out["a_digests"] = {sha256(a_config), sha256(a_layer)}
    out["c_layer"] = sha256(c_layer)
    return out


def test_content_discovery(any_registry: Server) -> None:
    s, name = any_registry, "conformance/discovery"
    for i in range(4):
        s.push_image(name, f"test{i}") if i == 0 else None
    data = s.request("GET", f"/v2/{name}/manifests/test0").body
    for i in range(1, 4):
        s.push_manifest(name, f"test{i}", data)
    ctx = _setup_discovery(s, name)

    # listing tags
    r = s.request("GET", f"/v2/{name}/tags/list")
    assert r.status == 200, "GET request to list tags should yield 200 response"
    tags = r.json()["tags"]
    assert tags == sorted(tags) and len(tags) == 5
    half = len(tags) // 2
    r = s.request("GET", f"/v2/{name}/tags/list?n={half}")
    assert r.status == 200 and len(r.json()["tags"]) == half, "limitable by `n`"
    last = r.json()["tags"][half - 1]
    r = s.request("GET", f"/v2/{name}/tags/list?n={half}&last={last}")
    page = r.json()["tags"]
    assert r.status == 200 and len(page) <= half and last not in page, "start set by `last`"

    # listing referrers
    r = s.request("GET", f"/v2/{name}/referrers/{DUMMY}")
    assert r.status == 200 and r.header("Content-Type") == OCI_INDEX, "nonexistent → empty 200"
    assert r.json()["manifests"] == []
    image = ctx["image"]
    r = s.request("GET", f"/v2/{name}/referrers/{sha256(image)}")
    assert r.status == 200 and r.header("Content-Type") == OCI_INDEX, "existing → 200"
    manifests = r.json()["manifests"]
    assert len(manifests) == 5
    assert len({m["digest"] for m in manifests}) == 5
    for m in manifests:
        assert m["annotations"] == {ANNOTATION: ctx["notes"][m["digest"]]}
    r = s.request("GET", f"/v2/{name}/referrers/{sha256(image)}?artifactType={ctx['type_a']}")
    assert r.status == 200 and r.header("OCI-Filters-Applied") == "artifactType", "with filter"
    assert {m["digest"] for m in r.json()["manifests"]} == ctx["a_digests"]
    r = s.request("GET", f"/v2/{name}/referrers/{sha256(ctx['missing'])}")
    assert r.status == 200, "GET request to missing manifest should yield 200"
    assert [m["digest"] for m in r.json()["manifests"]] == [ctx["c_layer"]]

    # Teardown: delete created manifests & associated tags
    for m in manifests:
        assert ok(s.request("DELETE", f"/v2/{name}/manifests/{m['digest']}"))
    assert ok(s.request("DELETE", f"/v2/{name}/manifests/{sha256(image)}"))
    for i in range(4):
        assert s.request("DELETE", f"/v2/{name}/manifests/test{i}").status in (202, 404)


def test_content_management(any_registry: Server) -> None:
    s, name = any_registry, "conformance/management"
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": 2}).encode()
    manifest = manifest_bytes(config, [], indent=None)
    # Setup
    assert ok(post_put(s, name, config)), "Populate registry with test blob"
    r = s.request("PUT", f"/v2/{name}/manifests/tagtest0", manifest, {"Content-Type": OCI_MANIFEST})
    assert ok(r), "Populate registry with test tag"
    s.request("PUT", f"/v2/{name}/manifests/tagtest1", manifest, {"Content-Type": OCI_MANIFEST})
    num_tags = len(s.request("GET", f"/v2/{name}/tags/list").json()["tags"])
    assert num_tags == 2, "Check how many tags there are before anything gets deleted"

    # Manifest delete
    r = s.request("DELETE", f"/v2/{name}/manifests/tagtest0")
    assert r.status in (400, 202), "DELETE request to manifest tag should return 202"
    assert r.status == 202
    assert s.request("GET", f"/v2/{name}/manifests/tagtest0").status == 404
    r = s.request("DELETE", f"/v2/{name}/manifests/{sha256(manifest)}")
    assert r.status in (202, 404), "DELETE request to manifest (digest) → 202"
    assert r.status == 202
    r = s.request("GET", f"/v2/{name}/manifests/{sha256(manifest)}")
    assert r.status == 404, "GET request to deleted manifest URL should yield 404 response"
    r = s.request("GET", f"/v2/{name}/tags/list")
    assert r.status == 200 and len(r.json()["tags"]) < num_tags, "tags list reflects deletion"
    assert r.json()["tags"] == []

    # Blob delete
    r = s.request("DELETE", f"/v2/{name}/blobs/{sha256(config)}")
    assert r.status == 202, "DELETE request to blob URL should yield 202 response"
    r = s.request("GET", f"/v2/{name}/blobs/{sha256(config)}")
    assert r.status == 404, "GET request to deleted blob URL should yield 404 response"
