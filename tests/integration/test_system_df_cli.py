"""``dockyard system df`` prints what ``docker system df`` prints for the same daemon."""

from __future__ import annotations

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
