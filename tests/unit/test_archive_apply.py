"""apply_layer on tars built in memory: entry kinds, whiteouts, metadata, diff_id, errors.

Hostile layers are in test_archive_hostile.py; the builders below are shared with it
and with test_archive_create.py.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from dockyard.archive import LayerApplyResult, apply_layer
from dockyard.errors import Conflict, InvalidArgument, NotFound

MTIME = 1_704_067_200  # 2024-01-01
IS_ROOT = os.geteuid() == 0
only_root = pytest.mark.skipif(not IS_ROOT, reason="needs root")

Entry = tuple[tarfile.TarInfo, bytes | None]


# -- builders (shared) ---------------------------------------------------


def _info(name: str, type_: bytes, mode: int, uid: int, gid: int, mtime: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = type_, mode, uid, gid, mtime
    return ti


def pax_xattrs(xattrs: dict[str, bytes] | None) -> dict[str, str]:
    """PAX records for xattrs, the way tarfile round-trips binary values."""
    return {
        "SCHILY.xattr." + key: value.decode("utf-8", "surrogateescape")
        for key, value in (xattrs or {}).items()
    }


def reg(
    name: str,
    data: bytes = b"",
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    mtime: int = MTIME,
    xattrs: dict[str, bytes] | None = None,
) -> Entry:
    ti = _info(name, tarfile.REGTYPE, mode, uid, gid, mtime)
    ti.size = len(data)
    ti.pax_headers = pax_xattrs(xattrs)
    return ti, data


def dir_(
    name: str,
    mode: int = 0o755,
    uid: int = 0,
    gid: int = 0,
    mtime: int = MTIME,
    xattrs: dict[str, bytes] | None = None,
) -> Entry:
    ti = _info(name, tarfile.DIRTYPE, mode, uid, gid, mtime)
    ti.pax_headers = pax_xattrs(xattrs)
    return ti, None


def sym(name: str, target: str, uid: int = 0, gid: int = 0, mtime: int = MTIME) -> Entry:
    ti = _info(name, tarfile.SYMTYPE, 0o777, uid, gid, mtime)
    ti.linkname = target
    return ti, None


def hard(name: str, target: str) -> Entry:
    ti = _info(name, tarfile.LNKTYPE, 0o644, 0, 0, MTIME)
    ti.linkname = target
    return ti, None


def node(name: str, type_: bytes, mode: int = 0o644, major: int = 0, minor: int = 0) -> Entry:
    ti = _info(name, type_, mode, 0, 0, MTIME)
    ti.devmajor, ti.devminor = major, minor
    return ti, None


def build(*entries: Entry) -> bytes:
    """A PAX tar of `entries`, in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def apply_bytes(blob: bytes, dest: Path) -> LayerApplyResult:
    dest.mkdir(parents=True, exist_ok=True)
    return apply_layer(io.BytesIO(blob), dest)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# -- regular content -------------------------------------------------------


@pytest.mark.unit
def test_files_and_dirs_are_written_with_contents_size_and_mtimes(tmp_path: Path) -> None:
    blob = build(
        dir_("etc", mtime=MTIME - 100),
        reg("etc/hostname", b"box\n"),
        reg("usr/share/doc/readme", b"x" * 70_000, mtime=MTIME - 5),  # parents implicit
        dir_("usr/share", mode=0o750, mtime=MTIME - 50),  # after its child: mode/mtime still win
    )
    dest = tmp_path / "layer"
    result = apply_bytes(blob, dest)

    assert (dest / "etc/hostname").read_bytes() == b"box\n"
    assert (dest / "usr/share/doc/readme").read_bytes() == b"x" * 70_000
    assert result.size == 4 + 70_000
    assert result.diff_id == sha256(blob)
    assert os.stat(dest / "etc").st_mtime == MTIME - 100  # not bumped by the child
    assert os.stat(dest / "usr/share").st_mtime == MTIME - 50
    assert stat.S_IMODE(os.stat(dest / "usr/share").st_mode) == 0o750
    assert os.stat(dest / "usr/share/doc/readme").st_mtime == MTIME - 5
    assert stat.S_IMODE(os.stat(dest / "usr").st_mode) == 0o755  # implicit parent


@pytest.mark.unit
@pytest.mark.parametrize(
    "compress",
    [
        pytest.param(lambda b: b, id="plain"),
        pytest.param(lambda b: gzip.compress(b, mtime=0), id="gzip"),
        pytest.param(lambda b: zstandard.ZstdCompressor().compress(b), id="zstd"),
        pytest.param(lzma.compress, id="xz"),
        pytest.param(bz2.compress, id="bzip2"),
    ],
)
def test_diff_id_is_sha256_of_uncompressed_stream(
    tmp_path: Path, compress: Callable[[bytes], bytes]
) -> None:
    plain = build(dir_("d"), reg("d/f", os.urandom(50_000)))
    result = apply_bytes(compress(plain), tmp_path / "layer")
    assert result.diff_id == sha256(plain)
    assert len((tmp_path / "layer/d/f").read_bytes()) == 50_000


