"""Pull one image: manifest (index → platform), config, layers, then one record.

Order of work, and what is visible when (see ``ImageService.record_pulled``)::

    resolve   ping, auth, GET the tag's manifest            errors here: plain HTTP errors
    stream    "Pulling from …"; index → pick the platform's manifest; GET the config
    layers    per layer, at most 3 downloading at once (as dockerd):
                chain unpacked and blob present      → "Already exists", nothing fetched
                else GET the blob (Range-resumed after a dropped connection), verified while
                it streams into content; unpacked into its own snapshot as soon as it is
                there, while other layers still download
    record    one transaction: image, tag, RepoDigest (``repo@sha256:<manifest>``)

A failure anywhere removes what this pull made (its extract snapshots, and blobs it fetched
that no image and no other running pull uses): nothing is recorded, and the next pull starts
clean (partial ingests are removed by the content store at once, or at the next start).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from dockyard.distribution.client import (
    CONNECTION_ERRORS,
    SCHEMA1_MESSAGE,
    FetchedManifest,
    Repository,
    is_schema1,
)
from dockyard.distribution.context import Context, SharedDownload, in_thread
from dockyard.distribution.errors import (
    RegistryUnreachable,
    describe_connection_error,
    translate_pull_error,
)
from dockyard.distribution.ingest import StreamIngest
from dockyard.distribution.platforms import format_platform
from dockyard.distribution.progress import Progress, ProgressTracker, message
from dockyard.errors import DockyardError, InvalidArgument
from dockyard.images.service import PulledLayer
from dockyard.oci import mediatypes
from dockyard.oci.descriptor import Descriptor, Platform
from dockyard.oci.digest import sha256_digest, short_id
from dockyard.oci.image import chain_ids, diff_ids, validate_config
from dockyard.oci.manifest import parse_index, parse_manifest
from dockyard.reference import Reference

__all__ = ["PullJob", "PullResult"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 18


@dataclass(frozen=True)
class PullResult:
    image_id: str
    digest: str
    updated: bool


class PullJob:
    """A resolved pull (the top manifest is in hand); ``run`` streams the rest."""

    def __init__(
        self,
        ctx: Context,
        repo: Repository,
        ref: Reference,
        top: FetchedManifest,
        platform: Platform,
        *,
        explicit_platform: bool,
    ) -> None:
        self.ctx = ctx
        self.repo = repo
        self.ref = ref
        self.top = top
        self.platform = platform
        self.explicit_platform = explicit_platform
        self._fetched: set[str] = set()
        self._extracted: list[str] = []
        self._leased: list[str] = []

    async def run(self, report: Progress) -> PullResult:
        """Pull; Docker's progress messages go to ``report``. Raises ``DockyardError``s
        with Docker's wording; on failure nothing is recorded."""
        ref = self.ref
        report({"status": f"Pulling from {ref.path}", "id": ref.digest or ref.tag or "latest"})
        try:
            return await self._run(report)
        except BaseException as exc:
            await self._discard()
            if isinstance(exc, Exception):
                raise translate_pull_error(exc, ref) from exc
            raise
        finally:
            self._release_leases()

    async def _run(self, report: Progress) -> PullResult:
        ctx = self.ctx
        fetched = await self._platform_manifest()
        manifest = parse_manifest(fetched.data)
        config = await self._config(manifest.config)
        parsed = validate_config(json.loads(config))
        self._check_platform(parsed)
        layers = list(manifest.layers)
        for layer in layers:
            if not mediatypes.is_layer(layer.media_type):
                raise InvalidArgument(f"unsupported media type {layer.media_type}")
        ids = diff_ids(parsed)
        if len(ids) != len(layers):
            raise InvalidArgument("layers from manifest don't match image configuration")
        chains = chain_ids(ids)
        self._lease([manifest.config.digest, *(d.digest for d in layers)])

        image_id = sha256_digest(config)
        pulled: list[PulledLayer] = []
        if not ctx.images.has_image(image_id):  # as dockerd: a known image needs no layers
            pulled = await self._layers(layers, ids, chains, report)
        names = [Reference(self.ref.domain, self.ref.path, None, self.top.digest)]
        if self.ref.digest is None:
            names.insert(0, Reference(self.ref.domain, self.ref.path, self.ref.tag, None))
        record = await in_thread(
            ctx.executor, ctx.images.record_pulled, config, fetched.data, pulled, names
        )
        try:
            ctx.metadata.add_sources([d.digest for d in layers], self.ref.domain, self.ref.path)
        except Exception:  # a hint only; the image is recorded
            log.warning("could not record blob sources for %s", self.ref, exc_info=True)
        report({"status": f"Digest: {self.top.digest}"})
        verb = "Downloaded newer image for" if record.updated else "Image is up to date for"
        report({"status": f"Status: {verb} {self.ref.familiar()}"})
        return PullResult(record.image_id, self.top.digest, record.updated)

    # -- manifests and config ----------------------------------------------------------------

    async def _platform_manifest(self) -> FetchedManifest:
        top = self.top
        if is_schema1(top.media_type):
            raise InvalidArgument(SCHEMA1_MESSAGE.format(ref=self.ref.familiar()))
        if not top.is_index:
            if not mediatypes.is_manifest(top.media_type):
                raise InvalidArgument(f"unsupported media type {top.media_type}")
            return top
        index = parse_index(top.data)
        chosen = index.select(self.platform)
        fetched = await self.repo.get_manifest(chosen.digest)
        if is_schema1(fetched.media_type):
            raise InvalidArgument(SCHEMA1_MESSAGE.format(ref=self.ref.familiar()))
        if not mediatypes.is_manifest(fetched.media_type):
            raise InvalidArgument(f"unsupported media type {fetched.media_type}")
        return fetched

    async def _config(self, desc: Descriptor) -> bytes:
        content = self.ctx.content
        if content.has(desc.digest):
            with content.open(desc.digest) as f:
                return f.read()
        return await self.repo.fetch_small_blob(desc.digest)

    def _check_platform(self, config: dict[str, Any]) -> None:
        if not self.explicit_platform or self.top.is_index:
            return
        actual = Platform(
            str(config.get("os") or ""),
            str(config.get("architecture") or ""),
            str(config.get("variant") or ""),
        )
        wanted = self.platform
        if not actual.matches(wanted.os, wanted.architecture, wanted.variant):
            raise InvalidArgument(
                f"image with reference {self.ref.familiar()} was found but its platform"
                f" ({format_platform(actual)}) does not match the specified platform"
                f" ({format_platform(wanted)})"
            )

    # -- layers ------------------------------------------------------------------------------

    async def _layers(
        self, layers: list[Descriptor], ids: list[str], chains: list[str], report: Progress
    ) -> list[PulledLayer]:
        ctx = self.ctx
        present = [
            ctx.images.layer_unpacked(chain) and ctx.content.has(desc.digest)
            for chain, desc in zip(chains, layers, strict=True)
        ]
        for desc, done in zip(layers, present, strict=True):
            report(message("Already exists" if done else "Pulling fs layer", short_id(desc.digest)))
        downloads = asyncio.Semaphore(ctx.max_downloads)
        unpacks = asyncio.Semaphore(ctx.max_unpacks)
        extracted: dict[int, str] = {}

        async def one(i: int) -> None:
            if present[i]:
                return
            desc = layers[i]
            if not ctx.content.has(desc.digest):
                await self._download(desc, report, downloads)
            else:
                report(message("Download complete", short_id(desc.digest)))
            if ctx.images.layer_unpacked(chains[i]):
                await in_thread(ctx.executor, ctx.images.verify_blob, desc.digest, ids[i])
            else:
                tracker = ProgressTracker(report, "Extracting", short_id(desc.digest), desc.size)
                async with unpacks:
                    key = await in_thread(
                        ctx.executor,
                        ctx.images.unpack_blob,
                        desc.digest,
                        ids[i],
                        chains[i],
                        progress=lambda current, _total: tracker.update(current),
                    )
                extracted[i] = key
                self._extracted.append(key)
            report(message("Pull complete", short_id(desc.digest)))

        tasks = [asyncio.ensure_future(one(i)) for i in range(len(layers))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [
            PulledLayer(chain, desc.digest, extracted.get(i))
            for i, (chain, desc) in enumerate(zip(chains, layers, strict=True))
        ]

    async def _download(self, desc: Descriptor, report: Progress, limit: asyncio.Semaphore) -> None:
        """Fetch one blob into content, sharing the work with concurrent pulls of it."""
        ctx = self.ctx
        shared = ctx.downloads.get(desc.digest)
        if shared is None or shared.task is None or shared.task.done():
            shared = SharedDownload()
            shared.reporters.append(report)
            ctx.downloads[desc.digest] = shared
            shared.task = asyncio.ensure_future(self._fetch_blob(desc, shared, limit))

            def forget(_task: asyncio.Task[None], entry: SharedDownload = shared) -> None:
                if ctx.downloads.get(desc.digest) is entry:
                    del ctx.downloads[desc.digest]

            shared.task.add_done_callback(forget)
            self._fetched.add(desc.digest)
        else:
            shared.reporters.append(report)
        task = shared.task
        try:
            await asyncio.shield(task)
        finally:
            if report in shared.reporters:
                shared.reporters.remove(report)
            if not shared.reporters and not task.done():
                task.cancel()  # nobody waits for it any more
                await asyncio.gather(task, return_exceptions=True)

    async def _fetch_blob(
        self, desc: Descriptor, shared: SharedDownload, limit: asyncio.Semaphore
    ) -> None:
        ctx = self.ctx
        layer_id = short_id(desc.digest)
        if limit.locked():
            shared.report(message("Waiting", layer_id))
        async with limit:
            tracker = ProgressTracker(shared.report, "Downloading", layer_id, desc.size)
            sink = StreamIngest(ctx.content, ctx.executor, desc.digest, desc.size)
            sink.start()
            try:
                if await self._stream(desc, sink, tracker) >= 0:
                    shared.report(message("Verifying Checksum", layer_id))
                await sink.finish()
            except InvalidArgument as exc:
                await sink.abort(exc)
                log.warning("layer %s failed verification: %s", desc.digest, exc.message)
                raise InvalidArgument(
                    f"filesystem layer verification failed for digest {desc.digest}"
                ) from exc
            except BaseException as exc:
                await sink.abort(exc)
                raise
        shared.report(message("Download complete", layer_id))

    async def _stream(self, desc: Descriptor, sink: StreamIngest, tracker: ProgressTracker) -> int:
        """Copy the blob into ``sink``; resume with ``Range`` after a dropped connection.
        Returns the bytes copied, or -1 when the store turned out to hold the blob."""
        retry = self.ctx.retry
        offset = 0
        failures = 0
        while True:
            try:
                async with self.repo.open_blob(desc.digest, offset) as response:
                    skip = offset if offset and response.status == 200 else 0
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        if skip:
                            if len(chunk) <= skip:
                                skip -= len(chunk)
                                continue
                            chunk = chunk[skip:]
                            skip = 0
                        if not await sink.write(chunk):
                            return -1
                        offset += len(chunk)
                        tracker.update(offset)
                    if offset < desc.size:
                        raise aiohttp.ClientPayloadError(
                            f"connection closed after {offset} of {desc.size} bytes"
                        )
                return offset
            except CONNECTION_ERRORS as exc:
                failures += 1
                url = str(self.repo.client.url(f"/v2/{self.repo.path}/blobs/{desc.digest}"))
                if failures >= retry.attempts:
                    host = self.repo.client.endpoint.host
                    raise RegistryUnreachable(
                        "GET", url, describe_connection_error(exc, host)
                    ) from exc
                log.info("blob %s: %s; resuming at byte %d", desc.digest, exc, offset)
                await asyncio.sleep(retry.delay(failures - 1))

    # -- clean-up ----------------------------------------------------------------------------

    def _lease(self, digests: list[str]) -> None:
        for digest in digests:
            self.ctx.leases[digest] += 1
            self._leased.append(digest)

    def _release_leases(self) -> None:
        for digest in self._leased:
            self.ctx.leases[digest] -= 1
            if self.ctx.leases[digest] <= 0:
                del self.ctx.leases[digest]
        self._leased.clear()

    async def _discard(self) -> None:
        ctx = self.ctx
        # blobs another running pull still needs stay (it records or discards them itself)
        mine = [d for d in self._fetched if ctx.leases.get(d, 0) <= self._leased.count(d)]
        if not mine and not self._extracted:
            return
        try:
            await in_thread(ctx.executor, ctx.images.discard_pulled, mine, list(self._extracted))
        except DockyardError:
            log.warning("clean-up after a failed pull of %s failed", self.ref, exc_info=True)
