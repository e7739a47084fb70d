"""Bad input gets Docker's status and message, and loses nothing."""

from __future__ import annotations

import tarfile

import pytest

from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration


def test_unknown_image_404(daemon: TestDaemon) -> None:
    status, body = daemon.request(
        "POST", "/containers/create", {"Image": "nosuch:1", "Cmd": ["true"]}
    )
    assert status == 404 and body["message"] == "No such image: nosuch:1"
    status, body = daemon.request("GET", "/v1.44/images/nosuch:1/json")
    assert status == 404 and "No such image: nosuch:1" in body["message"]


def test_unknown_container_404(daemon: TestDaemon) -> None:
    for method, path in [
        ("GET", "/containers/nosuch/json"),
        ("POST", "/containers/nosuch/start"),
        ("DELETE", "/containers/nosuch"),
        ("POST", "/containers/nosuch/stop"),
    ]:
        status, body = daemon.request(method, path)
        assert status == 404, path
        assert body["message"] == "No such container: nosuch"


def test_name_in_use_409(daemon: TestDaemon) -> None:
    status, body = daemon.request(
        "POST", "/containers/create?name=dupe", {"Image": "busybox", "Cmd": ["true"]}
    )
    assert status == 201
    try:
        status2, body2 = daemon.request(
            "POST", "/containers/create?name=dupe", {"Image": "busybox", "Cmd": ["true"]}
        )
        assert status2 == 409
        assert body2["message"].startswith(
            'Conflict. The container name "/dupe" is already in use by container'
        )
        r = daemon.docker("run", "--name", "dupe", "busybox", "true")
        assert r.returncode == 125 and "is already in use" in r.stderr
    finally:
        daemon.request("DELETE", f"/containers/{body['Id']}?force=1")


def test_invalid_name_and_malformed_json_400(daemon: TestDaemon) -> None:
    status, body = daemon.request(
        "POST", "/containers/create?name=x", {"Image": "busybox", "Cmd": ["true"]}
    )
    assert status == 400 and "Invalid container name (x)" in body["message"]
    status, body = daemon.request(
        "POST", "/containers/create", raw=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and "invalid JSON" in body["message"]
    status, body = daemon.request("POST", "/containers/create", {"Image": "busybox"})
    assert (status == 400 and body["message"] in ("No command specified",)) or status == 201
    if status == 201:
        daemon.request("DELETE", f"/containers/{body['Id']}")


def test_bad_signal_and_filter(daemon: TestDaemon) -> None:
    status, body = daemon.request("GET", '/containers/json?filters={"bogus":{"1":true}}')
    assert status == 400 and body["message"] == "Invalid filter 'bogus'"
    status, created = daemon.request(
        "POST", "/containers/create", {"Image": "busybox", "Cmd": ["sleep", "60"]}
    )
    try:
        assert daemon.request("POST", f"/containers/{created['Id']}/start")[0] == 204
        status, body = daemon.request("POST", f"/containers/{created['Id']}/kill?signal=BOGUS")
        assert status == 400 and body["message"] == "Invalid signal: BOGUS"
        assert daemon.request("POST", f"/containers/{created['Id']}/start")[0] == 304
    finally:
        daemon.request("DELETE", f"/containers/{created['Id']}?force=1")


def test_api_versions(daemon: TestDaemon) -> None:
    status, body = daemon.request("GET", "/v1.99/version")
    assert status == 400 and "client version 1.99 is too new" in body["message"]
    assert daemon.request("GET", "/v1.41/version")[0] == 200
    status, body = daemon.request("GET", "/v1.44/nosuchpath")
    assert status == 404 and body["message"] == "page not found"


def test_corrupt_or_truncated_tarball_stores_nothing(daemon: TestDaemon, test_images) -> None:  # type: ignore[no-untyped-def]
    before_images = daemon.request("GET", "/images/json?all=1")[1]
    snapshots_dir = daemon.data_root / "snapshots"
    before_snaps = sorted(p.name for p in snapshots_dir.iterdir()) if snapshots_dir.exists() else []
    source = test_images / "busybox-multi_latest.tar"
    data = source.read_bytes()
    with tarfile.open(source) as tar:
        layer = max((m for m in tar.getmembers() if m.isfile()), key=lambda m: m.size)
    middle = layer.offset_data + layer.size // 2
    flipped = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
    for bad in (data[: len(data) // 2], flipped, b"not a tar at all"):
        status, body = daemon.request(
            "POST", "/images/load?quiet=1", raw=bad, headers={"Content-Type": "application/x-tar"}
        )
        assert status == 400 or (status == 200 and any("error" in m for m in body)), (status, body)
    assert daemon.request("GET", "/images/json?all=1")[1] == before_images
    after_snaps = sorted(p.name for p in snapshots_dir.iterdir()) if snapshots_dir.exists() else []
    assert after_snaps == before_snaps
    ingest = daemon.data_root / "content" / "ingest"
    assert not ingest.exists() or not any(ingest.iterdir())


def test_docker_cli_errors(daemon: TestDaemon) -> None:
    r = daemon.docker("inspect", "nosuch")
    assert r.returncode == 1 and "No such object: nosuch" in r.stderr
    r = daemon.docker("rm", "nosuch")
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr
    r = daemon.cli("rm", "nosuch")
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr
    r = daemon.cli("inspect", "nosuch")
    assert r.returncode == 1 and "No such object: nosuch" in r.stderr
