"""build_runtime_spec: Docker's defaults and every option, as tables of input → output."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

import pytest

from dockyard.containers.ocispec import (
    ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
    DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
    SpecOptions,
    build_runtime_spec,
    current_capabilities,
    host_devices,
    tweak_capabilities,
)
from dockyard.errors import InvalidArgument

pytestmark = pytest.mark.unit

ROOTFS = Path("/var/lib/dockyard/containers/abc/rootfs")
INF = 2**64 - 1
HOST_CAPS = [c for c in ALL_CAPABILITIES if c != "CAP_SYS_RESOURCE"]  # like this machine's root


def spec(**kw: Any) -> dict[str, Any]:
    kw.setdefault("host_capabilities", HOST_CAPS)
    return build_runtime_spec(SpecOptions(rootfs=ROOTFS, args=["sh"], env=["PATH=/bin"], **kw))


def hard_limit(name: str) -> int:
    hard = resource.getrlimit(getattr(resource, name))[1]
    return INF if hard < 0 else hard


def ns_types(s: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(n["type"], n.get("path")) for n in s["linux"]["namespaces"]]


def mount(s: dict[str, Any], dest: str) -> dict[str, Any] | None:
    found = [m for m in s["mounts"] if m["destination"] == dest]
    assert len(found) <= 1
    return found[0] if found else None


# --- the default container -------------------------------------------------------------------


def test_defaults_are_dockers() -> None:
    s = spec(hostname="abc123", cgroups_path="/dockyard/abc")
    assert s["ociVersion"] == "1.0.2-dev"
    assert s["root"] == {"path": str(ROOTFS), "readonly": False}
    assert s["hostname"] == "abc123"
    p = s["process"]
    assert p["terminal"] is False
    assert p["args"] == ["sh"] and p["env"] == ["PATH=/bin"] and p["cwd"] == "/"
    assert p["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    assert p["noNewPrivileges"] is False
    assert p["oomScoreAdj"] == 0
    caps = p["capabilities"]
    assert set(caps) == {"bounding", "effective", "permitted"}  # no inheritable/ambient (moby)
    for kind in caps.values():
        assert kind == list(DEFAULT_CAPABILITIES)
    assert DEFAULT_CAPABILITIES == (
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    )  # fmt: skip
    nofile = min(1048576, hard_limit("RLIMIT_NOFILE"))
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}]

    linux = s["linux"]
    assert ns_types(s) == [
        ("mount", None), ("network", None), ("uts", None), ("pid", None), ("ipc", None),
    ]  # fmt: skip
    assert linux["cgroupsPath"] == "/dockyard/abc"
    assert linux["devices"] == []  # runc creates null zero full random urandom tty itself
    assert linux["maskedPaths"] == list(DEFAULT_MASKED_PATHS)
    assert {
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
        "/sys/firmware", "/sys/devices/virtual/powercap", "/proc/interrupts",
    } == set(DEFAULT_MASKED_PATHS)  # fmt: skip
    assert linux["readonlyPaths"] == list(DEFAULT_READONLY_PATHS)
    assert set(DEFAULT_READONLY_PATHS) == {
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    }  # fmt: skip
    assert linux["sysctl"] == {
        "net.ipv4.ping_group_range": "0 2147483647",
        "net.ipv4.ip_unprivileged_port_start": "0",
    }
    assert "annotations" not in s
    json.dumps(s)  # plain JSON, ready for config.json


def test_default_mounts() -> None:
    s = spec()
    assert [(m["destination"], m["type"], m["source"], m["options"]) for m in s["mounts"]] == [
        ("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        ("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        (
            "/dev/pts",
            "devpts",
            "devpts",
            ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        ("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        ("/sys/fs/cgroup", "cgroup", "cgroup", ["ro", "nosuid", "noexec", "nodev"]),
        ("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        ("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]),
    ]


def rule_text(r: dict[str, Any]) -> str:
    major = "*" if r.get("major") is None else str(r["major"])
    minor = "*" if r.get("minor") is None else str(r["minor"])
    return f"{'allow' if r['allow'] else 'deny'} {r.get('type', 'a')} {major}:{minor} {r['access']}"


def test_default_device_rules() -> None:
    rules = [rule_text(r) for r in spec()["linux"]["resources"]["devices"]]
    assert rules[0] == "deny a *:* rwm"
    # moby's own list, then the runc default-device rules Docker containers end up with.
    assert rules.index("deny c 10:229 rwm") < rules.index("allow c *:* m")
    allowed = {r for r in rules if r.startswith("allow")}
    assert allowed == {
        "allow c *:* m", "allow b *:* m", "allow c 1:3 rwm", "allow c 1:5 rwm",
        "allow c 1:7 rwm", "allow c 1:8 rwm", "allow c 1:9 rwm", "allow c 5:0 rwm",
        "allow c 5:1 rwm", "allow c 5:2 rwm", "allow c 136:* rwm", "allow c 10:200 rwm",
    }  # fmt: skip


# --- modes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "net_ns", "net_sysctls"),
    [
        ("private", ("network", None), True),
        ("none", ("network", None), True),
        ("netns:/run/dockyard/netns/abc", ("network", "/run/dockyard/netns/abc"), True),
        ("host", None, False),
    ],
)
def test_network_modes(mode: str, net_ns: tuple[str, str | None] | None, net_sysctls: bool) -> None:
    s = spec(network_mode=mode)
    nets = [n for n in ns_types(s) if n[0] == "network"]
    assert nets == ([net_ns] if net_ns else [])
    assert ("net.ipv4.ping_group_range" in s["linux"]["sysctl"]) is net_sysctls


@pytest.mark.parametrize("mode", ["bridge", "netns:", "container:x", ""])
def test_bad_network_modes(mode: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid network mode"):
        spec(network_mode=mode)


@pytest.mark.parametrize(
    ("field", "mode", "ns", "present"),
    [
        ("ipc_mode", "private", ("ipc", None), True),
        ("ipc_mode", "shareable", ("ipc", None), True),
        ("ipc_mode", "none", ("ipc", None), True),
        ("ipc_mode", "host", ("ipc", None), False),
        ("ipc_mode", "ns:/proc/42/ns/ipc", ("ipc", "/proc/42/ns/ipc"), True),
        ("pid_mode", "private", ("pid", None), True),
        ("pid_mode", "host", ("pid", None), False),
        ("pid_mode", "ns:/proc/42/ns/pid", ("pid", "/proc/42/ns/pid"), True),
        ("uts_mode", "host", ("uts", None), False),
    ],
)
def test_namespace_modes(field: str, mode: str, ns: tuple[str, str | None], present: bool) -> None:
    s = spec(**{field: mode})
    assert (ns in ns_types(s)) is present
    if not present:
        assert all(t != ns[0] for t, _ in ns_types(s))


@pytest.mark.parametrize(("field", "mode"), [("ipc_mode", "bogus"), ("pid_mode", "container:x")])
def test_bad_namespace_modes(field: str, mode: str) -> None:
    with pytest.raises(InvalidArgument):
        spec(**{field: mode})


def test_ipc_modes_decide_dev_shm() -> None:
    assert mount(spec(ipc_mode="none"), "/dev/shm") is None
    assert mount(spec(ipc_mode="host"), "/dev/shm") == {
        "destination": "/dev/shm",
        "type": "bind",
        "source": "/dev/shm",
        "options": ["rbind", "rprivate"],
    }
    shm = mount(spec(shm_size=1024 * 1024), "/dev/shm")
    assert shm is not None and shm["options"][-1] == "size=1048576"


def test_uts_host_drops_hostname_and_cgroupns() -> None:
    assert "hostname" not in spec(uts_mode="host", hostname="abc")
    assert "hostname" not in spec(hostname="")
    assert ("cgroup", None) in ns_types(spec(cgroupns_private=True))
    assert all(t != "cgroup" for t, _ in ns_types(spec()))


# --- capabilities ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("add", "drop", "expected"),
    [
        ([], [], list(DEFAULT_CAPABILITIES)),
        (["NET_ADMIN"], [], [*DEFAULT_CAPABILITIES, "CAP_NET_ADMIN"]),
        (["cap_sys_ptrace"], [], [*DEFAULT_CAPABILITIES, "CAP_SYS_PTRACE"]),
        (["CHOWN"], [], list(DEFAULT_CAPABILITIES)),  # already there: no duplicate
        (
            [],
            ["chown", "CAP_KILL"],
            [c for c in DEFAULT_CAPABILITIES if c not in ("CAP_CHOWN", "CAP_KILL")],
        ),
        (["KILL"], ["ALL"], ["CAP_KILL"]),
        ([], ["all"], []),
        (["ALL"], ["NET_ADMIN"], [c for c in HOST_CAPS if c != "CAP_NET_ADMIN"]),
    ],
)
def test_cap_add_drop(add: list[str], drop: list[str], expected: list[str]) -> None:
    caps = spec(cap_add=add, cap_drop=drop)["process"]["capabilities"]
    assert caps["bounding"] == expected
    assert caps["effective"] == expected and caps["permitted"] == expected


@pytest.mark.parametrize(
    ("add", "drop", "message"),
    [
        (["FOO"], [], 'unknown capability: "CAP_FOO"'),
        ([], ["cap_bar"], 'unknown capability: "CAP_BAR"'),
        (
            ["SYS_RESOURCE"],
            [],
            "capability not supported by your kernel or not available in the current"
            ' environment: "CAP_SYS_RESOURCE"',
        ),
    ],
)
def test_bad_capabilities(add: list[str], drop: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        spec(cap_add=add, cap_drop=drop)
    assert caught.value.message == message


def test_tweak_capabilities_privileged_means_all_available() -> None:
    assert tweak_capabilities(DEFAULT_CAPABILITIES, [], [], True, HOST_CAPS) == HOST_CAPS
    assert len(ALL_CAPABILITIES) == 41 and ALL_CAPABILITIES[24] == "CAP_SYS_RESOURCE"


def test_current_capabilities_are_known_names() -> None:
    caps = current_capabilities()
    assert caps and set(caps) <= set(ALL_CAPABILITIES)


# --- privileged, read-only, user, mounts -------------------------------------------------------


def test_privileged() -> None:
    s = spec(privileged=True, devices=[{"path": "/dev/loop0", "type": "b", "major": 7, "minor": 0}])
    assert s["process"]["capabilities"]["bounding"] == HOST_CAPS
    assert s["linux"]["maskedPaths"] == [] and s["linux"]["readonlyPaths"] == []
    assert s["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert s["linux"]["devices"][0]["path"] == "/dev/loop0"
    sys_mount, cgroup_mount = mount(s, "/sys"), mount(s, "/sys/fs/cgroup")
    assert sys_mount is not None and "ro" not in sys_mount["options"]
    assert cgroup_mount is not None and "ro" not in cgroup_mount["options"]


def test_devices_are_created_and_allowed() -> None:
    dev = {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666}
    s = spec(
        devices=[dev],
        device_cgroup_rules=[{"allow": True, "type": "c", "major": 42, "access": "r"}],
    )
    assert s["linux"]["devices"] == [dev]
    rules = [rule_text(r) for r in s["linux"]["resources"]["devices"]]
    assert "allow c 10:229 rwm" in rules and "allow c 42:* r" in rules
    assert rules.index("allow c 10:229 rwm") > rules.index("deny c 10:229 rwm")


def test_host_devices_lists_char_and_block_devices() -> None:
    devs = host_devices()
    null = [d for d in devs if d["path"] == "/dev/null"]
    assert null and null[0]["type"] == "c" and (null[0]["major"], null[0]["minor"]) == (1, 3)
    assert not any(d["path"].startswith(("/dev/pts/", "/dev/shm/")) for d in devs)


def test_readonly_rootfs_user_tty_and_misc() -> None:
    s = spec(
        readonly_rootfs=True,
        uid=1000,
        gid=1000,
        additional_gids=[10, 1000, 50],
        tty=True,
        cwd="/work",
        oom_score_adj=500,
        no_new_privileges=True,
        annotations={"org.example": "x"},
        sysctls={"net.ipv4.ip_unprivileged_port_start": "1024", "kernel.msgmax": "8192"},
        seccomp={"defaultAction": "SCMP_ACT_ALLOW"},
        masked_paths_extra=["/sys/devices/system/cpu/cpu0/thermal_throttle"],
    )
    assert s["root"]["readonly"] is True
    assert s["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10, 50]}
    assert s["process"]["terminal"] is True
    assert s["process"]["cwd"] == "/work"
    assert s["process"]["oomScoreAdj"] == 500 and s["process"]["noNewPrivileges"] is True
    assert s["annotations"] == {"org.example": "x"}
    assert s["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"] == "1024"  # user wins
    assert s["linux"]["sysctl"]["kernel.msgmax"] == "8192"
    assert s["linux"]["seccomp"] == {"defaultAction": "SCMP_ACT_ALLOW"}
    assert s["linux"]["maskedPaths"][-1].endswith("thermal_throttle")
    assert "cgroupsPath" not in s["linux"]


def test_extra_mounts_replace_defaults_and_are_sorted_parents_first() -> None:
    hosts = {
        "destination": "/etc/hosts",
        "type": "bind",
        "source": "/c/hosts",
        "options": ["rbind", "ro"],
    }
    data = {"destination": "/data", "type": "bind", "source": "/v", "options": ["rbind"]}
    shm = {"destination": "/dev/shm", "type": "bind", "source": "/c/shm", "options": ["rbind"]}
    s = spec(extra_mounts=[hosts, data, shm])
    dests = [m["destination"] for m in s["mounts"]]
    assert dests[-3:] == ["/data", "/etc/hosts", "/dev/shm"]  # by depth, stable
    assert mount(s, "/dev/shm") == shm
    s = spec(
        extra_mounts=[
            {"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}
        ]
    )
    assert [m["destination"] for m in s["mounts"]] == ["/proc", "/sys", "/sys/fs/cgroup", "/dev"]


# --- resources and rlimits ---------------------------------------------------------------------

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, {}),
        ({"memory": 64 * MiB}, {"memory": {"limit": 64 * MiB, "swap": 128 * MiB}}),
        ({"memory": 64 * MiB, "memory_swap": -1}, {"memory": {"limit": 64 * MiB, "swap": -1}}),
        (
            {"memory": 64 * MiB, "memory_swap": 64 * MiB},
            {"memory": {"limit": 64 * MiB, "swap": 64 * MiB}},
        ),
        ({"memory_reservation": 32 * MiB}, {"memory": {"reservation": 32 * MiB}}),
        ({"nano_cpus": 1_500_000_000}, {"cpu": {"quota": 150000, "period": 100000}}),
        (
            {"nano_cpus": 10_000_000, "cpu_shares": 512},
            {"cpu": {"shares": 512, "quota": 1000, "period": 100000}},
        ),
        ({"pids_limit": 100}, {"pids": {"limit": 100}}),
        ({"pids_limit": -1}, {"pids": {"limit": -1}}),
    ],
)
def test_resources(kw: dict[str, Any], expected: dict[str, Any]) -> None:
    res = dict(spec(**kw)["linux"]["resources"])
    del res["devices"]
    assert res == expected


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"memory_swap": 128 * MiB},
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ),
        (
            {"memory": 64 * MiB, "memory_swap": 32 * MiB},
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        ({"memory": 4 * MiB}, "Minimum memory limit allowed is 6MB"),
    ],
)
def test_bad_resources(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        spec(**kw)
    assert caught.value.message == message


def test_rlimits_are_clamped_to_the_daemons_hard_limits() -> None:
    nofile_hard = hard_limit("RLIMIT_NOFILE")
    nproc_hard = hard_limit("RLIMIT_NPROC")
    core_hard = hard_limit("RLIMIT_CORE")
    got = spec(
        rlimits=[
            {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 10**9},
            {"type": "nproc", "soft": -1, "hard": -1},
            {"type": "RLIMIT_CORE", "soft": 10**12, "hard": 1000},
        ]
    )["process"]["rlimits"]
    assert got == [
        {"type": "RLIMIT_NOFILE", "hard": min(10**9, nofile_hard), "soft": 1024},
        {"type": "RLIMIT_NPROC", "hard": nproc_hard, "soft": nproc_hard},
        {"type": "RLIMIT_CORE", "hard": min(1000, core_hard), "soft": min(1000, core_hard)},
    ]
    for r in got:
        assert 0 <= r["soft"] <= r["hard"] <= INF


def test_unknown_rlimit() -> None:
    with pytest.raises(InvalidArgument, match="invalid ulimit type: bogus"):
        spec(rlimits=[{"type": "bogus", "soft": 1, "hard": 1}])


@pytest.mark.parametrize(
    ("kw", "message"),
    [({"args": []}, "no command specified"), ({"rootfs": Path("rel")}, "absolute")],
)
def test_bad_basics(kw: dict[str, Any], message: str) -> None:
    opts: dict[str, Any] = {"rootfs": ROOTFS, "args": ["sh"], "env": [], **kw}
    with pytest.raises(InvalidArgument, match=message):
        build_runtime_spec(SpecOptions(**opts))
