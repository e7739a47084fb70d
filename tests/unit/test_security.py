"""SecurityOpt parsing and Docker seccomp profiles turned into the runtime spec's form."""

from __future__ import annotations

import json

import pytest

from dockyard.containers.security import (
    check_confinement,
    parse_security_opts,
    seccomp_to_oci,
)
from dockyard.errors import InvalidArgument

PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
    ],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
         "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
    ],
}  # fmt: skip


def test_profile_for_x86_64_without_sys_admin() -> None:
    spec = seccomp_to_oci(json.dumps(PROFILE), ["CAP_CHOWN"], machine="x86_64")
    assert spec["defaultAction"] == "SCMP_ACT_ERRNO" and spec["defaultErrnoRet"] == 1
    assert spec["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = [rule["names"] for rule in spec["syscalls"]]
    assert names == [["read", "write"], ["arch_prctl"], ["clone"]]
    assert spec["syscalls"][2]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"


def test_profile_for_arm64_with_sys_admin() -> None:
    spec = seccomp_to_oci(json.dumps(PROFILE), ["SYS_ADMIN"], machine="aarch64")
    assert spec["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert [rule["names"] for rule in spec["syscalls"]] == [["read", "write"], ["mount"]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "Decoding seccomp profile failed"),
        ("[]", "not an object"),
        ('{"syscalls": []}', "no defaultAction"),
        (
            '{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x"], "archMap": [{}]}',
            "use either 'architectures' or 'archMap'",
        ),
    ],
)
def test_bad_profiles(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        seccomp_to_oci(text, [])


def test_security_opts() -> None:
    opts = parse_security_opts(
        ["no-new-privileges", "apparmor=unconfined", "label=disable", "seccomp=unconfined"]
    )
    assert opts.no_new_privileges and opts.seccomp_profile == "unconfined"
    assert not parse_security_opts(["no-new-privileges:false"]).no_new_privileges
    assert parse_security_opts(["writable-cgroups=true"]).writable_cgroups
    assert parse_security_opts(["seccomp=builtin"]).seccomp_profile == ""
    for bad, message in [
        ("bogus", 'invalid --security-opt 1: "bogus"'),
        ("no-new-privileges=maybe", 'invalid --security-opt 2: "no-new-privileges=maybe"'),
        ("color=red", 'invalid --security-opt 2: "color=red"'),
    ]:
        with pytest.raises(InvalidArgument) as info:
            parse_security_opts([bad])
        assert info.value.message == message


@pytest.mark.parametrize(
    ("hc", "message"),
    [
        ({"OomScoreAdj": -1001}, "range for oom score adj is [-1000, 1000]"),
        ({"MemorySwappiness": -2}, "valid memory swappiness range is 0-100"),
        ({"CgroupnsMode": "both"}, "invalid cgroup namespace mode: both"),
    ],
)
def test_confinement_ranges(hc: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_confinement(hc)
    assert message in info.value.message
    check_confinement({"OomScoreAdj": 1000, "MemorySwappiness": -1, "CgroupnsMode": "private"})
