"""Docker's container settings turned into an OCI runtime spec (``config.json``) for runc.

``build_runtime_spec`` starts from moby's ``DefaultLinuxSpec`` (daemon/pkg/oci/defaults.go) and
applies what ``daemon/oci_linux.go`` applies for one container: namespaces per mode, capability
add/drop (``caps.TweakCapabilities``), privileged mode, mounts, devices, resources, sysctls,
rlimits and the user. It returns a plain ``dict`` ready for ``json.dump``; it never writes files
and never mounts anything.

Two facts of the host enter the spec, both read lazily and both overridable for tests:

- the capabilities this process holds (``SpecOptions.host_capabilities``; default: ``CapEff`` of
  ``/proc/self/status``) — "all capabilities" means all that we have, as in moby, because runc
  cannot grant what the daemon lacks (here: no ``CAP_SYS_RESOURCE``);
- the daemon's own hard rlimits (``resource.getrlimit``): every rlimit is clamped to them,
  because runc fails with ``error setting rlimit type 7: operation not permitted`` otherwise
  (see DESIGN.md: nofile hard is 20000 on this machine).

Errors: ``InvalidArgument`` for unknown modes, capabilities, rlimit names or inconsistent
memory limits (Docker's wording where Docker has one).
"""

from __future__ import annotations

import os
import resource
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dockyard.containers.hostconfig import device_entry
from dockyard.containers.security import seccomp_to_oci
from dockyard.errors import InvalidArgument

__all__ = [
    "ALL_CAPABILITIES",
    "DEFAULT_CAPABILITIES",
    "DEFAULT_MASKED_PATHS",
    "DEFAULT_READONLY_PATHS",
    "SpecOptions",
    "build_runtime_spec",
    "current_capabilities",
    "host_devices",
    "tweak_capabilities",
]

_T = TypeVar("_T")

OCI_VERSION = "1.0.2-dev"  # what runc 1.1 (and Docker 24 on it) writes

# Linux capabilities in kernel bit order (capability.h, up to CAP_CHECKPOINT_RESTORE = 40).
ALL_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",  # 0
    "CAP_DAC_OVERRIDE",  # 1
    "CAP_DAC_READ_SEARCH",  # 2
    "CAP_FOWNER",  # 3
    "CAP_FSETID",  # 4
    "CAP_KILL",  # 5
    "CAP_SETGID",  # 6
    "CAP_SETUID",  # 7
    "CAP_SETPCAP",  # 8
    "CAP_LINUX_IMMUTABLE",  # 9
    "CAP_NET_BIND_SERVICE",  # 10
    "CAP_NET_BROADCAST",  # 11
    "CAP_NET_ADMIN",  # 12
    "CAP_NET_RAW",  # 13
    "CAP_IPC_LOCK",  # 14
    "CAP_IPC_OWNER",  # 15
    "CAP_SYS_MODULE",  # 16
    "CAP_SYS_RAWIO",  # 17
    "CAP_SYS_CHROOT",  # 18
    "CAP_SYS_PTRACE",  # 19
    "CAP_SYS_PACCT",  # 20
    "CAP_SYS_ADMIN",  # 21
    "CAP_SYS_BOOT",  # 22
    "CAP_SYS_NICE",  # 23
    "CAP_SYS_RESOURCE",  # 24
    "CAP_SYS_TIME",  # 25
    "CAP_SYS_TTY_CONFIG",  # 26
    "CAP_MKNOD",  # 27
    "CAP_LEASE",  # 28
    "CAP_AUDIT_WRITE",  # 29
    "CAP_AUDIT_CONTROL",  # 30
    "CAP_SETFCAP",  # 31
    "CAP_MAC_OVERRIDE",  # 32
    "CAP_MAC_ADMIN",  # 33
    "CAP_SYSLOG",  # 34
    "CAP_WAKE_ALARM",  # 35
    "CAP_BLOCK_SUSPEND",  # 36
    "CAP_AUDIT_READ",  # 37
    "CAP_PERFMON",  # 38
    "CAP_BPF",  # 39
    "CAP_CHECKPOINT_RESTORE",  # 40
)

