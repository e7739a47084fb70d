"""``dockyard login/push/pull/logout`` against real registries on 127.0.0.1 with htpasswd
auth: ours and the CNCF registry; credentials in ``config.json``, in a fake ``credsStore``
helper, and shared with the real docker CLI on the same config directory.

Each test has its own config directory (``--config``), so nothing leaks into the session
daemon's shared ``DOCKER_CONFIG``; images are removed and registries killed by PID at the end.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import build_test_images
from tests.integration.daemon import DOCKER, DOCKYARD, TestDaemon
from tests.registry.interop_helpers import USERS, Registry, running_registry

pytestmark = pytest.mark.integration

PASSWORD = USERS["alice"]
FAKE_HELPER = f"""#!{sys.executable}
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
store = os.path.join(here, "secrets.json")
action = sys.argv[1]
data = sys.stdin.read()
with open(os.path.join(here, "calls.log"), "a") as log:
    log.write(json.dumps([action, data]) + "\\n")
try:
    with open(store) as fh:
        saved = json.load(fh)
except (OSError, ValueError):
    saved = {{}}
if action == "store":
    creds = json.loads(data)
    saved[creds["ServerURL"]] = {{"Username": creds["Username"], "Secret": creds["Secret"]}}
elif data not in saved:
    print("credentials not found in native keychain")
    sys.exit(1)
elif action == "get":
    print(json.dumps({{"ServerURL": data, **saved[data]}}))
else:
    del saved[data]
with open(store, "w") as fh:
    json.dump(saved, fh)
