"""Container mounts: dockerd's parsing rules and words, MountPoint records, and the start-time
set-up against a plain directory as the rootfs (no mounts needed for plain volumes)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard import errors
from dockyard.containers.config import validate_host_config
from dockyard.containers.mounts import (
    ContainerMounts,
    MountPoint,
    merge_tmpfs_options,
    parse_bind,
    parse_mount,
    parse_tmpfs,
    parse_volumes_from,
)
from dockyard.store import Database
from dockyard.volumes import ANONYMOUS_LABEL, VolumeService

pytestmark = pytest.mark.unit


# ---- Binds ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "vu:/data",
            {"Type": "volume", "Name": "vu", "Destination": "/data", "Mode": "z", "RW": True},
        ),
        ("vu:/data:ro", {"Type": "volume", "Mode": "ro", "RW": False, "Propagation": ""}),
        (
            "/host:/ctr:ro,z",
            {
                "Type": "bind",
                "Source": "/host",
                "Destination": "/ctr",
                "Mode": "ro,z",
                "RW": False,
                "Propagation": "rprivate",
            },
        ),
        ("/host/:/ctr/x/../y/", {"Source": "/host", "Destination": "/ctr/y"}),
        ("/h:/c:rslave", {"Propagation": "rslave", "Mode": "rslave", "RW": True}),
        ("/anon", {"Type": "volume", "Destination": "/anon", "Mode": "z"}),
    ],
)
def test_parse_bind(raw: str, expected: dict[str, Any]) -> None:
    api = parse_bind(raw).to_api()
    for key, value in expected.items():
        assert api[key] == value, key


def test_parse_bind_flags() -> None:
    assert parse_bind("vu:/d:nocopy").copy_data is False
    assert parse_bind("vu:/d").copy_data is True
    assert parse_bind("vu:/d").named is True
    assert parse_bind("/d").named is False
    assert parse_bind("/h:/c").create_source is True
    assert parse_bind("vu:/d", "nosuch").driver == "nosuch"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("v1:/data:foo", "invalid mode: foo"),
        ("v1:/data:ro,rw", "invalid mode: ro,rw"),
        ("/ctr:ro", "invalid volume specification: '/ctr:ro'"),
        (":/x", "invalid volume specification: ':/x'"),
        ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
        (
            "v1:relative",
            "invalid volume specification: 'v1:relative': invalid mount config for type "
            "\"volume\": invalid mount path: 'relative' mount path must be absolute",
        ),
        (
            "v1:/",
            "invalid volume specification: 'v1:/': invalid mount config for type \"volume\": "
            "invalid specification: destination can't be '/'",
        ),
        (
            "/h:/c:nocopy",
            "invalid volume specification: '/h:/c:nocopy': invalid mount config for type "
            '"bind": field VolumeOptions must not be specified',
        ),
        (
            "v:/c:rshared",
            "invalid volume specification: 'v:/c:rshared': invalid mount config for type "
            '"volume": field BindOptions must not be specified',
        ),
    ],
)
def test_parse_bind_errors(raw: str, message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        parse_bind(raw)
    assert info.value.message == message


# ---- Mounts -----------------------------------------------------------------------------------


def test_parse_mount_kinds(tmp_path: Path) -> None:
    bind = parse_mount(
        {
            "Type": "bind",
            "Source": str(tmp_path),
            "Target": "/h2",
            "BindOptions": {"Propagation": "rslave", "NonRecursive": True},
        }
    )
    assert bind.to_api() == {
        "Type": "bind",
        "Source": str(tmp_path),
        "Destination": "/h2",
        "Mode": "",
        "RW": True,
        "Propagation": "rslave",
    }
    assert bind.recursive is False
    volume = parse_mount(
        {
            "Type": "volume",
            "Source": "v2",
            "Target": "/v2",
            "ReadOnly": True,
            "VolumeOptions": {
                "NoCopy": True,
                "Labels": {"l": "1"},
                "DriverConfig": {"Options": {"type": "tmpfs", "device": "tmpfs"}},
            },
        }
    )
    assert volume.mode == "z" and not volume.rw and not volume.copy_data
    assert volume.volume_labels == {"l": "1"}
    assert volume.volume_options == {"type": "tmpfs", "device": "tmpfs"}
    tmpfs = parse_mount(
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1770}}
    )
    assert tmpfs.tmpfs == ["mode=1770", "size=1m"]
    assert tmpfs.to_api() == {
        "Type": "tmpfs",
        "Source": "",
        "Destination": "/t",
        "Mode": "",
        "RW": True,
        "Propagation": "",
    }
    ro = parse_mount({"Type": "tmpfs", "Target": "/t", "ReadOnly": True})
    assert ro.tmpfs == ["ro"] and not ro.rw


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"Type": "bind", "Source": "/nonexist-dy", "Target": "/x"},
            'invalid mount config for type "bind": bind source path does not exist: /nonexist-dy',
        ),
        (
            {"Type": "bind", "Target": "/x"},
            'invalid mount config for type "bind": field Source must not be empty',
        ),
        (
            {"Type": "bind", "Source": "rel", "Target": "/x"},
            "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute",
        ),
        (
            {"Type": "bind", "Source": "/", "Target": "/x", "BindOptions": {"Propagation": "odd"}},
            'invalid mount config for type "bind": invalid propagation mode: odd',
        ),
        (
            {"Type": "volume", "Target": "/x", "ReadOnly": True},
            'invalid mount config for type "volume": must not set ReadOnly mode when using '
            "anonymous volumes",
        ),
        (
            {"Type": "tmpfs", "Source": "foo", "Target": "/x"},
            'invalid mount config for type "tmpfs": field Source must not be specified',
        ),
        (
            {"Type": "bogus", "Target": "/x"},
            'invalid mount config for type "bogus": mount type unknown',
        ),
        (
            {"Type": "volume"},
            'invalid mount config for type "volume": field Target must not be empty',
        ),
        (
            {"Type": "volume", "Target": "/x", "Bogus": 1},
            'invalid mount config for type "volume": unknown option Bogus',
        ),
        (
            {"Type": "volume", "Target": "/x", "VolumeOptions": {"Nocopy": True}},
            'invalid mount config for type "volume": unknown option VolumeOptions.Nocopy',
        ),
        (
            {"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"Options": [["uid", "1"]]}},
            'invalid mount config for type "tmpfs": invalid option: uid',
        ),
        (
            {"Type": "volume", "Source": "v", "Target": "/x", "BindOptions": {}},
            'invalid mount config for type "volume": field BindOptions must not be specified',
        ),
    ],
)
def test_parse_mount_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        parse_mount(spec)
    assert info.value.message == message


def test_create_mountpoint_allows_missing_bind_source() -> None:
    mp = parse_mount(
        {
            "Type": "bind",
            "Source": "/nonexist-dy",
            "Target": "/x",
            "BindOptions": {"CreateMountpoint": True},
        }
    )
    assert mp.create_source


# ---- tmpfs and volumes-from ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "merged"),
    [
        (["noexec", "nosuid", "nodev", "rprivate"], ["noexec", "nosuid", "nodev", "rprivate"]),
        (["noexec", "nosuid", "exec", "size=1m"], ["nosuid", "exec", "size=1m"]),
        (["size=1m", "mode=700", "size=2m"], ["mode=700", "size=2m"]),
        (["rprivate", "rshared", "defaults"], ["rshared"]),
    ],
)
def test_merge_tmpfs_options(options: list[str], merged: list[str]) -> None:
    assert merge_tmpfs_options(options) == merged


@pytest.mark.parametrize(
    ("dest", "data", "message"),
    [
        ("/x", "foo=1", 'invalid tmpfs option ["foo" "1"]'),
        ("/x", "bogus", 'invalid tmpfs option ["bogus"]'),
        ("relative", "", "invalid mount path: 'relative' mount path must be absolute"),
        ("/", "size=1m", "invalid specification: destination can't be '/'"),
    ],
)
def test_parse_tmpfs_errors(dest: str, data: str, message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        parse_tmpfs(dest, data)
    assert info.value.message == message


def test_parse_volumes_from() -> None:
    assert parse_volumes_from("src") == ("src", "rw")
    assert parse_volumes_from("src:ro") == ("src", "ro")
    for bad in ("src:z,rslave", "src:nocopy", "src:foo"):
        with pytest.raises(errors.InvalidArgument, match="invalid mode"):
            parse_volumes_from(bad)
    with pytest.raises(errors.InvalidArgument, match="cannot be an empty string"):
        parse_volumes_from("")


def test_validate_host_config_accepts_and_checks_mounts() -> None:
    hc = validate_host_config(
        {"Binds": ["v:/d"], "Mounts": [{"Type": "tmpfs", "Target": "/t"}], "Tmpfs": {"/r": ""}}
    )
    assert hc["Binds"] == ["v:/d"]  # kept as sent
    with pytest.raises(errors.InvalidArgument, match="invalid mode: bad"):
        validate_host_config({"Binds": ["v:/d:bad"]})
    with pytest.raises(errors.InvalidArgument):
        validate_host_config({"Binds": "v:/d"})


def test_mountpoint_record_round_trip() -> None:
    mp = parse_bind("vu:/data:ro")
    again = MountPoint.from_dict({**mp.to_dict(), "future_field": 1})
    assert again.to_api() == mp.to_api()


# ---- ContainerMounts ---------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "dockyard.db")
    yield database
    database.close()


@pytest.fixture
def volumes(tmp_path: Path, db: Database) -> VolumeService:
    return VolumeService(db, tmp_path / "volumes")


@pytest.fixture
def mounts(db: Database, volumes: VolumeService) -> ContainerMounts:
    return ContainerMounts(db, volumes, [])


def _resolve(ref: str) -> str:
    if ref in ("c1", "c2", "c3"):
        return ref
    raise errors.NotFound(f"No such container: {ref}")


def test_create_makes_named_and_anonymous_volumes(
    mounts: ContainerMounts, volumes: VolumeService
) -> None:
    points = mounts.create(
        "c1",
        {"Binds": ["named:/data"], "Mounts": [{"Type": "volume", "Target": "/m"}]},
        {"Volumes": {"/anon": {}, "/data": {}}},
        _resolve,
    )
    by_dest = {mp.destination: mp for mp in points}
    assert set(by_dest) == {"/data", "/m", "/anon"}
    assert volumes.get("named").labels == {}
    anon = volumes.get(by_dest["/anon"].name)
    assert anon.labels == {ANONYMOUS_LABEL: ""}
    assert by_dest["/anon"].mode == "" and by_dest["/m"].mode == "z"
    assert by_dest["/data"].source == str(volumes.get("named").mountpoint)
    assert all(volumes.users(mp.name) == ["c1"] for mp in points)
    api = mounts.inspect("c1")
    assert api[0] == {
        "Type": "volume",
        "Name": "named",
        "Source": str(volumes.get("named").mountpoint),
        "Destination": "/data",
        "Driver": "local",
        "Mode": "z",
        "RW": True,
        "Propagation": "",
    }


def test_remove_keeps_named_and_removes_anonymous_with_v(
    mounts: ContainerMounts, volumes: VolumeService
) -> None:
    mounts.create("c1", {"Binds": ["named:/data"]}, {"Volumes": {"/a": {}}}, _resolve)
    anon = mounts.inspect("c1")[1]["Name"]
    mounts.create("c2", {}, {"Volumes": {"/b": {}}}, _resolve)
    other_anon = mounts.inspect("c2")[0]["Name"]
    mounts.remove("c1", remove_volumes=True)
    assert volumes.exists("named") and not volumes.exists(anon)
    mounts.remove("c2", remove_volumes=False)
    assert volumes.exists(other_anon) and not volumes.in_use(other_anon)


def test_volumes_from_shares_volumes_and_rm_v_waits_for_last_user(
    mounts: ContainerMounts, volumes: VolumeService, tmp_path: Path
) -> None:
    mounts.create(
        "c1",
        {"Binds": ["named:/data", f"{tmp_path}:/h"], "Tmpfs": {"/run": ""}},
        {"Volumes": {"/anon": {}}},
        _resolve,
    )
    anon = next(m["Name"] for m in mounts.inspect("c1") if m["Destination"] == "/anon")
    mounts.create("c2", {"VolumesFrom": ["c1:ro"]}, {}, _resolve)
    copied = {m["Destination"]: m for m in mounts.inspect("c2")}
    assert set(copied) == {"/data", "/h", "/anon"}
    assert not any(m["RW"] for m in copied.values())
    assert all(m["Mode"] == "" for m in copied.values())
    assert copied["/h"]["Propagation"] == "rprivate"
    assert volumes.users(anon) == ["c1", "c2"]
    mounts.remove("c1", remove_volumes=True)
    assert volumes.exists(anon)  # still used by c2: kept, not an error
    mounts.remove("c2", remove_volumes=True)
    assert not volumes.exists(anon)
    assert volumes.exists("named")
    with pytest.raises(errors.NotFound):
        mounts.create("c3", {"VolumesFrom": ["nosuch"]}, {}, _resolve)


@pytest.mark.parametrize(
    ("host_config", "message"),
    [
        ({"Binds": ["a1:/d", "a2:/d"]}, "Duplicate mount point: /d"),
        ({"Binds": ["a1:/d"], "Tmpfs": {"/d": ""}}, "Duplicate mount point: /d"),
        (
            {"Binds": ["a1:/d"], "Mounts": [{"Type": "volume", "Source": "a2", "Target": "/d"}]},
            "Duplicate mount point: /d",
        ),
        ({"Binds": ["ok:/a", "bad name:/b"]}, 'create bad name: "bad name" includes invalid'),
        ({"Binds": ["ok:/a"], "VolumeDriver": "nosuch"}, 'plugin "nosuch" not found'),
    ],
)
def test_create_errors_create_nothing(
    mounts: ContainerMounts, volumes: VolumeService, host_config: dict[str, Any], message: str
) -> None:
    with pytest.raises((errors.InvalidArgument, errors.NotFound)) as info:
        mounts.create("c1", host_config, {}, _resolve)
    assert message in info.value.message
    assert volumes.list_volumes() == []
    assert mounts.inspect("c1") == []


def test_records_survive_reopen(db: Database, tmp_path: Path) -> None:
    volumes = VolumeService(db, tmp_path / "volumes")
    mounts = ContainerMounts(db, volumes, [])
    mounts.create("c1", {"Binds": ["kept:/d"]}, {}, _resolve)
    mounts.create("gone", {"Binds": ["kept:/e"]}, {}, _resolve)
    volumes2 = VolumeService(db, tmp_path / "volumes")
    mounts2 = ContainerMounts(db, volumes2, ["c1"])
    assert [m["Name"] for m in mounts2.inspect("c1")] == ["kept"]
    assert volumes2.users("kept") == ["c1"]  # references rebuilt, the stale row dropped
    assert db.query("SELECT container_id FROM container_mounts")[0][0] == "c1"


# ---- setup against a directory rootfs -------------------------------------------------------------


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "srv" / "www").mkdir(parents=True)
    (root / "srv" / "www" / "index.html").write_text("hello")
    os.chmod(root / "srv" / "www", 0o750)
    return root


def test_setup_copies_up_once_and_resolves_targets(
    mounts: ContainerMounts, volumes: VolumeService, rootfs: Path
) -> None:
    mounts.create("c1", {"Binds": ["web:/srv/www"]}, {}, _resolve)
    oci = mounts.setup("c1", rootfs)
    data = volumes.get("web").mountpoint
    assert (data / "index.html").read_text() == "hello"
    assert oct(os.stat(data).st_mode & 0o777) == oct(0o750)
    assert oci == [
        {
            "destination": "/srv/www",
            "type": "bind",
            "source": str(data),
            "options": ["rbind", "rprivate"],
        }
    ]
    (data / "index.html").unlink()
    mounts.release("c1")
    mounts.setup("c1", rootfs)  # copy-up happens once per container, like dockerd's at create
    assert not (data / "index.html").exists()


def test_nocopy_and_read_only(
    mounts: ContainerMounts, volumes: VolumeService, rootfs: Path
) -> None:
    mounts.create("c1", {"Binds": ["web:/srv/www:ro,nocopy"]}, {}, _resolve)
    oci = mounts.setup("c1", rootfs)
    assert oci[0]["options"] == ["rbind", "rprivate", "ro"]
    assert list(volumes.get("web").mountpoint.iterdir()) == []


def test_absolute_symlink_target_stays_in_rootfs(
    mounts: ContainerMounts, volumes: VolumeService, rootfs: Path, tmp_path: Path
) -> None:
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    (host_dir / "sentinel").write_text("host")
    (rootfs / "data").symlink_to(str(host_dir))  # the image says /data -> <a host path>
    (rootfs / "etc2").symlink_to("/etc")
    mounts.create("c1", {"Binds": ["v1:/data", "v2:/etc2"]}, {}, _resolve)
    oci = {m["source"]: m for m in mounts.setup("c1", rootfs)}
    v1 = str(volumes.get("v1").mountpoint)
    v2 = str(volumes.get("v2").mountpoint)
    assert oci[v1]["destination"] == str(host_dir)  # inside the container, not on the host
    assert (rootfs / str(host_dir).lstrip("/")).is_dir()
    assert sorted(os.listdir(host_dir)) == ["sentinel"]  # the host dir is untouched
    assert os.listdir(v1) == []  # nothing copied from the host
    assert oci[v2]["destination"] == "/etc"
    assert (Path(v2) / "passwd").exists()  # copied from the image's /etc, not the host's
    assert (Path(v2) / "passwd").read_text() == "root:x:0:0::/root:/bin/sh\n"


def test_dotdot_symlink_to_root_is_refused(
    mounts: ContainerMounts, volumes: VolumeService, rootfs: Path, tmp_path: Path
) -> None:
    (rootfs / "data").symlink_to("../../")
    (rootfs / "deep").symlink_to("../../../../etc")
    mounts.create("c1", {"Binds": ["v1:/data"]}, {}, _resolve)
    with pytest.raises(errors.InvalidArgument, match="resolves to the container's root"):
        mounts.setup("c1", rootfs)
    assert os.listdir(volumes.get("v1").mountpoint) == []
    mounts.create("c2", {"Binds": ["v2:/deep"]}, {}, _resolve)
    oci = mounts.setup("c2", rootfs)
    assert oci[0]["destination"] == "/etc"
    assert (volumes.get("v2").mountpoint / "passwd").exists()


def test_bind_sources(mounts: ContainerMounts, rootfs: Path, tmp_path: Path) -> None:
    created = tmp_path / "made-by-v"
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    link = tmp_path / "link-to-file"
    link.symlink_to(a_file)
    mounts.create(
        "c1",
        {"Binds": [f"{created}:/made", f"{link}:/etc/conf.txt:ro"]},
        {},
        _resolve,
    )
    oci = mounts.setup("c1", rootfs)
    assert created.is_dir()  # -v creates a missing source
    assert oci[1]["source"] == str(a_file)  # realpath of the user's choice
    assert (rootfs / "etc" / "conf.txt").is_file()  # a file mountpoint for a file bind
    assert oci[1]["options"] == ["rbind", "rprivate", "ro"]
    gone = tmp_path / "gone"
    gone.mkdir()
    mounts.create(
        "c2", {"Mounts": [{"Type": "bind", "Source": str(gone), "Target": "/g"}]}, {}, _resolve
    )
    gone.rmdir()
    with pytest.raises(errors.InvalidArgument, match="bind source path does not exist"):
        mounts.setup("c2", rootfs)


def test_tmpfs_objects(mounts: ContainerMounts, rootfs: Path) -> None:
    mounts.create(
        "c1",
        {"Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024}}]},
        {},
        _resolve,
    )
    oci = mounts.setup("c1", rootfs, {"/run/x": "exec,size=2m"})
    assert oci == [
        {
            "destination": "/t",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["noexec", "nosuid", "nodev", "rprivate", "size=1k"],
        },
        {
            "destination": "/run/x",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "rprivate", "exec", "size=2m"],
        },
    ]
    assert (rootfs / "run" / "x").is_dir()