# moby daemon/pkg/oci/caps/defaults.go, same order.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# moby defaultLinuxMaskedPaths (2025: /proc/interrupts and powercap added by security advisories;
# moby also masks /sys/devices/system/cpu/cpu*/thermal_throttle where present — not done here
# because it depends on the host; pass them via SpecOptions.masked_paths_extra if wanted).
DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
)

DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

DEFAULT_SHM_SIZE = 64 * 1024 * 1024  # Docker's HostConfig.ShmSize default
DEFAULT_NOFILE = 1048576
CPU_PERIOD = 100000  # Docker's period when NanoCPUs is used
MIN_MEMORY = 6 * 1024 * 1024  # Docker's linuxMinMemory


@dataclass
class SpecOptions:
    """Everything ``build_runtime_spec`` needs; defaults are Docker's defaults.

    Namespace modes: ``"private"`` (own namespace), ``"host"`` (none of its own) and
    ``"netns:/path"`` / ``"ns:/path"`` to join an existing namespace by path (the daemon resolves
    ``container:<name>`` to ``/proc/<pid>/ns/<type>``). ``network_mode="none"`` is an own netns
    with loopback only, like ``"private"``; ``ipc_mode="none"`` is an own IPC namespace without
    ``/dev/shm``; ``ipc_mode="shareable"`` is private here (the daemon shares by path).
    """

    rootfs: Path
    args: list[str]
    env: list[str]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    hostname: str = ""
    domainname: str = ""
    tty: bool = False
    open_stdin: bool = False  # conmon's -i; kept for the record, the spec has no stdin field
    network_mode: str = "private"
    ipc_mode: str = "private"
    pid_mode: str = "private"
    uts_mode: str = "private"
    cgroupns_private: bool = False  # Docker's default on cgroup v1 hosts is "host"
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    readonly_rootfs: bool = False
    extra_mounts: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)  # OCI LinuxDevice objects
    device_cgroup_rules: list[dict[str, Any]] = field(default_factory=list)
    device_access: dict[str, str] = field(default_factory=dict)  # path → cgroup "rwm" subset
    cgroups_path: str = ""
    memory: int = 0
    memory_swap: int = 0
    memory_reservation: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    blkio_weight: int = 0
    pids_limit: int = 0  # 0: unset, < 0: unlimited
    shm_size: int = DEFAULT_SHM_SIZE
    oom_score_adj: int = 0
    no_new_privileges: bool = False
    annotations: dict[str, str] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)
    rlimits: list[dict[str, Any]] = field(default_factory=list)
    masked_paths_extra: list[str] = field(default_factory=list)
    masked_paths: list[str] | None = None  # HostConfig.MaskedPaths: None keeps the defaults
    readonly_paths: list[str] | None = None  # HostConfig.ReadonlyPaths, likewise
    writable_cgroups: bool = False
    memory_swappiness: int = -1  # -1: the kernel's (unset)
    oom_kill_disable: bool = False
    block_io: dict[str, Any] = field(default_factory=dict)  # device weights and throttles
    seccomp: dict[str, Any] | None = None
    seccomp_profile: str = ""  # a Docker profile's JSON, converted for the final capabilities
    host_capabilities: list[str] | None = None  # None: read CapEff of this process


