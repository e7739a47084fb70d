"""``docker cp`` logic without a daemon: Go's path rules, docker's copy table, the path stat
header, and the root-scoped resolution, tar writing and extraction on a temporary tree.

The hostile cases aim at an ``outside`` sentinel next to the root inside tmp_path, so a
regression damages tmp_path and never the host.
"""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.archive.copy import (
    MODE_DIR,
    MODE_SYMLINK,
    CopyError,
    CopyInfo,
    PathStat,
    asserts_directory,
    get_rebase_name,
    go_base,
    go_clean,
    go_dir,
    go_file_mode,
    go_time,
    prepare_archive_copy,
    preserve_trailing_dot_or_separator,
    rebase_name,
    split_path_dir_entry,
)
from dockyard.archive.rooted import ExtractOptions, Root, extract, stat_path, write_archive
from dockyard.cli.copy import split_cp_arg
from dockyard.errors import DockyardError, NotFound, SystemError

pytestmark = pytest.mark.unit


# ---- Go's path functions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [
        ("", "."),
        ("/", "/"),
        ("//a//b/", "/a/b"),
        ("a/./b/../c", "a/c"),
        ("/../x", "/x"),
        ("../x", "../x"),
        ("a/../..", ".."),
        ("./", "."),
    ],
)
def test_go_clean(path: str, cleaned: str) -> None:
    assert go_clean(path) == cleaned


@given(st.lists(st.sampled_from(["a", "b", ".", "..", ""]), max_size=8), st.booleans())
def test_go_clean_is_idempotent_and_never_climbs_above_root(parts: list[str], rooted: bool) -> None:
    path = ("/" if rooted else "") + "/".join(parts)
    once = go_clean(path)
    assert go_clean(once) == once
    if rooted:
        assert once.startswith("/") and ".." not in once.split("/")


@pytest.mark.parametrize(
    ("path", "base", "dirname"),
    [
        ("/a/b", "b", "/a"),
        ("/a/b/", "b", "/a/b"),
        ("/", "/", "/"),
        ("a", "a", "."),
        ("/a/.", ".", "/a"),
    ],
)
def test_go_base_and_dir(path: str, base: str, dirname: str) -> None:
    assert go_base(path) == base
    assert go_dir(path) == dirname


@pytest.mark.parametrize(
    ("cleaned", "original", "expected"),
    [
        ("/a/b", "a/b/", "/a/b/"),
        ("/a/b", "a/b/.", "/a/b/."),
        ("/a/b", "a/b", "/a/b"),
        ("/", "/.", "/."),
        ("/", "/", "/"),
    ],
)
def test_preserve_trailing_dot_or_separator(cleaned: str, original: str, expected: str) -> None:
    assert preserve_trailing_dot_or_separator(cleaned, original) == expected


@pytest.mark.parametrize(
    ("path", "split"),
    [
        ("/a/b", ("/a", "b")),
        ("/a/b/", ("/a", "b")),
        ("/a/b/.", ("/a/b", ".")),
        ("/", ("/", "/")),
        ("rel/x", ("rel", "x")),
    ],
)
def test_split_path_dir_entry(path: str, split: tuple[str, str]) -> None:
    assert split_path_dir_entry(path) == split


def test_asserts_directory() -> None:
    assert asserts_directory("/a/") and asserts_directory("/a/.") and not asserts_directory("/a")


def test_get_rebase_name() -> None:
    assert get_rebase_name("/link", "/target/file") == ("/target/file", "link")
    assert get_rebase_name("/d/", "/real") == ("/real/", "d")
    assert get_rebase_name("/d/.", "/real") == ("/real/.", "")
    assert get_rebase_name("/same", "/x/same") == ("/x/same", "")


# ---- docker's copy table --------------------------------------------------------------------


FILE = CopyInfo("/src/file", exists=True)
DIR = CopyInfo("/src/dir", exists=True, is_dir=True)
DIR_CONTENTS = CopyInfo("/src/dir/.", exists=True, is_dir=True)


