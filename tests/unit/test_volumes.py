"""The local volume driver and volume metadata (no mounts: plain volumes only), and copy-up."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard import errors
from dockyard.store import Database
from dockyard.volumes import ANONYMOUS_LABEL, VolumeService, copy_up, is_empty_dir, validate_name

pytestmark = pytest.mark.unit


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "dockyard.db")
    yield database
    database.close()


@pytest.fixture
def service(tmp_path: Path, db: Database) -> VolumeService:
    return VolumeService(db, tmp_path / "volumes")


# ---- names and options ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ab", "v1", "a.b-c_d", "0x", "A" * 200])
def test_valid_names(name: str) -> None:
    validate_name(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a", "volume name is too short, names should be at least two alphanumeric characters"),
        (
            "bad name",
            '"bad name" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
            "use absolute path",
        ),
        ("-ab", None),
        ("../x", None),
        ("a/b", None),
        (".hidden", None),
    ],
)
def test_invalid_names(name: str, message: str | None) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        validate_name(name)
    if message is not None:
        assert info.value.message == message


def test_create_with_invalid_name_names_it(service: VolumeService) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        service.create("bad name")
    assert info.value.message.startswith('create bad name: "bad name" includes invalid')
    assert not any(service.root.iterdir())


def test_unknown_driver_is_not_found(service: VolumeService) -> None:
    with pytest.raises(errors.NotFound) as info:
        service.create("x1", "nosuch")
    assert info.value.message == (
        'create x1: error looking up volume plugin nosuch: plugin "nosuch" not found'
    )


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"foo": "bar"}, 'create vv: invalid option: "foo"'),
        ({"type": "tmpfs"}, 'create vv: missing required option: "device"'),
        ({"device": "tmpfs"}, 'create vv: missing required option: "type"'),
        ({"o": "size=1m"}, 'create vv: missing required option: "device"'),
        (
            {"type": "tmpfs", "device": "tmpfs", "size": "1g"},
            "create vv: quota size requested but no quota support",
        ),
    ],
)
def test_bad_driver_options(service: VolumeService, opts: dict[str, str], message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        service.create("vv", "local", opts)
    assert info.value.message == message


def test_bad_driver_option_message_exact(service: VolumeService) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        service.create("vol", "local", {"foo": "bar"})
    assert info.value.message == 'create vol: invalid option: "foo"'


# ---- create / get / list ---------------------------------------------------------------------


def test_create_layout_and_api_shape(service: VolumeService) -> None:
    volume = service.create(
        "v1", "", {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}, {"k": "v"}
    )
    data = service.root / "v1" / "_data"
    assert data.is_dir()
    assert stat.S_IMODE(os.stat(service.root / "v1").st_mode) == 0o701
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o755
    api = volume.to_api()
    assert list(api) == [
        "CreatedAt",
        "Driver",
        "Labels",
        "Mountpoint",
        "Name",
        "Options",
        "Scope",
    ]
    assert api["Mountpoint"] == str(data)
    assert api["Driver"] == "local" and api["Scope"] == "local"
    assert api["Options"] == {"device": "tmpfs", "o": "size=1m", "type": "tmpfs"}
    assert list(api["Options"]) == ["device", "o", "type"]
    assert api["Labels"] == {"k": "v"}
    assert api["CreatedAt"].endswith("Z") and len(api["CreatedAt"]) == 20


def test_plain_volume_has_null_labels_and_options(service: VolumeService) -> None:
    api = service.create("plain").to_api()
    assert api["Labels"] is None and api["Options"] is None


def test_random_name_and_idempotent_create(service: VolumeService) -> None:
    anonymous = service.create()
    assert len(anonymous.name) == 64 and all(c in "0123456789abcdef" for c in anonymous.name)
    first = service.create("same", labels={"a": "1"})
    again = service.create("same", labels={"b": "2"})
    assert again is first and again.labels == {"a": "1"}


def test_get_missing(service: VolumeService) -> None:
    with pytest.raises(errors.NotFound) as info:
        service.get("nosuchvol")
    assert info.value.message == "get nosuchvol: no such volume"


def test_list_filters(service: VolumeService) -> None:
    service.create("alpha", labels={"team": "a", "x": ""})
    service.create("beta", labels={"team": "b"})
    service.create("gamma")
    service.acquire("beta", "c1")
    names = lambda f: [v.name for v in service.list_volumes(f)]  # noqa: E731
    assert names({}) == ["alpha", "beta", "gamma"]
    assert names({"dangling": ["true"]}) == ["alpha", "gamma"]
    assert names({"dangling": ["0"]}) == ["beta"]
    assert names({"name": ["al"]}) == ["alpha"]
    assert names({"name": ["^g"]}) == ["gamma"]
    assert names({"label": ["team"]}) == ["alpha", "beta"]
    assert names({"label": ["team=b"]}) == ["beta"]
    assert names({"label": ["team", "x"]}) == ["alpha"]
    assert names({"driver": ["local"]}) == ["alpha", "beta", "gamma"]
    assert names({"driver": ["other"]}) == []
    with pytest.raises(errors.InvalidArgument, match="Invalid filter 'bogus'"):
        service.list_volumes({"bogus": ["1"]})
    with pytest.raises(errors.InvalidArgument, match="Invalid filter 'dangling=maybe'"):
        service.list_volumes({"dangling": ["maybe"]})


# ---- references, remove, prune ---------------------------------------------------------------


def test_remove_in_use_missing_and_force(service: VolumeService) -> None:
    service.create("vu")
    service.acquire("vu", "c2")
    service.acquire("vu", "c1")
    with pytest.raises(errors.Conflict) as info:
        service.remove("vu")
    assert info.value.message == "remove vu: volume is in use - [c1, c2]"
    with pytest.raises(errors.Conflict):
        service.remove("vu", force=True)
    service.release("vu", "c1")
    service.release("vu", "c2")
    (service.root / "vu" / "_data" / "file").write_text("data")
    service.remove("vu")
    assert not (service.root / "vu").exists()
    with pytest.raises(errors.NotFound, match="get vu: no such volume"):
        service.remove("vu")
    service.remove("vu", force=True)


def test_acquire_unknown_volume(service: VolumeService) -> None:
    with pytest.raises(errors.NotFound):
        service.acquire("nope", "c1")


def test_create_with_ref_is_referenced(service: VolumeService) -> None:
    service.create("held", ref="c9")
    assert service.users("held") == ["c9"]
    assert service.in_use("held")


def test_prune_anonymous_only_by_default(service: VolumeService) -> None:
    anon = service.create(labels={ANONYMOUS_LABEL: ""})
    used = service.create(labels={ANONYMOUS_LABEL: ""}, ref="c1")
    service.create("named")
    (anon.mountpoint / "f").write_bytes(b"x" * 100)
    deleted, reclaimed = service.prune({})
    assert deleted == [anon.name]
    assert reclaimed == 100
    assert {v.name for v in service.list_volumes()} == {used.name, "named"}


def test_prune_all_and_labels(service: VolumeService) -> None:
    service.create("keep", labels={"keep": "1"})
    service.create("drop", labels={"env": "test"})
    service.create("other")
    assert service.prune({"all": ["true"], "label": ["env=test"]})[0] == ["drop"]
    assert service.prune({"all": ["1"], "label!": ["keep"]})[0] == ["other"]
    assert service.prune({"all": ["false"]})[0] == []
    with pytest.raises(errors.InvalidArgument, match="Invalid filter 'until'"):
        service.prune({"until": ["1h"]})
    with pytest.raises(errors.InvalidArgument):
        service.prune({"all": ["maybe"]})


# ---- persistence and recovery ------------------------------------------------------------------


def test_survives_reopen(tmp_path: Path, db: Database) -> None:
    first = VolumeService(db, tmp_path / "volumes")
    first.create("keep", labels={"a": "b"}, driver_opts=None)
    (tmp_path / "volumes" / "keep" / "_data" / "f").write_text("kept")
    db.close()
    db2 = Database(tmp_path / "dockyard.db")
    try:
        second = VolumeService(db2, tmp_path / "volumes")
        volume = second.get("keep")
        assert volume.labels == {"a": "b"}
        assert (volume.mountpoint / "f").read_text() == "kept"
    finally:
        db2.close()


def test_reconcile_adopts_strays_and_finishes_removals(tmp_path: Path, db: Database) -> None:
    root = tmp_path / "volumes"
    (root / "stray" / "_data").mkdir(parents=True)
    (root / ".trash-0123").mkdir()
    (root / ".trash-0123" / "junk").write_text("x")
    (root / "not-a-volume").mkdir()  # no _data: left alone
    service = VolumeService(db, root)
    assert service.exists("stray")
    assert not (root / ".trash-0123").exists()
    assert not service.exists("not-a-volume")
    # a row whose directory vanished gets an empty one back
    service.create("lost")
    import shutil

    shutil.rmtree(root / "lost")
    VolumeService(db, root)
    assert (root / "lost" / "_data").is_dir()


# ---- copy-up -----------------------------------------------------------------------------------


def _tree(tmp_path: Path) -> Path:
    src = tmp_path / "image" / "etc"
    (src / "sub").mkdir(parents=True)
    (src / "file").write_text("content")
    os.chmod(src / "file", 0o640)
    os.chmod(src / "sub", 0o711)
    os.chmod(src, 0o750)
    (src / "link").symlink_to("/etc/passwd")
    (src / "up").symlink_to("../../../../")
    os.mkfifo(src / "fifo")
    os.utime(src / "file", (1_000_000, 1_000_000))
    return src


def test_copy_up_copies_tree_modes_and_symlinks(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    dst = tmp_path / "vol"
    dst.mkdir(mode=0o755)
    assert copy_up(src, dst)
    assert (dst / "file").read_text() == "content"
    assert stat.S_IMODE(os.stat(dst / "file").st_mode) == 0o640
    assert os.stat(dst / "file").st_mtime == 1_000_000
    assert stat.S_IMODE(os.stat(dst / "sub").st_mode) == 0o711
    assert stat.S_IMODE(os.stat(dst).st_mode) == 0o750  # the root takes the image dir's mode
    assert os.readlink(dst / "link") == "/etc/passwd"  # copied as a link, never followed
    assert os.readlink(dst / "up") == "../../../../"
    assert stat.S_ISFIFO(os.lstat(dst / "fifo").st_mode)
    assert os.stat(dst).st_uid == os.stat(src).st_uid


def test_copy_up_skips_non_empty_and_non_dirs(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    dst = tmp_path / "vol"
    dst.mkdir()
    (dst / "existing").write_text("mine")
    assert not copy_up(src, dst)
    assert sorted(os.listdir(dst)) == ["existing"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not copy_up(src / "file", empty)
    assert not copy_up(tmp_path / "missing", empty)
    assert is_empty_dir(empty)


def test_copy_up_never_follows_a_symlinked_source(tmp_path: Path) -> None:
    outside = tmp_path / "host-secret"
    outside.mkdir()
    (outside / "secret").write_text("s")
    link = tmp_path / "data"
    link.symlink_to(outside)
    dst = tmp_path / "vol"
    dst.mkdir()
    assert not copy_up(link, dst)  # O_NOFOLLOW on the (already resolved) source
    assert is_empty_dir(dst)
    assert not is_empty_dir(link)  # a symlink is never "an empty directory" either


def test_copy_up_refuses_a_destination_that_is_a_symlink(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_text("payload")
    victim = tmp_path / "victim"
    victim.mkdir()
    dst = tmp_path / "vol"
    dst.symlink_to(victim)
    with pytest.raises(errors.SystemError):
        copy_up(src, dst)
    assert list(victim.iterdir()) == []