def build_runtime_spec(opts: SpecOptions) -> dict[str, Any]:
    """Return the OCI runtime spec for one container.

    Raises ``InvalidArgument`` for unknown namespace modes, unknown or unavailable
    capabilities, unknown rlimits and memory settings Docker refuses.
    """
    rootfs = Path(opts.rootfs)
    if not rootfs.is_absolute():
        raise InvalidArgument(f"rootfs must be an absolute path: {rootfs}")
    if not opts.args:
        raise InvalidArgument("no command specified")

    namespaces = _namespaces(opts)
    uts_private = any(ns["type"] == "uts" for ns in namespaces)
    own_netns = any(ns["type"] == "network" for ns in namespaces)

    caps = _capabilities(opts)
    process: dict[str, Any] = {
        "terminal": opts.tty,
        "user": {
            "uid": opts.uid,
            "gid": opts.gid,
            "additionalGids": _dedupe([opts.gid, *opts.additional_gids]),
        },
        "args": list(opts.args),
        "env": list(opts.env),
        "cwd": opts.cwd or "/",
        "capabilities": {"bounding": caps, "effective": list(caps), "permitted": list(caps)},
        "rlimits": _rlimits(opts.rlimits),
        "noNewPrivileges": opts.no_new_privileges,
        "oomScoreAdj": opts.oom_score_adj,
    }

    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "devices": [dict(d) for d in opts.devices],
        "resources": _resources(opts),
        "cgroupsPath": opts.cgroups_path,
        "sysctl": _sysctls(opts, own_netns),
        "maskedPaths": [] if opts.privileged else _masked_paths(opts),
        "readonlyPaths": [] if opts.privileged else _readonly_paths(opts),
    }
    if not opts.cgroups_path:
        del linux["cgroupsPath"]
    seccomp = opts.seccomp
    if opts.seccomp_profile and opts.seccomp_profile != "unconfined":
        seccomp = seccomp_to_oci(opts.seccomp_profile, caps)
    if seccomp is not None and not opts.privileged:
        linux["seccomp"] = seccomp

    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": str(rootfs), "readonly": opts.readonly_rootfs},
        "mounts": _mounts(opts),
        "linux": linux,
    }
    if opts.hostname and uts_private:
        spec["hostname"] = opts.hostname
    if opts.domainname and uts_private:
        spec["domainname"] = opts.domainname  # runc >= 1.2
        # older runc ignores the field: the UTS namespace's sysctl does the same
        linux["sysctl"].setdefault("kernel.domainname", opts.domainname)
    if opts.annotations:
        spec["annotations"] = dict(opts.annotations)
    return spec


# --- namespaces ------------------------------------------------------------------------------


def _namespaces(opts: SpecOptions) -> list[dict[str, str]]:
    """moby's default order (mount, network, uts, pid, ipc), then modes applied in place."""
    out: list[dict[str, str]] = [{"type": "mount"}]

    net = opts.network_mode
    if net in ("private", "none"):
        out.append({"type": "network"})
    elif net.startswith("netns:") and len(net) > len("netns:"):
        out.append({"type": "network", "path": net[len("netns:") :]})
    elif net != "host":
        raise InvalidArgument(f"invalid network mode: {net}")

    for ns_type, mode, extra in (
        ("uts", opts.uts_mode, ()),
        ("pid", opts.pid_mode, ()),
        ("ipc", opts.ipc_mode, ("none",)),
    ):
        entry = _shared_namespace(ns_type, mode, extra)
        if entry is not None:
            out.append(entry)

    if opts.cgroupns_private:
        out.append({"type": "cgroup"})
    return out


def _shared_namespace(ns_type: str, mode: str, extra: Iterable[str]) -> dict[str, str] | None:
    if mode in ("", "private", "shareable", *extra):
        return {"type": ns_type}
    if mode == "host":
        return None
    if mode.startswith("ns:") and len(mode) > len("ns:"):
        return {"type": ns_type, "path": mode[len("ns:") :]}
    raise InvalidArgument(f"invalid {ns_type.upper()} mode: {mode}")


# --- capabilities ----------------------------------------------------------------------------


