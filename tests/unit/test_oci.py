"""Pure OCI helpers: digests, descriptors, manifests, indexes, image configs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from dockyard.errors import InvalidArgument
from dockyard.oci import (
    Descriptor,
    Index,
    Platform,
    canonical_json,
    chain_ids,
    created_unix,
    diff_ids,
    digest_hex,
    docker_config,
    format_rfc3339,
    is_sha256,
    mediatypes,
    parse_index,
    parse_manifest,
    parse_rfc3339,
    sha256_digest,
    short_id,
    validate_config,
    validate_digest,
)

pytestmark = pytest.mark.unit

D0 = "sha256:fd3b0a9d710714bfa3cc0da9882538da047cecf27078685b2b3f2384bc57d427"
D1 = "sha256:1eabd42443c3349a610b410b8290d2bf422c87515b25ec3e9f938aca54a98afc"
D2 = "sha256:7ae749ea3fcbc62178b779ed2eac5cbcc7230c69df4aecd581665f6cbb499c41"


def test_digests() -> None:
    d = sha256_digest(b"")
    assert d == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert is_sha256(d) and validate_digest(d) == d
    assert digest_hex(d) == d[7:]
    assert short_id(d) == "e3b0c44298fc" and short_id("abcdef0123456789") == "abcdef012345"
    for bad in ("", "sha256:", "sha256:XYZ", "sha512:" + "a" * 128, d.upper(), d + "0"):
        assert not is_sha256(bad)
        with pytest.raises(InvalidArgument):
            validate_digest(bad)


def test_chain_ids_follow_the_oci_definition() -> None:
    # values computed by the OCI definition for the busybox-multi test image
    assert chain_ids([]) == []
    assert chain_ids([D0]) == [D0]
    assert chain_ids([D0, D1, D2]) == [
        D0,
        "sha256:63b5440d3d642d8279aa38905e6500843648662417ca0cbcc6484df672afbf2c",
        "sha256:ce9e333d3c36a6d1fb819384482cb1274b4fc78aaec250d7498c7974a992dd63",
    ]
    assert chain_ids([D0, D1])[1] == sha256_digest(f"{D0} {D1}".encode())


def _manifest_json() -> dict[str, object]:
    return {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": D0, "size": 483},
        "layers": [
            {"mediaType": mediatypes.OCI_LAYER_GZIP, "digest": D1, "size": 1036146},
        ],
    }


def test_manifest_round_trip() -> None:
    m = parse_manifest(json.dumps(_manifest_json()).encode())
    assert m.config == Descriptor(mediatypes.OCI_CONFIG, D0, 483)
    assert [layer.digest for layer in m.layers] == [D1]
    assert parse_manifest(m.to_bytes()) == m
    assert json.loads(m.to_bytes()) == _manifest_json()
    assert m.to_bytes() == canonical_json(_manifest_json())


def test_manifest_without_media_type_is_oci_and_docker_is_accepted() -> None:
    obj = _manifest_json()
    del obj["mediaType"]
    assert parse_manifest(json.dumps(obj)).media_type == mediatypes.OCI_MANIFEST
    obj["mediaType"] = mediatypes.DOCKER_MANIFEST
    assert parse_manifest(json.dumps(obj)).media_type == mediatypes.DOCKER_MANIFEST


@pytest.mark.parametrize(
    "mutate",
    [
        lambda o: o.update(schemaVersion=1),
        lambda o: o.update(mediaType=mediatypes.OCI_INDEX),
        lambda o: o.pop("config"),
        lambda o: o["config"].update(digest="sha256:short"),
        lambda o: o["config"].update(size=-1),
        lambda o: o["config"].update(size="483"),
        lambda o: o["layers"][0].update(mediaType=""),
        lambda o: o.update(layers={}),
        lambda o: o.update(annotations={"a": 1}),
    ],
)
def test_malformed_manifests(mutate: object) -> None:
    obj = _manifest_json()
    mutate(obj)  # type: ignore[operator]
    with pytest.raises(InvalidArgument):
        parse_manifest(json.dumps(obj))


def test_not_json() -> None:
    for data in (b"", b"{", b"[]", b"\xff\xfe"):
        with pytest.raises(InvalidArgument):
            parse_manifest(data)
        with pytest.raises(InvalidArgument):
            parse_index(data)


def test_index_and_platform_selection() -> None:
    arm = Descriptor(mediatypes.OCI_MANIFEST, D1, 10, platform=Platform("linux", "arm64", "v8"))
    amd = Descriptor(
        mediatypes.OCI_MANIFEST,
        D2,
        11,
        annotations={"org.opencontainers.image.ref.name": "latest"},
        platform=Platform("linux", "amd64"),
    )
    attestation = Descriptor("application/vnd.in-toto+json", D0, 5)
    index = Index((arm, attestation, amd))
    parsed = parse_index(index.to_bytes())
    assert parsed == index
    assert parsed.select(Platform("linux", "amd64")) == amd
    assert parsed.select(Platform("linux", "arm64")) == arm
    with pytest.raises(InvalidArgument, match="no matching manifest for windows/amd64"):
        parsed.select(Platform("windows", "amd64"))
    lone = Index((Descriptor(mediatypes.OCI_MANIFEST, D1, 3),))
    assert lone.select(Platform("linux", "amd64")).digest == D1
    docker_list = json.loads(index.to_bytes())
    docker_list["mediaType"] = mediatypes.DOCKER_MANIFEST_LIST
    assert parse_index(json.dumps(docker_list)).media_type == mediatypes.DOCKER_MANIFEST_LIST
    assert json.loads(index.to_bytes())["manifests"][2]["platform"] == {
        "architecture": "amd64",
        "os": "linux",
    }


def test_platform_variants() -> None:
    assert Platform("linux", "arm", "v7").matches("linux", "arm")
    assert Platform("linux", "arm", "v7").matches("linux", "arm", "v7")
    assert not Platform("linux", "arm", "v6").matches("linux", "arm", "v7")
    assert not Platform("linux", "arm64").matches("linux", "amd64")
    p = Platform.from_json({"os": "windows", "architecture": "amd64", "os.version": "10.0"})
    assert p.os_version == "10.0" and p.to_json()["os.version"] == "10.0"
    with pytest.raises(InvalidArgument):
        Platform.from_json({"os": "linux"})


def _config(**extra: object) -> dict[str, object]:
    cfg: dict[str, object] = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [D0, D1]},
    }
    cfg.update(extra)
    return cfg


def test_validate_config_and_diff_ids() -> None:
    assert diff_ids(_config()) == [D0, D1]
    assert diff_ids(_config(rootfs={"type": "layers", "diff_ids": []})) == []
    assert validate_config(_config()) is not None
    for bad in (
        [],
        _config(rootfs=None),
        _config(rootfs={"type": "zfs", "diff_ids": []}),
        _config(rootfs={"type": "layers", "diff_ids": ["sha256:nope"]}),
        _config(config=["Cmd"]),
        _config(created=5),
        _config(created="yesterday"),
    ):
        with pytest.raises(InvalidArgument):
            validate_config(bad)


def test_times() -> None:
    t = parse_rfc3339("2022-02-04T21:20:12.497794809Z")
    assert t == datetime(2022, 2, 4, 21, 20, 12, 497794, tzinfo=UTC)
    assert (
        parse_rfc3339("2022-02-04T22:20:12+01:00").timestamp()
        == datetime(2022, 2, 4, 21, 20, 12, tzinfo=UTC).timestamp()
    )
    assert format_rfc3339(t) == "2022-02-04T21:20:12.497794Z"
    assert format_rfc3339(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00Z"
    assert format_rfc3339(datetime(2024, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)).endswith(":00.5Z")
    assert created_unix(_config()) == 1704067200
    assert created_unix({"rootfs": {}}) == 0
    with pytest.raises(InvalidArgument):
        parse_rfc3339("2024-13-01T00:00:00Z")


def test_docker_config_has_dockers_keys_and_zero_values() -> None:
    out = docker_config(_config())
    assert list(out)[:3] == ["Hostname", "Domainname", "User"]
    assert out["Cmd"] == ["sh"] and out["Env"] == ["PATH=/bin"]
    assert out["Entrypoint"] is None and out["Labels"] is None and out["Volumes"] is None
    assert out["WorkingDir"] == "" and out["Tty"] is False and out["OnBuild"] is None
    assert "ExposedPorts" not in out and "StopSignal" not in out  # omitempty in Go
    full = docker_config(
        _config(
            config={
                "ExposedPorts": {"80/tcp": {}},
                "StopSignal": "SIGQUIT",
                "workingdir": "/app",
                "Labels": {"a": "b"},
                "X-Custom": 1,
            }
        )
    )
    assert full["ExposedPorts"] == {"80/tcp": {}} and full["StopSignal"] == "SIGQUIT"
    assert full["WorkingDir"] == "/app" and full["Labels"] == {"a": "b"}
    assert full["X-Custom"] == 1
    assert docker_config({})["Cmd"] is None
