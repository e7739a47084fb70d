"""HostConfig settings turned into runtime-spec pieces: ulimits, devices, namespace modes,
the init process and ``docker update``'s resource changes.

Pure functions over dicts (the only I/O is ``os.stat``/``os.walk`` of host device paths in
``devices_from_host_config``), so every rule is testable without root. The daemon resolves
``container:<name>`` modes to paths (``/proc/<pid>/ns/<type>``); here they stay names.

Errors: ``InvalidArgument`` with dockerd's wording ("invalid IPC mode: x", "invalid ulimit
type: x", "error gathering device information while adding custom device …"); ``Conflict``
for ``docker update`` changes dockerd calls conflicting.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dockyard.errors import Conflict, InvalidArgument

__all__ = [
    "DEFAULT_INIT_PATH",
    "INIT_DESTINATION",
    "ULIMIT_NAMES",
    "apply_update",
    "check_namespace_modes",
    "check_update",
    "device_cgroup_rule",
    "device_entry",
    "devices_from_host_config",
    "init_args",
    "init_mount",
    "merge_ulimits",
    "namespace_target",
    "update_resources",
    "wants_init",
]

DEFAULT_INIT_PATH = "/usr/bin/tini-static"  # Debian's static tini: dockerd's docker-init
INIT_DESTINATION = "/sbin/docker-init"

# docker's go-units ulimit names → RLIMIT_* (pkg/ulimit).
ULIMIT_NAMES: dict[str, str] = {
    "core": "RLIMIT_CORE",
    "cpu": "RLIMIT_CPU",
    "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS",
    "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE",
    "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS",
    "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME",
    "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK",
}


# --- namespaces ------------------------------------------------------------------------------


def check_namespace_modes(hc: Mapping[str, Any]) -> None:
    """dockerd's create-time checks of PidMode, IpcMode and UTSMode."""
    ipc = str(hc.get("IpcMode") or "")
    if ipc not in ("", "host", "private", "shareable", "none") and not _container_ref(ipc):
        raise InvalidArgument(f"invalid IPC mode: {ipc}")
    pid = str(hc.get("PidMode") or "")
    if pid not in ("", "host") and not _container_ref(pid):
        raise InvalidArgument(f"invalid PID mode: {pid}")
    uts = str(hc.get("UTSMode") or "")
    if uts not in ("", "host"):
        raise InvalidArgument(f"invalid UTS mode: {uts}")
    if uts == "host" and str(hc.get("NetworkMode") or "").startswith("container:"):
        raise InvalidArgument("conflicting options: hostname and the network mode")


def _container_ref(mode: str) -> bool:
    kind, sep, ref = mode.partition(":")
    return kind == "container" and bool(sep) and bool(ref)


def namespace_target(mode: str) -> str | None:
    """The container a ``container:<ref>`` mode names, else ``None``."""
    return mode.partition(":")[2] if _container_ref(mode) else None


# --- ulimits ---------------------------------------------------------------------------------


