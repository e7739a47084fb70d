"""Pull and push through the daemon against real registries with credentials: ours and the
CNCF registry, each with htpasswd (basic) auth and with bearer-token auth."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon import TestDaemon
from tests.registry.interop_helpers import USERS, Registry, running_registry

pytestmark = pytest.mark.integration


@pytest.fixture(
    scope="module",
    params=[
        ("dockyard", "htpasswd"),
        ("dockyard", "token"),
        ("cncf", "htpasswd"),
        ("cncf", "token"),
    ],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def auth_registry(request: pytest.FixtureRequest) -> Iterator[Registry]:
    kind, auth = request.param
    if kind == "cncf" and shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed")
    work = Path(tempfile.mkdtemp(prefix="dyauth-", dir="/var/tmp"))
    try:
        with running_registry(kind, work, auth) as registry:
            yield registry
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_login_push_pull_run_with_credentials(auth_registry: Registry, daemon: TestDaemon) -> None:
    host = auth_registry.host
    ref = f"{host}/alice/bb:v1"
    bad = daemon.docker("login", "-u", "alice", "--password-stdin", host, input=b"wrong\n")
    assert bad.returncode == 1
    assert "401 Unauthorized" in bad.stderr or "unauthorized" in bad.stderr.lower()
    # Without credentials a push is refused.
    assert daemon.docker("tag", "busybox", ref).returncode == 0
    anonymous = daemon.docker("push", ref)
    assert anonymous.returncode == 1
    assert "no basic auth credentials" in anonymous.stderr or "unauthorized" in anonymous.stderr
    ok = daemon.docker(
        "login", "-u", "alice", "--password-stdin", host, input=USERS["alice"].encode() + b"\n"
    )
    assert ok.returncode == 0, ok.stderr
    assert "Login Succeeded" in ok.stdout
    try:
        pushed = daemon.docker("push", ref)
        assert pushed.returncode == 0, pushed.stderr
        digest = next(w for w in pushed.stdout.split() if w.startswith("sha256:"))
        image_id = json.loads(daemon.docker("image", "inspect", ref).stdout)[0]["Id"]
        assert daemon.docker("rmi", ref).returncode == 0
        pulled = daemon.docker("pull", ref)
        assert pulled.returncode == 0, pulled.stderr
        assert f"Digest: {digest}" in pulled.stdout
        assert json.loads(daemon.docker("image", "inspect", ref).stdout)[0]["Id"] == image_id
        assert daemon.docker("rmi", ref).returncode == 0
        run = daemon.docker("run", "--rm", ref, "echo", "pulled-with-auth")
        assert run.returncode == 0, run.stderr
        assert run.stdout.endswith("pulled-with-auth\n")
    finally:
        daemon.docker("logout", host)
        daemon.docker("rmi", "-f", ref)
    # Logged out: the private repository cannot be pulled anonymously. (Asked through the API:
    # on a 401 the docker CLI itself waits for credentials at an interactive prompt.)
    repo, _, tag = ref.rpartition(":")
    status, body = daemon.request("POST", f"/images/create?fromImage={repo}&tag={tag}")
    assert status == 401, body
    assert "no basic auth credentials" in body["message"] or "unauthorized" in body["message"]
