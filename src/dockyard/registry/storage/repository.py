"""Repositories: manifests, tags, referrers and uploads over the shared blob store.

``Registry`` is what the HTTP layer holds: the global ``BlobStore``, a ``Repository`` per name
(cheap views, no state of their own), and the catalog. A repository exists -- for the tags list
and the catalog -- once it has a ``_manifests`` directory, i.e. once a manifest was pushed,
as in distribution.

Manifests are blobs too: their bytes live in ``blobs/`` exactly as pushed and a revision link
puts them in a repository. ``put_manifest`` checks, before writing anything, that every blob
and child manifest the manifest names is in the repository (``ManifestBlobUnknown`` lists all
that are not; a ``subject`` may dangle, as the spec requires) and that declared sizes match
(``SizeMismatch``). Write order makes a crash harmless: blob data, then revision link, then the
referrers link, then tags -- a tag never points at a manifest that is not there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from dockyard.registry.schema import ManifestInvalid, ParsedManifest, parse_manifest
from dockyard.registry.storage import paths
from dockyard.registry.storage.blobstore import BlobStore, LinkedBlobStore
from dockyard.registry.storage.driver import FileInfo, StorageDriver, basename
from dockyard.registry.storage.errors import (
    BlobUnknown,
    InvalidPath,
    ManifestBlobUnknown,
    ManifestUnknown,
    PathNotFound,
    RepositoryUnknown,
    SizeMismatch,
)
from dockyard.registry.storage.uploads import UploadSessions, UploadStore

__all__ = ["ManifestStore", "Referrer", "ReferrerStore", "Registry", "Repository", "TagStore"]


async def _read_link(driver: StorageDriver, path: str) -> str | None:
    try:
        value = (await driver.get_content(path)).decode(errors="replace").strip()
    except PathNotFound:
        return None
    try:
        paths.split_digest(value)
    except InvalidPath:
        return None
    return value


class ManifestStore:
    """Manifest revisions of one repository (a linked blob store over ``revisions/``)."""

    def __init__(self, name: str, blobs: BlobStore) -> None:
        self.name = name
        self.revisions = LinkedBlobStore(
            blobs,
            lambda d: paths.manifest_revision_link_path(name, d),
            paths.manifest_revisions_root(name),
        )

    async def exists(self, digest: str) -> bool:
        return await self.revisions.exists(digest)

    async def get(self, digest: str) -> bytes:
        try:
            return await self.revisions.get(digest)
        except BlobUnknown:
            raise ManifestUnknown(digest) from None

    async def size(self, digest: str) -> int:
        try:
            return await self.revisions.stat(digest)
        except BlobUnknown:
            raise ManifestUnknown(digest) from None

    async def put(self, data: bytes, digest: str) -> None:
        await self.revisions.blobs.put(data, digest)
        await self.revisions.link(digest)

    async def unlink(self, digest: str) -> None:
        try:
            await self.revisions.unlink(digest)
        except BlobUnknown:
            raise ManifestUnknown(digest) from None

    def enumerate(self) -> AsyncIterator[str]:
        return self.revisions.enumerate()


class TagStore:
    """Tags of one repository: ``tags/<tag>/current/link`` plus an index of past targets."""

    def __init__(self, name: str, driver: StorageDriver) -> None:
        self.name = name
        self.driver = driver

    async def get(self, tag: str) -> str:
        digest = await _read_link(self.driver, paths.tag_current_link_path(self.name, tag))
        if digest is None:
            raise ManifestUnknown(tag)
        return digest

    async def tag(self, tag: str, digest: str) -> None:
        await self.driver.put_content(
            paths.tag_index_link_path(self.name, tag, digest), digest.encode()
        )
        await self.driver.put_content(paths.tag_current_link_path(self.name, tag), digest.encode())

    async def untag(self, tag: str) -> None:
        try:
            await self.driver.delete(paths.tag_root(self.name, tag))
        except PathNotFound:
            raise ManifestUnknown(tag) from None

    async def names(self) -> list[str]:
        """Every tag with a current link, in ASCII order."""
        try:
            entries = await self.driver.list(paths.tags_root(self.name))
        except PathNotFound:
            return []
        tags = []
        for entry in entries:
            tag = basename(entry)
            try:
                await self.driver.stat(paths.tag_current_link_path(self.name, tag))
            except (PathNotFound, InvalidPath):
                continue
            tags.append(tag)
        return sorted(tags)

    async def lookup(self, digest: str) -> list[str]:
        """Tags currently pointing at ``digest``."""
        out = []
        for tag in await self.names():
            try:
                if await self.get(tag) == digest:
                    out.append(tag)
            except ManifestUnknown:
                continue
        return out


class ReferrerStore:
    """The referrers index of one repository: subject digest → manifests naming it."""

    def __init__(self, name: str, driver: StorageDriver) -> None:
        self.name = name
        self.driver = driver

    async def add(self, subject: str, digest: str) -> None:
        await self.driver.put_content(
            paths.referrer_link_path(self.name, subject, digest), digest.encode()
        )

    async def remove(self, subject: str, digest: str) -> None:
        link = paths.referrer_link_path(self.name, subject, digest)
        try:
            await self.driver.delete(link.rsplit("/", 1)[0])
        except PathNotFound:
            return

    async def digests(self, subject: str) -> list[str]:
        """Digests of manifests whose subject is ``subject``, sorted."""
        root = paths.referrers_root(self.name, subject)
        try:
            algs = await self.driver.list(root)
        except PathNotFound:
            return []
        out = []
        for alg_path in algs:
            try:
                entries = await self.driver.list(alg_path)
            except PathNotFound:
                continue
            for entry in entries:
                try:
                    out.append(paths.digest_from_parts(basename(alg_path), basename(entry)))
                except InvalidPath:
                    continue
        return sorted(out)


@dataclass(frozen=True)
class Referrer:
    digest: str
    size: int
    manifest: ParsedManifest


class Repository:
    """One repository's stores. Build through ``Registry.repository`` (names are validated)."""

    def __init__(self, name: str, blobs: BlobStore, sessions: UploadSessions) -> None:
        self.name = name
        self.driver = blobs.driver
        self.layers = LinkedBlobStore(
            blobs, lambda d: paths.layer_link_path(name, d), paths.layers_root(name)
        )
        self.manifests = ManifestStore(name, blobs)
        self.tags = TagStore(name, blobs.driver)
        self.referrers = ReferrerStore(name, blobs.driver)
        self.uploads = UploadStore(name, blobs, self.layers, sessions)

    async def exists(self) -> bool:
        try:
            await self.driver.stat(paths.manifests_root(self.name))
        except PathNotFound:
            return False
        return True

    async def list_tags(self) -> list[str]:
        """``RepositoryUnknown`` for a repository nothing was pushed to."""
        if not await self.exists():
            raise RepositoryUnknown(self.name)
        return await self.tags.names()

    async def verify_manifest(self, manifest: ParsedManifest) -> None:
        """Everything ``manifest`` names must be here, with the declared sizes."""
        missing: list[str] = []
        for ref in manifest.blob_refs():
            try:
                size = await self.layers.stat(ref.digest)
            except BlobUnknown:
                missing.append(ref.digest)
                continue
            if size != ref.size:
                raise SizeMismatch(ref.digest, ref.size, size)
        for ref in manifest.manifests:
            try:
                size = await self.manifests.size(ref.digest)
            except ManifestUnknown:
                missing.append(ref.digest)
                continue
            if size != ref.size:
                raise SizeMismatch(ref.digest, ref.size, size)
        if missing:
            raise ManifestBlobUnknown(list(dict.fromkeys(missing)))

    async def put_manifest(
        self, data: bytes, manifest: ParsedManifest, digest: str, tags: Iterable[str] = ()
    ) -> None:
        await self.verify_manifest(manifest)
        await self.manifests.put(data, digest)
        if manifest.subject is not None:
            await self.referrers.add(manifest.subject.digest, digest)
        for tag in tags:
            await self.tags.tag(tag, digest)

    async def delete_manifest(self, digest: str) -> None:
        """Unlink a revision, the tags pointing at it and its referrers entry."""
        data = await self.manifests.get(digest)
        for tag in await self.tags.lookup(digest):
            try:
                await self.tags.untag(tag)
            except ManifestUnknown:
                pass
        try:
            parsed = parse_manifest(data)
        except ManifestInvalid:
            parsed = None
        if parsed is not None and parsed.subject is not None:
            await self.referrers.remove(parsed.subject.digest, digest)
        await self.manifests.unlink(digest)

    async def list_referrers(self, subject: str) -> list[Referrer]:
        """Manifests in this repository whose subject is ``subject``, sorted by digest;
        entries whose revision is gone (deleted, collected) are skipped."""
        out = []
        for digest in await self.referrers.digests(subject):
            try:
                data = await self.manifests.get(digest)
                parsed = parse_manifest(data)
            except (ManifestUnknown, ManifestInvalid):
                continue
            if parsed.subject is None or parsed.subject.digest != subject:
                continue
            out.append(Referrer(digest, len(data), parsed))
        return out


class Registry:
    """The storage side of a registry: shared blobs, repositories, catalog."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver
        self.blobs = BlobStore(driver)
        self.sessions = UploadSessions()

    def repository(self, name: str) -> Repository:
        paths.repository_root(name)  # InvalidPath for a bad name
        return Repository(name, self.blobs, self.sessions)

    async def repositories(self) -> list[str]:
        """Every repository with a ``_manifests`` directory, in ASCII order."""
        root = paths.repositories_root()
        names = []

        def prune(info: FileInfo) -> bool:
            return basename(info.path).startswith("_")

        try:
            async for info in self.driver.walk(root, prune):
                if info.is_dir and basename(info.path) == "_manifests":
                    names.append(info.path[len(root) + 1 : -len("/_manifests")])
        except PathNotFound:
            return []
        return sorted(names)

    async def repositories_linking(self, digest: str) -> AsyncIterator[str]:
        """Repositories in which blob ``digest`` is linked (for mounts without ``from``)."""
        for name in await self.repositories():
            if await self.repository(name).layers.linked(digest):
                yield name