@pytest.mark.unit
def test_diff_id_covers_bytes_after_the_end_of_archive(tmp_path: Path) -> None:
    plain = build(reg("f", b"data")) + b"\0" * 4096  # extra padding, as some tools write
    result = apply_bytes(gzip.compress(plain), tmp_path / "layer")
    assert result.diff_id == sha256(plain)


@pytest.mark.unit
def test_empty_blob_and_empty_tar_give_empty_layers(tmp_path: Path) -> None:
    assert apply_bytes(b"", tmp_path / "a").diff_id == sha256(b"")
    empty_tar = build()
    result = apply_bytes(empty_tar, tmp_path / "b")
    assert result == LayerApplyResult(diff_id=sha256(empty_tar), size=0)
    assert os.listdir(tmp_path / "a") == [] and os.listdir(tmp_path / "b") == []


@pytest.mark.unit
def test_symlinks_are_created_verbatim_and_not_followed(tmp_path: Path) -> None:
    blob = build(
        sym("abs", "/etc/passwd", mtime=MTIME - 7),
        sym("up", "../../../x"),
        reg("target", b"t"),
        sym("rel", "target"),
    )
    dest = tmp_path / "layer"
    apply_bytes(blob, dest)
    assert os.readlink(dest / "abs") == "/etc/passwd"
    assert os.readlink(dest / "up") == "../../../x"
    assert (dest / "rel").read_bytes() == b"t"
    assert os.lstat(dest / "abs").st_mtime == MTIME - 7  # the link's own mtime


@pytest.mark.unit
def test_hardlink_shares_the_inode_of_an_earlier_entry(tmp_path: Path) -> None:
    blob = build(dir_("a"), reg("a/f", b"shared"), hard("b/f.link", "a/f"), hard("top", "/a/f"))
    dest = tmp_path / "layer"
    result = apply_bytes(blob, dest)
    st = os.stat(dest / "a/f")
    assert os.stat(dest / "b/f.link").st_ino == st.st_ino
    assert os.stat(dest / "top").st_ino == st.st_ino
    assert st.st_nlink == 3
    assert result.size == 6  # link entries write no content


@pytest.mark.unit
def test_hardlink_to_a_symlink_links_the_symlink_itself(tmp_path: Path) -> None:
    blob = build(sym("s", "/nonexistent"), hard("h", "s"))
    dest = tmp_path / "layer"
    apply_bytes(blob, dest)
    assert os.readlink(dest / "h") == "/nonexistent"
    assert os.lstat(dest / "h").st_ino == os.lstat(dest / "s").st_ino


@pytest.mark.unit
@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([hard("h", "missing")], "not an earlier file"),
        ([hard("h", "f"), reg("f")], "not an earlier file"),  # target comes later
        ([dir_("d"), hard("h", "d")], "not an earlier file"),  # directories cannot be linked
        ([reg("d/f"), hard("d", "d/f")], "not an earlier file"),  # replacing d removed d/f
    ],
)
def test_hardlink_needs_an_earlier_file_of_the_same_layer(
    tmp_path: Path, entries: list[Entry], problem: str
) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        apply_bytes(build(*entries), tmp_path / "layer")


# -- replacing entries of the same layer --------------------------------------


@pytest.mark.unit
def test_later_entries_replace_earlier_ones(tmp_path: Path) -> None:
    blob = build(
        reg("x", b"file"),
        dir_("x"),  # file -> dir
        reg("x/child", b"c"),
        dir_("y"),
        reg("y/old", b"o"),
        reg("y", b"now a file"),  # dir -> file (subtree removed)
        reg("z", b"z"),
        sym("z", "elsewhere"),  # file -> symlink
        dir_("keep", mode=0o700),
        reg("keep/a", b"a"),
        dir_("keep", mode=0o711),  # dir -> dir: merged, attributes updated
    )
    dest = tmp_path / "layer"
    apply_bytes(blob, dest)
    assert (dest / "x/child").read_bytes() == b"c"
    assert (dest / "y").read_bytes() == b"now a file"
    assert os.readlink(dest / "z") == "elsewhere"
    assert (dest / "keep/a").read_bytes() == b"a"
    assert stat.S_IMODE(os.stat(dest / "keep").st_mode) == 0o711


