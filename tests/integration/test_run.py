"""``run`` end to end through a real daemon, runc and conmon — with our CLI and the docker CLI."""

from __future__ import annotations

import re

import pytest

from tests.integration.clients import runner
from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration

CLIENTS = ["dockyard", "docker"]


@pytest.fixture(params=CLIENTS)
def run(request: pytest.FixtureRequest, daemon: TestDaemon):  # type: ignore[no-untyped-def]
    return runner(daemon, request.param)


def test_run_echo_hello(run, daemon: TestDaemon) -> None:  # type: ignore[no-untyped-def]
    before = daemon.request("GET", "/containers/json?all=1")[1]
    r = run("run", "--rm", "busybox", "echo", "hello")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n"
    after = daemon.request("GET", "/containers/json?all=1")[1]
    assert len(after) == len(before), "--rm left the container behind"


def test_run_exit_code_and_streams(run) -> None:  # type: ignore[no-untyped-def]
    r = run("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert r.returncode == 7
    assert r.stdout == "out\n"
    assert "err\n" in r.stderr


def test_run_stdin(run) -> None:  # type: ignore[no-untyped-def]
    r = run("run", "-i", "--rm", "busybox", "cat", input=b"hello-stdin\nsecond\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello-stdin\nsecond\n"


def test_run_config_flags(run) -> None:  # type: ignore[no-untyped-def]
    r = run(
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "--hostname",
        "hh",
        "busybox",
        "sh",
        "-c",
        'echo "$FOO $(pwd) $(id -u) $(hostname)"',
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "bar /tmp 65534 hh\n"


def test_run_entrypoint(run) -> None:  # type: ignore[no-untyped-def]
    r = run("run", "--rm", "--entrypoint", "echo", "busybox", "a", "b")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "a b\n"


def test_run_missing_executable_exits_127(run) -> None:  # type: ignore[no-untyped-def]
    r = run("run", "--rm", "busybox", "/nonexistent")
    assert r.returncode == 127
    assert "no such file or directory" in r.stderr


def test_run_not_executable_exits_126(run) -> None:  # type: ignore[no-untyped-def]
    r = run("run", "--rm", "busybox", "/etc/passwd")
    assert r.returncode == 126
    assert "permission denied" in r.stderr


def test_run_unknown_image_fails(run) -> None:  # type: ignore[no-untyped-def]
    r = run("run", "--rm", "--pull", "never", "nosuchimage:1", "true")
    assert r.returncode == 125
    assert "No such image: nosuchimage:1" in r.stderr


def test_network_none_has_only_loopback(run) -> None:  # type: ignore[no-untyped-def]
    r = run("run", "--rm", "--network", "none", "busybox", "cat", "/proc/net/dev")
    assert r.returncode == 0, r.stderr
    names = [line.split(":")[0].strip() for line in r.stdout.splitlines()[2:]]
    assert names == ["lo"]


def test_default_network_is_the_bridge(run) -> None:  # type: ignore[no-untyped-def]
    # Issue 5: the default network is the daemon's bridge (loopback + one veth).
    r = run("run", "--rm", "busybox", "cat", "/proc/net/dev")
    names = [line.split(":")[0].strip() for line in r.stdout.splitlines()[2:]]
    assert sorted(names) == ["eth0", "lo"]


def _host_interfaces() -> set[str]:
    with open("/proc/net/dev") as f:
        return {line.split(":")[0].strip() for line in f.read().splitlines()[2:]}


def test_network_host_sees_host_interfaces(run) -> None:  # type: ignore[no-untyped-def]
    # Other tests may add or remove veths meanwhile: the container must see every
    # interface the host had both before and after, and nothing the host never had.
    before = _host_interfaces()
    r = run("run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/dev")
    after = _host_interfaces()
    assert r.returncode == 0, r.stderr
    seen = {line.split(":")[0].strip() for line in r.stdout.splitlines()[2:]}
    assert before & after <= seen <= before | after
    assert "lo" in seen and len(seen) > 1


def test_run_tty_output_is_raw(run) -> None:  # type: ignore[no-untyped-def]
    r = run("run", "--rm", "-t", "busybox", "echo", "tty-line")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "tty-line\r\n"


def test_detached_run_prints_id(run, daemon: TestDaemon) -> None:  # type: ignore[no-untyped-def]
    r = run("run", "-d", "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    status, info = daemon.request("GET", f"/containers/{cid}/json")
    assert status == 200 and info["State"]["Running"] is True
    assert re.fullmatch(r"[a-z]+_[a-z]+\d*", info["Name"].lstrip("/"))
    assert run("rm", "-f", cid).returncode == 0
    assert daemon.request("GET", f"/containers/{cid}/json")[0] == 404


def test_default_capabilities_and_masked_proc(run) -> None:  # type: ignore[no-untyped-def]
    r = run(
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "grep CapEff /proc/self/status; cat /proc/kcore | wc -c",
    )
    assert r.returncode == 0, r.stderr
    cap = int(r.stdout.split()[1], 16)
    assert cap == 0xA80425FB  # Docker's default set
    assert r.stdout.split()[-1] == "0"  # /proc/kcore is masked


def test_dev_mounts_and_readonly_proc(run) -> None:  # type: ignore[no-untyped-def]
    r = run(
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "grep -E ' /dev(/pts|/shm|/mqueue)? ' /proc/mounts | cut -d' ' -f2,3 | sort; "
        "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo proc-sys-writable || echo proc-sys-ro; "
        "ls /dev/null /dev/zero /dev/urandom /dev/tty",
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:4] == ["/dev tmpfs", "/dev/mqueue mqueue", "/dev/pts devpts", "/dev/shm tmpfs"]
    assert "proc-sys-ro" in lines
    assert "/dev/urandom" in lines


def test_image_user_names_resolve_from_passwd(run) -> None:  # type: ignore[no-untyped-def]
    r = run("run", "--rm", "-u", "nobody", "busybox", "id")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("uid=65534(nobody) gid=65534")
    bad = run("run", "--rm", "-u", "nosuchuser", "busybox", "id")
    assert bad.returncode != 0
    assert "unable to find user nosuchuser: no matching entries in passwd file" in bad.stderr
