"""HostConfig → spec pieces (containers.hostconfig) and their effect on build_runtime_spec:
tables of input → output, no root needed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from dockyard.cli.createopts import CreateOptions, build_create_body, parse_device
from dockyard.cli.update import update_config
from dockyard.containers.config import validate_host_config
from dockyard.containers.hostconfig import (
    INIT_DESTINATION,
    apply_update,
    check_namespace_modes,
    check_update,
    device_cgroup_rule,
    devices_from_host_config,
    init_args,
    init_mount,
    merge_ulimits,
    namespace_target,
    update_resources,
    wants_init,
)
from dockyard.containers.ocispec import SpecOptions, build_runtime_spec
from dockyard.errors import Conflict, InvalidArgument

pytestmark = pytest.mark.unit

ROOTFS = Path("/var/lib/dockyard/containers/abc/rootfs")


def spec(**kw: Any) -> dict[str, Any]:
    kw.setdefault("host_capabilities", [])
    return build_runtime_spec(SpecOptions(rootfs=ROOTFS, args=["sh"], env=[], **kw))


def ns_types(s: dict[str, Any]) -> list[str]:
    return [n["type"] for n in s["linux"]["namespaces"]]


# --- namespaces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "absent", "joined"),
    [
        ({"pid_mode": "host"}, "pid", None),
        ({"ipc_mode": "host"}, "ipc", None),
        ({"uts_mode": "host"}, "uts", None),
        ({"pid_mode": "ns:/proc/42/ns/pid"}, None, ("pid", "/proc/42/ns/pid")),
        ({"ipc_mode": "ns:/proc/42/ns/ipc"}, None, ("ipc", "/proc/42/ns/ipc")),
    ],
)
def test_namespace_modes(kw: dict[str, str], absent: str | None, joined: Any) -> None:
    s = spec(**kw)
    if absent:
        assert absent not in ns_types(s)
    if joined:
        assert {"type": joined[0], "path": joined[1]} in s["linux"]["namespaces"]


def test_ipc_host_binds_host_shm_and_uts_host_drops_hostname() -> None:
    s = spec(ipc_mode="host", uts_mode="host", hostname="abc")
    shm = [m for m in s["mounts"] if m["destination"] == "/dev/shm"]
    assert shm == [
        {
            "destination": "/dev/shm",
            "type": "bind",
            "source": "/dev/shm",
            "options": ["rbind", "rprivate"],
        }
    ]
    assert "hostname" not in s


@pytest.mark.parametrize(
    ("hc", "message"),
    [
        ({"IpcMode": "bogus"}, "invalid IPC mode: bogus"),
        ({"IpcMode": "container:"}, "invalid IPC mode: container:"),
        ({"PidMode": "nope"}, "invalid PID mode: nope"),
        ({"UTSMode": "private2"}, "invalid UTS mode: private2"),
    ],
)
def test_namespace_mode_errors(hc: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        check_namespace_modes(hc)


def test_namespace_mode_defaults_and_targets() -> None:
    for hc in ({}, {"IpcMode": "shareable", "PidMode": "host", "UTSMode": "host"}):
        check_namespace_modes(hc)
    assert validate_host_config({})["IpcMode"] == "private"
    assert validate_host_config({"IpcMode": "shareable"})["IpcMode"] == "shareable"
    assert namespace_target("container:web") == "web"
    assert namespace_target("host") is None


# --- ulimits ---------------------------------------------------------------------------------


def test_ulimits_merge_over_daemon_defaults() -> None:
    out = merge_ulimits(
        [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
        {"nofile": {"Name": "nofile", "Soft": 1, "Hard": 2}, "nproc": {"Soft": 5, "Hard": 6}},
    )
    assert out == [
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048},
        {"type": "RLIMIT_NPROC", "soft": 5, "hard": 6},
    ]
    rl = {r["type"]: r for r in spec(rlimits=out)["process"]["rlimits"]}
    assert (rl["RLIMIT_NOFILE"]["soft"], rl["RLIMIT_NOFILE"]["hard"]) == (1024, 2048)


def test_ulimit_unknown_name() -> None:
    with pytest.raises(InvalidArgument, match="invalid ulimit type: bogus"):
        merge_ulimits([{"Name": "bogus", "Soft": 1, "Hard": 1}], {})


# --- devices ---------------------------------------------------------------------------------


def test_device_from_host_path_and_permissions() -> None:
    devices, access = devices_from_host_config(
        [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rw"}]
    )
    st = os.stat("/dev/null")
    assert devices == [
        {
            "path": "/dev/mynull",
            "type": "c",
            "major": 1,
            "minor": 3,
            "fileMode": st.st_mode & 0o7777,
            "uid": st.st_uid,
            "gid": st.st_gid,
        }
    ]
    assert access == {"/dev/mynull": "rw"}
    s = spec(devices=devices, device_access=access)
    assert s["linux"]["devices"] == devices
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"} in s["linux"][
        "resources"
    ]["devices"]


def test_device_errors() -> None:
    with pytest.raises(InvalidArgument, match='custom device "/nonexistent": no such file'):
        devices_from_host_config([{"PathOnHost": "/nonexistent"}])
    with pytest.raises(InvalidArgument, match="not a device node"):
        devices_from_host_config([{"PathOnHost": "/etc/hostname"}])
    with pytest.raises(InvalidArgument, match="invalid device cgroup permissions"):
        devices_from_host_config([{"PathOnHost": "/dev/null", "CgroupPermissions": "rx"}])


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("c 1:3 rwm", {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}),
        ("a *:* r", {"allow": True, "type": "a", "access": "r"}),
        ("b 8:* rw", {"allow": True, "type": "b", "major": 8, "access": "rw"}),
    ],
)
def test_device_cgroup_rule(rule: str, expected: dict[str, Any]) -> None:
    assert device_cgroup_rule(rule) == expected


@pytest.mark.parametrize("rule", ["c 1:3", "x 1:3 rwm", "c 1-3 rwm", "c a:3 rwm", "c 1:3 rwx"])
def test_device_cgroup_rule_errors(rule: str) -> None:
    with pytest.raises(InvalidArgument):
        device_cgroup_rule(rule)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/dev/null", ("/dev/null", "/dev/null", "rwm")),
        ("/dev/null:r", ("/dev/null", "/dev/null", "r")),
        ("/dev/null:/dev/x", ("/dev/null", "/dev/x", "rwm")),
        ("/dev/null:/dev/x:rw", ("/dev/null", "/dev/x", "rw")),
    ],
)
def test_cli_parse_device(text: str, expected: tuple[str, str, str]) -> None:
    d = parse_device(text)
    assert (d["PathOnHost"], d["PathInContainer"], d["CgroupPermissions"]) == expected


def test_cli_create_body_new_flags() -> None:
    body = build_create_body(
        CreateOptions(
            "busybox",
            pid="host",
            ipc="shareable",
            uts="host",
            devices=["/dev/null:/dev/x"],
            device_cgroup_rules=["c 1:3 rwm"],
            pids_limit=10,
            cpu_shares=512,
            cpuset_cpus="0",
            memory="64m",
            memory_swap="-1",
            group_add=["10"],
        )
    )
    hc = body["HostConfig"]
    assert (hc["PidMode"], hc["IpcMode"], hc["UTSMode"]) == ("host", "shareable", "host")
    assert hc["Devices"] == [
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}
    ]
    assert hc["DeviceCgroupRules"] == ["c 1:3 rwm"]
    assert (hc["PidsLimit"], hc["CpuShares"], hc["CpusetCpus"]) == (10, 512, "0")
    assert (hc["Memory"], hc["MemorySwap"], hc["GroupAdd"]) == (64 << 20, -1, ["10"])


# --- init ------------------------------------------------------------------------------------


def test_init() -> None:
    assert wants_init({"Init": True}, False) and not wants_init({"Init": False}, True)
    assert wants_init({}, True) and not wants_init({"Init": None}, False)
    assert init_args(["sh", "-c", "x"]) == [INIT_DESTINATION, "--", "sh", "-c", "x"]
    m = init_mount("/usr/bin/tini-static")
    assert (m["destination"], m["source"], m["options"]) == (
        "/sbin/docker-init",
        "/usr/bin/tini-static",
        ["bind", "ro"],
    )


# --- update ----------------------------------------------------------------------------------


def test_apply_update_keeps_unset_fields() -> None:
    hc = {"Memory": 32 << 20, "MemorySwap": 64 << 20, "CpuShares": 100, "PidsLimit": 5}
    new = apply_update(hc, {"Memory": 48 << 20, "CpusetCpus": "0", "PidsLimit": 0})
    assert new == {
        "Memory": 48 << 20,
        "MemorySwap": 64 << 20,
        "CpuShares": 100,
        "PidsLimit": 0,
        "CpusetCpus": "0",
    }
    assert hc["Memory"] == 32 << 20  # not changed in place
    new = apply_update(hc, {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}})
    assert new["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}


@pytest.mark.parametrize(
    ("hc", "body", "message"),
    [
        ({}, {"Memory": 64 << 20}, "update the memoryswap at the same time"),
        ({"AutoRemove": True}, {"RestartPolicy": {"Name": "always"}}, "AutoRemove is enabled"),
        ({"CpuQuota": 5000}, {"NanoCpus": 10**9}, "CPU Quota has already been set"),
        ({"NanoCpus": 10**9}, {"CpuPeriod": 5000}, "NanoCPUs has already been set"),
    ],
)
def test_apply_update_conflicts(hc: dict[str, Any], body: dict[str, Any], message: str) -> None:
    with pytest.raises(Conflict, match=message):
        apply_update(hc, body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
        ({"Memory": 64 << 20, "MemorySwap": 32 << 20}, "Minimum memoryswap limit"),
        ({"BlkioWeight": 5}, "Range of blkio weight"),
        ({"RestartPolicy": {"Name": "sometimes"}}, "invalid restart policy 'sometimes'"),
    ],
)
def test_check_update_errors(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        check_update(body)


def test_update_resources_and_spec_resources() -> None:
    hc = {
        "Memory": 64 << 20,
        "MemorySwap": -1,
        "MemoryReservation": 32 << 20,
        "NanoCpus": 500_000_000,
        "CpuShares": 512,
        "CpusetCpus": "0",
        "BlkioWeight": 300,
        "PidsLimit": -1,
    }
    assert update_resources(hc) == {
        "memory": {"limit": 64 << 20, "swap": -1, "reservation": 32 << 20},
        "cpu": {"shares": 512, "period": 100000, "quota": 50000, "cpus": "0"},
        "blockIO": {"weight": 300},
        "pids": {"limit": -1},
    }
    res = spec(cpu_period=50000, cpu_quota=25000, cpuset_mems="0", blkio_weight=200)["linux"][
        "resources"
    ]
    assert res["cpu"] == {"period": 50000, "quota": 25000, "mems": "0"}
    assert res["blockIO"] == {"weight": 200}


def test_cli_update_body() -> None:
    body = update_config(
        {"memory": "64m", "memory_swap": "-1", "restart": "always", "pids_limit": 7}
    )
    assert body["Memory"] == 64 << 20 and body["MemorySwap"] == -1
    assert body["RestartPolicy"] == {"Name": "always", "MaximumRetryCount": 0}
    assert body["PidsLimit"] == 7
    assert "PidsLimit" not in update_config({"cpus": "1.5"})
    assert update_config({"cpus": "1.5"})["NanoCpus"] == 1_500_000_000
    with pytest.raises(InvalidArgument, match="you must provide one or more flags"):
        update_config({"memory": None})