"""


@pytest.fixture(scope="module", params=["dockyard", "cncf"])
def registry(request: pytest.FixtureRequest) -> Iterator[Registry]:
    if request.param == "cncf" and shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed")
    work = Path(tempfile.mkdtemp(prefix="dycr-", dir="/var/tmp"))
    try:
        with running_registry(request.param, work, "htpasswd") as running:
            yield running
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Clients:
    """Our CLI and the docker CLI on one daemon, sharing one config directory."""

    def __init__(self, daemon: TestDaemon, base: Path) -> None:
        self.daemon = daemon
        self.config = base / "config"
        self.bin = base / "bin"
        self.bin.mkdir(parents=True)

    @property
    def config_file(self) -> Path:
        return self.config / "config.json"

    def saved(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.config_file.read_text())
        return data

    def _run(self, argv: list[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
        env = dict(self.daemon.env)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env.pop("DOCKYARD_CONFIG", None)
        proc = subprocess.run(
            [argv[0], "--config", str(self.config), *argv[1:]],
            env=env,
            input=(stdin or "").encode(),
            capture_output=True,
            timeout=180,
        )
        return subprocess.CompletedProcess(
            proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
        )

    def dockyard(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return self._run([DOCKYARD, *args], stdin)

    def docker(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return self._run([DOCKER, *args], stdin)

    def install_helper(self) -> Path:
        path = self.bin / "docker-credential-itest"
        path.write_text(FAKE_HELPER)
        path.chmod(0o755)
        return self.bin


@pytest.fixture
def clients(daemon: TestDaemon, tmp_path: Path) -> Clients:
    return Clients(daemon, tmp_path)


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1704067200, 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def unique_image(tag: str, marker: str, directory: Path) -> Path:
    """A docker-archive of busybox plus one layer of our own (``/marker.txt``), named ``tag``:
    after ``rmi`` its own layer is gone, so a pull really downloads and extracts it."""
    source = build_test_images() / "busybox_latest.tar"
    with tarfile.open(source) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(tar.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        base_layer = tar.extractfile(manifest["Layers"][0]).read()  # type: ignore[union-attr]
    layer = _tar({"marker.txt": marker.encode() + b"\n"})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config["rootfs"]["diff_ids"].append(diff_id)
    config["history"].append({"created": "2024-01-01T00:00:00Z", "created_by": "marker"})
    config_bytes = json.dumps(config).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_path = diff_id[7:] + "/layer.tar"
    archive = _tar(
        {
            manifest["Layers"][0]: base_layer,
            layer_path: layer,
            config_name: config_bytes,
            "manifest.json": json.dumps(
                [
                    {
                        "Config": config_name,
                        "RepoTags": [tag],
                        "Layers": [manifest["Layers"][0], layer_path],
                    }
                ]
            ).encode(),
        }
    )
    path = directory / "image.tar"
    path.write_bytes(archive)
    return path


@contextlib.contextmanager
def removed_after(daemon: TestDaemon, *refs: str) -> Iterator[None]:
    try:
        yield
    finally:
        for ref in refs:
            daemon.request("DELETE", f"/images/{ref}?force=1")


def image_id(daemon: TestDaemon, ref: str) -> str:
    status, body = daemon.request("GET", f"/images/{ref}/json")
    assert status == 200, body
    return str(body["Id"])


PUSH_LAYER = re.compile(
    r"^[0-9a-f]{12}: (Preparing|Waiting|Pushed|Layer already exists|Mounted from \S+)$"
)


def test_login_push_rmi_pull_run_logout(
    registry: Registry, clients: Clients, daemon: TestDaemon, tmp_path: Path
) -> None:
    host = registry.host
    ref = f"{host}/alice/roundtrip:v1"
    marker = secrets.token_hex(8)
    refused = clients.dockyard("login", "-u", "alice", "--password-stdin", host, stdin="wrong\n")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        f"Error response from daemon: login attempt to http://{host}/v2/ failed with status: "
        "401 Unauthorized\n"
    )
    assert not clients.config_file.exists()

    daemon.load(unique_image(ref, marker, tmp_path))
    with removed_after(daemon, ref):
        anonymous = clients.dockyard("push", ref)
        assert anonymous.returncode == 1
        assert anonymous.stderr.endswith(": no basic auth credentials\n"), anonymous.stderr

        ok = clients.dockyard("login", "-u", "alice", "--password-stdin", host, stdin=PASSWORD)
        assert (ok.returncode, ok.stdout) == (0, "Login Succeeded\n"), ok.stderr
        assert "WARNING! Your credentials are stored unencrypted" in ok.stderr
        encoded = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        assert clients.saved() == {"auths": {host: {"auth": encoded}}}
        assert stat.S_IMODE(clients.config_file.stat().st_mode) == 0o600

        before = image_id(daemon, ref)
        pushed = clients.dockyard("push", ref)
        assert pushed.returncode == 0, pushed.stderr
        lines = pushed.stdout.splitlines()
        assert lines[0] == f"The push refers to repository [{host}/alice/roundtrip]"
        assert all(PUSH_LAYER.match(line) for line in lines[1:-1]), lines
        assert sum(line.endswith(": Pushed") for line in lines) == 2
        match = re.fullmatch(r"v1: digest: (sha256:[0-9a-f]{64}) size: \d+", lines[-1])
        assert match, lines[-1]
        digest = match.group(1)

        again = clients.dockyard("push", ref)
        assert again.returncode == 0, again.stderr
        assert (
            sum(line.endswith(": Layer already exists") for line in again.stdout.splitlines()) == 2
        )

        removed = clients.dockyard("rmi", ref)
        assert removed.returncode == 0, removed.stderr
        assert "Deleted: " in removed.stdout

        pulled = clients.dockyard("pull", ref)
        assert pulled.returncode == 0, pulled.stderr
        out = pulled.stdout.splitlines()
        assert out[0] == "v1: Pulling from alice/roundtrip"
        # Our own layer was removed with the image, so it is downloaded and extracted again.
        assert any(line.endswith(": Pull complete") for line in out), out
        assert out[-3:] == [
            f"Digest: {digest}",
            f"Status: Downloaded newer image for {ref}",
            ref,
        ]
        assert image_id(daemon, ref) == before

        assert clients.dockyard("rmi", ref).returncode == 0
        run = clients.dockyard("run", "--rm", ref, "cat", "/marker.txt")
        assert run.returncode == 0, run.stderr
        assert run.stdout == f"{marker}\n"
        assert run.stderr.startswith(f"Unable to find image '{ref}' locally\n")
        assert f"Digest: {digest}" in run.stderr

        logout = clients.dockyard("logout", host)
        assert (logout.returncode, logout.stdout, logout.stderr) == (
            0,
            f"Removing login credentials for {host}\n",
            "",
        )
        assert clients.saved() == {"auths": {}}
        assert clients.dockyard("rmi", ref).returncode == 0
        denied = clients.dockyard("pull", ref)
        assert denied.returncode == 1
        assert denied.stderr.startswith("Error response from daemon: ")


def test_credentials_in_a_creds_store_helper(
    registry: Registry, clients: Clients, daemon: TestDaemon
) -> None:
    host = registry.host
    ref = f"{host}/alice/helper:v1"
    helper_dir = clients.install_helper()
    clients.config.mkdir()
    clients.config_file.write_text(json.dumps({"credsStore": "itest"}))
    with removed_after(daemon, ref):
        ok = clients.dockyard("login", "-u", "alice", "--password-stdin", host, stdin=PASSWORD)
        assert (ok.returncode, ok.stdout, ok.stderr) == (0, "Login Succeeded\n", "")
        assert clients.saved() == {"credsStore": "itest", "auths": {host: {}}}
        assert json.loads((helper_dir / "secrets.json").read_text()) == {
            host: {"Username": "alice", "Secret": PASSWORD}
        }
        assert clients.dockyard("tag", "busybox", ref).returncode == 0
        pushed = clients.dockyard("push", "-q", ref)
        assert (pushed.returncode, pushed.stdout) == (0, f"{ref}\n"), pushed.stderr
        calls = [json.loads(line) for line in (helper_dir / "calls.log").read_text().splitlines()]
        assert ["get", host] in calls
        # The docker CLI finds the same helper and pulls with it.
        assert clients.dockyard("rmi", ref).returncode == 0
        pulled = clients.docker("pull", "-q", ref)
        assert (pulled.returncode, pulled.stdout) == (0, f"{ref}\n"), pulled.stderr

        logout = clients.dockyard("logout", host)
        assert logout.returncode == 0
        assert json.loads((helper_dir / "secrets.json").read_text()) == {}
        assert clients.saved() == {"credsStore": "itest", "auths": {}}


def test_docker_and_dockyard_share_one_config_directory(
    registry: Registry, clients: Clients, daemon: TestDaemon
) -> None:
    host = registry.host
    ref = f"{host}/alice/shared:v1"
    with removed_after(daemon, ref):
        # docker login, then our push with what docker stored.
        login = clients.docker("login", "-u", "alice", "--password-stdin", host, stdin=PASSWORD)
        assert login.returncode == 0, login.stderr
        assert clients.dockyard("tag", "busybox", ref).returncode == 0
        pushed = clients.dockyard("push", ref)
        assert pushed.returncode == 0, pushed.stderr
        assert pushed.stdout.splitlines()[-1].startswith("v1: digest: sha256:")
        # Our logout removes what docker stored. (An anonymous `docker pull` would prompt
        # "Login prior to pull:" and wait for input, so it is not run here.)
        assert clients.dockyard("logout", host).returncode == 0
        assert clients.saved()["auths"] == {}
        assert clients.dockyard("rmi", ref).returncode == 0
        assert clients.dockyard("pull", ref).returncode == 1

        # Our login, then docker's pull with what we stored.
        login = clients.dockyard("login", "-u", "alice", "-p", PASSWORD, host)
        assert login.returncode == 0, login.stderr
        assert login.stderr.startswith(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"
        )
        pulled = clients.docker("pull", ref)
        assert pulled.returncode == 0, pulled.stderr
        assert pulled.stdout.splitlines()[-1] == ref
        # docker reuses the stored credentials exactly as we wrote them.
        reuse = clients.docker("login", host)
        assert (reuse.returncode, reuse.stdout) == (0, "Login Succeeded\n"), reuse.stderr
        assert "[Username: alice]" in reuse.stderr
        out = clients.docker("logout", host)
        assert out.returncode == 0
        assert clients.saved()["auths"] == {}