@pytest.mark.unit
def test_root_entry_does_not_change_the_layer_dir(tmp_path: Path) -> None:
    dest = tmp_path / "layer"
    dest.mkdir(mode=0o755)
    os.chmod(dest, 0o755)
    apply_layer(io.BytesIO(build(dir_("./", mode=0o700), reg("./f", b"f"))), dest)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o755
    assert (dest / "f").read_bytes() == b"f"


# -- whiteouts ------------------------------------------------------------------


@pytest.mark.unit
def test_whiteout_becomes_a_0_0_character_device(tmp_path: Path) -> None:
    blob = build(dir_("data"), reg("data/.wh.gone"), reg(".wh.topfile"))
    dest = tmp_path / "layer"
    apply_bytes(blob, dest)
    for path in (dest / "data/gone", dest / "topfile"):
        st = os.lstat(path)
        assert stat.S_ISCHR(st.st_mode)
        assert st.st_rdev == 0
    assert not (dest / "data/.wh.gone").exists()
    assert sorted(os.listdir(dest)) == ["data", "topfile"]


@pytest.mark.unit
def test_aufs_metadata_entries_are_skipped(tmp_path: Path) -> None:
    blob = build(dir_(".wh..wh.plnk"), reg(".wh..wh.plnk/1234.5", b"x"), reg("d/.wh..wh.aufs"))
    dest = tmp_path / "layer"
    apply_bytes(blob, dest)
    assert os.listdir(dest) == ["d"]
    assert os.listdir(dest / "d") == []


@pytest.mark.unit
@pytest.mark.parametrize("name", ["d/.wh.", "d/.wh..", "d/.wh..."])
def test_whiteout_without_a_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidArgument, match="names no file"):
        apply_bytes(build(reg(name)), tmp_path / "layer")


@pytest.mark.root
@only_root
def test_opaque_marker_sets_the_overlay_xattr(tmp_path: Path) -> None:
    blob = build(dir_("opaque"), reg("opaque/.wh..wh..opq"), reg("opaque/new", b"n"))
    blob2 = build(reg("missing/.wh..wh..opq"))  # the directory is created for the marker
    dest, dest2 = tmp_path / "layer", tmp_path / "layer2"
    apply_bytes(blob, dest)
    apply_bytes(blob2, dest2)
    assert os.getxattr(dest / "opaque", "trusted.overlay.opaque") == b"y"
    assert os.listdir(dest / "opaque") == ["new"]
    assert os.getxattr(dest2 / "missing", "trusted.overlay.opaque") == b"y"
    assert os.listdir(dest2 / "missing") == []
    with pytest.raises(OSError):
        os.getxattr(dest, "trusted.overlay.opaque")


@pytest.mark.root
@only_root
def test_whiteout_then_directory_of_that_name_is_opaque(tmp_path: Path) -> None:
    blob = build(reg(".wh.etc"), dir_("etc"), reg("etc/new", b"n"), dir_("plain"))
    dest = tmp_path / "layer"
    apply_bytes(blob, dest)
    assert stat.S_ISDIR(os.lstat(dest / "etc").st_mode)
    assert os.getxattr(dest / "etc", "trusted.overlay.opaque") == b"y"
    assert os.listdir(dest / "etc") == ["new"]
    with pytest.raises(OSError):
        os.getxattr(dest / "plain", "trusted.overlay.opaque")


# -- metadata -----------------------------------------------------------------------


@pytest.mark.root
@only_root
def test_owners_and_special_mode_bits_survive(tmp_path: Path) -> None:
    blob = build(
        reg("setuid", b"#!/bin/sh\n", mode=0o4755, uid=1000, gid=1000),
        reg("setgid", b"", mode=0o2711, uid=5, gid=6),
        dir_("sgid-dir", mode=0o2775, uid=7, gid=8),
        dir_("sticky", mode=0o1777),
        reg("nobody", b"n", mode=0o640, uid=65534, gid=65534),
        sym("link", "nobody", uid=42, gid=43),
    )
    dest = tmp_path / "layer"
    apply_bytes(blob, dest)

    def mode_owner(name: str) -> tuple[int, int, int]:
        st = os.lstat(dest / name)
        return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid

    assert mode_owner("setuid") == (0o4755, 1000, 1000)
    assert mode_owner("setgid") == (0o2711, 5, 6)
    assert mode_owner("sgid-dir") == (0o2775, 7, 8)
    assert mode_owner("sticky") == (0o1777, 0, 0)
    assert mode_owner("nobody") == (0o640, 65534, 65534)
    assert mode_owner("link")[1:] == (42, 43)


@pytest.mark.root
@only_root
def test_fifos_and_device_nodes(tmp_path: Path) -> None:
    blob = build(
        node("fifo", tarfile.FIFOTYPE, mode=0o620),
        node("null", tarfile.CHRTYPE, mode=0o666, major=1, minor=3),
        node("loop9", tarfile.BLKTYPE, mode=0o660, major=7, minor=9),
    )
    dest = tmp_path / "layer"
    apply_bytes(blob, dest)
    fifo, null, loop = (os.lstat(dest / n) for n in ("fifo", "null", "loop9"))
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o620
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    assert stat.S_ISBLK(loop.st_mode) and loop.st_rdev == os.makedev(7, 9)


