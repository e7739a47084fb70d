"""The overlay snapshotter's mount lists really mount (needs root for mount(2))."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.mount import Mount, is_mounted, mount_all, unmount, unmount_all
from dockyard.snapshots import OverlaySnapshotter
from dockyard.store import Database

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="mount(2) needs root"),
]


@pytest.fixture
def sn(tmp_path: Path) -> Iterator[OverlaySnapshotter]:
    db = Database(tmp_path / "dockyard.db")
    yield OverlaySnapshotter(tmp_path / "snapshots", db)
    db.close()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "rootfs"
    path.mkdir()
    yield path
    unmount_all(path, detach=True)  # also when the test failed half way
    assert not is_mounted(path)


def _layer(sn: OverlaySnapshotter, name: str, parent: str | None, files: dict[str, bytes]) -> None:
    key = f"extract-{name}"
    sn.prepare(key, parent)
    for rel, data in files.items():
        p = sn.upper_dir(key) / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    sn.commit(name, key)


def test_rw_overlay_on_committed_layers(sn: OverlaySnapshotter, target: Path) -> None:
    _layer(sn, "L0", None, {"etc/os": b"base\n", "bin/tool": b"v0"})
    _layer(sn, "L1", "L0", {"bin/tool": b"v1", "data/new": b"n"})
    mounts = sn.prepare("ctr", "L1")
    mount_all(mounts, target)
    try:
        assert is_mounted(target)
        assert (target / "etc/os").read_bytes() == b"base\n"
        assert (target / "bin/tool").read_bytes() == b"v1"  # upper layer wins
        (target / "hello").write_bytes(b"from the container")
        (target / "etc/os").write_bytes(b"changed")  # copy-up
        (target / "data/new").unlink()  # whiteout in the upper dir
        upper = sn.upper_dir("ctr")
        assert (upper / "hello").read_bytes() == b"from the container"
        assert (upper / "etc/os").read_bytes() == b"changed"
        st = os.lstat(upper / "data/new")
        assert os.major(st.st_rdev) == 0 and os.minor(st.st_rdev) == 0  # overlay whiteout
        # committed layers are untouched
        assert (sn.upper_dir("L0") / "etc/os").read_bytes() == b"base\n"
        assert (sn.upper_dir("L1") / "data/new").read_bytes() == b"n"
        assert not (sn.upper_dir("L1") / "hello").exists()
    finally:
        unmount(target)
    assert not is_mounted(target)
    assert list(target.iterdir()) == []
    sn.remove("ctr")


def test_active_snapshot_without_parent_is_a_bind(sn: OverlaySnapshotter, target: Path) -> None:
    mount_all(sn.prepare("scratch", None), target)
    try:
        (target / "f").write_bytes(b"x")
        assert (sn.upper_dir("scratch") / "f").read_bytes() == b"x"
    finally:
        unmount(target)


@pytest.mark.parametrize("layers", [1, 2])
def test_views_are_read_only(sn: OverlaySnapshotter, target: Path, layers: int) -> None:
    _layer(sn, "L0", None, {"a": b"a"})
    top = "L0"
    if layers == 2:
        _layer(sn, "L1", "L0", {"b": b"b"})
        top = "L1"
    mount_all(sn.view("v", top), target)
    try:
        assert (target / "a").read_bytes() == b"a"
        with pytest.raises(OSError) as exc:
            (target / "new").write_bytes(b"no")
        assert exc.value.errno == errno.EROFS
    finally:
        unmount(target)


def test_many_layers_exceeding_a_page_of_options(sn: OverlaySnapshotter, target: Path) -> None:
    parent = None
    for i in range(90):
        _layer(sn, f"L{i}", parent, {f"f{i}": str(i).encode()})
        parent = f"L{i}"
    (m,) = sn.prepare("ctr", parent)
    assert len(",".join(m.options)) > os.sysconf("SC_PAGE_SIZE")
    mount_all([m], target)
    try:
        assert (target / "f0").read_bytes() == b"0"
        assert (target / "f89").read_bytes() == b"89"
        (target / "w").write_bytes(b"w")
        assert (sn.upper_dir("ctr") / "w").exists()
    finally:
        unmount(target)


def test_unmount_of_a_plain_directory_is_a_no_op(tmp_path: Path) -> None:
    unmount(tmp_path)
    unmount(tmp_path / "missing")
    assert not is_mounted(tmp_path)


def test_failed_mount_is_reported_and_leaves_nothing(tmp_path: Path, target: Path) -> None:
    from dockyard.errors import SystemError

    bad = Mount("overlay", "overlay", (f"lowerdir={tmp_path}/nope1:{tmp_path}/nope2",))
    with pytest.raises(SystemError):
        mount_all([bad], target)
    assert not is_mounted(target)