@pytest.mark.parametrize(
    ("src", "dst", "expected"),
    [
        (FILE, CopyInfo("/d/new"), ("/d", ("file", "new"))),
        (FILE, CopyInfo("/d/existing", exists=True), ("/d", ("file", "existing"))),
        (FILE, CopyInfo("/d/dir", exists=True, is_dir=True), ("/d/dir", None)),
        (DIR, CopyInfo("/d/new"), ("/d", ("dir", "new"))),
        (DIR, CopyInfo("/d/new/"), ("/d", ("dir", "new"))),
        (DIR, CopyInfo("/d/dir", exists=True, is_dir=True), ("/d/dir", None)),
        (DIR_CONTENTS, CopyInfo("/d/dir", exists=True, is_dir=True), ("/d/dir", None)),
        (DIR_CONTENTS, CopyInfo("/d/new"), ("/d", (".", "new"))),
        (CopyInfo("/x/t", exists=True, rebase_name="lnk"), CopyInfo("/d/n"), ("/d", ("lnk", "n"))),
    ],
)
def test_prepare_archive_copy(
    src: CopyInfo, dst: CopyInfo, expected: tuple[str, tuple[str, str] | None]
) -> None:
    assert prepare_archive_copy(src, dst) == expected


def test_prepare_archive_copy_refusals() -> None:
    with pytest.raises(CopyError, match=r"^cannot copy directory$"):
        prepare_archive_copy(DIR, CopyInfo("/d/file", exists=True))
    with pytest.raises(CopyError, match=r"^no such directory$"):
        prepare_archive_copy(FILE, CopyInfo("/d/new/"))
    with pytest.raises(CopyError, match=r"^no such directory$"):
        prepare_archive_copy(FILE, CopyInfo("/d/new/."))


def test_rebase_name() -> None:
    assert rebase_name("dir/sub/dir", "dir", "new") == "new/sub/dir"
    assert rebase_name("./a.txt", ".", "new") == "new/a.txt"
    assert rebase_name("/bin/sh", "/", "dst") == "dst/bin/sh"


@pytest.mark.parametrize(
    ("arg", "split"),
    [
        ("c1:/etc", ("c1", "/etc")),
        ("c1:", ("c1", "")),
        ("/abs:path", ("", "/abs:path")),
        ("./rel:x", ("", "./rel:x")),
        ("plain", ("", "plain")),
        ("-", ("", "-")),
    ],
)
def test_split_cp_arg(arg: str, split: tuple[str, str]) -> None:
    assert split_cp_arg(arg) == split


# ---- the stat header ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("st_mode", "go_mode"),
    [
        (stat.S_IFREG | 0o644, 0o644),
        (stat.S_IFDIR | 0o755, MODE_DIR | 0o755),
        (stat.S_IFLNK | 0o777, MODE_SYMLINK | 0o777),
        (stat.S_IFCHR | 0o666, (1 << 26) | (1 << 21) | 0o666),
        (stat.S_IFBLK | 0o660, (1 << 26) | 0o660),
        (stat.S_IFIFO | 0o600, (1 << 25) | 0o600),
        (stat.S_IFSOCK | 0o755, (1 << 24) | 0o755),
        (stat.S_IFREG | stat.S_ISUID | 0o755, (1 << 23) | 0o755),
        (stat.S_IFDIR | stat.S_ISVTX | 0o777, MODE_DIR | (1 << 20) | 0o777),
        (stat.S_IFDIR | stat.S_ISGID | 0o755, MODE_DIR | (1 << 22) | 0o755),
    ],
)
def test_go_file_mode(st_mode: int, go_mode: int) -> None:
    assert go_file_mode(st_mode) == go_mode


