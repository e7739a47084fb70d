"""Pure pieces, by tables: grammar, manifest schema, Range and Content-Range parsing, Accept
negotiation, the path mapper, and configuration files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.errors import InvalidArgument
from dockyard.registry import grammar
from dockyard.registry.config import RegistryConfig, load_config, parse_addr, parse_config
from dockyard.registry.errcode import RegistryError
from dockyard.registry.handlers.blobs import parse_range
from dockyard.registry.handlers.manifests import accepts
from dockyard.registry.handlers.uploads import parse_content_range
from dockyard.registry.schema import ManifestInvalid, parse_manifest, stored_media_type
from dockyard.registry.storage import paths
from dockyard.registry.storage.driver import validate_path
from dockyard.registry.storage.errors import InvalidPath
from tests.registry.conftest import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    index_bytes,
    manifest_bytes,
    sha256,
)

pytestmark = pytest.mark.unit

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a", True),
        ("library/nginx", True),
        ("a.b-c_d__e---f/g0", True),
        ("a" * 255, True),
        ("a" * 256, False),
        ("A", False),
        ("a_", False),
        ("a___b", False),
        ("a/", False),
        ("/a", False),
        ("a//b", False),
        ("a/../b", False),
        (".a", False),
        ("", False),
    ],
)
def test_names(name: str, ok: bool) -> None:
    assert grammar.is_name(name) is ok


@pytest.mark.parametrize(
    ("tag", "ok"),
    [
        ("latest", True),
        ("v1.0-rc_1", True),
        ("_x", True),
        ("t" * 128, True),
        ("t" * 129, False),
        (".x", False),
        ("-x", False),
        ("a/b", False),
        ("a:b", False),
        ("", False),
    ],
)
def test_tags(tag: str, ok: bool) -> None:
    assert grammar.is_tag(tag) is ok


@pytest.mark.parametrize(
    ("digest", "ok"),
    [
        (D, True),
        ("sha512:" + "b" * 128, True),
        ("sha256:" + "A" * 64, False),
        ("sha256:" + "a" * 63, False),
        ("sha384:" + "a" * 96, False),
        ("sha256", False),
    ],
)
def test_digests(digest: str, ok: bool) -> None:
    assert grammar.is_digest(digest) is ok


@given(st.text(alphabet="abc./_-AZ09:%", max_size=40))
def test_no_name_or_tag_can_escape_a_path(text: str) -> None:
    for check, build in (
        (grammar.is_name, paths.repository_root),
        (grammar.is_tag, lambda t: paths.tag_root("repo", t)),
    ):
        if check(text):
            p = build(text)
            validate_path(p)
            assert ".." not in p.split("/")
        else:
            with pytest.raises(InvalidPath):
                build(text)


def test_path_layout() -> None:
    assert paths.blob_data_path(D) == f"/docker/registry/v2/blobs/sha256/aa/{'a' * 64}/data"
    assert paths.layer_link_path("lib/x", D) == (
        f"/docker/registry/v2/repositories/lib/x/_layers/sha256/{'a' * 64}/link"
    )
    assert paths.manifest_revision_link_path("x", D).endswith(
        f"/x/_manifests/revisions/sha256/{'a' * 64}/link"
    )
    assert paths.tag_current_link_path("x", "v1").endswith("/x/_manifests/tags/v1/current/link")
    assert paths.tag_index_link_path("x", "v1", D).endswith(
        f"/_manifests/tags/v1/index/sha256/{'a' * 64}/link"
    )
    assert paths.referrer_link_path("x", D, "sha512:" + "b" * 128).endswith(
        f"/x/_manifests/referrers/sha256/{'a' * 64}/sha512/{'b' * 128}/link"
    )
    uid = "0b5fbb3e-6f4e-4b6a-9d0e-3a0bdfb2d7c1"
    assert paths.upload_data_path("x", uid).endswith(f"/x/_uploads/{uid}/data")
    assert paths.upload_startedat_path("x", uid).endswith(f"/x/_uploads/{uid}/startedat")
    for bad in (lambda: paths.upload_root("x", "../../etc"), lambda: paths.blob_dir("sha256:x")):
        with pytest.raises(InvalidPath):
            bad()


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=2-", 10, (2, 9)),
        ("bytes=-4", 10, (6, 9)),
        ("bytes=3-1000", 10, (3, 9)),
        ("bytes = 1-2", 10, (1, 2)),
        ("bytes=1-2,4-5", 10, None),
        ("items=1-2", 10, None),
        ("bytes=-", 10, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=0-", 0)])
def test_parse_range_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RegistryError) as info:
        parse_range(header, size)
    assert info.value.status == 416
    assert info.value.headers["Content-Range"] == f"bytes */{size}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("0-9", (0, 9)),
        ("bytes=5-9", (5, 9)),
        ("bytes 0-4/10", (0, 4)),
        ("0-4/*", (0, 4)),
    ],
)
def test_parse_content_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_content_range(header) == expected


@pytest.mark.parametrize(("header", "status"), [("abc", 400), ("1-", 400), ("5-2", 416)])
def test_parse_content_range_errors(header: str, status: int) -> None:
    with pytest.raises(RegistryError) as info:
        parse_content_range(header)
    assert info.value.status == status


@pytest.mark.parametrize(
    ("accept", "media_type", "ok"),
    [
        ([], OCI_MANIFEST, True),
        (["*/*"], OCI_MANIFEST, True),
        ([f"{DOCKER_MANIFEST}, {OCI_MANIFEST};q=0.9"], OCI_MANIFEST, True),
        ([DOCKER_MANIFEST, OCI_MANIFEST], OCI_MANIFEST, True),
        (["application/*"], OCI_MANIFEST, True),
        ([DOCKER_MANIFEST], OCI_MANIFEST, False),
        ([OCI_MANIFEST.upper()], OCI_MANIFEST, True),
    ],
)
def test_accepts(accept: list[str], media_type: str, ok: bool) -> None:
    assert accepts(accept, media_type) is ok


def test_parse_manifest_reads_references() -> None:
    subject = b'{"s":1}'
    data = manifest_bytes(
        b"{}",
        [b"l1", b"l2"],
        subject=(subject, OCI_MANIFEST),
        artifact_type="a/b",
        annotations={"k": "v"},
    )
    m = parse_manifest(data, OCI_MANIFEST)
    assert m.media_type == OCI_MANIFEST and not m.is_index
    assert [r.digest for r in m.blob_refs()] == [sha256(b"{}"), sha256(b"l1"), sha256(b"l2")]
    assert m.subject is not None and m.subject.digest == sha256(subject)
    assert m.referrer_artifact_type() == "a/b"
    assert dict(m.annotations) == {"k": "v"}
    idx = parse_manifest(
        index_bytes(
            [(data, OCI_MANIFEST, {"os": "linux", "architecture": "arm64", "variant": "v8"})]
        )
    )
    assert idx.is_index and idx.manifests[0].platform == ("linux", "arm64", "v8")
    assert idx.referrer_artifact_type() == ""


def test_parse_manifest_infers_type_without_field() -> None:
    data = manifest_bytes(b"{}", [], media_type=None)
    assert parse_manifest(data).media_type == OCI_MANIFEST
    assert parse_manifest(data, "application/octet-stream").media_type == OCI_MANIFEST
    with pytest.raises(ManifestInvalid):
        parse_manifest(data, DOCKER_MANIFEST)
    with pytest.raises(ManifestInvalid):
        parse_manifest(data, OCI_INDEX)
    assert issubclass(ManifestInvalid, InvalidArgument)


def test_stored_media_type_never_raises() -> None:
    assert stored_media_type(b"garbage") == "application/octet-stream"
    assert stored_media_type(b"[1]") == "application/octet-stream"
    assert stored_media_type(b'{"manifests": []}') == OCI_INDEX
    assert stored_media_type(b'{"mediaType": "x/y"}') == "x/y"
    assert stored_media_type(json.dumps({"schemaVersion": 1}).encode()).endswith("prettyjws")


# -- configuration -----------------------------------------------------------------------------

YAML = """
version: 0.1
log:
  level: debug
