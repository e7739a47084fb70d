"""The CLI side of mounts: ``-v``/``--mount``/``--volumes-from`` → the create body, and the
``volume`` commands' formatting (checked against what docker CLI 28.2.2 sent and printed)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from dockyard.cli.createopts import CreateOptions, build_create_body, parse_mount_flag
from dockyard.cli.formatting import Formatter
from dockyard.cli.volumes import VOLUME_HEADERS, VolumeContext, _natural_key, volume_format
from dockyard.errors import InvalidArgument

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        (
            "type=volume,src=v2,dst=/v2,volume-nocopy,volume-label=b=2,volume-label=a=1,"
            "volume-opt=type=tmpfs,volume-opt=device=tmpfs",
            {
                "Type": "volume",
                "Source": "v2",
                "Target": "/v2",
                "VolumeOptions": {
                    "NoCopy": True,
                    "Labels": {"a": "1", "b": "2"},
                    "DriverConfig": {"Options": {"device": "tmpfs", "type": "tmpfs"}},
                },
            },
        ),
        (
            "type=bind,src=/tmp,dst=/h,bind-propagation=rslave,readonly",
            {
                "Type": "bind",
                "Source": "/tmp",
                "Target": "/h",
                "ReadOnly": True,
                "BindOptions": {"Propagation": "rslave"},
            },
        ),
        (
            "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770",
            {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1016}},
        ),
        ("dst=/anon2", {"Type": "volume", "Target": "/anon2"}),
        (
            "type=volume,source=v,destination=/d,ro=true,volume-nocopy",
            {
                "Type": "volume",
                "Source": "v",
                "Target": "/d",
                "ReadOnly": True,
                "VolumeOptions": {"NoCopy": True, "DriverConfig": {}},
            },
        ),
        ('"type=bind","src=/a,b",target=/c', {"Type": "bind", "Source": "/a,b", "Target": "/c"}),
    ],
)
def test_parse_mount_flag(flag: str, expected: dict[str, Any]) -> None:
    result = parse_mount_flag(flag)
    assert result == expected
    assert list(result) == list(expected)


def test_parse_mount_flag_relative_source() -> None:
    assert parse_mount_flag("type=bind,src=./x,dst=/x")["Source"] == os.path.abspath("./x")


@pytest.mark.parametrize(
    ("flag", "reason"),
    [
        ("type=volume,src=v1,dst=/x,foo=bar", "unexpected key 'foo' in 'foo=bar'"),
        ("type=volume,dst=/x,bogus", "invalid field 'bogus' must be a key=value pair"),
        ("type=volume,src=v", "target is required"),
        ("type=,dst=/x", "type is required"),
        ("type=bind,dst=/x,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'"),
        (
            "type=volume,dst=/x,bind-propagation=shared",
            "cannot mix 'bind-*' options with mount type 'volume'",
        ),
        (
            "type=bind,src=/a,dst=/x,tmpfs-size=1m",
            "cannot mix 'tmpfs-*' options with mount type 'bind'",
        ),
        ("type=tmpfs,dst=/x,tmpfs-mode=9", "invalid value for tmpfs-mode: 9"),
        ("type=tmpfs,dst=/x,tmpfs-size=big", "invalid value for tmpfs-size: big"),
        ("type=volume,dst=/x,readonly=maybe", "invalid value for readonly: maybe"),
    ],
)
def test_parse_mount_flag_errors(flag: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_mount_flag(flag)
    assert info.value.message == f'invalid argument "{flag}" for "--mount" flag: {reason}'


def test_create_body_splits_volumes_like_docker() -> None:
    body = build_create_body(
        CreateOptions(
            image="busybox",
            volumes=["/anon", "./rel:/rel", "named:/n:ro", "/h:/c"],
            mounts=["dst=/m"],
            volumes_from=["x1:ro"],
            read_only=True,
        )
    )
    host = body["HostConfig"]
    assert body["Volumes"] == {"/anon": {}}
    assert host["Binds"] == [f"{os.path.abspath('./rel')}:/rel", "named:/n:ro", "/h:/c"]
    assert host["VolumesFrom"] == ["x1:ro"]
    assert host["Mounts"] == [{"Type": "volume", "Target": "/m"}]
    assert host["ReadonlyRootfs"] is True
    keys = list(host)
    assert keys.index("Mounts") == keys.index("MaskedPaths") - 1


def test_create_body_without_mounts_omits_them() -> None:
    host = build_create_body(CreateOptions(image="busybox"))["HostConfig"]
    assert "Mounts" not in host
    assert host["Binds"] is None and host["VolumesFrom"] is None


# ---- volume ls formatting -------------------------------------------------------------------------


VOLUMES = [
    {
        "Name": "v10",
        "Driver": "local",
        "Labels": None,
        "Mountpoint": "/r/volumes/v10/_data",
        "Scope": "local",
    },
    {
        "Name": "vl",
        "Driver": "local",
        "Labels": {"c": "", "a": "b"},
        "Mountpoint": "/r/volumes/vl/_data",
        "Scope": "local",
    },
    {"Name": "v2", "Driver": "local", "Labels": None, "Mountpoint": "/m", "Scope": "local"},
]


def _render(fmt: str, quiet: bool = False) -> str:
    rows = sorted(VOLUMES, key=lambda v: _natural_key(str(v["Name"])))
    return Formatter(volume_format(fmt, quiet=quiet), VOLUME_HEADERS).render(
        VolumeContext(v) for v in rows
    )


def test_volume_ls_default_table_and_natural_order() -> None:
    assert _render("") == ("DRIVER    VOLUME NAME\nlocal     v2\nlocal     v10\nlocal     vl\n")
    assert _render("", quiet=True) == "v2\nv10\nvl\n"
    assert _render("raw", quiet=True) == "name: v2\nname: v10\nname: vl\n"


def test_volume_ls_fields_and_json() -> None:
    out = _render("{{.Name}} {{.Scope}} {{.Labels}} {{.Links}} {{.Size}}")
    assert out.splitlines()[2] == "vl local a=b,c= N/A N/A"
    first = _render("json").splitlines()[0]
    assert first == (
        '{"Availability":"N/A","Driver":"local","Group":"N/A","Labels":"","Links":"N/A",'
        '"Mountpoint":"/m","Name":"v2","Scope":"local","Size":"N/A","Status":"N/A"}'
    )
    table = _render('table {{.Name}}\t{{.Label "a"}}')
    assert table.splitlines()[0].split() == ["VOLUME", "NAME", "a"]
