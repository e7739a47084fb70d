"""run/create flags that confine or label the process, with our CLI and the docker CLI:
--security-opt (no-new-privileges, seccomp profiles, systempaths), --oom-score-adj,
--cgroupns, --cgroup-parent, --memory-swappiness, --oom-kill-disable, block-IO throttles,
--domainname, --mac-address, --label-file, --annotation, --cidfile, -a, --runtime."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.clients import runner
from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration


@pytest.fixture(params=["dockyard", "docker"])
def which(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _cgroup_lines(text: str) -> dict[str, str]:
    """``/proc/<pid>/cgroup`` → controller list → path."""
    out = {}
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        out[controllers] = path
    return out


def test_no_new_privileges(daemon: TestDaemon, which: str) -> None:
    run = runner(daemon, which)
    status = "grep NoNewPrivs /proc/self/status"
    on = run("run", "--rm", "--security-opt", "no-new-privileges", "busybox", "sh", "-c", status)
    assert on.returncode == 0 and on.stdout.split() == ["NoNewPrivs:", "1"], on.stderr
    off = run("run", "--rm", "--security-opt", "no-new-privileges=false", "busybox", "sh", "-c",
              status)  # fmt: skip
    assert off.stdout.split() == ["NoNewPrivs:", "0"], off.stderr


def test_seccomp_profile_file(daemon: TestDaemon, which: str, tmp_path: Path) -> None:
    run = runner(daemon, which)
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        ],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            # only for containers that have CAP_SYS_ADMIN: not this one
            {
                "names": ["rmdir"],
                "action": "SCMP_ACT_ERRNO",
                "includes": {"caps": ["CAP_SYS_ADMIN"]},
            },
        ],
    }
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile, indent=2))
    r = run("run", "--rm", "--security-opt", f"seccomp={path}", "busybox", "sh", "-c",
            "mkdir /tmp/a; echo rc=$?; rmdir /etc; echo rm=$?")  # fmt: skip
    assert "rc=1" in r.stdout and "Operation not permitted" in r.stderr, (r.stdout, r.stderr)
    assert "rm=1" in r.stdout and "Directory not empty" in r.stderr  # rmdir itself was allowed
    r = run("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "mkdir", "/tmp/a")
    assert r.returncode == 0, r.stderr
    r = run("run", "--rm", "--security-opt", f"seccomp={tmp_path}/missing.json", "busybox", "true")
    assert r.returncode == 125 and "opening seccomp profile" in r.stderr, r.stderr


def test_systempaths_unconfined(daemon: TestDaemon, which: str) -> None:
    run = runner(daemon, which)
    masked = next(p for p in ("/proc/timer_list", "/proc/keys", "/proc/kcore") if os.path.exists(p))
    kind = ["stat", "-c", "%F", masked]
    hidden = run("run", "--rm", "busybox", *kind)
    assert hidden.stdout.strip() == "character special file", hidden.stderr
    plain = run("run", "--rm", "--security-opt", "systempaths=unconfined", "busybox", *kind)
    assert plain.stdout.strip().startswith("regular"), plain.stderr  # the kernel's own file


def test_bad_security_opts_and_ranges(daemon: TestDaemon, which: str) -> None:
    run = runner(daemon, which)
    for argv, message in [
        (("--security-opt", "bogus"), 'Invalid --security-opt: "bogus"'),
        (("--security-opt", "color=red"), 'invalid --security-opt 2: "color=red"'),
        (
            ("--oom-score-adj", "2000"),
            "Invalid value 2000, range for oom score adj is [-1000, 1000]",
        ),
        (
            ("--memory-swappiness", "101"),
            "invalid value: 101. Valid memory swappiness range is 0-100",
        ),
        (("--runtime", "kata"), "unknown or invalid runtime name: kata"),
        (("--cgroupns", "shared"), "--cgroupns: invalid CGROUP mode"),
        (("--mac-address", "zz:zz"), "zz:zz is not a valid mac address"),
    ]:
        r = run("create", *argv, "busybox", "true")
        assert r.returncode != 0 and message in r.stderr, (argv, r.stderr)
    assert daemon.request("GET", "/containers/json?all=1")[1] == []
    # the daemon's own checks, for API clients that skip the CLI's
    for hc, message in [
        ({"MemorySwappiness": 101}, "Invalid value: 101, valid memory swappiness range is 0-100"),
        ({"SecurityOpt": ["bogus"]}, 'invalid --security-opt 1: "bogus"'),
        ({"CgroupnsMode": "shared"}, "invalid cgroup namespace mode: shared"),
        ({"SecurityOpt": ["seccomp={"]}, "Decoding seccomp profile failed"),
    ]:
        status, body = daemon.request(
            "POST", "/containers/create", {"Image": "busybox", "HostConfig": hc}
        )
        assert status == 400 and message in body["message"], (hc, body)


def test_oom_score_adj_cgroupns_and_domainname(daemon: TestDaemon, which: str) -> None:
    run = runner(daemon, which)
    r = run("run", "--rm", "--oom-score-adj", "500", "--domainname", "corp.test", "busybox",
            "cat", "/proc/self/oom_score_adj", "/proc/sys/kernel/domainname")  # fmt: skip
    assert r.stdout.split() == ["500", "corp.test"], r.stderr
    name = f"ns-{secrets.token_hex(3)}"
    r = run("create", "--name", name, "busybox", "cat", "/proc/self/cgroup")
    assert r.returncode == 0, r.stderr
    hc = daemon.request("GET", f"/containers/{name}/json")[1]["HostConfig"]
    host_mode = "private" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "host"
    assert hc["CgroupnsMode"] == host_mode
    daemon.cli("rm", name)
    private = run("run", "--rm", "--cgroupns", "private", "busybox", "cat", "/proc/self/cgroup")
    assert private.returncode == 0, private.stderr
    assert set(_cgroup_lines(private.stdout).values()) == {"/"}, private.stdout
    host = run("run", "--rm", "--cgroupns", "host", "busybox", "cat", "/proc/self/cgroup")
    assert any(daemon.cgroup_parent in p for p in _cgroup_lines(host.stdout).values()), host.stdout


@pytest.fixture
def cgroup_parent() -> Iterator[str]:
    name = f"dyt-cgp-{secrets.token_hex(3)}"
    yield name
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        candidate = hierarchy / name
        if candidate.is_dir():
            for child in sorted(candidate.rglob("*"), reverse=True):
                if child.is_dir():
                    child.rmdir()
            candidate.rmdir()


def test_cgroup_parent_swappiness_oom_kill_and_throttles(
    daemon: TestDaemon, cgroup_parent: str
) -> None:
    block = next(
        (
            f"/dev/{d.name}"
            for d in sorted(Path("/sys/block").iterdir())
            if Path(f"/dev/{d.name}").exists()
        ),
        None,
    )
    assert block is not None, "no block device on this host"
    major, minor = os.major(os.stat(block).st_rdev), os.minor(os.stat(block).st_rdev)
    name = f"cg-{secrets.token_hex(3)}"
    r = daemon.docker("run", "-d", "--name", name, "--cgroup-parent", cgroup_parent,
                      "--memory-swappiness", "10", "--oom-kill-disable", "-m", "64m",
                      "--device-read-bps", f"{block}:1mb", "--device-write-iops", f"{block}:100",
                      "busybox", "sleep", "60")  # fmt: skip
    assert r.returncode == 0, r.stderr
    try:
        pid = daemon.request("GET", f"/containers/{name}/json")[1]["State"]["Pid"]
        paths = _cgroup_lines(Path(f"/proc/{pid}/cgroup").read_text())
        memory_path = next(p for c, p in paths.items() if "memory" in c.split(","))
        assert memory_path.startswith(f"/{cgroup_parent}/"), paths
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            return  # cgroup v2: swappiness and oom_kill_disable do not exist there
        mem = Path("/sys/fs/cgroup/memory") / memory_path.lstrip("/")
        assert (mem / "memory.swappiness").read_text().strip() == "10"
        assert "oom_kill_disable 1" in (mem / "memory.oom_control").read_text()
        blkio_path = next(p for c, p in paths.items() if "blkio" in c.split(","))
        blkio = Path("/sys/fs/cgroup/blkio") / blkio_path.lstrip("/")
        assert f"{major}:{minor} 1048576" in (blkio / "blkio.throttle.read_bps_device").read_text()
        assert f"{major}:{minor} 100" in (blkio / "blkio.throttle.write_iops_device").read_text()
    finally:
        daemon.cli("rm", "-f", name)
    r = daemon.cli("create", "--device-read-bps", "/dev/nonexistent:1mb", "busybox", "true")
    assert r.returncode != 0 and "/dev/nonexistent: no such file or directory" in r.stderr


def test_mac_address_labels_annotations(daemon: TestDaemon, which: str, tmp_path: Path) -> None:
    run = runner(daemon, which)
    labels = tmp_path / "labels"
    labels.write_text("# team labels\nteam=infra\ntier=old\n\nempty\n")
    name = f"mac-{secrets.token_hex(3)}"
    r = run("run", "-d", "--name", name, "--mac-address", "92:d0:c6:0a:29:33",
            "--label-file", str(labels), "--label", "tier=new", "--annotation", "org.test/a=b",
            "busybox", "sleep", "60")  # fmt: skip
    assert r.returncode == 0, r.stderr
    try:
        info = daemon.request("GET", f"/containers/{name}/json")[1]
        assert info["Config"]["Labels"] == {"team": "infra", "tier": "new"}  # "empty": no "="
        assert info["HostConfig"]["Annotations"] == {"org.test/a": "b"}
        spec = json.loads(
            (daemon.data_root / "containers" / info["Id"] / "config.json").read_text()
        )
        assert spec["annotations"]["org.test/a"] == "b"
        mac = daemon.cli("exec", name, "cat", "/sys/class/net/eth0/address").stdout.strip()
        assert mac == "92:d0:c6:0a:29:33"
        assert info["NetworkSettings"]["Networks"]["bridge"]["MacAddress"] == mac
    finally:
        daemon.cli("rm", "-f", name)


def test_sdk_mac_address(daemon: TestDaemon) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=daemon.host, version="1.43")
    try:
        out = client.containers.run("busybox", ["cat", "/sys/class/net/eth0/address"],
                                    mac_address="02:42:0a:0b:0c:0d", remove=True)  # fmt: skip
        assert out.decode().strip() == "02:42:0a:0b:0c:0d", out
    finally:
        client.close()


def test_cidfile(daemon: TestDaemon, which: str, tmp_path: Path) -> None:
    run = runner(daemon, which)
    cidfile = tmp_path / "cid"
    r = run("run", "-d", "--cidfile", str(cidfile), "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    try:
        cid = r.stdout.strip()
        assert cidfile.read_text() == cid
        again = run("run", "-d", "--cidfile", str(cidfile), "busybox", "true")
        assert again.returncode == 125
        assert (
            f"container ID file found, make sure the other container isn't running or delete {cidfile}"
            in again.stderr
        )
    finally:
        daemon.cli("rm", "-f", cid)
    # a failed create leaves no file behind
    missing = tmp_path / "cid2"
    r = run("run", "--cidfile", str(missing), "--pull", "never", "no-such-image:1", "true")
    assert r.returncode == 125 and not missing.exists()


def test_attach_streams(daemon: TestDaemon, which: str) -> None:
    run = runner(daemon, which)
    script = "echo out; echo err >&2"
    r = run("run", "--rm", "-a", "stdout", "busybox", "sh", "-c", script)
    assert r.returncode == 0 and r.stdout == "out\n" and r.stderr == "", r.stderr
    r = run("run", "--rm", "-a", "STDERR", "busybox", "sh", "-c", script)
    assert r.stdout == "" and r.stderr == "err\n", (r.stdout, r.stderr)
    r = run("run", "-d", "-a", "stdout", "busybox", "true")
    assert r.returncode == 1
    assert "conflicting options: cannot specify both --attach and --detach" in r.stderr
    r = run("run", "--rm", "-a", "stdbogus", "busybox", "true")
    assert r.returncode == 125 and re.search(
        r"valid streams are STDIN, STDOUT and STDERR", r.stderr
    )


def test_builtin_seccomp_profile(daemon: TestDaemon, which: str) -> None:
    run = runner(daemon, which)
    mode = "grep ^Seccomp: /proc/self/status"
    r = run("run", "--rm", "busybox", "sh", "-c", f"{mode}; unshare -n true; echo rc=$?")
    assert r.stdout.split()[:2] == ["Seccomp:", "2"], (r.stdout, r.stderr)
    assert "rc=1" in r.stdout and "Operation not permitted" in r.stderr
    # a user namespace needs no capability: only the profile stands in the way
    userns = "unshare -U true; echo rc=$?"
    r = run("run", "--rm", "busybox", "sh", "-c", userns)
    assert "rc=1" in r.stdout and "Operation not permitted" in r.stderr, (r.stdout, r.stderr)
    r = run("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "sh", "-c", userns)
    assert "rc=0" in r.stdout, (r.stdout, r.stderr)
    # the capability the profile conditions unshare on lets it through
    r = run("run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "unshare", "-n", "true")
    assert r.returncode == 0, r.stderr
    for flags in (("--security-opt", "seccomp=unconfined"), ("--privileged",)):
        r = run("run", "--rm", *flags, "busybox", "sh", "-c", mode)
        assert r.stdout.split() == ["Seccomp:", "0"], (flags, r.stdout, r.stderr)
    info = daemon.docker("info", "--format", "{{json .SecurityOptions}}")
    assert "name=seccomp,profile=builtin" in json.loads(info.stdout), info.stdout


def test_log_driver_none(daemon: TestDaemon, which: str) -> None:
    run = runner(daemon, which)
    r = run("run", "--rm", "--log-driver", "none", "busybox", "echo", "attached")
    assert r.returncode == 0 and r.stdout == "attached\n", r.stderr
    name = f"nolog-{secrets.token_hex(3)}"
    r = run("run", "-d", "--name", name, "--log-driver", "none", "busybox", "echo", "kept")
    assert r.returncode == 0, r.stderr
    try:
        run("wait", name)
        info = daemon.request("GET", f"/containers/{name}/json")[1]
        assert info["HostConfig"]["LogConfig"]["Type"] == "none" and info["LogPath"] == ""
        logs = run("logs", name)
        assert logs.returncode == 1
        assert "configured logging driver does not support reading" in logs.stderr
        status, _ = daemon.request("GET", f"/containers/{name}/logs?stdout=1")
        assert status == 501
    finally:
        daemon.cli("rm", "-f", name)
    r = run("run", "--rm", "--log-driver", "syslog-ng", "busybox", "true")
    assert r.returncode == 125 and "no log driver named 'syslog-ng' is registered" in r.stderr
