"""The in-memory driver: a real fake for tests and throw-away registries (``storage: inmemory``).

Files are ``bytearray``s keyed by path; directories are kept explicitly, as on a filesystem
(and as in distribution's inmemory driver): writing a file creates its parents, and a directory
stays -- empty if need be -- until it is deleted. No method awaits anything, so each one is
atomic with respect to other coroutines on the loop. Passes the same driver suite as the
filesystem driver.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from dockyard.registry.storage.driver import FileInfo, parent, validate_path
from dockyard.registry.storage.errors import InvalidOffset, PathNotFound

__all__ = ["InMemoryDriver"]


class _File:
    __slots__ = ("data", "mod_time")

    def __init__(self, data: bytes = b"") -> None:
        self.data = bytearray(data)
        self.mod_time = time.time()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    async def read(self, n: int) -> bytes:
        if n < 0:
            n = len(self._data) - self._pos
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk

    async def close(self) -> None:
        self._data = b""


class _Writer:
    def __init__(self, driver: InMemoryDriver, path: str, f: _File) -> None:
        self._driver = driver
        self._path = path
        self._file = f

    @property
    def size(self) -> int:
        return len(self._file.data)

    async def write(self, data: bytes) -> None:
        self._file.data += data
        self._file.mod_time = time.time()

    async def commit(self) -> None:
        return None

    async def cancel(self) -> None:
        if self._driver._files.get(self._path) is self._file:
            del self._driver._files[self._path]

    async def close(self) -> None:
        return None


class InMemoryDriver:
    name = "inmemory"

    def __init__(self) -> None:
        self._files: dict[str, _File] = {}
        self._dirs: dict[str, float] = {}  # directory path → creation time ("/" implied)

    def _add_parents(self, path: str) -> None:
        d = parent(path)
        now = time.time()
        while d != "/" and d not in self._dirs:
            self._dirs[d] = now
            d = parent(d)

    def _children(self, path: str) -> list[str]:
        names = [p for p in self._files if parent(p) == path]
        names += [d for d in self._dirs if parent(d) == path]
        return sorted(names)

    async def get_content(self, path: str) -> bytes:
        validate_path(path)
        f = self._files.get(path)
        if f is None:
            raise PathNotFound(path)
        return bytes(f.data)

    async def put_content(self, path: str, data: bytes) -> None:
        validate_path(path)
        self._add_parents(path)
        self._files[path] = _File(data)

    async def reader(self, path: str, offset: int = 0) -> _Reader:
        validate_path(path)
        f = self._files.get(path)
        if f is None:
            raise PathNotFound(path)
        if offset < 0 or offset > len(f.data):
            raise InvalidOffset(path, offset)
        return _Reader(bytes(f.data[offset:]))

    async def writer(self, path: str, append: bool = False) -> _Writer:
        validate_path(path)
        f = self._files.get(path)
        if append:
            if f is None:
                raise PathNotFound(path)
        else:
            f = _File()
            self._add_parents(path)
            self._files[path] = f
        return _Writer(self, path, f)

    async def stat(self, path: str) -> FileInfo:
        validate_path(path)
        f = self._files.get(path)
        if f is not None:
            return FileInfo(path, len(f.data), f.mod_time, False)
        if path in self._dirs:
            return FileInfo(path, 0, self._dirs[path], True)
        raise PathNotFound(path)

    async def list(self, path: str) -> list[str]:
        validate_path(path)
        if path != "/" and path not in self._dirs:
            raise PathNotFound(path)
        return self._children(path)

    async def move(self, src: str, dst: str) -> None:
        validate_path(src)
        validate_path(dst)
        f = self._files.pop(src, None)
        if f is None:
            raise PathNotFound(src)
        self._add_parents(dst)
        self._files[dst] = f

    async def delete(self, path: str) -> None:
        validate_path(path)
        prefix = path.rstrip("/") + "/"
        files = [k for k in self._files if k == path or k.startswith(prefix)]
        dirs = [k for k in self._dirs if k == path or k.startswith(prefix)]
        if path == "/":
            files, dirs = list(self._files), list(self._dirs)
        if not files and not dirs:
            raise PathNotFound(path)
        for k in files:
            del self._files[k]
        for k in dirs:
            del self._dirs[k]

    async def walk(
        self, path: str, prune: Callable[[FileInfo], bool] | None = None
    ) -> AsyncIterator[FileInfo]:
        validate_path(path)
        if path != "/" and path not in self._dirs:
            raise PathNotFound(path)
        for child in self._children(path):
            info = await self.stat(child)
            yield info
            if info.is_dir and not (prune is not None and prune(info)):
                async for sub in self.walk(child, prune):
                    yield sub
