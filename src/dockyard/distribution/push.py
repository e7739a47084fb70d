"""Push one repository's tags: missing blobs only, mounted when possible, manifest last.

Per layer (at most 5 at once, as dockerd), the blob to push is the stored one when it is
compressed; an uncompressed layer (from ``docker load``) is gzipped reproducibly and the
result remembered (``compressed_blobs``), so the same image always pushes the same digests.
Then::

    HEAD  /v2/<repo>/blobs/<digest>                       200 → "Layer already exists"
    POST  /v2/<repo>/blobs/uploads/?mount=<d>&from=<r>    201 → "Mounted from <r>"
          (for each repository of this registry the blob is known to be in)
    POST  /v2/<repo>/blobs/uploads/ ; PUT <location>?digest=<d>   → "Pushed"

then the config blob, then ``PUT /v2/<repo>/manifests/<tag>``: the stored manifest as is when
every layer was pushed as stored (digests survive a pull/push round trip), else a Docker
schema 2 manifest naming the gzip blobs, formatted as dockerd formats it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

from dockyard.archive import compress_gzip
from dockyard.distribution.auth import repository_scope
from dockyard.distribution.client import CONNECTION_ERRORS, Repository
from dockyard.distribution.context import Context, in_thread
from dockyard.distribution.errors import RegistryError, RegistryUnreachable, translate_error
from dockyard.distribution.metadata import CompressedBlob
from dockyard.distribution.progress import Progress, ProgressTracker, message
from dockyard.errors import DockyardError, InvalidArgument, NotFound
from dockyard.oci import mediatypes
from dockyard.oci.descriptor import Descriptor
from dockyard.oci.digest import short_id
from dockyard.oci.image import diff_ids, validate_config
from dockyard.oci.manifest import parse_manifest
from dockyard.reference import Reference

__all__ = ["PushJob", "docker_manifest"]

log = logging.getLogger(__name__)

_UNCOMPRESSED = frozenset({mediatypes.OCI_LAYER, "application/vnd.docker.image.rootfs.diff.tar"})
_FOREIGN = frozenset(
    {
        mediatypes.DOCKER_FOREIGN_LAYER,
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)
_READ = 1 << 20


def docker_manifest(config: Descriptor, layers: list[Descriptor]) -> bytes:
    """A Docker schema 2 manifest exactly as dockerd writes one (Go's MarshalIndent with
    three spaces, fields in Go's order)."""
    obj = {
        "schemaVersion": 2,
        "mediaType": mediatypes.DOCKER_MANIFEST,
        "config": {
            "mediaType": mediatypes.DOCKER_CONFIG,
            "size": config.size,
            "digest": config.digest,
        },
        "layers": [
            {"mediaType": layer.media_type, "size": layer.size, "digest": layer.digest}
            for layer in layers
        ],
    }
    return json.dumps(obj, indent=3).encode()


class _HashingFile:
    """A write-only file that hashes what passes through (for ``compress_gzip``)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self._out.write(data)

    def flush(self) -> None:
        self._out.flush()


class PushJob:
    def __init__(self, ctx: Context, repo: Repository, ref: Reference) -> None:
        self.ctx = ctx
        self.repo = repo
        self.ref = ref
        self._mounted_scopes: set[str] = set()

    async def run(self, report: Progress) -> None:
        """Push; progress to ``report``. Raises ``DockyardError`` with Docker's wording."""
        try:
            await self._run(report)
        except DockyardError:
            raise
        except Exception as exc:
            raise translate_error(exc) from exc

    async def _run(self, report: Progress) -> None:
        ctx = self.ctx
        ref = self.ref
        tags = [ref] if ref.tag else ctx.images.repository_tags(ref.name)
        if not tags:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
        await self.repo.client.ping()
        for tag_ref in tags:
            source = ctx.images.push_source(tag_ref)
            if source is None:
                raise NotFound(f"tag does not exist: {tag_ref.familiar()}")
            await self._push_tag(tag_ref, *source, report=report)

    async def _push_tag(
        self, ref: Reference, image_id: str, config: bytes, stored: bytes, *, report: Progress
    ) -> None:
        ctx = self.ctx
        manifest = parse_manifest(stored)
        parsed = validate_config(json.loads(config))
        ids = diff_ids(parsed)
        layers = list(manifest.layers)
        if len(ids) != len(layers):
            raise InvalidArgument("layers from manifest don't match image configuration")
        for diff in reversed(ids):
            report(message("Preparing", short_id(diff)))
        limit = asyncio.Semaphore(ctx.max_uploads)
        with ctx.content.tempdir("push-") as scratch:
            tasks = [
                asyncio.ensure_future(self._push_layer(desc, diff, scratch, limit, report))
                for desc, diff in zip(layers, ids, strict=True)
            ]
            try:
                pushed = await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        config_desc = manifest.config
        if await self.repo.blob_size(config_desc.digest) is None:
            await self._upload(config_desc.digest, len(config), lambda: config, None)
        if all(p == d for p, d in zip(pushed, layers, strict=True)) and mediatypes.is_manifest(
            manifest.media_type
        ):
            data, media_type = stored, manifest.media_type
        else:
            data = docker_manifest(config_desc, pushed)
            media_type = mediatypes.DOCKER_MANIFEST
        tag = ref.tag or "latest"
        digest = await self.repo.put_manifest(tag, data, media_type)
        try:
            ctx.images.add_repo_digest(image_id, Reference(ref.domain, ref.path, None, digest))
            ctx.metadata.add_sources(
                [config_desc.digest, *(p.digest for p in pushed)], ref.domain, ref.path
            )
        except DockyardError:  # the push happened; only local bookkeeping failed
            log.warning("could not record the push of %s", ref, exc_info=True)
        report({"status": f"{tag}: digest: {digest} size: {len(data)}"})
        report({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": len(data)}})

    async def _push_layer(
        self,
        desc: Descriptor,
        diff: str,
        scratch: Path,
        limit: asyncio.Semaphore,
        report: Progress,
    ) -> Descriptor:
        ctx = self.ctx
        layer_id = short_id(diff)
        if desc.media_type in _FOREIGN:  # never pushed, as dockerd
            report(message("Skipped foreign layer", layer_id))
            return desc
        if limit.locked():
            report(message("Waiting", layer_id))
        async with limit:
            path: Path | None = None
            if desc.media_type in _UNCOMPRESSED:
                known = ctx.metadata.compressed(desc.digest)
                target = (
                    Descriptor(known.media_type, known.digest, known.size)
                    if known is not None
                    else None
                )
            else:
                target = desc
            if target is not None and await self.repo.blob_size(target.digest) is not None:
                report(message("Layer already exists", layer_id))
                return target
            if target is None or desc.media_type in _UNCOMPRESSED:
                path = scratch / desc.digest.replace(":", "-")
                target = await in_thread(ctx.executor, self._compress, desc.digest, path)
                if await self.repo.blob_size(target.digest) is not None:
                    report(message("Layer already exists", layer_id))
                    return target
            else:
                path = ctx.content.path(desc.digest)
            mounted = await self._mount(target.digest)
            if mounted is not None and mounted[0] is None:
                report(message(f"Mounted from {mounted[1]}", layer_id))
                return target
            location = mounted[0] if mounted is not None else None
            tracker = ProgressTracker(report, "Pushing", layer_id, target.size)
            await self._upload(target.digest, target.size, self._file_body(path, tracker), location)
            report(message("Pushed", layer_id))
            return target

    def _compress(self, blob: str, out: Path) -> Descriptor:
        """Gzip an uncompressed layer blob into ``out``; remember the result."""
        with self.ctx.content.open(blob) as src, open(out, "wb") as raw:
            sink = _HashingFile(raw)
            compress_gzip(src, cast(BinaryIO, sink))
        result = Descriptor(
            mediatypes.DOCKER_LAYER_GZIP, "sha256:" + sink.hash.hexdigest(), sink.size
        )
        self.ctx.metadata.set_compressed(
            blob, CompressedBlob(result.digest, result.media_type, result.size)
        )
        return result

    async def _mount(self, digest: str) -> tuple[str | None, str] | None:
        """Try a cross-repository mount from each known source repository of this registry.
        (None, source) when mounted; (upload location, source) when the registry opened an
        upload instead; None when there is no other source."""
        for source in self.ctx.metadata.sources(digest, self.ref.domain):
            if source == self.ref.path:
                continue
            self.repo.client.add_scope(repository_scope(source, ["pull"]))
            try:
                location = await self.repo.mount_blob(digest, source)
            except (RegistryError, RegistryUnreachable) as exc:
                log.info("mount of %s from %s failed: %s", digest, source, exc)
                continue
            return location, source
        return None

    def _file_body(self, path: Path, tracker: ProgressTracker) -> Callable[[], Any]:
        executor = self.ctx.executor

        def body() -> AsyncIterator[bytes]:
            async def chunks() -> AsyncIterator[bytes]:
                loop = asyncio.get_running_loop()
                sent = 0
                with open(path, "rb") as f:
                    while True:
                        chunk = await loop.run_in_executor(executor, f.read, _READ)
                        if not chunk:
                            break
                        sent += len(chunk)
                        tracker.update(sent)
                        yield chunk

            return chunks()

        return body

    async def _upload(
        self, digest: str, size: int, body: Callable[[], Any], location: str | None
    ) -> None:
        """Upload one blob, starting a new session after a failed attempt."""
        retry = self.ctx.retry
        attempt = 0
        while True:
            try:
                url = location or await self.repo.start_upload()
                location = None
                await self.repo.finish_upload(url, digest, size, body)
                return
            except (RegistryUnreachable, *CONNECTION_ERRORS) as exc:  # type: ignore[misc]
                failed: BaseException = exc
            except RegistryError as exc:
                if exc.status < 500:
                    raise
                failed = exc
            attempt += 1
            if attempt >= retry.attempts:
                raise failed
            log.info("upload of %s failed (%s); retrying", digest, failed)
            await asyncio.sleep(retry.delay(attempt - 1))
