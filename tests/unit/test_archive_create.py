"""write_layer_from_diff / write_tree: whiteout conversion, order, links, round trips."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import stat
import tarfile
from pathlib import Path

import pytest

import dockyard.archive
from dockyard.archive import apply_layer, write_layer_from_diff, write_tree
from dockyard.errors import NotFound, SystemError
from tests.unit.test_archive_apply import MTIME, build, dir_, hard, reg, sym

IS_ROOT = os.geteuid() == 0
only_root = pytest.mark.skipif(not IS_ROOT, reason="needs root")


def members(blob: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        return tar.getmembers()


def layer_of(diff: Path) -> tuple[bytes, str]:
    out = io.BytesIO()
    diff_id = write_layer_from_diff(diff, out)
    return out.getvalue(), diff_id


def make_upper(root: Path) -> None:
    """An overlay upper dir as the kernel leaves it (whiteouts need mknod 0:0)."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/motd").write_text("hi\n")
    os.link(root / "etc/motd", root / "etc/motd.link")
    os.symlink("/etc/shadow", root / "etc/shadow.link")  # must not be followed
    os.mknod(root / "etc/removed", stat.S_IFCHR, os.makedev(0, 0))
    os.mknod(root / "gone", stat.S_IFCHR, os.makedev(0, 0))
    (root / "opaque").mkdir()
    (root / "opaque/new").write_text("n")
    os.setxattr(root / "opaque", "trusted.overlay.opaque", b"y")
    os.setxattr(root / "etc/motd", "user.note", b"\x00\xffbinary")
    os.setxattr(root / "etc", "trusted.overlay.impure", b"y")  # overlay state: not exported


@pytest.mark.unit
def test_public_names_match_all() -> None:
    public = {n for n in dir(dockyard.archive) if not n.startswith("_")}
    public -= {"apply", "compression", "copy", "create", "rooted"}  # submodules
    assert set(dockyard.archive.__all__) == public
    assert sorted(dockyard.archive.__all__) == [
        "LayerApplyResult",
        "apply_layer",
        "compress_gzip",
        "open_decompressed",
        "write_layer_from_diff",
        "write_tree",
    ]


@pytest.mark.root
@only_root
def test_upper_dir_becomes_an_oci_layer(tmp_path: Path) -> None:
    make_upper(tmp_path / "upper")
    blob, diff_id = layer_of(tmp_path / "upper")
    assert diff_id == "sha256:" + hashlib.sha256(blob).hexdigest()
    got = {m.name: m for m in members(blob)}
    assert list(got) == [
        ".wh.gone",  # whiteouts first in a directory
        "etc",
        "etc/.wh.removed",
        "etc/motd",
        "etc/motd.link",
        "etc/shadow.link",
        "opaque",
        "opaque/.wh..wh..opq",  # right after its directory
        "opaque/new",
    ]
    for name in (".wh.gone", "etc/.wh.removed", "opaque/.wh..wh..opq"):
        assert got[name].isreg() and got[name].size == 0
    assert got["etc/motd.link"].islnk() and got["etc/motd.link"].linkname == "etc/motd"
    assert got["etc/shadow.link"].issym() and got["etc/shadow.link"].linkname == "/etc/shadow"
    assert all(m.uname == "" and m.gname == "" for m in got.values())
    assert got["etc/motd"].pax_headers["SCHILY.xattr.user.note"].encode(
        "utf-8", "surrogateescape"
    ) == (b"\x00\xffbinary")
    assert not any("overlay" in key for m in got.values() for key in m.pax_headers)


@pytest.mark.root
@only_root
def test_output_is_reproducible(tmp_path: Path) -> None:
    make_upper(tmp_path / "upper")
    assert layer_of(tmp_path / "upper") == layer_of(tmp_path / "upper")


