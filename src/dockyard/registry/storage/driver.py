"""The storage driver: a tiny filesystem-like API that every registry backend implements.

The registry keeps all of its state (blobs, links, tags, upload sessions) in one driver through
this interface, modelled on distribution's ``storagedriver.StorageDriver``. A driver knows
nothing about blobs, digests or repositories; ``paths.py`` decides what lives where.

Paths
    Absolute, ``/``-separated, each component ``[A-Za-z0-9_-][A-Za-z0-9._-]*``: no empty, ``.``
    or ``..`` components and no leading dots, so a path can never escape the driver's root and
    a driver may keep private files (temporary files start with ``.``) that ``list``/``walk``
    never show. ``/`` alone names the root. Anything else raises ``InvalidPath``.

Directories
    As on a filesystem: writing a file creates its parents, and a directory stays (empty if
    need be) until it is deleted. A driver over an object store must keep that promise with
    marker objects; the registry relies on it only for ``_manifests`` marking a repository
    that once had manifests.

Methods (all coroutines; every one raises ``InvalidPath`` for a malformed path)
    get_content(path) -> bytes            the whole file; ``PathNotFound``
    put_content(path, data)               atomic replace: readers see the old or the new bytes,
                                          never a mix; durable when it returns
    reader(path, offset) -> FileReader    read from ``offset``; ``PathNotFound``, and
                                          ``InvalidOffset`` when offset > size or < 0
    writer(path, append) -> FileWriter    stream into a file; ``append=False`` truncates,
                                          ``append=True`` continues an existing file
                                          (``PathNotFound`` if there is none). Bytes written are
                                          readable once the writer is closed or committed;
                                          ``commit`` makes them durable
    stat(path) -> FileInfo                file or directory; ``PathNotFound``
    list(path) -> list[str]               full paths of the direct children, sorted;
                                          ``PathNotFound`` for a missing directory
                                          (``/`` of an empty store lists ``[]``)
    move(src, dst)                        rename, replacing ``dst``; atomic for readers of
                                          ``dst``; ``PathNotFound`` for a missing ``src``
    delete(path)                          a file, or a directory with everything below it;
                                          ``PathNotFound``
    walk(path, prune) -> AsyncIterator    every file and directory below ``path``, depth first
                                          in sorted order; a directory for which ``prune(info)``
                                          is true is yielded but not entered

Concurrency: drivers are safe to call from many coroutines at once; the only ordering they
promise is the atomicity of ``put_content`` and ``move``. Serialising writers of one upload
is the caller's job (``uploads.py`` does it).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from dockyard.registry.storage.errors import InvalidPath

__all__ = [
    "FileInfo",
    "FileReader",
    "FileWriter",
    "StorageDriver",
    "basename",
    "join",
    "parent",
    "validate_path",
]

_PATH_RE = re.compile(r"^(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$")


def validate_path(path: str) -> str:
    """``path`` if it is in the driver grammar above; ``InvalidPath`` otherwise."""
    if path == "/" or (_PATH_RE.match(path) and ".." not in path.split("/")):
        return path
    raise InvalidPath(path)


def join(*parts: str) -> str:
    """Join components with ``/`` (one leading slash, no doubles)."""
    return "/" + "/".join(p.strip("/") for p in parts if p.strip("/"))


def parent(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


def basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class FileInfo:
    """What ``stat`` and ``walk`` report; ``size`` is 0 for directories."""

    path: str
    size: int
    mod_time: float
    is_dir: bool


@runtime_checkable
class FileReader(Protocol):
    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class FileWriter(Protocol):
    @property
    def size(self) -> int:
        """Bytes in the file so far, including what was there before an append."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> None:
        """Flush and make durable; the writer stays usable for ``close``."""
        ...

    async def cancel(self) -> None:
        """Remove the file and close the writer."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class StorageDriver(Protocol):
    name: str

    async def get_content(self, path: str) -> bytes: ...

    async def put_content(self, path: str, data: bytes) -> None: ...

    async def reader(self, path: str, offset: int = 0) -> FileReader: ...

    async def writer(self, path: str, append: bool = False) -> FileWriter: ...

    async def stat(self, path: str) -> FileInfo: ...

    async def list(self, path: str) -> list[str]: ...

    async def move(self, src: str, dst: str) -> None: ...

    async def delete(self, path: str) -> None: ...

    def walk(
        self, path: str, prune: Callable[[FileInfo], bool] | None = None
    ) -> AsyncIterator[FileInfo]: ...
