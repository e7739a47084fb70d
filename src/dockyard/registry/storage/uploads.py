"""Blob upload sessions: append in order, verify digest and length, then publish atomically.

Lifecycle of one session (``_uploads/<uuid>/`` of its repository)::

    create ──▶ append* ──▶ finish(digest) ──▶ blob visible (data moved, layer linked)
                  │               │
                  │               └─ digest mismatch: session deleted, nothing stored
                  └──▶ cancel: session deleted

- Only ``finish`` makes bytes visible, and only after they hash to the digest the client named;
  the hash covers exactly the bytes in the session file, so length is checked with the digest.
  The bytes are then *moved* into ``blobs/``; if another session already published the same
  digest, ours is dropped and only the link is written. Concurrent pushes of one blob are
  therefore safe on any driver whose ``move`` is atomic.
- A session survives restarts: its state is its files. The running hash of each session is
  kept in memory while the process lives; when it is missing (after a restart) or does not
  cover the whole file, ``finish`` re-reads the file to hash it.
- Requests on one session are serialised by an in-process lock, so two PATCHes cannot
  interleave their bytes. (Several registry processes on one store must route a session's
  requests to one process, as distribution requires too.)
- A client that disconnects mid-chunk leaves the bytes that arrived in the session file; the
  session's size says so (``status``) and the client resumes from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockyard.registry import grammar
from dockyard.registry.storage import paths
from dockyard.registry.storage.blobstore import BlobStore, LinkedBlobStore
from dockyard.registry.storage.driver import StorageDriver, basename
from dockyard.registry.storage.errors import (
    DigestMismatch,
    InvalidPath,
    PathNotFound,
    SizeMismatch,
    UploadOffsetMismatch,
    UploadUnknown,
)

__all__ = ["UploadSessions", "UploadStatus", "UploadStore"]

_READ_CHUNK = 1 << 20
_MAX_CACHED_HASHES = 4096


@dataclass(frozen=True)
class UploadStatus:
    id: str
    size: int
    started_at: str


@dataclass
class _HashState:
    algorithm: str
    offset: int
    hasher: Any


class UploadSessions:
    """Process-wide state shared by every repository's ``UploadStore``: per-session locks
    and running hashes. One per registry process."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._users: dict[tuple[str, str], int] = {}
        self._hashes: dict[tuple[str, str], _HashState] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: tuple[str, str]) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]

    def take_hash(self, key: tuple[str, str]) -> _HashState | None:
        return self._hashes.pop(key, None)

    def put_hash(self, key: tuple[str, str], state: _HashState) -> None:
        self._hashes[key] = state
        while len(self._hashes) > _MAX_CACHED_HASHES:
            self._hashes.pop(next(iter(self._hashes)))

    def forget(self, key: tuple[str, str]) -> None:
        self._hashes.pop(key, None)


