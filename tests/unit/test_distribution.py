"""The registry client's pure parts: challenges, credentials, endpoints, platforms, progress,
error wording, manifests — tables of input → output."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dockyard.daemon.api.distribution import pull_reference
from dockyard.distribution.auth import (
    AuthConfig,
    Challenge,
    oauth_form,
    parse_challenges,
    parse_token_response,
    repository_scope,
    token_query,
)
from dockyard.distribution.client import manifest_media_type
from dockyard.distribution.endpoints import Endpoint, EndpointConfig, normalize_server_address
from dockyard.distribution.errors import (
    RegistryError,
    RegistryUnreachable,
    parse_error_body,
    translate_error,
    translate_pull_error,
)
from dockyard.distribution.metadata import BlobMetadata, CompressedBlob
from dockyard.distribution.platforms import parse_platform
from dockyard.distribution.progress import (
    ProgressTracker,
    human_size,
    message,
    progress_bar,
    progress_message,
)
from dockyard.distribution.push import docker_manifest
from dockyard.errors import (
    Forbidden,
    InvalidArgument,
    NotFound,
    Unauthorized,
    Unavailable,
)
from dockyard.oci import mediatypes
from dockyard.oci.descriptor import Descriptor, Platform
from dockyard.oci.manifest import Index
from dockyard.reference import Reference, parse
from dockyard.store.db import Database

pytestmark = pytest.mark.unit

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


# -- challenges ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            ['Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'],
            [
                Challenge(
                    "bearer",
                    {"realm": "https://auth.docker.io/token", "service": "registry.docker.io"},
                )
            ],
        ),
        (
            [
                'Bearer realm="http://127.0.0.1:1/token",service="reg",'
                'scope="repository:a/b:pull,push",error="insufficient_scope"'
            ],
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "http://127.0.0.1:1/token",
                        "service": "reg",
                        "scope": "repository:a/b:pull,push",
                        "error": "insufficient_scope",
                    },
                )
            ],
        ),
        (['Basic realm="basic-realm"'], [Challenge("basic", {"realm": "basic-realm"})]),
        (["BASIC Realm=unquoted"], [Challenge("basic", {"realm": "unquoted"})]),
        (
            ['Basic realm="a", Bearer realm="b",service="s"'],
            [
                Challenge("basic", {"realm": "a"}),
                Challenge("bearer", {"realm": "b", "service": "s"}),
            ],
        ),
        (
            ['Basic realm="x"', 'Bearer realm="y"'],
            [Challenge("basic", {"realm": "x"}), Challenge("bearer", {"realm": "y"})],
        ),
        (
            ['Bearer realm="with \\"quote\\", comma"'],
            [Challenge("bearer", {"realm": 'with "quote", comma'})],
        ),
        (["Negotiate"], [Challenge("negotiate", {})]),
        ([""], []),
    ],
)
def test_parse_challenges(headers: list[str], expected: list[Challenge]) -> None:
    assert parse_challenges(headers) == expected


def test_challenge_scopes_split_on_spaces() -> None:
    (c,) = parse_challenges(['Bearer realm="r",scope="repository:a:pull repository:b:pull"'])
    assert c.scopes == ["repository:a:pull", "repository:b:pull"]
    assert c.realm == "r" and c.service == ""


# -- credentials and tokens -------------------------------------------------------------------


def _b64url(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode()


def test_auth_header_decoding() -> None:
    assert AuthConfig.from_header(None) == AuthConfig()
    assert AuthConfig.from_header("e30=") == AuthConfig()
    assert AuthConfig.from_header("e30") == AuthConfig()  # padding optional
    got = AuthConfig.from_header(
        _b64url({"username": "u", "password": "p?>", "serveraddress": "127.0.0.1:5000"})
    )
    assert got == AuthConfig("u", "p?>", "127.0.0.1:5000")
    assert got.has_credentials
    assert AuthConfig.from_header(_b64url({"identitytoken": "rt"})).identity_token == "rt"
    # docker-py style: "auth" holds base64(user:pass)
    enc = base64.b64encode(b"alice:s3:cret").decode()
    assert AuthConfig.from_header(_b64url({"auth": enc})) == AuthConfig("alice", "s3:cret")
    with pytest.raises(InvalidArgument):
        AuthConfig.from_header("!!!not base64!!!")


def test_token_requests() -> None:
    challenge = Challenge("bearer", {"realm": "https://auth/token", "service": "reg"})
    scopes = [repository_scope("library/busybox", ["pull"])]
    assert scopes == ["repository:library/busybox:pull"]
    assert token_query(challenge, scopes, AuthConfig(), offline=False) == [
        ("service", "reg"),
        ("scope", "repository:library/busybox:pull"),
    ]
    assert token_query(challenge, [], AuthConfig("u", "p"), offline=True) == [
        ("service", "reg"),
        ("account", "u"),
        ("offline_token", "true"),
        ("client_id", "docker"),
    ]
    assert oauth_form(challenge, scopes, AuthConfig(identity_token="rt"), offline=False) == {
        "client_id": "docker",
        "scope": "repository:library/busybox:pull",
        "service": "reg",
        "grant_type": "refresh_token",
        "refresh_token": "rt",
    }
    form = oauth_form(challenge, scopes, AuthConfig("u", "p"), offline=True)
    assert form["grant_type"] == "password" and form["access_type"] == "offline"


def test_token_response() -> None:
    tok = parse_token_response(b'{"token":"abc","expires_in":300}', now=1000.0)
    assert tok.token == "abc" and tok.valid(1000.0 + 200) and not tok.valid(1000.0 + 300)
    tok = parse_token_response(b'{"access_token":"x","token":"y","refresh_token":"r"}', now=0.0)
    assert tok.token == "x" and tok.refresh_token == "r"
    assert tok.valid(50.0)  # at least 60 s (renewed a little early)
    with pytest.raises(InvalidArgument):
        parse_token_response(b'{"expires_in":3}')


# -- endpoints ------------------------------------------------------------------------------------


def test_docker_io_goes_through_mirrors_in_order() -> None:
    cfg = EndpointConfig(
        ["http://127.0.0.1:5000/", "https://mirror.example"], official="https://official.test"
    )
    assert cfg.endpoints("docker.io") == [
        Endpoint("http://127.0.0.1:5000", mirror=True),
        Endpoint("https://mirror.example", mirror=True),
        Endpoint("https://official.test"),
    ]
    assert cfg.endpoints("docker.io", mirrors=False) == [Endpoint("https://official.test")]


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("127.0.0.1:5000", [Endpoint("http://127.0.0.1:5000")]),
        ("127.8.9.10", [Endpoint("http://127.8.9.10")]),
        ("localhost:5000", [Endpoint("http://localhost:5000")]),
        ("[::1]:5000", [Endpoint("http://[::1]:5000")]),
        (
            "myreg:5000",
            [Endpoint("https://myreg:5000", tls_verify=False), Endpoint("http://myreg:5000")],
        ),
        (
            "10.1.2.3:5000",
            [Endpoint("https://10.1.2.3:5000", tls_verify=False), Endpoint("http://10.1.2.3:5000")],
        ),
        ("secure.example:443", [Endpoint("https://secure.example:443")]),
        ("10.9.9.9", [Endpoint("https://10.9.9.9", tls_verify=False), Endpoint("http://10.9.9.9")]),
        ("192.168.1.1", [Endpoint("https://192.168.1.1")]),
    ],
)
def test_endpoints_for_registries(domain: str, expected: list[Endpoint]) -> None:
    cfg = EndpointConfig([], ["myreg:5000", "10.0.0.0/8"])
    assert cfg.endpoints(domain) == expected


@pytest.mark.parametrize(
    "mirror", ["ftp://x", "http://u:p@host", "https://host/path", "https://host?q=1", "nohost"]
)
def test_invalid_mirrors_are_refused(mirror: str) -> None:
    with pytest.raises(InvalidArgument):
        EndpointConfig([mirror])


@pytest.mark.parametrize(
    ("address", "domain"),
    [
        ("", "docker.io"),
        ("https://index.docker.io/v1/", "docker.io"),
        ("docker.io", "docker.io"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("http://127.0.0.1:5000/", "127.0.0.1:5000"),
        ("registry.example/v2/", "registry.example"),
    ],
)
def test_normalize_server_address(address: str, domain: str) -> None:
    assert normalize_server_address(address) == domain


# -- platforms --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "platform"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/arm64", Platform("linux", "arm64")),
        ("linux/arm64/v8", Platform("linux", "arm64")),
        ("linux/arm/v7", Platform("linux", "arm", "v7")),
        ("linux/arm/7", Platform("linux", "arm", "v7")),
        ("arm64", Platform("linux", "arm64")),
        ("linux/x86_64", Platform("linux", "amd64")),
        ("linux/aarch64", Platform("linux", "arm64")),
        ("linux", Platform("linux", "amd64")),
    ],
)
def test_parse_platform(text: str, platform: Platform) -> None:
    assert parse_platform(text) == platform


@pytest.mark.parametrize("text", ["", "linux//amd64", "a/b/c/d", "/"])
def test_parse_platform_refuses(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_platform(text)


def _index(*platforms: Platform | None) -> Index:
    entries = []
    for i, p in enumerate(platforms):
        digest = "sha256:" + f"{i + 1}" * 64
        entries.append(Descriptor(mediatypes.OCI_MANIFEST, digest, 100, platform=p))
    return Index(tuple(entries))


def test_platform_selection_from_an_index() -> None:
    index = _index(Platform("linux", "arm64", "v8"), Platform("linux", "amd64"))
    assert index.select(Platform("linux", "amd64")).digest == D2
    assert index.select(parse_platform("linux/arm64")).digest == D1
    arm_only = _index(Platform("linux", "arm64"))
    with pytest.raises(InvalidArgument) as err:
        arm_only.select(Platform("linux", "amd64"))
    assert str(err.value) == "no matching manifest for linux/amd64 in the manifest list entries"
    armv = _index(Platform("linux", "arm", "v6"), Platform("linux", "arm", "v7"))
    assert armv.select(parse_platform("linux/arm/v7")).digest == D2


# -- progress ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (512, "512B"),
        (1000, "1kB"),
        (65536, "65.54kB"),
        (4066162, "4.066MB"),
        (1982360, "1.982MB"),
        (39424, "39.42kB"),
        (3 * 10**9, "3GB"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


def test_progress_bar_matches_dockerd() -> None:
    assert progress_bar(65536, 4066162) == "[>" + " " * 50 + "]  65.54kB/4.066MB"
    assert progress_bar(2033081, 4066162) == "[" + "=" * 25 + ">" + " " * 25 + "]  2.033MB/4.066MB"
    assert progress_bar(4066162, 4066162) == "[" + "=" * 50 + ">]  4.066MB/4.066MB"
    assert progress_bar(0, 0) == ""
    assert progress_bar(5000, 0) == "     5kB"
    assert progress_bar(6000, 5000) == "[" + "=" * 50 + ">]      6kB"


def test_progress_message_shapes() -> None:
    assert message("Pulling fs layer", "581cdebca008") == {
        "status": "Pulling fs layer",
        "progressDetail": {},
        "id": "581cdebca008",
    }
    assert message("Digest: sha256:x") == {"status": "Digest: sha256:x"}
    assert progress_message("Downloading", "581cdebca008", 65536, 4066162) == {
        "status": "Downloading",
        "progressDetail": {"current": 65536, "total": 4066162},
        "progress": "[>" + " " * 50 + "]  65.54kB/4.066MB",
        "id": "581cdebca008",
    }


def test_progress_tracker_throttles_but_reports_the_end() -> None:
    now = [0.0]
    got: list[dict[str, object]] = []
    tracker = ProgressTracker(got.append, "Downloading", "abc", 100, clock=lambda: now[0])
    tracker.update(10)  # first: sent
    tracker.update(20)  # too soon: dropped
    now[0] = 0.5
    tracker.update(30)
    tracker.update(100)  # the end: always sent
    assert [m["progressDetail"] for m in got] == [
        {"current": 10, "total": 100},
        {"current": 30, "total": 100},
        {"current": 100, "total": 100},
    ]


# -- errors -------------------------------------------------------------------------------------


def test_error_bodies() -> None:
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}'
    err = parse_error_body(404, body)
    assert (err.code, err.message, str(err)) == (
        "MANIFEST_UNKNOWN",
        "manifest unknown",
        "manifest unknown: manifest unknown",
    )
    assert str(parse_error_body(401, b"")) == "unauthorized: authentication required"
    assert str(parse_error_body(401, b'{"details":"incorrect username or password"}')) == (
        "unauthorized: incorrect username or password"
    )
    assert (
        str(parse_error_body(403, b"nope")) == "denied: requested access to the resource is denied"
    )
    assert "502 Bad Gateway" in str(parse_error_body(502, b"<html>"))


def test_pull_errors_use_dockers_wording() -> None:
    ref = parse("127.0.0.1:5921/nosuchimage:1")
    manifest_unknown = RegistryError(404, "MANIFEST_UNKNOWN", "manifest unknown")
    got = translate_pull_error(manifest_unknown, ref)
    assert isinstance(got, NotFound)
    assert got.message == (
        "manifest for 127.0.0.1:5921/nosuchimage:1 not found: manifest unknown: manifest unknown"
    )
    denied = RegistryError(401, "DENIED", "requested access to the resource is denied")
    got = translate_pull_error(denied, parse("nosuch"))
    assert isinstance(got, NotFound)
    assert got.message == (
        "pull access denied for nosuch, repository does not exist or may require 'docker login':"
        " denied: requested access to the resource is denied"
    )
    name_unknown = RegistryError(404, "NAME_UNKNOWN", "repository name not known to registry")
    assert "repository does not exist or may require 'docker login'" in str(
        translate_pull_error(name_unknown, ref)
    )
    unauthorized = translate_pull_error(
        RegistryError(401, "UNAUTHORIZED", "authentication required"), ref
    )
    assert isinstance(unauthorized, Unauthorized)
    assert unauthorized.message == "unauthorized: authentication required"
    down = translate_error(
        RegistryUnreachable(
            "GET", "http://127.0.0.1:1/v2/", "dial tcp 127.0.0.1:1: connect: connection refused"
        )
    )
    assert isinstance(down, Unavailable)
    assert (
        down.message
        == 'Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused'
    )
    assert isinstance(translate_error(RegistryError(403, "DENIED", "no")), Forbidden)


# -- manifests and references -------------------------------------------------------------------


def test_manifest_media_type_detection() -> None:
    assert manifest_media_type(b'{"schemaVersion":1,"name":"x"}', "") == (
        "application/vnd.docker.distribution.manifest.v1+json"
    )
    body = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.DOCKER_MANIFEST}).encode()
    assert manifest_media_type(body, "application/json") == mediatypes.DOCKER_MANIFEST
    assert manifest_media_type(b'{"schemaVersion":2,"manifests":[]}', "") == mediatypes.OCI_INDEX
    assert manifest_media_type(b'{"schemaVersion":2,"config":{}}', mediatypes.OCI_MANIFEST) == (
        mediatypes.OCI_MANIFEST
    )
    with pytest.raises(InvalidArgument):
        manifest_media_type(b"[]", "")


def test_docker_manifest_is_formatted_as_dockerd_does() -> None:
    data = docker_manifest(
        Descriptor(mediatypes.DOCKER_CONFIG, D1, 1470),
        [Descriptor(mediatypes.DOCKER_LAYER_GZIP, D2, 1114355)],
    )
    text = data.decode()
    assert text.startswith('{\n   "schemaVersion": 2,\n   "mediaType": ')
    assert (
        '\n   "config": {\n      "mediaType": "application/vnd.docker.container.image.v1+json",\n      "size": 1470,'
        in text
    )
    assert not text.endswith("\n")
    assert json.loads(data)["layers"][0] == {
        "mediaType": mediatypes.DOCKER_LAYER_GZIP,
        "size": 1114355,
        "digest": D2,
    }


@pytest.mark.parametrize(
    ("from_image", "tag", "expected"),
    [
        ("docker.io/library/busybox", "latest", "docker.io/library/busybox:latest"),
        ("busybox", "", "docker.io/library/busybox:latest"),
        ("127.0.0.1:5921/pulltest", "v1", "127.0.0.1:5921/pulltest:v1"),
        ("127.0.0.1:5921/pulltest", D3, f"127.0.0.1:5921/pulltest@{D3}"),
        ("busybox:1.36", "", "docker.io/library/busybox:1.36"),
        ("busybox:1.36", "musl", "docker.io/library/busybox:musl"),
    ],
)
def test_pull_reference(from_image: str, tag: str, expected: str) -> None:
    assert str(pull_reference(from_image, tag)) == expected


def test_pull_reference_keeps_the_repository() -> None:
    ref = pull_reference("nginx", "")
    assert ref == Reference("docker.io", "library/nginx", "latest", None)
    assert ref.familiar() == "nginx:latest"


# -- blob metadata (migration 5) ------------------------------------------------------------------


def test_blob_metadata_tables(tmp_path: Path) -> None:
    db = Database(tmp_path / "d.db")
    meta = BlobMetadata(db)
    meta.add_sources([D1, D2], "127.0.0.1:5000", "library/busybox")
    meta.add_sources([D1], "127.0.0.1:5000", "other")
    meta.add_sources([D1], "docker.io", "library/busybox")
    assert set(meta.sources(D1, "127.0.0.1:5000")) == {"library/busybox", "other"}
    assert meta.sources(D2, "docker.io") == []
    assert meta.compressed(D1) is None
    meta.set_compressed(D1, CompressedBlob(D3, mediatypes.DOCKER_LAYER_GZIP, 42))
    assert meta.compressed(D1) == CompressedBlob(D3, mediatypes.DOCKER_LAYER_GZIP, 42)
    db.close()
    reopened = Database(tmp_path / "d.db")  # migrations are applied once
    assert BlobMetadata(reopened).compressed(D1) is not None
