"""``HostConfig.SecurityOpt`` and the other process-confinement settings, as dockerd reads them.

``parse_security_opts`` follows moby's ``parseSecurityOpt``: ``no-new-privileges[=bool]``,
``seccomp=unconfined|<profile JSON>`` (the docker CLI reads a profile file and sends its
content), ``apparmor=…`` and ``label=…`` (accepted: this daemon loads neither AppArmor nor
SELinux policies, as dockerd on a host without them), ``writable-cgroups=bool``; anything
else is dockerd's "invalid --security-opt" error. ``seccomp_to_oci`` turns a Docker seccomp
profile (``archMap``, ``includes``/``excludes`` by capability and architecture) into the
runtime spec's ``linux.seccomp`` for this host's architecture.

Also the create-time range checks of ``OomScoreAdj``, ``MemorySwappiness`` and
``CgroupnsMode``, and the block-IO device throttles (``--device-read-bps`` …) as OCI
``blockIO`` entries. Pure but for ``os.stat`` of the throttled devices.
"""

from __future__ import annotations

import json
import os
import platform
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument

__all__ = [
    "SecurityOptions",
    "block_io_devices",
    "check_confinement",
    "parse_security_opts",
    "seccomp_to_oci",
]

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")

# Go's runtime.GOARCH → the seccomp architecture names of a profile's archMap.
_NATIVE_ARCH = {
    "x86_64": "SCMP_ARCH_X86_64",
    "aarch64": "SCMP_ARCH_AARCH64",
    "armv7l": "SCMP_ARCH_ARM",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "s390x": "SCMP_ARCH_S390X",
    "riscv64": "SCMP_ARCH_RISCV64",
}
# includes.arches / excludes.arches use Go's names.
_GO_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


@dataclass(frozen=True)
class SecurityOptions:
    no_new_privileges: bool = False
    seccomp_profile: str = ""  # "", "unconfined" or the profile's JSON text
    writable_cgroups: bool = False


def _parse_bool(text: str) -> bool | None:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def parse_security_opts(values: Iterable[str] | None) -> SecurityOptions:
    """moby's ``parseSecurityOpt`` over ``HostConfig.SecurityOpt``."""
    no_new_privileges = False
    seccomp = ""
    writable_cgroups = False
    for opt in values or ():
        opt = str(opt)
        if opt == "no-new-privileges":
            no_new_privileges = True
            continue
        if opt == "disable":
            continue  # label=disable's old spelling
        if "=" in opt:
            key, _, value = opt.partition("=")
        elif ":" in opt:
            key, _, value = opt.partition(":")
        else:
            raise InvalidArgument(f'invalid --security-opt 1: "{opt}"')
        if key in ("label", "apparmor"):
            continue
        if key == "seccomp":
            seccomp = value
        elif key in ("no-new-privileges", "writable-cgroups"):
            flag = _parse_bool(value)
            if flag is None:
                raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
            if key == "no-new-privileges":
                no_new_privileges = flag
            else:
                writable_cgroups = flag
        else:
            raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
    if seccomp == "builtin":
        seccomp = ""  # the daemon's default profile: none is loaded here (see the note)
    if seccomp and seccomp != "unconfined":
        seccomp_to_oci(seccomp, capabilities=())  # a bad profile fails at create
    return SecurityOptions(no_new_privileges, seccomp, writable_cgroups)


