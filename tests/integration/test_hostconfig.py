"""HostConfig settings that reach the runtime: namespace modes (--pid/--ipc/--uts), ulimits,
devices, --init and ``docker update`` — each with our CLI and the docker CLI.

Containers started with ``--pid host`` only read ``/proc``; no test signals from inside one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.clients import Run, runner
from tests.integration.conftest import running_daemon
from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration

CLIENTS = ["dockyard", "docker"]


@pytest.fixture(params=CLIENTS)
def run(request: pytest.FixtureRequest, daemon: TestDaemon) -> Run:
    return runner(daemon, request.param)


def _name() -> str:
    return f"hc-{secrets.token_hex(4)}"


@contextlib.contextmanager
def _sleeper(daemon: TestDaemon, *flags: str) -> Iterator[str]:
    """A running busybox ``sleep``; its name; removed afterwards."""
    name = _name()
    r = daemon.cli("run", "-d", "--name", name, *flags, "busybox", "sleep", "1000")
    assert r.returncode == 0, r.stderr
    try:
        yield name
    finally:
        daemon.request("DELETE", f"/containers/{name}?force=1")


def _inspect(daemon: TestDaemon, name: str) -> dict:  # type: ignore[type-arg]
    status, info = daemon.request("GET", f"/containers/{name}/json")
    assert status == 200, info
    return info  # type: ignore[no-any-return]


# --- namespaces ------------------------------------------------------------------------------


def test_pid_host_sees_host_pid_1(run: Run) -> None:
    r = run("run", "--rm", "--pid", "host", "busybox", "cat", "/proc/1/comm")
    assert r.returncode == 0, r.stderr
    assert r.stdout == Path("/proc/1/comm").read_text()


def test_pid_container_sees_its_processes(run: Run, daemon: TestDaemon) -> None:
    with _sleeper(daemon) as name:
        r = run("run", "--rm", "--pid", f"container:{name}", "busybox", "cat", "/proc/1/cmdline")
        assert r.returncode == 0, r.stderr
        assert r.stdout == "sleep\x001000\x00"


def test_pid_container_not_running_is_refused(daemon: TestDaemon) -> None:
    name = _name()
    assert daemon.cli("create", "--name", name, "busybox", "true").returncode == 0
    try:
        status, out = daemon.request(
            "POST",
            "/containers/create",
            {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"PidMode": f"container:{name}"}},
        )
        assert status == 201, out
        joiner = out["Id"]
        status, out = daemon.request("POST", f"/containers/{joiner}/start")
        assert status == 409, out
        assert "cannot join PID of a non running container" in out["message"]
        daemon.request("DELETE", f"/containers/{joiner}?force=1")
    finally:
        daemon.request("DELETE", f"/containers/{name}?force=1")


def test_ipc_host_shares_the_host_namespace(run: Run) -> None:
    r = run("run", "--rm", "--ipc", "host", "busybox", "readlink", "/proc/self/ns/ipc")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == os.readlink("/proc/self/ns/ipc")
    r = run("run", "--rm", "busybox", "readlink", "/proc/self/ns/ipc")
    assert r.stdout.strip() != os.readlink("/proc/self/ns/ipc")


def test_ipc_container_shares_namespace_and_shm(run: Run, daemon: TestDaemon) -> None:
    with _sleeper(daemon, "--ipc", "shareable") as name:
        assert _inspect(daemon, name)["HostConfig"]["IpcMode"] == "shareable"
        assert daemon.cli("exec", name, "sh", "-c", "echo hi > /dev/shm/x").returncode == 0
        pid = _inspect(daemon, name)["State"]["Pid"]
        r = run(
            "run",
            "--rm",
            "--ipc",
            f"container:{name}",
            "busybox",
            "sh",
            "-c",
            "readlink /proc/self/ns/ipc; cat /dev/shm/x",
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout == f"{os.readlink(f'/proc/{pid}/ns/ipc')}\nhi\n"


def test_ipc_modes_default_and_errors(daemon: TestDaemon) -> None:
    with _sleeper(daemon) as name:
        assert _inspect(daemon, name)["HostConfig"]["IpcMode"] == "private"
        status, out = daemon.request(
            "POST",
            "/containers/create",
            {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"IpcMode": f"container:{name}"}},
        )
        assert status == 201, out
        status, err = daemon.request("POST", f"/containers/{out['Id']}/start")
        assert status == 400 and "non-shareable IPC" in err["message"], err
        daemon.request("DELETE", f"/containers/{out['Id']}?force=1")
    status, out = daemon.request(
        "POST",
        "/containers/create",
        {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"IpcMode": "bogus"}},
    )
    assert status == 400 and out["message"] == "invalid IPC mode: bogus", out


def test_uts_host_uses_the_host_name(run: Run) -> None:
    r = run("run", "--rm", "--uts", "host", "busybox", "hostname")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == os.uname().nodename


# --- ulimits ---------------------------------------------------------------------------------


def test_ulimit_nofile(run: Run) -> None:
    r = run(
        "run",
        "--rm",
        "--ulimit",
        "nofile=1024:2048",
        "--ulimit",
        "nproc=100",
        "busybox",
        "cat",
        "/proc/self/limits",
    )
    assert r.returncode == 0, r.stderr
    lines = {line[:26].strip(): line[26:].split() for line in r.stdout.splitlines()}
    assert lines["Max open files"][:2] == ["1024", "2048"]
    assert lines["Max processes"][:2] == ["100", "100"]


def test_ulimit_unknown_name_fails(daemon: TestDaemon) -> None:
    status, out = daemon.request(
        "POST",
        "/containers/create",
        {
            "Image": "busybox",
            "Cmd": ["true"],
            "HostConfig": {"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]},
        },
    )
    assert status == 201, out
    status, err = daemon.request("POST", f"/containers/{out['Id']}/start")
    assert status == 400 and "invalid ulimit type: bogus" in err["message"], err
    daemon.request("DELETE", f"/containers/{out['Id']}?force=1")


# --- devices ---------------------------------------------------------------------------------


def test_device_node_is_created_with_its_numbers(run: Run) -> None:
    r = run(
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/mynull",
        "busybox",
        "sh",
        "-c",
        "stat -c '%F %t:%T' /dev/mynull && echo x > /dev/mynull && echo ok",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "character special file 1:3\nok\n"


def test_device_permissions_limit_access(run: Run) -> None:
    """``:r`` allows reading only: writing to /dev/kmsg (1:11, not a default device) fails."""
    r = run(
        "run",
        "--rm",
        "--device",
        "/dev/kmsg:/dev/mykmsg:r",
        "busybox",
        "sh",
        "-c",
        "test -c /dev/mykmsg && echo present; echo x > /dev/mykmsg || echo denied;"
        " cat /sys/fs/cgroup/devices/devices.list 2>/dev/null | grep '^c 1:11 ' || true",
    )
    lines = r.stdout.splitlines()
    assert lines[:2] == ["present", "denied"], r.stderr
    assert lines[2:] in ([], ["c 1:11 r"])


def test_device_directory_adds_every_node(run: Run) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="dyt-dev-", dir="/var/tmp"))
    try:
        os.mknod(tmp / "null", 0o666 | 0o020000, os.makedev(1, 3))
        (tmp / "sub").mkdir()
        os.mknod(tmp / "sub" / "zero", 0o666 | 0o020000, os.makedev(1, 5))
        r = run(
            "run",
            "--rm",
            "--device",
            f"{tmp}:/dev/dd",
            "busybox",
            "stat",
            "-c",
            "%n %t:%T",
            "/dev/dd/null",
            "/dev/dd/sub/zero",
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout == "/dev/dd/null 1:3\n/dev/dd/sub/zero 1:5\n"
    finally:
        shutil.rmtree(tmp)


def test_device_cgroup_rule_and_missing_device(daemon: TestDaemon) -> None:
    r = daemon.cli(
        "run",
        "--rm",
        "--device-cgroup-rule",
        "c 1:3 rwm",
        "busybox",
        "sh",
        "-c",
        "mknod /tmp/n c 1 3 && echo x > /tmp/n && echo ok",
    )
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr
    r = daemon.docker("run", "--rm", "--device", "/dev/does-not-exist", "busybox", "true")
    assert r.returncode != 0
    assert (
        'error gathering device information while adding custom device "/dev/does-not-exist"'
        in r.stderr
    )


def test_privileged_gets_host_devices(run: Run) -> None:
    """/dev/kmsg (1:11) is no runc default device: only --privileged brings it."""
    r = run("run", "--rm", "--privileged", "busybox", "stat", "-c", "%t:%T", "/dev/kmsg")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1:b\n"
    r = run("run", "--rm", "busybox", "test", "-e", "/dev/kmsg")
    assert r.returncode == 1


# --- init ------------------------------------------------------------------------------------


def test_init_is_pid_1(run: Run) -> None:
    r = run("run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/comm; echo $$")
    assert r.returncode == 0, r.stderr
    comm, shell_pid = r.stdout.split()
    assert comm == "docker-init"
    assert shell_pid != "1"


def test_init_exit_code_passes_through(run: Run) -> None:
    r = run("run", "--rm", "--init", "busybox", "sh", "-c", "exit 3")
    assert r.returncode == 3


def test_daemon_defaults_init_and_ulimits() -> None:
    config = {
        "init": True,
        "init-path": "/usr/bin/tini-static",
        "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 512, "Hard": 1024}},
    }
    with running_daemon(config) as d:
        r = d.docker(
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "cat /proc/1/comm; grep 'Max open files' /proc/self/limits",
        )
        assert r.returncode == 0, r.stderr
        first, second = r.stdout.splitlines()
        assert first == "docker-init"
        assert second.split()[3:5] == ["512", "1024"]
        r = d.cli("run", "--rm", "--ulimit", "nofile=100:200", "busybox", "cat", "/proc/1/comm")
        assert r.stdout == "docker-init\n"
        status, out = d.request(
            "POST",
            "/containers/create",
            {"Image": "busybox", "Cmd": ["cat", "/proc/1/comm"], "HostConfig": {"Init": False}},
        )
        assert status == 201, out
        r = d.cli("start", "-a", out["Id"])
        assert r.stdout == "cat\n", r.stderr


# --- update ----------------------------------------------------------------------------------


def _cgroup_file(daemon: TestDaemon, cid: str, v1: str, v2: str) -> Path:
    v1_path = Path("/sys/fs/cgroup", v1.split(".", 1)[0], daemon.cgroup_parent.strip("/"), cid, v1)
    if v1_path.parent.exists():
        return v1_path
    return Path("/sys/fs/cgroup", daemon.cgroup_parent.strip("/"), cid, v2)


def test_update_memory_cpus_and_restart_policy(run: Run, daemon: TestDaemon) -> None:
    with _sleeper(daemon, "-m", "32m") as name:
        cid = _inspect(daemon, name)["Id"]
        r = run(
            "update",
            "-m",
            "64m",
            "--memory-swap",
            "128m",
            "--cpus",
            "0.5",
            "--restart",
            "on-failure:3",
            name,
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout == f"{name}\n"
        limit = _cgroup_file(daemon, cid, "memory.limit_in_bytes", "memory.max")
        assert limit.read_text().strip() == str(64 * 1024 * 1024)
        quota = _cgroup_file(daemon, cid, "cpu.cfs_quota_us", "cpu.max")
        assert quota.read_text().split()[0] == "50000"
        hc = _inspect(daemon, name)["HostConfig"]
        assert hc["Memory"] == 64 * 1024 * 1024
        assert hc["MemorySwap"] == 128 * 1024 * 1024
        assert hc["NanoCpus"] == 500_000_000
        assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}


def test_update_stopped_container_keeps_settings(daemon: TestDaemon) -> None:
    name = _name()
    assert daemon.cli("create", "--name", name, "busybox", "sleep", "1000").returncode == 0
    try:
        r = daemon.docker("update", "--pids-limit", "50", "--cpu-shares", "512", name)
        assert r.returncode == 0, r.stderr
        assert daemon.cli("start", name).returncode == 0
        cid = _inspect(daemon, name)["Id"]
        pids = _cgroup_file(daemon, cid, "pids.max", "pids.max")
        assert pids.read_text().strip() == "50"
        hc = _inspect(daemon, name)["HostConfig"]
        assert hc["PidsLimit"] == 50 and hc["CpuShares"] == 512
    finally:
        daemon.request("DELETE", f"/containers/{name}?force=1")


def test_update_errors(run: Run, daemon: TestDaemon) -> None:
    with _sleeper(daemon, "--rm") as name:
        r = run("update", "--restart", "always", name)
        assert r.returncode == 1
        assert (
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
            in r.stderr
        )
        status, out = daemon.request("POST", f"/containers/{name}/update", {"Memory": 64 << 20})
        assert status == 409, out
        assert out["message"].startswith("Cannot update container ")
        assert "update the memoryswap at the same time" in out["message"]
        status, out = daemon.request("POST", f"/containers/{name}/update", {"Memory": 1024})
        assert status == 400 and out["message"] == "Minimum memory limit allowed is 6MB", out
    r = run("update", "--cpu-shares", "2", "hc-does-not-exist")
    assert r.returncode == 1 and "No such container: hc-does-not-exist" in r.stderr
    r = run("update", "hc-does-not-exist")
    assert r.returncode != 0
    assert "you must provide one or more flags when using this command" in r.stderr