@pytest.mark.root
@only_root
def test_apply_then_diff_then_apply_keeps_whiteouts_opaque_and_links(tmp_path: Path) -> None:
    original = build(
        dir_("data", mode=0o2775, uid=7, gid=8),
        reg("data/.wh.old"),
        reg("data/a", b"A" * 5000, mode=0o4755),
        hard("data/a.link", "data/a"),
        sym("data/abs", "/etc/passwd"),
        dir_("data/opaque"),
        reg("data/opaque/.wh..wh..opq"),
        reg("data/opaque/new", b"n", uid=65534, gid=65534, mode=0o640),
    )
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    applied = apply_layer(io.BytesIO(original), first)
    blob, diff_id = layer_of(first)
    reapplied = apply_layer(io.BytesIO(blob), second)

    assert reapplied.diff_id == diff_id
    assert reapplied.size == applied.size == 5001
    names = [m.name for m in members(blob)]
    assert "data/.wh.old" in names and "data/opaque/.wh..wh..opq" in names
    st = os.lstat(second / "data/old")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(second / "data/opaque", "trusted.overlay.opaque") == b"y"
    assert os.stat(second / "data/a.link").st_ino == os.stat(second / "data/a").st_ino
    assert os.readlink(second / "data/abs") == "/etc/passwd"
    for rel in ("data", "data/a", "data/opaque/new", "data/abs"):
        a, b = os.lstat(first / rel), os.lstat(second / rel)
        assert (a.st_mode, a.st_uid, a.st_gid, a.st_mtime) == (
            b.st_mode,
            b.st_uid,
            b.st_gid,
            b.st_mtime,
        )
    assert (second / "data/a").read_bytes() == b"A" * 5000


@pytest.mark.root
@only_root
def test_redirect_dir_upper_cannot_be_diffed(tmp_path: Path) -> None:
    (tmp_path / "upper/moved").mkdir(parents=True)
    os.setxattr(tmp_path / "upper/moved", "trusted.overlay.redirect", b"/orig")
    with pytest.raises(SystemError, match="redirect_dir=off"):
        layer_of(tmp_path / "upper")


@pytest.mark.unit
def test_entries_are_sorted_with_numeric_ids_and_whole_second_mtimes(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    for name in ("b", "a", "C", "a/z", "a/y"):
        (root / name).mkdir(parents=True)
    (root / "a/y/file").write_bytes(b"f")
    os.utime(root / "a/y/file", ns=(MTIME * 10**9 + 123_456_789,) * 2)
    blob, _ = layer_of(root)
    got = members(blob)
    assert [m.name for m in got] == ["C", "a", "a/y", "a/y/file", "a/z", "b"]
    assert got[3].mtime == MTIME
    assert all(m.uid == os.geteuid() and m.uname == "" for m in got)
    assert blob[156:157] == b"5"  # first header is the directory itself: no PAX needed
    assert all(m.name != "." for m in got)


@pytest.mark.unit
def test_symlinked_directories_are_archived_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    root = tmp_path / "tree"
    root.mkdir()
    os.symlink(outside, root / "link")
    blob, _ = layer_of(root)
    assert [(m.name, m.issym(), m.linkname) for m in members(blob)] == [
        ("link", True, str(outside))
    ]


@pytest.mark.unit
def test_pax_format_for_long_names(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    deep = root / ("x" * 120) / ("y" * 120)
    deep.mkdir(parents=True)
    (deep / "f").write_text("f")
    blob, _ = layer_of(root)
    assert members(blob)[-1].name == f"{'x' * 120}/{'y' * 120}/f"
    assert b"path=" in blob[:1024]  # a PAX extended header, not a GNU longname


@pytest.mark.root
@only_root
def test_write_tree_keeps_devices_and_honours_exclude(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/status").write_text("x")
    (root / "dev").mkdir()
    os.mknod(root / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(root / "dev/wh", stat.S_IFCHR, os.makedev(0, 0))  # no conversion in exports
    os.mkfifo(root / "dev/fifo")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / "dev/sock"))
        out = io.BytesIO()
        write_tree(root, out, exclude=lambda rel: rel == "proc" or rel.startswith("proc/"))
    finally:
        sock.close()
    got = {m.name: m for m in members(out.getvalue())}
    assert sorted(got) == ["dev", "dev/fifo", "dev/null", "dev/wh"]  # socket skipped
    assert got["dev/null"].ischr() and (got["dev/null"].devmajor, got["dev/null"].devminor) == (
        1,
        3,
    )
    assert got["dev/wh"].ischr()
    assert got["dev/fifo"].isfifo()


@pytest.mark.unit
def test_missing_directory_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        write_layer_from_diff(tmp_path / "nope", io.BytesIO())
    with pytest.raises(NotFound):
        write_tree(tmp_path / "nope", io.BytesIO())


@pytest.mark.unit
def test_write_errors_become_system_error(tmp_path: Path) -> None:
    class Full(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: object) -> int:
            raise OSError(28, "No space left on device")

    (tmp_path / "tree").mkdir()
    (tmp_path / "tree/f").write_bytes(b"x" * 100)
    with pytest.raises(SystemError, match="No space left"):
        write_layer_from_diff(tmp_path / "tree", Full())  # type: ignore[arg-type]