def check_confinement(hc: Mapping[str, Any]) -> None:
    """dockerd's create-time checks of SecurityOpt, OomScoreAdj, MemorySwappiness and
    CgroupnsMode."""
    parse_security_opts(hc.get("SecurityOpt"))
    adj = hc.get("OomScoreAdj") or 0
    if not isinstance(adj, int) or not -1000 <= adj <= 1000:
        raise InvalidArgument(f"Invalid value {adj}, range for oom score adj is [-1000, 1000]")
    swappiness = hc.get("MemorySwappiness")
    if swappiness is not None and (not isinstance(swappiness, int) or not -1 <= swappiness <= 100):
        raise InvalidArgument(
            f"Invalid value: {swappiness}, valid memory swappiness range is 0-100"
        )
    mode = hc.get("CgroupnsMode") or ""
    if mode not in ("", "host", "private"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {mode}")


# --- seccomp -------------------------------------------------------------------------------


def _matches(rule: Mapping[str, Any] | None, caps: set[str], arch: str, *, empty: bool) -> bool:
    """Whether an ``includes`` (all listed caps, any listed arch) or ``excludes`` block
    applies; ``empty`` is the answer for a block that lists nothing."""
    if not rule:
        return empty
    wanted_caps = [str(c) for c in rule.get("caps") or []]
    wanted_arches = [str(a) for a in rule.get("arches") or []]
    if not wanted_caps and not wanted_arches:
        return empty
    if empty:  # includes: every condition must hold
        return (not wanted_caps or all(c in caps for c in wanted_caps)) and (
            not wanted_arches or arch in wanted_arches
        )
    return any(c in caps for c in wanted_caps) or arch in wanted_arches


def seccomp_to_oci(
    profile_json: str, capabilities: Iterable[str], machine: str | None = None
) -> dict[str, Any]:
    """A Docker seccomp profile (JSON text) as the runtime spec's ``linux.seccomp``."""
    try:
        profile = json.loads(profile_json)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"Decoding seccomp profile failed: {exc.msg}") from None
    if not isinstance(profile, dict):
        raise InvalidArgument("Decoding seccomp profile failed: not an object")
    machine = machine or platform.machine()
    native = _NATIVE_ARCH.get(machine, "")
    go_arch = _GO_ARCH.get(machine, machine)
    caps = {c if c.startswith("CAP_") else f"CAP_{c}" for c in capabilities}
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidArgument(
            "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'"
        )
    arches = [str(a) for a in profile.get("architectures") or []]
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == native:
            arches = [native, *[str(a) for a in entry.get("subArchitectures") or []]]
    default_action = str(profile.get("defaultAction") or "")
    if not default_action:
        raise InvalidArgument("seccomp profile has no defaultAction")
    out: dict[str, Any] = {"defaultAction": default_action}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = int(profile["defaultErrnoRet"])
    if arches:
        out["architectures"] = arches
    if profile.get("flags"):
        out["flags"] = list(profile["flags"])
    syscalls: list[dict[str, Any]] = []
    for call in profile.get("syscalls") or []:
        if not isinstance(call, dict):
            raise InvalidArgument("Decoding seccomp profile failed: a syscall is not an object")
        if call.get("name") and call.get("names"):
            raise InvalidArgument(
                "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'"
            )
        if not _matches(call.get("includes"), caps, go_arch, empty=True):
            continue
        if _matches(call.get("excludes"), caps, go_arch, empty=False):
            continue
        names = [str(n) for n in call.get("names") or []] or (
            [str(call["name"])] if call.get("name") else []
        )
        rule: dict[str, Any] = {"names": names, "action": str(call.get("action") or "")}
        if call.get("errnoRet") is not None:
            rule["errnoRet"] = int(call["errnoRet"])
        args = [
            {
                "index": int(a.get("index", 0)),
                "value": int(a.get("value", 0)),
                "valueTwo": int(a.get("valueTwo", 0)),
                "op": str(a.get("op") or ""),
            }
            for a in call.get("args") or []
        ]
        if args:
            rule["args"] = args
        syscalls.append(rule)
    if syscalls:
        out["syscalls"] = syscalls
    return out


# --- block IO ------------------------------------------------------------------------------

_THROTTLES = (
    ("BlkioDeviceReadBps", "throttleReadBpsDevice"),
    ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
    ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
    ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice"),
)


def _device_numbers(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InvalidArgument(f"stat {path}: {(exc.strerror or str(exc)).lower()}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise InvalidArgument(f"{path} is not a block device")
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def block_io_devices(hc: Mapping[str, Any]) -> dict[str, list[dict[str, int]]]:
    """``BlkioWeightDevice`` and the four throttles as OCI ``blockIO`` device lists."""
    out: dict[str, list[dict[str, int]]] = {}
    weights = []
    for entry in hc.get("BlkioWeightDevice") or []:
        major, minor = _device_numbers(str(entry.get("Path") or ""))
        weight = int(entry.get("Weight") or 0)
        if weight and not 10 <= weight <= 1000:
            raise InvalidArgument(f"invalid weight for device: {weight}")
        weights.append({"major": major, "minor": minor, "weight": weight})
    if weights:
        out["weightDevice"] = weights
    for key, oci in _THROTTLES:
        rates = []
        for entry in hc.get(key) or []:
            major, minor = _device_numbers(str(entry.get("Path") or ""))
            rates.append({"major": major, "minor": minor, "rate": int(entry.get("Rate") or 0)})
        if rates:
            out[oci] = rates
    return out
