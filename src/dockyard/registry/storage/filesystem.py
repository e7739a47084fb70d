"""The filesystem driver (the default): driver paths map below one root directory.

Blocking system calls run in the default thread pool (``asyncio.to_thread``), so a slow disk
never stalls the event loop. ``put_content`` writes a temporary file in the target directory,
fsyncs it and renames it over the target: readers see the old bytes or the new ones, and a
crash leaves at worst a ``.tmp-*`` file that ``list``/``walk`` never show. Writers write in
place (upload sessions are private until ``move``); ``commit`` fsyncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

from dockyard.registry.storage.driver import FileInfo, basename, join, validate_path
from dockyard.registry.storage.errors import InvalidOffset, PathNotFound

__all__ = ["FilesystemDriver"]


class _Reader:
    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh

    async def read(self, n: int) -> bytes:
        return await asyncio.to_thread(self._fh.read, n)

    async def close(self) -> None:
        await asyncio.to_thread(self._fh.close)


class _Writer:
    def __init__(self, fh: BinaryIO, full: Path, size: int) -> None:
        self._fh = fh
        self._full = full
        self._size = size
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self._fh.write, data)
        self._size += len(data)

    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    async def commit(self) -> None:
        await asyncio.to_thread(self._sync)

    async def cancel(self) -> None:
        await self.close()
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._full.unlink)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._fh.close)


class FilesystemDriver:
    """Driver paths below ``root`` (created on first write)."""

    name = "filesystem"

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _full(self, path: str) -> Path:
        validate_path(path)
        return self.root / path.lstrip("/") if path != "/" else self.root

    async def get_content(self, path: str) -> bytes:
        full = self._full(path)
        try:
            return await asyncio.to_thread(full.read_bytes)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFound(path) from None

    async def put_content(self, path: str, data: bytes) -> None:
        full = self._full(path)
        await asyncio.to_thread(_atomic_write, full, data)

    async def reader(self, path: str, offset: int = 0) -> _Reader:
        full = self._full(path)

        def _open() -> BinaryIO:
            try:
                fh = open(full, "rb")  # noqa: SIM115 - closed by _Reader.close
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                raise PathNotFound(path) from None
            size = os.fstat(fh.fileno()).st_size
            if offset < 0 or offset > size:
                fh.close()
                raise InvalidOffset(path, offset)
            fh.seek(offset)
            return fh

        return _Reader(await asyncio.to_thread(_open))

    async def writer(self, path: str, append: bool = False) -> _Writer:
        full = self._full(path)

        def _open() -> tuple[BinaryIO, int]:
            if append:
                try:
                    fh = open(full, "ab")  # noqa: SIM115 - closed by _Writer.close
                except (FileNotFoundError, NotADirectoryError):
                    raise PathNotFound(path) from None
                if not full.is_file():
                    fh.close()
                    raise PathNotFound(path)
                return fh, os.fstat(fh.fileno()).st_size
            full.parent.mkdir(parents=True, exist_ok=True)
            return open(full, "wb"), 0

        fh, size = await asyncio.to_thread(_open)
        return _Writer(fh, full, size)

    async def stat(self, path: str) -> FileInfo:
        full = self._full(path)
        try:
            st = await asyncio.to_thread(os.stat, full)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        is_dir = os.path.isdir(full)
        return FileInfo(path, 0 if is_dir else st.st_size, st.st_mtime, is_dir)

    async def list(self, path: str) -> list[str]:
        full = self._full(path)
        try:
            names = await asyncio.to_thread(os.listdir, full)
        except (FileNotFoundError, NotADirectoryError):
            if path == "/":
                return []
            raise PathNotFound(path) from None
        return [join(path, n) for n in sorted(names) if not n.startswith(".")]

    async def move(self, src: str, dst: str) -> None:
        full_src, full_dst = self._full(src), self._full(dst)

        def _move() -> None:
            if not full_src.exists():
                raise PathNotFound(src)
            full_dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(full_src, full_dst)

        await asyncio.to_thread(_move)

    async def delete(self, path: str) -> None:
        full = self._full(path)

        def _delete() -> None:
            try:
                if full.is_dir() and not full.is_symlink():
                    shutil.rmtree(full)
                else:
                    full.unlink()
            except (FileNotFoundError, NotADirectoryError):
                raise PathNotFound(path) from None

        await asyncio.to_thread(_delete)

    async def walk(
        self, path: str, prune: Callable[[FileInfo], bool] | None = None
    ) -> AsyncIterator[FileInfo]:
        full = self._full(path)
        if not await asyncio.to_thread(full.is_dir):
            if path == "/":
                return
            raise PathNotFound(path)
        async for info in self._walk(full, path, prune):
            yield info

    async def _walk(
        self, d: Path, logical: str, prune: Callable[[FileInfo], bool] | None
    ) -> AsyncIterator[FileInfo]:
        for info in await asyncio.to_thread(_scan, d, logical):
            yield info
            if info.is_dir and not (prune is not None and prune(info)):
                async for sub in self._walk(d / basename(info.path), info.path, prune):
                    yield sub


def _scan(d: Path, logical: str) -> list[FileInfo]:
    """The visible entries of one directory, sorted by name."""
    out = []
    try:
        entries = sorted(os.scandir(d), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            st = e.stat()
        except FileNotFoundError:
            continue
        is_dir = e.is_dir()
        out.append(
            FileInfo(join(logical, e.name), 0 if is_dir else st.st_size, st.st_mtime, is_dir)
        )
    return out


def _atomic_write(full: Path, data: bytes) -> None:
    full.parent.mkdir(parents=True, exist_ok=True)
    tmp = full.parent / f".tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, full)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if exc.errno in (errno.ENOTDIR, errno.EISDIR):
            raise PathNotFound(str(full)) from None
        raise
