"""The referrers API and the OCI-Subject header."""

from __future__ import annotations

import pytest

from tests.registry.conftest import (
    EMPTY_JSON,
    OCI_INDEX,
    OCI_MANIFEST,
    Server,
    index_bytes,
    manifest_bytes,
    sha256,
)

pytestmark = pytest.mark.unit

SBOM = "application/vnd.example.sbom.v1"
SIG = "application/vnd.example.signature.v1"


def _setup(server: Server) -> tuple[bytes, list[bytes]]:
    subject, _ = server.push_image("ref", "v1")
    server.push_blob("ref", EMPTY_JSON)
    server.push_blob("ref", b"sbom body")
    server.push_blob("ref", b"signature body")
    sbom = manifest_bytes(
        EMPTY_JSON,
        [b"sbom body"],
        config_type="application/vnd.oci.empty.v1+json",
        artifact_type=SBOM,
        subject=(subject, OCI_MANIFEST),
        annotations={"org.example.kind": "sbom"},
    )
    # no artifactType: the config media type stands for it
    sig = manifest_bytes(
        b"signature body",
        [],
        config_type=SIG,
        subject=(subject, OCI_MANIFEST),
        annotations={"org.example.kind": "sig"},
    )
    return subject, [sbom, sig]


def test_oci_subject_header_and_listing(any_registry: Server) -> None:
    subject, (sbom, sig) = _setup(any_registry)
    for m in (sbom, sig):
        r = any_registry.push_manifest("ref", sha256(m), m)
        assert r.header("OCI-Subject") == sha256(subject)
    r = any_registry.request("GET", f"/v2/ref/referrers/{sha256(subject)}")
    assert r.status == 200
    assert r.header("Content-Type") == OCI_INDEX
    assert r.header("OCI-Filters-Applied") is None
    body = r.json()
    assert body["schemaVersion"] == 2 and body["mediaType"] == OCI_INDEX
    by_digest = {d["digest"]: d for d in body["manifests"]}
    assert by_digest == {
        sha256(sbom): {
            "mediaType": OCI_MANIFEST,
            "digest": sha256(sbom),
            "size": len(sbom),
            "artifactType": SBOM,
            "annotations": {"org.example.kind": "sbom"},
        },
        sha256(sig): {
            "mediaType": OCI_MANIFEST,
            "digest": sha256(sig),
            "size": len(sig),
            "artifactType": SIG,
            "annotations": {"org.example.kind": "sig"},
        },
    }


def test_artifact_type_filter(registry: Server) -> None:
    subject, (sbom, sig) = _setup(registry)
    registry.push_manifest("ref", sha256(sbom), sbom)
    registry.push_manifest("ref", sha256(sig), sig)
    r = registry.request("GET", f"/v2/ref/referrers/{sha256(subject)}?artifactType={SBOM}")
    assert r.header("OCI-Filters-Applied") == "artifactType"
    assert [d["digest"] for d in r.json()["manifests"]] == [sha256(sbom)]
    r = registry.request("GET", f"/v2/ref/referrers/{sha256(subject)}?artifactType=none/such")
    assert r.json()["manifests"] == []


def test_dangling_subject_is_accepted_and_listed(registry: Server) -> None:
    absent = b'{"never": "pushed"}'
    registry.push_blob("dang", EMPTY_JSON)
    m = manifest_bytes(EMPTY_JSON, [], artifact_type=SBOM, subject=(absent, OCI_MANIFEST))
    r = registry.push_manifest("dang", sha256(m), m)
    assert r.header("OCI-Subject") == sha256(absent)
    listed = registry.request("GET", f"/v2/dang/referrers/{sha256(absent)}").json()
    assert [d["digest"] for d in listed["manifests"]] == [sha256(m)]


def test_index_referrer_without_artifact_type_omits_it(registry: Server) -> None:
    subject, (sbom, _) = _setup(registry)
    registry.push_manifest("ref", sha256(sbom), sbom)
    idx = index_bytes(
        [(sbom, OCI_MANIFEST, None)],
        subject=(subject, OCI_MANIFEST),
        annotations={"k": "v"},
    )
    r = registry.push_manifest("ref", sha256(idx), idx, OCI_INDEX)
    assert r.header("OCI-Subject") == sha256(subject)
    listed = registry.request("GET", f"/v2/ref/referrers/{sha256(subject)}").json()["manifests"]
    entry = next(d for d in listed if d["digest"] == sha256(idx))
    assert entry == {
        "mediaType": OCI_INDEX,
        "digest": sha256(idx),
        "size": len(idx),
        "annotations": {"k": "v"},
    }


def test_deleted_referrer_disappears(registry: Server) -> None:
    subject, (sbom, sig) = _setup(registry)
    registry.push_manifest("ref", sha256(sbom), sbom)
    registry.push_manifest("ref", sha256(sig), sig)
    assert registry.request("DELETE", f"/v2/ref/manifests/{sha256(sbom)}").status == 202
    listed = registry.request("GET", f"/v2/ref/referrers/{sha256(subject)}").json()
    assert [d["digest"] for d in listed["manifests"]] == [sha256(sig)]


def test_referrers_are_per_repository(registry: Server) -> None:
    subject, (sbom, _) = _setup(registry)
    registry.push_manifest("ref", sha256(sbom), sbom)
    r = registry.request("GET", f"/v2/elsewhere/referrers/{sha256(subject)}")
    assert r.status == 200 and r.json()["manifests"] == []


def test_no_referrers_is_an_empty_index(registry: Server) -> None:
    r = registry.request("GET", f"/v2/nothing/referrers/{sha256(b'nothing')}")
    assert r.status == 200
    assert r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_malformed_digest_is_400(registry: Server) -> None:
    r = registry.request("GET", "/v2/ref/referrers/sha256:nothex")
    assert r.status == 400 and r.codes() == ["DIGEST_INVALID"]


def test_manifest_without_subject_has_no_oci_subject_header(registry: Server) -> None:
    data, _ = registry.push_image("plain", "v1")
    r = registry.push_manifest("plain", "v2", data)
    assert r.header("OCI-Subject") is None
