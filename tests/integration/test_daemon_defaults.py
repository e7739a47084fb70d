"""daemon.json's container defaults and engine options, as dockerd reads them: dns,
dns-search, dns-opts, default-shm-size, default-ipc-mode, mtu, labels, experimental,
storage-driver; containers' own settings win over them; bad values stop the daemon."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import running_daemon
from tests.integration.daemon import DOCKYARDD, TestDaemon

pytestmark = pytest.mark.integration

CONFIG = {
    "dns": ["10.213.250.53"],
    "dns-search": ["corp.test"],
    "dns-opts": ["ndots:2"],
    "default-shm-size": "32M",
    "default-ipc-mode": "shareable",
    "mtu": 1400,
    "labels": ["site=lab"],
    "experimental": True,
    "storage-driver": "overlay2",
    "max-concurrent-downloads": 2,
    "seccomp-profile": "unconfined",
}


@pytest.fixture(scope="module")
def configured() -> Iterator[TestDaemon]:
    with running_daemon(CONFIG) as d:
        yield d


def _out(d: TestDaemon, *args: str) -> str:
    r = d.cli(*args)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def test_dns_defaults_and_container_overrides(configured: TestDaemon) -> None:
    resolv = _out(configured, "run", "--rm", "busybox", "cat", "/etc/resolv.conf")
    assert resolv.splitlines() == [
        "nameserver 10.213.250.53",
        "search corp.test",
        "options ndots:2",
    ]
    own = configured.docker("run", "--rm", "--dns", "10.213.250.54", "--dns-search", "x.test",
                            "busybox", "cat", "/etc/resolv.conf")  # fmt: skip
    assert own.returncode == 0, own.stderr
    assert own.stdout.splitlines() == [
        "nameserver 10.213.250.54",
        "search x.test",
        "options ndots:2",
    ]


def test_shm_size_ipc_mode_and_mtu(configured: TestDaemon) -> None:
    cid = _out(configured, "create", "busybox", "sh", "-c",
               "df -k /dev/shm | tail -1; cat /sys/class/net/eth0/mtu").strip()  # fmt: skip
    hc = configured.request("GET", f"/containers/{cid}/json")[1]["HostConfig"]
    assert hc["ShmSize"] == 32 * 1024 * 1024 and hc["IpcMode"] == "shareable"
    out = _out(configured, "start", "-a", cid).split("\n")
    assert out[0].split()[1] == "32768" and out[1] == "1400", out
    _out(configured, "rm", cid)
    # the container's own --shm-size and --ipc win
    out = _out(configured, "run", "--rm", "--shm-size", "16m", "--ipc", "private", "busybox",
               "sh", "-c", "df -k /dev/shm | tail -1")  # fmt: skip
    assert out.split()[1] == "16384", out
    r = configured.request(
        "POST", "/containers/create", {"Image": "busybox", "HostConfig": {"ShmSize": -1}}
    )
    assert r[0] == 400 and "SHM size can not be less than 0" in r[1]["message"]


def test_seccomp_profile_unconfined(configured: TestDaemon) -> None:
    out = _out(configured, "run", "--rm", "busybox", "grep", "^Seccomp:", "/proc/self/status")
    assert out.split() == ["Seccomp:", "0"]
    info = json.loads(_out(configured, "info", "--format", "{{json .SecurityOptions}}"))
    assert not any(o.startswith("name=seccomp") for o in info), info


def test_info_labels_and_experimental(configured: TestDaemon) -> None:
    info = json.loads(_out(configured, "info", "--format", "{{json .}}"))
    assert info["Labels"] == ["site=lab"] and info["ExperimentalBuild"] is True
    assert info["Driver"] == "overlay2"
    r = configured.docker("version", "--format", "{{.Server.Experimental}}")
    assert r.returncode == 0 and r.stdout.strip() == "true", r.stderr


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"default-ipc-mode": "host"}, "invalid default IPC mode: host"),
        ({"default-shm-size": "lots"}, "invalid default-shm-size: invalid size: 'lots'"),
        ({"storage-driver": "btrfs"}, "driver not supported: btrfs"),
        ({"labels": ["novalue"]}, "bad attribute format: novalue"),
        ({"mtu": "big"}, "mtu must be a number"),
        ({"dns": "1.1.1.1"}, "dns must be a list of strings"),
        ({"seccomp-profile": "/nonexistent.json"}, "opening seccomp profile (/nonexistent.json)"),
    ],
)
def test_bad_values_stop_the_daemon(
    tmp_path: Path, config: dict[str, object], message: str
) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(config))
    r = subprocess.run(
        [DOCKYARDD, "--config-file", str(path), "--data-root", str(tmp_path / "r"),
         "--exec-root", str(tmp_path / "x"), "-H", f"unix://{tmp_path}/s.sock"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "s.sock").exists()
