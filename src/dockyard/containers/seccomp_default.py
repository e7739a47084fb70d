"""The seccomp profile every unprivileged container gets unless it asks otherwise.

Docker's default profile is an allow-list; this one is written as the equivalent deny-list
of what that profile keeps from a container (the syscalls Docker's seccomp documentation
names as blocked), each let through again when the container holds the capability Docker's
profile conditions it on. The kernel already refuses most of these to a process without the
capability; the profile is the second wall, and it closes the ones capabilities do not
cover: the key-ring calls (not namespaced), namespace creation through ``unshare``/``clone``
flags, ``userfaultfd`` and the obsolete calls. ``clone3`` answers ENOSYS so C libraries fall
back to ``clone``, whose flags the filter can read.

Written in Docker's profile format (``archMap``, ``excludes.caps``) and converted for each
container by ``seccomp_to_oci``, like a profile given with ``--security-opt seccomp=``.
"""

from __future__ import annotations

import errno
from typing import Any

__all__ = ["DEFAULT_PROFILE"]

_EPERM = errno.EPERM

# (syscalls, capabilities any one of which lets them through; () = never)
_DENIED: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("add_key", "keyctl", "request_key"), ()),
    (
        (
            "create_module",
            "get_kernel_syms",
            "query_module",
            "nfsservctl",
            "uselib",
            "ustat",
            "sysfs",
            "_sysctl",
            "vm86",
            "vm86old",
            "lookup_dcookie",
        ),
        (),
    ),
    (("acct",), ("CAP_SYS_PACCT",)),
    (("bpf",), ("CAP_SYS_ADMIN", "CAP_BPF")),
    (("perf_event_open",), ("CAP_SYS_ADMIN", "CAP_PERFMON")),
    (("clock_adjtime", "clock_settime", "settimeofday", "stime"), ("CAP_SYS_TIME",)),
    (("delete_module", "finit_module", "init_module"), ("CAP_SYS_MODULE",)),
    (("get_mempolicy", "mbind", "set_mempolicy", "move_pages"), ("CAP_SYS_NICE",)),
    (("ioperm", "iopl"), ("CAP_SYS_RAWIO",)),
    (("kcmp", "process_vm_readv", "process_vm_writev"), ("CAP_SYS_PTRACE",)),
    (("userfaultfd",), ("CAP_SYS_PTRACE",)),
    (("kexec_file_load", "kexec_load", "reboot"), ("CAP_SYS_BOOT",)),
    (("open_by_handle_at",), ("CAP_DAC_READ_SEARCH",)),
    (("syslog",), ("CAP_SYSLOG",)),
    (
        (
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "setns",
            "unshare",
            "quotactl",
            "swapon",
            "swapoff",
            "name_to_handle_at",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "move_mount",
            "open_tree",
            "mount_setattr",
        ),
        ("CAP_SYS_ADMIN",),
    ),
)

# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET: a new namespace each.
_CLONE_NAMESPACE_FLAGS = (
    0x00020000,
    0x02000000,
    0x04000000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
)


def _profile() -> dict[str, Any]:
    syscalls: list[dict[str, Any]] = []
    for names, caps in _DENIED:
        rule: dict[str, Any] = {
            "names": list(names),
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": _EPERM,
        }
        if caps:
            rule["excludes"] = {"caps": list(caps)}
        syscalls.append(rule)
    for flag in _CLONE_NAMESPACE_FLAGS:
        syscalls.append(
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": _EPERM,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
                "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]},
            }
        )
    syscalls.append(
        {
            "names": ["clone3"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.ENOSYS,
            "excludes": {"caps": ["CAP_SYS_ADMIN"]},
        }
    )
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "archMap": [
            {
                "architecture": "SCMP_ARCH_X86_64",
                "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            },
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
            {"architecture": "SCMP_ARCH_PPC64LE", "subArchitectures": []},
            {"architecture": "SCMP_ARCH_S390X", "subArchitectures": ["SCMP_ARCH_S390"]},
            {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": []},
        ],
        "syscalls": syscalls,
    }


DEFAULT_PROFILE: dict[str, Any] = _profile()
