"""Pull, push and login through the daemon against real registries on 127.0.0.1: the CNCF
registry and (when installed) dockyard-registry; a tiny fake registry only for bad input.

Never contacts anything but 127.0.0.1: docker.io is reached only through a mirror here."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import build_test_images
from tests.integration.daemon import TestDaemon
from tests.integration.registries import (
    OCI_INDEX,
    FakeRegistry,
    Registry,
    digest_of,
    fake_registry,
    kinds,
    layer_tar,
)

pytestmark = pytest.mark.integration

if not kinds():
    pytest.skip(
        "no registry to test against (apt-get install docker-registry)", allow_module_level=True
    )


def _base() -> Path:
    return Path(tempfile.mkdtemp(prefix="dy-", dir="/var/tmp"))


@contextlib.contextmanager
def new_daemon(
    config: dict[str, Any] | None = None, *, busybox: bool = False
) -> Iterator[TestDaemon]:
    base = _base()
    d = TestDaemon(base, config)
    try:
        d.start()
        if busybox:
            d.load(build_test_images() / "busybox_latest.tar")
        yield d
    finally:
        d.close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module", params=kinds())
def registry(request: pytest.FixtureRequest) -> Iterator[Registry]:
    reg = Registry(request.param, _base())
    reg.start()
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture(scope="module")
def pushed(registry: Registry, daemon: TestDaemon) -> str:
    """busybox pushed as ``<registry>/bb:latest`` and ``<registry>/library/bb:latest`` by the
    docker CLI; the manifest digest."""
    digests = set()
    for repo in (f"{registry.host}/bb", f"{registry.host}/library/bb"):
        assert daemon.docker("tag", "busybox", repo).returncode == 0
        r = daemon.docker("push", repo)
        assert r.returncode == 0, r.stderr
        m = re.search(r"latest: digest: (sha256:[0-9a-f]{64}) size: \d+", r.stdout)
        assert m, r.stdout
        digests.add(m.group(1))
        assert daemon.docker("rmi", repo).returncode == 0
    assert len(digests) == 1
    return digests.pop()


def _auth_header(username: str, password: str, server: str) -> dict[str, str]:
    raw = json.dumps({"username": username, "password": password, "serveraddress": server})
    return {"X-Registry-Auth": base64.urlsafe_b64encode(raw.encode()).decode()}


def _blobs(d: TestDaemon) -> set[str]:
    return set(os.listdir(d.data_root / "content" / "blobs" / "sha256"))


def _ingests(d: TestDaemon) -> list[str]:
    return os.listdir(d.data_root / "content" / "ingest")


def _image_id(d: TestDaemon, name: str) -> str:
    status, body = d.request("GET", f"/images/{name}/json")
    assert status == 200, body
    return str(body["Id"])


def _stream_error(messages: Any) -> str | None:
    for m in messages if isinstance(messages, list) else [messages]:
        if isinstance(m, dict) and "error" in m:
            return str(m["error"])
    return None


# -- round trip ------------------------------------------------------------------------------------


def test_push_then_pull_round_trip(registry: Registry) -> None:
    repo = f"{registry.host}/round"
    with new_daemon(busybox=True) as d:
        original = _image_id(d, "busybox")
        assert d.docker("tag", "busybox", repo).returncode == 0
        first = d.docker("push", repo)
        assert first.returncode == 0, first.stderr
        assert f"The push refers to repository [{repo}]" in first.stdout
        assert re.search(r"[0-9a-f]{12}: Pushed", first.stdout), first.stdout
        digest = re.search(r"latest: digest: (sha256:[0-9a-f]{64}) size: (\d+)", first.stdout)
        assert digest, first.stdout
        again = d.docker("push", repo)
        assert again.returncode == 0, again.stderr
        assert "Layer already exists" in again.stdout
        assert f"latest: digest: {digest.group(1)}" in again.stdout  # stable digests

        rmi = d.docker("rmi", "-f", repo, "busybox")
        assert rmi.returncode == 0, rmi.stderr
        assert d.request("GET", "/images/json")[1] == []

        pulled = d.docker("pull", repo)
        assert pulled.returncode == 0, pulled.stderr
        assert "latest: Pulling from round" in pulled.stdout
        assert "Pull complete" in pulled.stdout
        assert f"Digest: {digest.group(1)}" in pulled.stdout
        assert f"Status: Downloaded newer image for {repo}:latest" in pulled.stdout
        status, info = d.request("GET", f"/images/{repo}/json")
        assert status == 200
        assert info["Id"] == original  # the config, hence the image ID, survived
        assert info["RepoDigests"] == [f"{repo}@{digest.group(1)}"]

        by_digest = d.docker("pull", f"{repo}@{digest.group(1)}")
        assert by_digest.returncode == 0, by_digest.stderr
        assert "Image is up to date" in by_digest.stdout

        run = d.docker("run", "--rm", repo, "echo", "round trip")
        assert run.returncode == 0, run.stderr
        assert run.stdout == "round trip\n"

        # a pulled image pushes back byte for byte: same manifest digest
        assert d.docker("tag", repo, f"{repo}2").returncode == 0
        back = d.docker("push", f"{repo}2")
        assert back.returncode == 0, back.stderr
        assert f"latest: digest: {digest.group(1)}" in back.stdout
        assert "Mounted from round" in back.stdout or "Layer already exists" in back.stdout


def test_run_pulls_a_missing_image(registry: Registry, pushed: str) -> None:
    with new_daemon() as d:  # an empty store
        r = d.docker("run", "--rm", f"{registry.host}/bb", "echo", "hi")
        assert r.returncode == 0, r.stderr
        assert r.stdout == "hi\n"
        assert f"Unable to find image '{registry.host}/bb:latest' locally" in r.stderr
        assert f"Status: Downloaded newer image for {registry.host}/bb:latest" in r.stderr
        _status, info = d.request("GET", f"/images/{registry.host}/bb/json")
        assert info["RepoDigests"] == [f"{registry.host}/bb@{pushed}"]


def test_pull_by_digest(registry: Registry, pushed: str) -> None:
    with new_daemon() as d:
        ref = f"{registry.host}/bb@{pushed}"
        status, messages = d.request(
            "POST", f"/images/create?fromImage={registry.host}/bb&tag={pushed}"
        )
        assert status == 200
        assert _stream_error(messages) is None, messages
        assert messages[0] == {"status": "Pulling from bb", "id": pushed}
        assert {"status": f"Status: Downloaded newer image for {ref}"} in messages
        statuses = [m["status"] for m in messages if "id" in m and "progressDetail" in m]
        for expected in (
            "Pulling fs layer",
            "Verifying Checksum",
            "Download complete",
            "Pull complete",
        ):
            assert expected in statuses, messages
        status, info = d.request("GET", f"/images/{ref}/json")
        assert status == 200 and info["RepoTags"] == [] and info["RepoDigests"] == [ref]
        again = d.docker("pull", ref)
        assert again.returncode == 0 and "Image is up to date" in again.stdout


def test_pull_twice_is_up_to_date_and_progress_shapes(registry: Registry, pushed: str) -> None:
    with new_daemon() as d:
        status, messages = d.request(
            "POST", f"/images/create?fromImage={registry.host}/bb&tag=latest"
        )
        assert status == 200 and _stream_error(messages) is None
        downloading = [m for m in messages if m.get("status") == "Downloading"]
        assert downloading, messages
        m = downloading[-1]
        assert set(m) == {"status", "progressDetail", "progress", "id"}
        assert m["progressDetail"]["current"] == m["progressDetail"]["total"]
        assert m["progress"].startswith("[" + "=" * 50 + ">]")
        status, messages = d.request(
            "POST", f"/images/create?fromImage={registry.host}/bb&tag=latest"
        )
        assert messages == [
            {"status": "Pulling from bb", "id": "latest"},
            {"status": f"Digest: {pushed}"},
            {"status": f"Status: Image is up to date for {registry.host}/bb:latest"},
        ]


# -- mirrors ----------------------------------------------------------------------------------------


def test_docker_io_through_mirrors_falls_back_to_the_next(registry: Registry, pushed: str) -> None:
    dead = f"http://127.0.0.1:{_dead_port()}"
    with new_daemon({"registry-mirrors": [dead, f"http://{registry.host}"]}) as d:
        r = d.docker("pull", "bb")
        assert r.returncode == 0, r.stderr
        assert "latest: Pulling from library/bb" in r.stdout
        assert "Status: Downloaded newer image for bb:latest" in r.stdout
        _status, info = d.request("GET", "/images/bb/json")
        assert info["RepoTags"] == ["bb:latest"]
        assert info["RepoDigests"] == [f"bb@{pushed}"]


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: connections are refused


# -- multi-arch -------------------------------------------------------------------------------------


def test_multi_arch_index_selects_the_platform(
    registry: Registry, pushed: str, daemon: TestDaemon
) -> None:
    amd64_manifest, amd64_type = registry.get_manifest("bb", pushed)
    parsed = json.loads(amd64_manifest)
    config = json.loads(registry.get_blob("bb", parsed["config"]["digest"]))
    config["architecture"] = "arm64"
    config["variant"] = "v8"
    arm_config = json.dumps(config).encode()
    repo = "multi"
    for layer in parsed["layers"]:
        registry.put_blob(repo, registry.get_blob("bb", layer["digest"]))
    registry.put_blob(repo, registry.get_blob("bb", parsed["config"]["digest"]))
    registry.put_blob(repo, arm_config)
    arm = dict(parsed)
    arm["config"] = dict(parsed["config"], digest=digest_of(arm_config), size=len(arm_config))
    arm_manifest = json.dumps(arm).encode()
    media_type = parsed.get("mediaType") or amd64_type
    amd64_digest = registry.put_manifest(repo, pushed, amd64_manifest, media_type)
    arm_digest = registry.put_manifest(repo, digest_of(arm_manifest), arm_manifest, media_type)

    def entry(digest: str, size: int, arch: str, variant: str = "") -> dict[str, Any]:
        platform = {"architecture": arch, "os": "linux"}
        if variant:
            platform["variant"] = variant
        return {"mediaType": media_type, "digest": digest, "size": size, "platform": platform}

    both = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                entry(arm_digest, len(arm_manifest), "arm64", "v8"),
                entry(amd64_digest, len(amd64_manifest), "amd64"),
            ],
        }
    ).encode()
    arm_only = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [entry(arm_digest, len(arm_manifest), "arm64", "v8")],
        }
    ).encode()
    both_digest = registry.put_manifest(repo, "both", both, OCI_INDEX)
    registry.put_manifest(repo, "armonly", arm_only, OCI_INDEX)
    name = f"{registry.host}/{repo}"
    try:
        r = daemon.docker("pull", f"{name}:both")
        assert r.returncode == 0, r.stderr
        assert f"Digest: {both_digest}" in r.stdout  # the index digest, as docker shows it
        status, info = daemon.request("GET", f"/images/{name}:both/json")
        assert info["Architecture"] == "amd64"
        assert info["Id"] == _image_id(daemon, "busybox")
        assert f"{name}@{both_digest}" in info["RepoDigests"]

        status, dist = daemon.request("GET", f"/distribution/{name}:both/json")
        assert status == 200, dist
        assert dist["Descriptor"] == {
            "mediaType": OCI_INDEX,
            "digest": both_digest,
            "size": len(both),
        }
        assert {"architecture": "amd64", "os": "linux"} in dist["Platforms"]
        assert {"architecture": "arm64", "os": "linux", "variant": "v8"} in dist["Platforms"]

        status, messages = daemon.request(
            "POST", f"/images/create?fromImage={name}&tag=both&platform=linux/arm64"
        )
        assert status == 200 and _stream_error(messages) is None, messages
        status, info = daemon.request("GET", f"/images/{name}:both/json")
        assert info["Architecture"] == "arm64" and info["Id"] == digest_of(arm_config)

        r = daemon.docker("pull", f"{name}:armonly")
        assert r.returncode != 0
        assert "no matching manifest for linux/amd64 in the manifest list entries" in r.stderr
        assert daemon.request("GET", f"/images/{name}:armonly/json")[0] == 404
    finally:
        daemon.docker("rmi", "-f", f"{name}:both", digest_of(arm_config))


# -- errors ---------------------------------------------------------------------------------------


def test_unknown_repository_is_a_404_with_dockers_wording(
    registry: Registry, daemon: TestDaemon
) -> None:
    name = f"{registry.host}/nosuch"
    status, body = daemon.request("POST", f"/images/create?fromImage={name}&tag=latest")
    assert status == 404, body
    message = body["message"]
    assert message.startswith(f"manifest for {name}:latest not found: ") or message.startswith(
        f"pull access denied for {name}, repository does not exist or may require 'docker login'"
    ), message
    r = daemon.docker("pull", name)
    assert r.returncode == 1
    assert f"Error response from daemon: {message}" in r.stderr


def test_name_unknown_and_denied_say_pull_access_denied(daemon: TestDaemon) -> None:
    def setup(fake: FakeRegistry) -> None:
        fake.errors["gone"] = (404, "NAME_UNKNOWN", "repository name not known to registry")
        fake.errors["private"] = (401, "DENIED", "requested access to the resource is denied")

    with fake_registry(setup) as fake:
        status, body = daemon.request(
            "POST", f"/images/create?fromImage={fake.host}/gone&tag=latest"
        )
        assert status == 404
        assert body["message"] == (
            f"pull access denied for {fake.host}/gone, repository does not exist or may require"
            " 'docker login': name unknown: repository name not known to registry"
        )
        status, body = daemon.request(
            "POST", f"/images/create?fromImage={fake.host}/private&tag=latest"
        )
        assert status == 404
        assert body["message"] == (
            f"pull access denied for {fake.host}/private, repository does not exist or may require"
            " 'docker login': denied: requested access to the resource is denied"
        )


def test_corrupt_layer_fails_and_stores_nothing() -> None:
    layer = layer_tar({"data/blob.bin": os.urandom(1 << 20)})

    def setup(fake: FakeRegistry) -> None:
        fake.add_image("corrupt", "latest", [layer])
        fake.corrupt.add(digest_of(layer))

    with fake_registry(setup) as fake, new_daemon(busybox=True) as d:
        before = _blobs(d)
        name = f"{fake.host}/corrupt"
        r = d.docker("pull", name)
        assert r.returncode == 1
        assert f"filesystem layer verification failed for digest {digest_of(layer)}" in r.stderr
        status, messages = d.request("POST", f"/images/create?fromImage={name}&tag=latest")
        assert status == 200  # the error came after the stream began
        assert _stream_error(messages) == (
            f"filesystem layer verification failed for digest {digest_of(layer)}"
        )
        assert d.request("GET", f"/images/{name}/json")[0] == 404
        assert _blobs(d) == before
        assert _ingests(d) == []
        assert not list((d.data_root / "snapshots").glob("*/diff/data"))


def test_schema1_manifests_are_refused(daemon: TestDaemon) -> None:
    old = json.dumps({"schemaVersion": 1, "name": "old", "tag": "latest", "fsLayers": []}).encode()

    def setup(fake: FakeRegistry) -> None:
        fake.manifests[("old", "latest")] = (
            old,
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        )

    with fake_registry(setup) as fake:
        r = daemon.docker("pull", f"{fake.host}/old")
        assert r.returncode == 1
        assert "Docker Image manifest version 2, schema 1 support has been removed" in r.stderr
        assert f"Suggest the author of {fake.host}/old:latest to upgrade the image" in r.stderr


def test_bearer_token_registry() -> None:
    layer = layer_tar({"hello.txt": b"hello\n"})

    with (
        fake_registry(lambda f: f.add_image("tok/app", "v1", [layer]), bearer=True) as fake,
        new_daemon() as d,
    ):
        name = f"{fake.host}/tok/app"
        status, messages = d.request("POST", f"/images/create?fromImage={name}&tag=v1")
        assert status == 200 and _stream_error(messages) is None, messages
        assert fake.token_queries[0] == [
            ("service", "fake"),
            ("scope", "repository:tok/app:pull"),
        ]
        status, body = d.request(
            "POST",
            f"/images/create?fromImage={name}&tag=v1",
            headers=_auth_header("user", "wrong", fake.host),
        )
        assert status == 401, body
        assert body["message"] == (
            f'Get "http://{name.split("/", 1)[0]}/v2/tok/app/manifests/v1": unauthorized:'
            " incorrect username or password"
        )
        status, body = d.request(
            "POST",
            "/auth",
            {"username": "user", "password": "right", "serveraddress": fake.host},
        )
        assert (status, body) == (200, {"IdentityToken": "", "Status": "Login Succeeded"})


@pytest.fixture(scope="module")
def auth_registry() -> Iterator[Registry]:
    if shutil.which("htpasswd") is None or "cncf" not in kinds():
        pytest.skip("needs apache2-utils (htpasswd) and docker-registry")
    base = _base()
    htpasswd = base / "htpasswd"
    out = subprocess.run(
        ["htpasswd", "-Bbn", "user", "right"], capture_output=True, check=True, timeout=30
    )
    htpasswd.write_bytes(out.stdout)
    reg = Registry("cncf", base / "reg", htpasswd=htpasswd)
    reg.start()
    try:
        yield reg
    finally:
        reg.close()
        shutil.rmtree(base, ignore_errors=True)


def test_basic_auth_registry(auth_registry: Registry, daemon: TestDaemon) -> None:
    host = auth_registry.host
    status, body = daemon.request(
        "POST", "/auth", {"username": "user", "password": "wrong", "serveraddress": host}
    )
    assert status == 401
    assert (
        body["message"]
        == f"login attempt to http://{host}/v2/ failed with status: 401 Unauthorized"
    )
    r = daemon.docker("login", "-u", "user", "-p", "wrong", host)
    assert r.returncode == 1
    assert f"login attempt to http://{host}/v2/ failed with status: 401 Unauthorized" in r.stderr

    status, body = daemon.request("POST", f"/images/create?fromImage={host}/private&tag=latest")
    assert status == 401 and "no basic auth credentials" in body["message"], body
    status, body = daemon.request(
        "POST",
        f"/images/create?fromImage={host}/private&tag=latest",
        headers=_auth_header("user", "wrong", host),
    )
    assert (status, body["message"]) == (401, "unauthorized: authentication required")

    r = daemon.docker("login", "-u", "user", "-p", "right", host)
    assert r.returncode == 0, r.stderr
    assert "Login Succeeded" in r.stdout
    try:
        assert daemon.docker("tag", "busybox", f"{host}/private").returncode == 0
        r = daemon.docker("push", f"{host}/private")
        assert r.returncode == 0, r.stderr
        assert daemon.docker("rmi", f"{host}/private").returncode == 0
        r = daemon.docker("pull", f"{host}/private")
        assert r.returncode == 0, r.stderr
        status, messages = daemon.request(
            "POST",
            f"/images/create?fromImage={host}/private&tag=latest",
            headers=_auth_header("user", "right", host),
        )
        assert status == 200 and _stream_error(messages) is None
    finally:
        daemon.docker("rmi", f"{host}/private")
        daemon.docker("logout", host)


def test_login_to_a_registry_without_auth(registry: Registry, daemon: TestDaemon) -> None:
    status, body = daemon.request(
        "POST", "/auth", {"username": "x", "password": "y", "serveraddress": registry.host}
    )
    assert (status, body) == (200, {"IdentityToken": "", "Status": "Login Succeeded"})


def test_push_of_a_missing_image_errors_in_stream(registry: Registry, daemon: TestDaemon) -> None:
    status, messages = daemon.request("POST", f"/images/{registry.host}/absent/push?tag=latest")
    assert status == 200
    assert messages[0] == {"status": f"The push refers to repository [{registry.host}/absent]"}
    assert _stream_error(messages) == f"tag does not exist: {registry.host}/absent:latest" or (
        _stream_error(messages)
        == f"An image does not exist locally with the tag: {registry.host}/absent"
    )


# -- a registry that dies mid-pull ----------------------------------------------------------------


def _stream_lines(d: TestDaemon, path: str) -> Iterator[dict[str, Any]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(120)
    sock.connect(str(d.sock))
    conn = http.client.HTTPConnection("localhost")
    conn.sock = sock
    try:
        conn.request("POST", path, body=b"")
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        for line in resp:
            if line.strip():
                yield json.loads(line)
    finally:
        conn.close()


def test_registry_killed_mid_pull_then_a_second_pull_completes() -> None:
    kind = kinds()[0]
    reg = Registry(kind, _base())
    reg.start()
    try:
        big = layer_tar({"big.bin": os.urandom(160 << 20)})
        from tests.integration.registries import image

        config, manifest = image([big])
        reg.put_blob("big", big)
        reg.put_blob("big", config)
        reg.put_manifest("big", "latest", manifest, json.loads(manifest)["mediaType"])
        del big
        name = f"{reg.host}/big"
        with new_daemon() as d:
            before = _blobs(d)
            seen: list[dict[str, Any]] = []
            for message in _stream_lines(d, f"/images/create?fromImage={name}&tag=latest"):
                seen.append(message)
                if message.get("status") == "Downloading" and reg.proc is not None:
                    reg.kill9()
            error = _stream_error(seen)
            assert reg.proc is None, "the download ended before the registry was killed"
            assert error is not None, seen
            assert reg.host in error, error
            assert d.request("GET", f"/images/{name}/json")[0] == 404
            assert _blobs(d) == before
            assert _ingests(d) == []

            reg.start()  # same port, same storage
            r = d.docker("pull", name)
            assert r.returncode == 0, r.stderr
            assert "Pull complete" in r.stdout
            assert _image_id(d, name) == digest_of(config)
    finally:
        reg.close()