def merge_ulimits(
    ulimits: Iterable[Mapping[str, Any]] | None, defaults: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """HostConfig.Ulimits plus daemon.json ``default-ulimits`` (the container's win), as the
    ``{"type", "soft", "hard"}`` entries ``build_runtime_spec`` takes."""
    merged: dict[str, tuple[int, int]] = {}
    for name, value in defaults.items():
        merged[_ulimit_type(str(value.get("Name") or name))] = (
            int(value.get("Soft", 0)),
            int(value.get("Hard", 0)),
        )
    for u in ulimits or ():
        merged[_ulimit_type(str(u.get("Name") or ""))] = (
            int(u.get("Soft", 0)),
            int(u.get("Hard", 0)),
        )
    return [{"type": t, "soft": s, "hard": h} for t, (s, h) in merged.items()]


def _ulimit_type(name: str) -> str:
    try:
        return ULIMIT_NAMES[name.lower()]
    except KeyError:
        raise InvalidArgument(f"invalid ulimit type: {name}") from None


# --- devices ---------------------------------------------------------------------------------


def device_entry(path: str, st: os.stat_result) -> dict[str, Any] | None:
    """A char or block device as an OCI LinuxDevice object at ``path``; None otherwise."""
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return {
        "path": path,
        "type": kind,
        "major": os.major(st.st_rdev),
        "minor": os.minor(st.st_rdev),
        "fileMode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }


def _check_permissions(perms: str) -> None:
    if not perms or any(c not in "rwm" for c in perms) or len(set(perms)) != len(perms):
        raise InvalidArgument(f"invalid device cgroup permissions: {perms}")


def devices_from_host_config(
    devices: Iterable[Mapping[str, Any]] | None,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """HostConfig.Devices → (OCI LinuxDevice objects, cgroup access per container path).

    Like moby's ``DevicesFromPath``: the host path is stat'ed (symlinks followed); a directory
    adds every device node under it, at the same relative path under ``PathInContainer``.
    """
    out: list[dict[str, Any]] = []
    access: dict[str, str] = {}
    for d in devices or ():
        host = str(d.get("PathOnHost") or "")
        inside = str(d.get("PathInContainer") or "") or host
        perms = str(d.get("CgroupPermissions") or "rwm")
        _check_permissions(perms)
        try:
            st = os.stat(host)
        except OSError as e:
            raise InvalidArgument(
                "error gathering device information while adding custom device "
                f'"{host}": {(e.strerror or str(e)).lower()}'
            ) from None
        dev = device_entry(inside, st)
        if dev is not None:
            out.append(dev)
            access[inside] = perms
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidArgument(
                "error gathering device information while adding custom device "
                f'"{host}": not a device node'
            )
        for root, _dirs, files in os.walk(host):
            for name in sorted(files):
                full = os.path.join(root, name)
                try:
                    sub = os.stat(full)
                except OSError:
                    continue
                rel = os.path.relpath(full, host)
                dev = device_entry(str(Path(inside) / rel), sub)
                if dev is not None:
                    out.append(dev)
                    access[dev["path"]] = perms
    return out, access


def device_cgroup_rule(rule: str) -> dict[str, Any]:
    """``c 1:3 rwm`` / ``a *:* rwm`` → an OCI LinuxDeviceCgroup allow rule."""
    parts = rule.split()
    if len(parts) != 3 or parts[0] not in ("a", "b", "c") or ":" not in parts[1]:
        raise InvalidArgument(f"invalid device cgroup format '{rule}'")
    major_s, _, minor_s = parts[1].partition(":")
    _check_permissions(parts[2])
    out: dict[str, Any] = {"allow": True, "type": parts[0]}
    for key, value in (("major", major_s), ("minor", minor_s)):
        if value == "*":
            continue
        if not value.isdigit():
            raise InvalidArgument(f"invalid device cgroup format '{rule}'")
        out[key] = int(value)
    out["access"] = parts[2]
    return out


# --- init ------------------------------------------------------------------------------------


def wants_init(hc: Mapping[str, Any], daemon_default: bool) -> bool:
    """HostConfig.Init when set, else the daemon's ``"init"`` setting (moby's rule)."""
    value = hc.get("Init")
    return bool(value) if value is not None else daemon_default


def init_mount(init_path: str) -> dict[str, Any]:
    return {
        "destination": INIT_DESTINATION,
        "type": "bind",
        "source": init_path,
        "options": ["bind", "ro"],
    }


def init_args(argv: list[str]) -> list[str]:
    return [INIT_DESTINATION, "--", *argv]


# --- docker update ---------------------------------------------------------------------------

_UPDATE_INT_KEYS = (
    "BlkioWeight",
    "CpuShares",
    "NanoCpus",
    "CpuPeriod",
    "CpuQuota",
    "MemorySwap",
    "MemoryReservation",
)


def apply_update(hc: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The HostConfig after an UpdateConfig ``body`` (moby's ``Container.UpdateContainer``):
    zero/empty fields leave the current value; ``Conflict`` for dockerd's conflicting options."""
    new = dict(hc)
    nano = int(body.get("NanoCpus") or 0)
    period = int(body.get("CpuPeriod") or 0)
    quota = int(body.get("CpuQuota") or 0)
    if nano > 0 and int(hc.get("CpuPeriod") or 0) > 0:
        raise Conflict(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"
        )
    if nano > 0 and int(hc.get("CpuQuota") or 0) > 0:
        raise Conflict(
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set"
        )
    if period > 0 and int(hc.get("NanoCpus") or 0) > 0:
        raise Conflict(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
        )
    if quota > 0 and int(hc.get("NanoCpus") or 0) > 0:
        raise Conflict(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        )
    memory = int(body.get("Memory") or 0)
    if memory:
        if memory > int(hc.get("MemorySwap") or 0) and not int(body.get("MemorySwap") or 0):
            raise Conflict(
                "Memory limit should be smaller than already set memoryswap limit, "
                "update the memoryswap at the same time"
            )
        new["Memory"] = memory
    for key in _UPDATE_INT_KEYS:
        value = int(body.get(key) or 0)
        if value:
            new[key] = value
    for key in ("CpusetCpus", "CpusetMems"):
        if body.get(key):
            new[key] = str(body[key])
    if body.get("PidsLimit") is not None:
        new["PidsLimit"] = int(body["PidsLimit"])
    policy = body.get("RestartPolicy") or {}
    name = str(policy.get("Name") or "")
    if name:
        if hc.get("AutoRemove") and name != "no":
            raise Conflict(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
            )
        new["RestartPolicy"] = {
            "Name": name,
            "MaximumRetryCount": int(policy.get("MaximumRetryCount") or 0),
        }
    return new


def check_update(body: Mapping[str, Any]) -> None:
    """dockerd's ``verifyContainerSettings`` for an update (``InvalidArgument``)."""
    memory = int(body.get("Memory") or 0)
    if memory and memory < 6 * 1024 * 1024:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    swap = int(body.get("MemorySwap") or 0)
    if memory and swap > 0 and swap < memory:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    weight = int(body.get("BlkioWeight") or 0)
    if weight and not 10 <= weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    period = int(body.get("CpuPeriod") or 0)
    if period and not 1000 <= period <= 1000000:
        raise InvalidArgument(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    quota = int(body.get("CpuQuota") or 0)
    if quota and quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if int(body.get("NanoCpus") or 0) and (period or quota):
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    policy = body.get("RestartPolicy") or {}
    name = str(policy.get("Name") or "")
    if name not in ("", "no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid restart policy '{name}'")
    if name != "on-failure" and policy.get("MaximumRetryCount"):
        raise InvalidArgument(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        )


def update_resources(hc: Mapping[str, Any]) -> dict[str, Any]:
    """The OCI LinuxResources ``runc update --resources`` applies for a HostConfig."""
    res: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    if hc.get("Memory"):
        memory["limit"] = int(hc["Memory"])
    if hc.get("MemorySwap"):
        memory["swap"] = int(hc["MemorySwap"])
    if hc.get("MemoryReservation"):
        memory["reservation"] = int(hc["MemoryReservation"])
    if memory:
        res["memory"] = memory
    cpu: dict[str, Any] = {}
    if hc.get("CpuShares"):
        cpu["shares"] = int(hc["CpuShares"])
    if hc.get("NanoCpus"):
        cpu["period"] = 100000
        cpu["quota"] = int(hc["NanoCpus"]) * 100000 // 1_000_000_000
    if hc.get("CpuPeriod"):
        cpu["period"] = int(hc["CpuPeriod"])
    if hc.get("CpuQuota"):
        cpu["quota"] = int(hc["CpuQuota"])
    if hc.get("CpusetCpus"):
        cpu["cpus"] = str(hc["CpusetCpus"])
    if hc.get("CpusetMems"):
        cpu["mems"] = str(hc["CpusetMems"])
    if cpu:
        res["cpu"] = cpu
    if hc.get("BlkioWeight"):
        res["blockIO"] = {"weight": int(hc["BlkioWeight"])}
    if hc.get("PidsLimit"):
        limit = int(hc["PidsLimit"])
        res["pids"] = {"limit": limit if limit > 0 else -1}
    return res
