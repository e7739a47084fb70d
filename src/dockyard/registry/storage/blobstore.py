"""Blobs: one global content-addressed store, and per-repository views made of link files.

``BlobStore`` owns ``blobs/<alg>/<xx>/<hex>/data``: bytes enter only verified (``put`` hashes
what it is given; ``ingest`` moves an upload whose digest and length were checked by the
caller), and never change afterwards. ``LinkedBlobStore`` is what a repository sees: a blob is
in the repository when its link exists *and* the global data exists, so a garbage-collected
blob can never be served through a stale link. Layers and manifest revisions are both linked
blob stores, over different link directories.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable

from dockyard.registry.storage import paths
from dockyard.registry.storage.driver import FileReader, StorageDriver, basename
from dockyard.registry.storage.errors import BlobUnknown, InvalidPath, PathNotFound

__all__ = ["BlobStore", "LinkedBlobStore", "digest_of"]


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


class BlobStore:
    """The registry-wide blob store. Raises ``BlobUnknown`` for absent digests."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    async def stat(self, digest: str) -> int:
        """The blob's size."""
        try:
            info = await self.driver.stat(paths.blob_data_path(digest))
        except PathNotFound:
            raise BlobUnknown(digest) from None
        return info.size

    async def exists(self, digest: str) -> bool:
        try:
            await self.stat(digest)
        except BlobUnknown:
            return False
        return True

    async def get(self, digest: str) -> bytes:
        try:
            return await self.driver.get_content(paths.blob_data_path(digest))
        except PathNotFound:
            raise BlobUnknown(digest) from None

    async def open(self, digest: str, offset: int = 0) -> FileReader:
        try:
            return await self.driver.reader(paths.blob_data_path(digest), offset)
        except PathNotFound:
            raise BlobUnknown(digest) from None

    async def put(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data`` (a manifest, usually); returns its digest. Idempotent."""
        algorithm = digest.partition(":")[0] if digest else "sha256"
        actual = digest_of(data, algorithm)
        if digest is not None and actual != digest:
            raise ValueError(f"put: {digest} given for bytes hashing to {actual}")
        if not await self.exists(actual):
            await self.driver.put_content(paths.blob_data_path(actual), data)
        return actual

    async def ingest(self, src: str, digest: str) -> None:
        """Make the verified file at driver path ``src`` the blob ``digest``.

        When the blob is already there (another push of the same content won the race) the
        source is dropped instead: both hold the same verified bytes, and ``move`` replacing
        ``data`` in place would be atomic for readers anyway.
        """
        if await self.exists(digest):
            try:
                await self.driver.delete(src)
            except PathNotFound:
                pass
            return
        await self.driver.move(src, paths.blob_data_path(digest))

    async def delete(self, digest: str) -> None:
        """Remove the blob's data (the garbage collector's job; links are not checked)."""
        try:
            await self.driver.delete(paths.blob_dir(digest))
        except PathNotFound:
            raise BlobUnknown(digest) from None

    async def enumerate(self) -> AsyncIterator[str]:
        """Every digest with data, in path order."""
        async for info in self.driver.walk(paths.blobs_root()):
            if not info.is_dir and basename(info.path) == "data":
                parts = info.path.split("/")
                try:
                    yield paths.digest_from_parts(parts[-5], parts[-2])
                except InvalidPath:
                    continue


class LinkedBlobStore:
    """A repository's view of ``BlobStore`` through link files at ``link_path(digest)``."""

    def __init__(
        self,
        blobs: BlobStore,
        link_path: Callable[[str], str],
        root: str,
    ) -> None:
        self.blobs = blobs
        self.driver = blobs.driver
        self._link_path = link_path
        self.root = root

    async def linked(self, digest: str) -> bool:
        """The link exists (whether or not the data still does)."""
        try:
            await self.driver.stat(self._link_path(digest))
        except PathNotFound:
            return False
        return True

    async def stat(self, digest: str) -> int:
        """The blob's size; ``BlobUnknown`` unless both the link and the data exist."""
        if not await self.linked(digest):
            raise BlobUnknown(digest)
        return await self.blobs.stat(digest)

    async def exists(self, digest: str) -> bool:
        try:
            await self.stat(digest)
        except BlobUnknown:
            return False
        return True

    async def get(self, digest: str) -> bytes:
        if not await self.linked(digest):
            raise BlobUnknown(digest)
        return await self.blobs.get(digest)

    async def open(self, digest: str, offset: int = 0) -> FileReader:
        if not await self.linked(digest):
            raise BlobUnknown(digest)
        return await self.blobs.open(digest, offset)

    async def link(self, digest: str) -> None:
        await self.driver.put_content(self._link_path(digest), digest.encode())

    async def unlink(self, digest: str) -> None:
        link = self._link_path(digest)
        try:
            # the link's directory (<alg>/<hex>/) goes with it
            await self.driver.delete(link.rsplit("/", 1)[0])
        except PathNotFound:
            raise BlobUnknown(digest) from None

    async def enumerate(self) -> AsyncIterator[str]:
        """Every linked digest (whether or not its data still exists)."""
        try:
            algs = await self.driver.list(self.root)
        except PathNotFound:
            return
        for alg_path in algs:
            try:
                entries = await self.driver.list(alg_path)
            except PathNotFound:
                continue
            for entry in entries:
                try:
                    yield paths.digest_from_parts(basename(alg_path), basename(entry))
                except InvalidPath:
                    continue