def test_go_time_trims_nanoseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    assert go_time(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert go_time(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert go_time(1_700_000_000_000_000_001) == "2023-11-14T22:13:20.000000001Z"


def test_path_stat_header_round_trip() -> None:
    info = PathStat("passwd", 75, 0o644, "2024-01-01T00:00:00Z", "")
    header = info.to_header()
    assert json.loads(base64.b64decode(header)) == {
        "name": "passwd",
        "size": 75,
        "mode": 420,
        "mtime": "2024-01-01T00:00:00Z",
        "linkTarget": "",
    }
    assert PathStat.from_header(header) == info
    assert PathStat(".", 0, MODE_DIR | 0o755, "").is_dir
    with pytest.raises(DockyardError):
        PathStat.from_header("!!not base64 json")


# ---- a tree under a root fd -----------------------------------------------------------------


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[tuple[Root, Path, Path]]:
    """(Root of tmp/root, the root, tmp/outside holding a secret)."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "data" / "dir" / "sub").mkdir(parents=True)
    (root / "data" / "dir" / "a").write_text("A")
    (root / "data" / "dir" / "sub" / "b").write_text("B")
    (root / "data" / "file").write_text("F")
    (root / "data" / "link").symlink_to("dir")
    (root / "data" / "abs").symlink_to("/data/file")
    (root / "data" / "out").symlink_to(str(outside))
    (root / "data" / "up").symlink_to("../../../../../../..")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    outside.mkdir()
    (outside / "secret").write_text("secret")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield Root(fd), root, outside
    finally:
        os.close(fd)
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_text() == "secret"


def test_resolve_stays_in_the_root(scene: tuple[Root, Path, Path]) -> None:
    root, _, outside = scene
    assert root.resolve("/data/link/a") == ("data", "dir", "a")
    assert root.resolve("/data/link", follow_last=False) == ("data", "link")
    assert root.resolve("/data/abs") == ("data", "file")
    assert root.resolve("/data/up/data/file") == ("data", "file")  # ".." stops at the root
    assert root.resolve("/data/out/secret") == (*str(outside).strip("/").split("/"), "secret")
    assert root.resolve("/missing/../data/x/y") == ("data", "x", "y")
    with pytest.raises(NotADirectoryError):
        root.resolve("/data/file/x")
    with pytest.raises(OSError, match=r"symbolic links|Too many"):
        root.resolve("/loop1")


def test_stat_path_follows_dockers_resolve_path(scene: tuple[Root, Path, Path]) -> None:
    root, _, _ = scene
    link = stat_path(root, "data/link")
    assert link.stat.is_symlink and link.stat.link_target == "/data/dir" and not link.is_dir
    through = stat_path(root, "/data/link/")
    assert through.is_dir and through.stat.name == "link" and through.parts == ("data", "dir")
    assert stat_path(root, "/data/dir/.").stat.name == "."
    assert stat_path(root, "/").stat.name == "/"
    assert stat_path(root, "/data/file").stat.size == 1
    with pytest.raises(NotFound):
        stat_path(root, "/data/out/secret")  # the host's file is not in the root
    with pytest.raises(SystemError, match=r"^lstat /data/file/: not a directory$"):
        stat_path(root, "/data/file/")


def _names(root: Root, path: str) -> list[str]:
    buf = io.BytesIO()
    write_archive(root, stat_path(root, path), buf)
    assert len(buf.getvalue()) % 512 == 0 and buf.getvalue().endswith(b"\0" * 1024)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        return tar.getnames()


def test_write_archive_names(scene: tuple[Root, Path, Path]) -> None:
    root, _, _ = scene
    assert _names(root, "/data/dir") == ["dir", "dir/a", "dir/sub", "dir/sub/b"]
    assert _names(root, "/data/dir/.") == [".", "./a", "./sub", "./sub/b"]
    assert _names(root, "/data/link/") == ["link", "link/a", "link/sub", "link/sub/b"]
    assert _names(root, "/data/out") == ["out"]  # the link, never what it points to
    assert "/data/dir/a" in _names(root, "/")


def _tar(*entries: tuple[str, str, str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value.encode()))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[
                kind
            ]
            info.mode = 0o755
            info.linkname = value
            tar.addfile(info)
    buf.seek(0)
    return buf


def _extract(root: Root, dest: str, data: io.BytesIO, **kw: bool) -> None:
    extract(root, root.resolve(dest), data, ExtractOptions(**kw))


def test_extract_writes_through_links_only_inside_the_root(scene: tuple[Root, Path, Path]) -> None:
    root, path, outside = scene
    _extract(root, "/data", _tar(("file", "out/planted", "x")))  # /data/out -> outside
    inner = path / str(outside).lstrip("/")
    assert (inner / "planted").read_text() == "x"
    _extract(root, "/data", _tar(("sym", "l", "/"), ("file", "l/etc/shadow", "x")))
    assert (path / "etc" / "shadow").read_text() == "x"
    _extract(root, "/data/up", _tar(("file", "top", "x")))  # the destination is a link: in-root
    assert (path / "top").read_text() == "x"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ((("file", "../x", "x"),), r'^"\.\./x" is outside of "/data"$'),
        ((("file", "a/../../x", "x"),), "is outside of"),
        ((("sym", "l", "../../../outside"),), "^invalid symlink"),
        ((("hard", "h", "../../outside/secret"),), "^invalid hardlink"),
        ((("file", ".", "x"),), "^cannot overwrite directory"),
    ],
)
def test_extract_refuses_escapes(
    scene: tuple[Root, Path, Path], entries: tuple[tuple[str, str, str], ...], message: str
) -> None:
    root, _, _ = scene
    with pytest.raises(SystemError, match=message):
        _extract(root, "/data", _tar(*entries))


def test_extract_hardlinks_resolve_in_the_root(scene: tuple[Root, Path, Path]) -> None:
    root, path, outside = scene
    _extract(root, "/", _tar(("hard", "h", "data/file")))
    assert os.stat(path / "h").st_ino == os.stat(path / "data" / "file").st_ino
    with pytest.raises(NotFound):  # the host's secret is not reachable by name
        _extract(root, "/", _tar(("hard", "h2", str(outside / "secret"))))
    assert os.stat(outside / "secret").st_nlink == 1


def test_extract_overwrite_rules(scene: tuple[Root, Path, Path]) -> None:
    root, path, _ = scene
    with pytest.raises(SystemError, match=r"^cannot overwrite directory"):
        _extract(root, "/data", _tar(("file", "dir", "x")), no_overwrite_dir_non_dir=True)
    with pytest.raises(SystemError, match=r"^cannot overwrite non-directory"):
        _extract(root, "/data", _tar(("dir", "file", "")), no_overwrite_dir_non_dir=True)
    _extract(root, "/data", _tar(("file", "dir", "replaced")))
    assert (path / "data" / "dir").read_text() == "replaced"
    _extract(root, "/data", _tar(("dir", "abs", ""), ("file", "abs/in", "x")))
    assert (path / "data" / "abs").is_dir() and (path / "data" / "file").read_text() == "F"


def test_extract_without_following_refuses_links(scene: tuple[Root, Path, Path]) -> None:
    root, _, _ = scene
    with pytest.raises(SystemError, match="not a directory"):
        _extract(root, "/data", _tar(("file", "link/x", "x")), follow_symlinks=False, lchown=False)


def test_extract_sets_modes_and_times_of_directories_last(scene: tuple[Root, Path, Path]) -> None:
    root, path, _ = scene
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        d = tarfile.TarInfo("ro")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o555, 1_000_000
        tar.addfile(d)
        f = tarfile.TarInfo("ro/f")
        f.size, f.mode, f.mtime = 1, 0o4755, 2_000_000
        tar.addfile(f, io.BytesIO(b"x"))
    buf.seek(0)
    _extract(root, "/", buf)
    assert stat.S_IMODE(os.stat(path / "ro").st_mode) == 0o555
    assert os.stat(path / "ro").st_mtime == 1_000_000
    assert stat.S_IMODE(os.stat(path / "ro" / "f").st_mode) == 0o4755


def test_empty_upload_is_an_empty_archive(scene: tuple[Root, Path, Path]) -> None:
    root, _, _ = scene
    _extract(root, "/data", io.BytesIO(b""))
    with pytest.raises(SystemError, match="invalid tar header"):
        _extract(root, "/data", io.BytesIO(b"x" * 1024))
