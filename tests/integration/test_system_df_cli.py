"""``dockyard system df`` prints what ``docker system df`` prints for the same daemon."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration


def test_system_df_matches_docker(daemon: TestDaemon) -> None:
    cid = daemon.cli("run", "-d", "--pull", "never", "busybox", "sleep", "60").stdout.strip()
    try:
        for args in ([], ["--format", "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Reclaimable}}"]):
            ours = daemon.cli("system", "df", *args)
            theirs = daemon.docker("system", "df", *args)
            assert ours.returncode == theirs.returncode == 0, ours.stderr + theirs.stderr
            assert ours.stdout == theirs.stdout
        rows = daemon.cli("system", "df").stdout.splitlines()
        assert rows[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        images = rows[1].split()
        assert images[0] == "Images" and int(images[2]) >= 1  # busybox is in use
    finally:
        daemon.cli("rm", "-f", cid)


def test_system_df_refuses_arguments(daemon: TestDaemon) -> None:
    ours = daemon.cli("system", "df", "extra")
    theirs = daemon.docker("system", "df", "extra")
    assert ours.returncode == theirs.returncode == 1
    assert "accepts no arguments" in ours.stderr and "accepts no arguments" in theirs.stderr


def test_system_df_verbose_matches_docker(fresh_daemon: TestDaemon, tmp_path: Path) -> None:
    """Every section of ``df -v``, with images, a running container, a volume and build
    cache entries used by a second build (LAST USED and USAGE, docker's row order)."""
    d = fresh_daemon
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo hi > /x\nENV A=1\n")
    assert d.cli("build", "-q", "-t", "dfv:1", str(tmp_path)).returncode == 0
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo hi > /x\nENV A=2\n")
    assert d.cli("build", "-q", "-t", "dfv:2", str(tmp_path)).returncode == 0
    assert d.cli("volume", "create", "dfv-vol").returncode == 0
    cid = d.cli("run", "-d", "-v", "dfv-vol:/data", "busybox", "sleep", "60").stdout.strip()
    try:
        ours = d.cli("system", "df", "-v")
        theirs = d.docker("system", "df", "-v")
        assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
        assert ours.stdout == theirs.stdout
        assert "Build cache usage: 0B" in ours.stdout
        usage = [line.split() for line in ours.stdout.split("CACHE ID")[1].splitlines()[1:]]
        assert sorted(row[-2] for row in usage if row) == ["0", "0", "1"], usage  # RUN reused
    finally:
        d.cli("rm", "-f", cid)