class UploadStore:
    """The upload sessions of one repository."""

    def __init__(
        self,
        name: str,
        blobs: BlobStore,
        layers: LinkedBlobStore,
        sessions: UploadSessions,
    ) -> None:
        self.name = name
        self.driver: StorageDriver = blobs.driver
        self.blobs = blobs
        self.layers = layers
        self.sessions = sessions

    def _key(self, upload_id: str) -> tuple[str, str]:
        return (self.name, upload_id)

    def _check_id(self, upload_id: str) -> None:
        if not grammar.is_upload_id(upload_id):
            raise UploadUnknown(upload_id)

    async def create(self, algorithm: str = "sha256") -> UploadStatus:
        upload_id = str(uuid.uuid4())
        started = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        await self.driver.put_content(
            paths.upload_startedat_path(self.name, upload_id), started.encode()
        )
        writer = await self.driver.writer(paths.upload_data_path(self.name, upload_id))
        await writer.close()
        self.sessions.put_hash(
            self._key(upload_id), _HashState(algorithm, 0, grammar.new_hasher(algorithm))
        )
        return UploadStatus(upload_id, 0, started)

    async def status(self, upload_id: str) -> UploadStatus:
        self._check_id(upload_id)
        try:
            started = await self.driver.get_content(
                paths.upload_startedat_path(self.name, upload_id)
            )
            info = await self.driver.stat(paths.upload_data_path(self.name, upload_id))
        except PathNotFound:
            raise UploadUnknown(upload_id) from None
        return UploadStatus(upload_id, info.size, started.decode(errors="replace"))

    async def append(
        self, upload_id: str, body: AsyncIterator[bytes], start: int | None = None
    ) -> int:
        """Append ``body``; returns the session's new size. With ``start``, the chunk must
        begin where the session ends (``UploadOffsetMismatch`` otherwise, nothing written)."""
        async with self.sessions.hold(self._key(upload_id)):
            return await self._append(upload_id, body, start)

    async def _append(self, upload_id: str, body: AsyncIterator[bytes], start: int | None) -> int:
        status = await self.status(upload_id)
        if start is not None and start != status.size:
            raise UploadOffsetMismatch(upload_id, status.size, start)
        key = self._key(upload_id)
        state = self.sessions.take_hash(key)
        if state is not None and state.offset != status.size:
            state = None
        writer = await self.driver.writer(paths.upload_data_path(self.name, upload_id), append=True)
        try:
            async for chunk in body:
                await writer.write(chunk)
                if state is not None:
                    state.hasher.update(chunk)
                    state.offset += len(chunk)
        except BaseException:
            state = None  # a write may have landed in part: rehash at finish
            raise
        finally:
            await writer.close()
            if state is not None:
                self.sessions.put_hash(key, state)
        return writer.size

    async def finish(
        self,
        upload_id: str,
        digest: str,
        body: AsyncIterator[bytes] | None = None,
        start: int | None = None,
    ) -> int:
        """Append the optional last chunk, verify, publish and link; returns the blob's size.

        ``DigestMismatch`` deletes the session: a wrong digest stores nothing."""
        key = self._key(upload_id)
        async with self.sessions.hold(key):
            if body is not None:
                size = await self._append(upload_id, body, start)
            else:
                status = await self.status(upload_id)
                if start is not None and start != status.size:
                    raise UploadOffsetMismatch(upload_id, status.size, start)
                size = status.size
            data_path = paths.upload_data_path(self.name, upload_id)
            algorithm = digest.partition(":")[0]
            state = self.sessions.take_hash(key)
            if state is not None and state.algorithm == algorithm and state.offset == size:
                actual = f"{algorithm}:{state.hasher.hexdigest()}"
            else:
                actual, hashed = await self._hash_file(data_path, algorithm)
                if hashed != size:
                    raise SizeMismatch(f"upload {upload_id}", size, hashed)
            if actual != digest:
                await self._remove(upload_id)
                raise DigestMismatch(digest, actual)
            await self.blobs.ingest(data_path, digest)
            stored = await self.blobs.stat(digest)
            if stored != size:
                raise SizeMismatch(digest, size, stored)
            await self.layers.link(digest)
            await self._remove(upload_id)
            return size

    async def cancel(self, upload_id: str) -> None:
        async with self.sessions.hold(self._key(upload_id)):
            await self.status(upload_id)
            await self._remove(upload_id)

    async def _remove(self, upload_id: str) -> None:
        self.sessions.forget(self._key(upload_id))
        with contextlib.suppress(PathNotFound):
            await self.driver.delete(paths.upload_root(self.name, upload_id))

    async def _hash_file(self, path: str, algorithm: str) -> tuple[str, int]:
        hasher = grammar.new_hasher(algorithm)
        count = 0
        reader = await self.driver.reader(path, 0)
        try:
            while chunk := await reader.read(_READ_CHUNK):
                hasher.update(chunk)
                count += len(chunk)
        finally:
            await reader.close()
        return f"{algorithm}:{hasher.hexdigest()}", count

    async def list_ids(self) -> list[str]:
        """Every session of this repository (for purging stale uploads)."""
        try:
            entries = await self.driver.list(paths.uploads_root(self.name))
        except PathNotFound:
            return []
        out = []
        for entry in entries:
            upload_id = basename(entry)
            try:
                paths.upload_root(self.name, upload_id)
            except InvalidPath:
                continue
            out.append(upload_id)
        return out
