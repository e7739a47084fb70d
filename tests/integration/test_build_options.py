"""``build``'s settings for RUN containers (--add-host, --shm-size, --ulimit, -m,
--security-opt, --cgroup-parent), --compress, and the refused --squash/--isolation, with
our CLI and ``DOCKER_BUILDKIT=0 docker build``."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.integration.clients import runner
from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration

DOCKERFILE = """FROM busybox
RUN grep -w buildhost /etc/hosts > /hosts.txt
RUN df -k /dev/shm | tail -1 | awk '{print $2}' > /shm.txt
RUN ulimit -n > /nofile.txt
RUN cat /sys/fs/cgroup/memory/memory.limit_in_bytes > /mem.txt || echo v2 > /mem.txt
RUN grep ^Seccomp: /proc/self/status | awk '{print $2}' > /seccomp.txt
"""


@pytest.fixture(params=["dockyard", "docker"])
def which(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_run_container_settings(daemon: TestDaemon, which: str, tmp_path: Path) -> None:
    run = runner(daemon, which)
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    tag = f"bopt-{secrets.token_hex(3)}:1"
    r = run("build", "-q", "--no-cache", "--compress", "-t", tag,
            "--add-host", "buildhost:10.9.8.7", "--shm-size", "32m",
            "--ulimit", "nofile=1024:2048", "-m", "64m",
            "--security-opt", "seccomp=unconfined", str(tmp_path))  # fmt: skip
    assert r.returncode == 0, r.stderr
    try:
        out = run("run", "--rm", tag, "cat", "/hosts.txt", "/shm.txt", "/nofile.txt",
                  "/mem.txt", "/seccomp.txt").stdout.split()  # fmt: skip
        assert out[:2] == ["10.9.8.7", "buildhost"], out
        assert out[2:4] == ["32768", "1024"], out
        assert out[4] in (str(64 * 1024 * 1024), "v2"), out
        assert out[5] == "0", out  # seccomp=unconfined reached the RUN container
    finally:
        daemon.cli("rmi", tag)


def test_refused_build_options(daemon: TestDaemon, which: str, tmp_path: Path) -> None:
    run = runner(daemon, which)
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN true\n")
    r = run("build", "--squash", str(tmp_path))
    assert r.returncode == 1
    assert '"--squash" is only supported on a Docker daemon with experimental features' in r.stderr
    r = run("build", "--isolation", "hyperv", str(tmp_path))
    assert r.returncode != 0 and "isolation" in r.stderr.lower(), r.stderr
    r = run("build", "-q", "--add-host", "bad", str(tmp_path))
    assert r.returncode == 125 and 'bad format for add-host: "bad"' in r.stderr, r.stderr