storage:
  filesystem:
    rootdirectory: /srv/registry
  delete:
    enabled: true
  maintenance:
    readonly:
      enabled: false
    uploadpurging:
      enabled: true
      age: 168h
http:
  addr: 0.0.0.0:5005
  tls:
    certificate: /etc/r/cert.pem
    key: /etc/r/key.pem
  ratelimit:
    rate: 10
    burst: 20
auth:
  htpasswd:
    realm: dockyard
    path: /etc/r/htpasswd
"""

TOML = """
readonly = true
[log]
level = "warn"
[storage.inmemory]
[storage.delete]
enabled = false
[http]
addr = ":5000"
"""


def test_yaml_config(tmp_path: Path) -> None:
    f = tmp_path / "config.yml"
    f.write_text(YAML)
    cfg = load_config(f)
    assert cfg.storage == "filesystem" and cfg.root == Path("/srv/registry")
    assert cfg.delete_enabled and not cfg.readonly
    assert cfg.addr == "0.0.0.0:5005" and cfg.log_level == "debug"
    assert cfg.tls is not None and cfg.tls.certificate == Path("/etc/r/cert.pem")
    assert cfg.ratelimit is not None and (cfg.ratelimit.rate, cfg.ratelimit.burst) == (10.0, 20)
    assert cfg.auth == {"htpasswd": {"realm": "dockyard", "path": "/etc/r/htpasswd"}}
    assert cfg.raw["storage"]["maintenance"]["uploadpurging"]["age"] == "168h"


def test_toml_config(tmp_path: Path) -> None:
    f = tmp_path / "config.toml"
    f.write_text(TOML)
    cfg = load_config(f)
    assert cfg.storage == "inmemory" and cfg.readonly and not cfg.delete_enabled
    assert cfg.log_level == "warning" and cfg.addr == ":5000" and cfg.tls is None
    assert parse_addr(cfg.addr) == (None, 5000)


def test_defaults_and_overrides(tmp_path: Path) -> None:
    cfg = load_config(None)
    assert cfg == RegistryConfig()
    assert (cfg.storage, cfg.addr, cfg.delete_enabled, cfg.readonly) == (
        "filesystem",
        "127.0.0.1:5000",
        False,
        False,
    )
    over = parse_config({"storage": {"inmemory": {}}}).with_overrides(
        addr="127.0.0.1:0", root=tmp_path, log_level="ERROR"
    )
    assert (over.storage, over.root, over.addr, over.log_level) == (
        "filesystem",
        tmp_path,
        "127.0.0.1:0",
        "error",
    )
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(empty) == RegistryConfig()


@pytest.mark.parametrize(
    "data",
    [
        {"storage": {"s3": {}}},
        {"storage": {"filesystem": {}, "inmemory": {}}},
        {"storage": {"delete": {"enabled": "maybe"}}},
        {"storage": {"filesystem": {"rootdirectory": 5}}},
        {"http": {"addr": "nocolon"}},
        {"http": {"addr": "host:99999"}},
        {"http": {"tls": {"certificate": "/c"}}},
        {"http": {"ratelimit": {"rate": 0}}},
        {"log": {"level": "loud"}},
        {"auth": "yes"},
        {"storage": "filesystem"},
    ],
)
def test_bad_config_is_invalid_argument(data: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        parse_config(data)


def test_unreadable_or_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        load_config(tmp_path / "missing.yml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[unclosed")
    with pytest.raises(InvalidArgument):
        load_config(bad)
    bad_yaml = tmp_path / "bad.yml"
    bad_yaml.write_text("a: [unclosed")
    with pytest.raises(InvalidArgument):
        load_config(bad_yaml)