@pytest.mark.root
@only_root
def test_xattrs_from_pax_headers_are_restored(tmp_path: Path) -> None:
    cap = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_bind_service+ep
    blob = build(
        reg("ping", b"elf", mode=0o755, uid=3, xattrs={"security.capability": cap}),
        dir_("d", xattrs={"user.comment": b"hello \xff binary"}),
        reg("odd", b"", xattrs={"nonamespace.x": b"1"}),  # unsupported: ignored
    )
    dest = tmp_path / "layer"
    apply_bytes(blob, dest)
    assert os.getxattr(dest / "ping", "security.capability") == cap  # set after chown
    assert os.getxattr(dest / "d", "user.comment") == b"hello \xff binary"
    assert (dest / "odd").exists()


# -- malformed input and the destination -----------------------------------------------


@pytest.mark.unit
def test_garbage_is_not_a_tar_stream(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="invalid layer"):
        apply_bytes(b"this is not a tar archive at all" * 40, tmp_path / "layer")


@pytest.mark.unit
def test_truncated_file_data_is_refused(tmp_path: Path) -> None:
    blob = build(reg("big", b"y" * 100_000))
    with pytest.raises(InvalidArgument, match="invalid layer"):
        apply_bytes(blob[:60_000], tmp_path / "layer")


@pytest.mark.unit
def test_corrupt_later_header_is_refused_not_treated_as_end(tmp_path: Path) -> None:
    blob = bytearray(build(reg("a", b"a" * 10), reg("b", b"b")))
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        second = tar.getmember("b").offset
    blob[second + 148 : second + 156] = b"0000000\0"  # a wrong header checksum
    with pytest.raises(InvalidArgument, match="invalid layer"):
        apply_bytes(bytes(blob), tmp_path / "layer")


@pytest.mark.unit
def test_truncated_header_is_refused(tmp_path: Path) -> None:
    blob = build(reg("a", b"a"), reg("b", b"b"))
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        second = tar.getmember("b").offset
    with pytest.raises(InvalidArgument, match="invalid layer"):
        apply_bytes(blob[: second + 100], tmp_path / "layer")


@pytest.mark.unit
def test_corrupt_gzip_is_refused(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(build(reg("f", os.urandom(5000)))))
    data[-8:-4] = bytes(b ^ 0xFF for b in data[-8:-4])  # wrong CRC32: found when draining
    with pytest.raises(InvalidArgument, match="corrupt gzip data"):
        apply_bytes(bytes(data), tmp_path / "layer")


@pytest.mark.unit
def test_unknown_entry_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="unsupported type"):
        apply_bytes(build(node("weird", b"Z")), tmp_path / "layer")


@pytest.mark.unit
def test_destination_must_exist_and_be_empty(tmp_path: Path) -> None:
    blob = build(reg("f"))
    with pytest.raises(NotFound):
        apply_layer(io.BytesIO(blob), tmp_path / "missing")
    (tmp_path / "full").mkdir()
    (tmp_path / "full/x").write_text("x")
    with pytest.raises(Conflict, match="not empty"):
        apply_layer(io.BytesIO(blob), tmp_path / "full")
    with pytest.raises(InvalidArgument, match="not a directory"):
        apply_layer(io.BytesIO(blob), tmp_path / "full/x")


@pytest.mark.unit
def test_no_fd_is_leaked_and_cwd_is_kept_on_success_and_failure(tmp_path: Path) -> None:
    cwd, fds = os.getcwd(), open_fds()
    deep = build(*[reg("/".join(["d"] * n) + "/f", b"x") for n in range(1, 30)])
    apply_bytes(deep, tmp_path / "ok")
    with pytest.raises(InvalidArgument):
        apply_bytes(build(reg("a/b/c/f"), sym("a/b/l", "/"), reg("a/b/l/x")), tmp_path / "bad")
    assert open_fds() == fds
    assert os.getcwd() == cwd
    assert (tmp_path / "ok" / ("d/" * 29) / "f").read_bytes() == b"x"


@pytest.mark.unit
def test_source_is_read_to_the_end_and_not_closed(tmp_path: Path) -> None:
    plain = build(reg("f", b"x")) + b"\0" * 20_000
    src = io.BytesIO(gzip.compress(plain))
    (tmp_path / "layer").mkdir()
    assert apply_layer(src, tmp_path / "layer").diff_id == sha256(plain)
    assert not src.closed
    assert src.read() == b""