def current_capabilities() -> list[str]:
    """The effective capabilities of this process, as names in kernel order."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    mask = int(line.split()[1], 16)
                    return [c for i, c in enumerate(ALL_CAPABILITIES) if mask >> i & 1]
    except OSError:
        pass
    return list(ALL_CAPABILITIES)  # moby's fallback: assume everything is known


def _normalize_caps(names: Iterable[str]) -> list[str]:
    out: list[str] = []
    for raw in names:
        name = raw.upper()
        if name != "ALL" and not name.startswith("CAP_"):
            name = "CAP_" + name
        if name != "ALL" and name not in ALL_CAPABILITIES:
            raise InvalidArgument(f'unknown capability: "{name}"')
        out.append(name)
    return out


def tweak_capabilities(
    basics: Iterable[str],
    adds: Iterable[str],
    drops: Iterable[str],
    privileged: bool,
    available: Iterable[str],
) -> list[str]:
    """moby's ``caps.TweakCapabilities``: privileged and ``ALL`` mean all *available* caps.

    Names are accepted with or without ``CAP_`` and in any case. Adding a known capability
    this process does not hold raises ``InvalidArgument`` (moby's newer check) instead of
    letting runc fail with EPERM.
    """
    have = list(available)
    adds = list(adds)
    drops = list(drops)
    if privileged:
        return [c for c in ALL_CAPABILITIES if c in have]
    if not adds and not drops:
        return list(basics)
    cap_drop = _normalize_caps(drops)
    cap_add = _normalize_caps(adds)
    for c in cap_add:
        if c != "ALL" and c not in have:
            raise InvalidArgument(
                "capability not supported by your kernel or not available in the current"
                f' environment: "{c}"'
            )
    if "ALL" in cap_add:
        caps = [c for c in ALL_CAPABILITIES if c in have and c not in cap_drop]
    elif "ALL" in cap_drop:
        caps = [c for c in cap_add if c != "ALL"]
    else:
        caps = [c for c in basics if c not in cap_drop] + cap_add
    return _dedupe(caps)


def _capabilities(opts: SpecOptions) -> list[str]:
    needs_host = opts.privileged or bool(opts.cap_add)
    if opts.host_capabilities is not None:
        available = list(opts.host_capabilities)
    elif needs_host:
        available = current_capabilities()
    else:
        available = list(ALL_CAPABILITIES)
    return tweak_capabilities(
        DEFAULT_CAPABILITIES, opts.cap_add, opts.cap_drop, opts.privileged, available
    )


# --- mounts ----------------------------------------------------------------------------------


def _default_mounts(opts: SpecOptions) -> list[dict[str, Any]]:
    sys_opts = ["nosuid", "noexec", "nodev"] + ([] if opts.privileged else ["ro"])
    writable = opts.privileged or opts.writable_cgroups
    cgroup_opts = ([] if writable else ["ro"]) + ["nosuid", "noexec", "nodev"]
    mounts: list[dict[str, Any]] = [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": [
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        },
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts},
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": cgroup_opts,
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
    ]
    if opts.ipc_mode == "host":
        # moby IpcMounts(): the host's /dev/shm, bind-mounted (rprivate is the default propagation)
        mounts.append(
            {
                "destination": "/dev/shm",
                "type": "bind",
                "source": "/dev/shm",
                "options": ["rbind", "rprivate"],
            }
        )
    elif opts.ipc_mode != "none":
        mounts.append(
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={opts.shm_size}"],
            }
        )
    return mounts


def _path_depth(destination: str) -> int:
    return len([p for p in os.path.normpath(destination).split("/") if p])


def _mounts(opts: SpecOptions) -> list[dict[str, Any]]:
    """Defaults minus those a user mount replaces (all of /dev/* if /dev is replaced), then the
    user mounts sorted parents-first (moby sorts by path depth, stably)."""
    user = [dict(m) for m in opts.extra_mounts]
    user_dests = {os.path.normpath(str(m.get("destination", ""))) for m in user}
    replaces_dev = "/dev" in user_dests
    out = [
        m
        for m in _default_mounts(opts)
        if m["destination"] not in user_dests
        and not (replaces_dev and m["destination"].startswith("/dev/"))
    ]
    out.extend(sorted(user, key=lambda m: _path_depth(str(m.get("destination", "")))))
    return out


# --- devices and resources -------------------------------------------------------------------


def _dev_rule(
    allow: bool, kind: str | None, major: int | None, minor: int | None, access: str
) -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": allow}
    if kind is not None:
        rule["type"] = kind
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    rule["access"] = access
    return rule


def _device_rules(opts: SpecOptions) -> list[dict[str, Any]]:
    """The device cgroup of a Docker container: moby's DefaultLinuxSpec rules, the user's
    ``--device``/``--device-cgroup-rule`` entries, then the rules runc appends for its default
    devices (libcontainer/specconv AllowedDevices), written out so the spec states what the
    container gets whatever the runtime. Order matters to runc's cgroup v1 emulator: the
    ``10:229`` deny must come before the ``c *:* m`` wildcard (it cannot punch holes)."""
    if opts.privileged:
        return [_dev_rule(True, None, None, None, "rwm")]
    rules = [
        _dev_rule(False, None, None, None, "rwm"),
        _dev_rule(True, "c", 1, 5, "rwm"),  # /dev/zero
        _dev_rule(True, "c", 1, 3, "rwm"),  # /dev/null
        _dev_rule(True, "c", 1, 9, "rwm"),  # /dev/urandom
        _dev_rule(True, "c", 1, 8, "rwm"),  # /dev/random
        _dev_rule(True, "c", 5, 0, "rwm"),  # /dev/tty
        _dev_rule(True, "c", 5, 1, "rwm"),  # /dev/console
        _dev_rule(False, "c", 10, 229, "rwm"),  # /dev/fuse
    ]
    for d in opts.devices:  # --device: allow what is created
        access = opts.device_access.get(str(d.get("path", "")), "rwm")
        rules.append(_dev_rule(True, d.get("type", "c"), d.get("major"), d.get("minor"), access))
    rules.extend(dict(r) for r in opts.device_cgroup_rules)
    rules += [
        _dev_rule(True, "c", None, None, "m"),  # mknod of any char device
        _dev_rule(True, "b", None, None, "m"),  # mknod of any block device
        _dev_rule(True, "c", 1, 3, "rwm"),  # /dev/null
        _dev_rule(True, "c", 1, 8, "rwm"),  # /dev/random
        _dev_rule(True, "c", 1, 7, "rwm"),  # /dev/full
        _dev_rule(True, "c", 5, 0, "rwm"),  # /dev/tty
        _dev_rule(True, "c", 1, 5, "rwm"),  # /dev/zero
        _dev_rule(True, "c", 1, 9, "rwm"),  # /dev/urandom
        _dev_rule(True, "c", 5, 1, "rwm"),  # /dev/console
        _dev_rule(True, "c", 136, None, "rwm"),  # /dev/pts/*
        _dev_rule(True, "c", 5, 2, "rwm"),  # /dev/ptmx
        _dev_rule(True, "c", 10, 200, "rwm"),  # /dev/net/tun
    ]
    return rules


def _resources(opts: SpecOptions) -> dict[str, Any]:
    res: dict[str, Any] = {"devices": _device_rules(opts)}

    memory: dict[str, Any] = {}
    if opts.memory_swap != 0 and opts.memory == 0:
        raise InvalidArgument(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    if opts.memory:
        if opts.memory < MIN_MEMORY:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        swap = opts.memory_swap
        if swap == 0:
            swap = 2 * opts.memory  # Docker's default: as much swap as memory
        elif swap != -1 and swap < opts.memory:
            raise InvalidArgument(
                "Minimum memoryswap limit should be larger than memory limit, see usage"
            )
        memory["limit"] = opts.memory
        memory["swap"] = swap
    if opts.memory_reservation:
        memory["reservation"] = opts.memory_reservation
    if opts.memory_swappiness >= 0:
        memory["swappiness"] = opts.memory_swappiness
    if opts.oom_kill_disable:
        memory["disableOOMKiller"] = True
    if memory:
        res["memory"] = memory

    cpu: dict[str, Any] = {}
    if opts.cpu_shares:
        cpu["shares"] = opts.cpu_shares
    if opts.nano_cpus:
        cpu["quota"] = opts.nano_cpus * CPU_PERIOD // 1_000_000_000
        cpu["period"] = CPU_PERIOD
    if opts.cpu_period:
        cpu["period"] = opts.cpu_period
    if opts.cpu_quota:
        cpu["quota"] = opts.cpu_quota
    if opts.cpuset_cpus:
        cpu["cpus"] = opts.cpuset_cpus
    if opts.cpuset_mems:
        cpu["mems"] = opts.cpuset_mems
    if cpu:
        res["cpu"] = cpu

    block_io: dict[str, Any] = dict(opts.block_io)
    if opts.blkio_weight:
        block_io["weight"] = opts.blkio_weight
    if block_io:
        res["blockIO"] = block_io
    if opts.pids_limit:
        res["pids"] = {"limit": opts.pids_limit if opts.pids_limit > 0 else -1}
    return res


def host_devices(dev: Path = Path("/dev")) -> list[dict[str, Any]]:
    """Every char/block device under ``dev`` as OCI LinuxDevice objects (``--privileged``).

    Skips what moby's ``HostDevices`` skips (pts, shm, mqueue, fd, console, hidden dirs) and
    anything that vanishes while walking.
    """
    skip_dirs = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}
    out: list[dict[str, Any]] = []

    def walk(directory: Path) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if entry.name not in skip_dirs:
                    walk(Path(entry.path))
                continue
            if entry.name == "console":
                continue
            device = device_entry(entry.path, st)
            if device is not None:
                out.append(device)

    walk(dev)
    return out


# --- sysctls, rlimits, paths -----------------------------------------------------------------


def _sysctls(opts: SpecOptions, own_netns: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    if own_netns:
        # moby WithCommonOptions: for containers in their own network namespace, allow
        # unprivileged ICMP echo sockets and binding ports < 1024 without NET_BIND_SERVICE.
        out["net.ipv4.ping_group_range"] = "0 2147483647"
        out["net.ipv4.ip_unprivileged_port_start"] = "0"
    out.update(opts.sysctls)
    return out


def _rlimit_name(raw: str) -> str:
    name = raw.upper()
    if not name.startswith("RLIMIT_"):
        name = "RLIMIT_" + name
    if not hasattr(resource, name):
        raise InvalidArgument(f"invalid ulimit type: {raw}")
    return name


RLIM_INFINITY = 2**64 - 1  # "unlimited" in the OCI spec (uint64); Python says -1


def _as_rlim(value: int) -> int:
    return RLIM_INFINITY if value < 0 or value >= RLIM_INFINITY else value


def _clamp(value: int, ceiling: int) -> int:
    return min(_as_rlim(value), _as_rlim(ceiling))


def _rlimits(requested: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Default nofile 1048576, overridden per type by ``requested``; every hard limit clamped
    to the daemon's own hard limit and every soft limit to its hard limit."""
    merged: dict[str, tuple[int, int]] = {"RLIMIT_NOFILE": (DEFAULT_NOFILE, DEFAULT_NOFILE)}
    for r in requested:
        name = _rlimit_name(str(r.get("type", "")))
        merged[name] = (int(r.get("soft", 0)), int(r.get("hard", 0)))
    out: list[dict[str, Any]] = []
    for name, (soft, hard) in merged.items():
        ceiling = resource.getrlimit(getattr(resource, name))[1]
        hard_c = _clamp(hard, ceiling)
        soft_c = _clamp(soft, hard_c)
        out.append({"type": name, "hard": hard_c, "soft": soft_c})
    return out


def _masked_paths(opts: SpecOptions) -> list[str]:
    if opts.masked_paths is not None:
        return list(opts.masked_paths)
    return _dedupe([*DEFAULT_MASKED_PATHS, *opts.masked_paths_extra])


def _readonly_paths(opts: SpecOptions) -> list[str]:
    if opts.readonly_paths is not None:
        return list(opts.readonly_paths)
    return list(DEFAULT_READONLY_PATHS)


def _dedupe(items: Iterable[_T]) -> list[_T]:
    seen: set[_T] = set()
    out: list[_T] = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
