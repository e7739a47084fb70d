"""Containers outlive the daemon: SIGKILL dockyardd, restart it, and manage the container."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration


def test_container_survives_daemon_sigkill(fresh_daemon: TestDaemon) -> None:
    d = fresh_daemon
    r = d.cli(
        "run",
        "-d",
        "--name",
        "survivor",
        "busybox",
        "sh",
        "-c",
        "echo before; trap 'exit 0' TERM; while true; do sleep 0.2; done",
    )
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    pid = d.request("GET", f"/containers/{cid}/json")[1]["State"]["Pid"]
    d.kill9()
    time.sleep(0.5)
    assert _alive(pid), "the container died with the daemon"
    d.start()
    info = d.request("GET", f"/containers/{cid}/json")[1]
    assert info["State"]["Running"] is True and info["State"]["Pid"] == pid
    assert d.cli("logs", "survivor").stdout == "before\n"
    assert (
        d.docker("exec", "survivor", "echo", "exec-after-restart").stdout == "exec-after-restart\n"
    )
    assert d.docker("stop", "survivor").returncode == 0
    state = d.request("GET", f"/containers/{cid}/json")[1]["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0
    assert not _alive(pid)


def test_exit_while_daemon_down_is_recorded(fresh_daemon: TestDaemon) -> None:
    d = fresh_daemon
    cid = d.cli("run", "-d", "busybox", "sh", "-c", "sleep 1; echo done; exit 9").stdout.strip()
    d.kill9()
    time.sleep(2)
    d.start()
    state = d.request("GET", f"/containers/{cid}/json")[1]["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 9
    assert d.cli("logs", cid).stdout == "done\n"
    rootfs = d.data_root / "containers" / cid / "rootfs"
    assert str(rootfs) not in Path("/proc/self/mounts").read_text()


def test_sigterm_leaves_containers_running(fresh_daemon: TestDaemon) -> None:
    d = fresh_daemon
    cid = d.cli("run", "-d", "busybox", "sleep", "300").stdout.strip()
    pid = d.request("GET", f"/containers/{cid}/json")[1]["State"]["Pid"]
    d.stop()
    assert _alive(pid)
    d.start()
    assert d.request("GET", f"/containers/{cid}/json")[1]["State"]["Running"] is True
    assert d.cli("rm", "-f", cid).returncode == 0
    time.sleep(0.3)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
