"""The storage driver suite: one set of tests, run on every driver (filesystem, in-memory).

Mirrors distribution's driver testsuite: contents round-trip, overwrite, readers at offsets,
writers that append and commit, stat, list, move, delete, walk (with pruning), path grammar,
concurrency, and files the filesystem driver must never show (temporaries).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dockyard.errors import InvalidArgument, NotFound
from dockyard.registry.storage import FilesystemDriver, InMemoryDriver, StorageDriver
from dockyard.registry.storage.driver import FileInfo, basename, join, parent, validate_path
from dockyard.registry.storage.errors import InvalidOffset, InvalidPath, PathNotFound

pytestmark = pytest.mark.unit

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(params=["filesystem", "inmemory"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> StorageDriver:
    if request.param == "filesystem":
        return FilesystemDriver(tmp_path / "root")
    return InMemoryDriver()


async def _read_all(d: StorageDriver, path: str, offset: int = 0, n: int = 7) -> bytes:
    r = await d.reader(path, offset)
    out = b""
    try:
        while chunk := await r.read(n):
            out += chunk
    finally:
        await r.close()
    return out


async def _walk(d: StorageDriver, path: str, prune: Any = None) -> list[FileInfo]:
    return [info async for info in d.walk(path, prune)]


def test_protocol_is_implemented(driver: StorageDriver) -> None:
    assert isinstance(driver, StorageDriver)


def test_put_get_roundtrip(driver: StorageDriver) -> None:
    run(driver.put_content("/a/b/c", b"hello"))
    assert run(driver.get_content("/a/b/c")) == b"hello"


def test_put_empty_file(driver: StorageDriver) -> None:
    run(driver.put_content("/empty", b""))
    assert run(driver.get_content("/empty")) == b""
    assert run(driver.stat("/empty")).size == 0


def test_put_overwrites(driver: StorageDriver) -> None:
    run(driver.put_content("/x", b"first version, longer"))
    run(driver.put_content("/x", b"second"))
    assert run(driver.get_content("/x")) == b"second"


def test_binary_content_is_kept_exactly(driver: StorageDriver) -> None:
    data = bytes(range(256)) * 1000
    run(driver.put_content("/bin", data))
    assert run(driver.get_content("/bin")) == data


def test_get_missing_raises_path_not_found(driver: StorageDriver) -> None:
    with pytest.raises(PathNotFound):
        run(driver.get_content("/nope"))
    assert issubclass(PathNotFound, NotFound)


@pytest.mark.parametrize(
    "path",
    ["", "relative", "/a//b", "/a/../b", "/..", "/a/.", "/.hidden", "/a/", "/a b", "/ä", "//"],
)
def test_invalid_paths_are_refused(driver: StorageDriver, path: str) -> None:
    with pytest.raises(InvalidPath):
        run(driver.put_content(path, b"x"))
    with pytest.raises(InvalidPath):
        run(driver.get_content(path))
    assert issubclass(InvalidPath, InvalidArgument)


def test_path_helpers() -> None:
    assert validate_path("/") == "/"
    assert validate_path("/a/b-c_d.e") == "/a/b-c_d.e"
    assert join("/a/", "b", "/c") == "/a/b/c"
    assert parent("/a/b") == "/a" and parent("/a") == "/"
    assert basename("/a/b") == "b"


def test_reader_from_offsets(driver: StorageDriver) -> None:
    data = b"0123456789abcdef"
    run(driver.put_content("/r", data))
    for offset in (0, 1, 7, 15, 16):
        assert run(_read_all(driver, "/r", offset)) == data[offset:]


def test_reader_past_end_raises_invalid_offset(driver: StorageDriver) -> None:
    run(driver.put_content("/r", b"abc"))
    with pytest.raises(InvalidOffset):
        run(driver.reader("/r", 4))
    with pytest.raises(InvalidOffset):
        run(driver.reader("/r", -1))


def test_reader_missing_raises(driver: StorageDriver) -> None:
    with pytest.raises(PathNotFound):
        run(driver.reader("/missing", 0))


def test_writer_streams_and_reports_size(driver: StorageDriver) -> None:
    async def go() -> None:
        w = await driver.writer("/w/file")
        for i in range(10):
            await w.write(bytes([i]) * 1000)
        assert w.size == 10_000
        await w.commit()
        await w.close()

    run(go())
    data = run(driver.get_content("/w/file"))
    assert len(data) == 10_000 and data[:1000] == b"\0" * 1000 and data[-1:] == b"\x09"


def test_writer_append_continues(driver: StorageDriver) -> None:
    async def go() -> int:
        w = await driver.writer("/w")
        await w.write(b"abc")
        await w.close()
        w2 = await driver.writer("/w", append=True)
        assert w2.size == 3
        await w2.write(b"def")
        await w2.close()
        return w2.size

    assert run(go()) == 6
    assert run(driver.get_content("/w")) == b"abcdef"


def test_writer_without_append_truncates(driver: StorageDriver) -> None:
    run(driver.put_content("/t", b"old content"))

    async def go() -> None:
        w = await driver.writer("/t")
        await w.write(b"new")
        await w.close()

    run(go())
    assert run(driver.get_content("/t")) == b"new"


def test_writer_append_to_missing_file_raises(driver: StorageDriver) -> None:
    with pytest.raises(PathNotFound):
        run(driver.writer("/nothing", append=True))


def test_writer_cancel_removes_file(driver: StorageDriver) -> None:
    async def go() -> None:
        w = await driver.writer("/c/f")
        await w.write(b"partial")
        await w.cancel()

    run(go())
    with pytest.raises(PathNotFound):
        run(driver.stat("/c/f"))


def test_stat_file_and_directory(driver: StorageDriver) -> None:
    run(driver.put_content("/d/f", b"12345"))
    f = run(driver.stat("/d/f"))
    assert (f.path, f.size, f.is_dir) == ("/d/f", 5, False)
    assert f.mod_time > 0
    d = run(driver.stat("/d"))
    assert d.is_dir and d.path == "/d"
    with pytest.raises(PathNotFound):
        run(driver.stat("/d/g"))


def test_list_direct_children_sorted(driver: StorageDriver) -> None:
    for p in ("/l/b", "/l/a/x", "/l/a/y", "/l/c/deep/z", "/other"):
        run(driver.put_content(p, b"."))
    assert run(driver.list("/l")) == ["/l/a", "/l/b", "/l/c"]
    assert run(driver.list("/l/a")) == ["/l/a/x", "/l/a/y"]
    assert run(driver.list("/")) == ["/l", "/other"]


def test_list_missing_raises_and_empty_root_is_empty(driver: StorageDriver) -> None:
    assert run(driver.list("/")) == []
    with pytest.raises(PathNotFound):
        run(driver.list("/missing"))


def test_move_renames_and_replaces(driver: StorageDriver) -> None:
    run(driver.put_content("/src/f", b"source"))
    run(driver.put_content("/dst/f", b"old"))
    run(driver.move("/src/f", "/dst/f"))
    assert run(driver.get_content("/dst/f")) == b"source"
    with pytest.raises(PathNotFound):
        run(driver.get_content("/src/f"))


def test_move_creates_parents(driver: StorageDriver) -> None:
    run(driver.put_content("/m", b"x"))
    run(driver.move("/m", "/deep/er/target"))
    assert run(driver.get_content("/deep/er/target")) == b"x"


def test_move_missing_source_raises(driver: StorageDriver) -> None:
    with pytest.raises(PathNotFound):
        run(driver.move("/nope", "/dst"))


def test_delete_file(driver: StorageDriver) -> None:
    run(driver.put_content("/del/f", b"x"))
    run(driver.put_content("/del/g", b"y"))
    run(driver.delete("/del/f"))
    assert run(driver.list("/del")) == ["/del/g"]


def test_delete_directory_recursively(driver: StorageDriver) -> None:
    for p in ("/tree/a/1", "/tree/a/2", "/tree/b", "/treehouse"):
        run(driver.put_content(p, b"."))
    run(driver.delete("/tree"))
    with pytest.raises(PathNotFound):
        run(driver.stat("/tree/a/1"))
    # a sibling sharing the prefix survives
    assert run(driver.get_content("/treehouse")) == b"."


def test_directories_outlive_their_last_file(driver: StorageDriver) -> None:
    run(driver.put_content("/keep/dir/f", b"x"))
    run(driver.delete("/keep/dir/f"))
    assert run(driver.stat("/keep/dir")).is_dir
    assert run(driver.list("/keep/dir")) == []
    assert run(driver.list("/keep")) == ["/keep/dir"]
    run(driver.delete("/keep"))
    with pytest.raises(PathNotFound):
        run(driver.stat("/keep/dir"))


def test_delete_missing_raises(driver: StorageDriver) -> None:
    with pytest.raises(PathNotFound):
        run(driver.delete("/nothing/here"))


def test_walk_depth_first_sorted(driver: StorageDriver) -> None:
    for p in ("/w/b/2", "/w/a/1", "/w/a/0", "/w/c"):
        run(driver.put_content(p, b"."))
    infos = run(_walk(driver, "/w"))
    assert [i.path for i in infos] == ["/w/a", "/w/a/0", "/w/a/1", "/w/b", "/w/b/2", "/w/c"]
    assert [i.is_dir for i in infos] == [True, False, False, True, False, False]


def test_walk_prune_skips_subtrees(driver: StorageDriver) -> None:
    for p in ("/p/keep/x", "/p/_skip/y", "/p/_skip/z/w"):
        run(driver.put_content(p, b"."))
    infos = run(_walk(driver, "/p", lambda i: basename(i.path).startswith("_")))
    assert [i.path for i in infos] == ["/p/_skip", "/p/keep", "/p/keep/x"]


def test_walk_missing_raises_and_empty_root_yields_nothing(driver: StorageDriver) -> None:
    assert run(_walk(driver, "/")) == []
    with pytest.raises(PathNotFound):
        run(_walk(driver, "/missing"))


def test_concurrent_put_content_leaves_one_whole_version(driver: StorageDriver) -> None:
    versions = [bytes([i]) * 50_000 for i in range(20)]

    async def go() -> None:
        await asyncio.gather(*(driver.put_content("/race", v) for v in versions))

    run(go())
    assert run(driver.get_content("/race")) in versions


def test_concurrent_writers_on_different_files(driver: StorageDriver) -> None:
    async def one(i: int) -> None:
        w = await driver.writer(f"/cw/{i}")
        for _ in range(5):
            await w.write(bytes([i]) * 100)
            await asyncio.sleep(0)
        await w.commit()
        await w.close()

    async def go() -> None:
        await asyncio.gather(*(one(i) for i in range(10)))

    run(go())
    for i in range(10):
        assert run(driver.get_content(f"/cw/{i}")) == bytes([i]) * 500


def test_large_file_roundtrip(driver: StorageDriver) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)

    async def go() -> bytes:
        w = await driver.writer("/big")
        for i in range(0, len(data), 1 << 20):
            await w.write(data[i : i + (1 << 20)])
        await w.commit()
        await w.close()
        return await _read_all(driver, "/big", 0, 1 << 20)

    assert run(go()) == data


def test_filesystem_temporaries_are_invisible(tmp_path: Path) -> None:
    d = FilesystemDriver(tmp_path / "root")
    run(d.put_content("/dir/f", b"x"))
    (tmp_path / "root" / "dir" / ".tmp-leftover").write_bytes(b"crash debris")
    assert run(d.list("/dir")) == ["/dir/f"]
    assert [i.path for i in run(_walk(d, "/dir"))] == ["/dir/f"]


def test_filesystem_layout_is_under_root(tmp_path: Path) -> None:
    d = FilesystemDriver(tmp_path / "root")
    run(d.put_content("/a/b", b"x"))
    assert (tmp_path / "root" / "a" / "b").read_bytes() == b"x"
    assert not list((tmp_path / "root" / "a").glob(".tmp-*"))
