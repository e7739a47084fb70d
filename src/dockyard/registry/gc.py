"""Garbage collection of registry storage: mark and sweep, as ``registry garbage-collect``.

Blobs are shared by every repository and deleting a manifest only removes links (see the layout in
``storage/paths.py``), so space comes back only here:

mark
    For every repository, every manifest revision (``_manifests/revisions/<alg>/<hex>/link``) is a
    root. Its own digest is marked, then everything it references: ``config``, ``layers``,
    ``blobs`` (artifact manifests), ``manifests`` (index children, recursively when the child is a
    revision of the same repository), ``subject``, and schema1 ``fsLayers``. With
    ``delete_untagged`` the roots are only the manifests reachable from a tag (through index
    children), plus referrers of those; every other revision is deleted with its tag-history and
    referrers links, and then its blobs are swept like any other.
sweep
    Every blob under ``blobs/`` that was not marked is deleted, and so is every repository's
    ``_layers`` link to a deleted blob (links to blobs that stay are left alone: the blob may
    still be mounted or pulled by digest from that repository, as in distribution).

The collector works through the storage driver interface only. Like distribution's, it is not
safe against concurrent pushes (a blob uploaded for a manifest not yet pushed looks unreferenced):
run it while the registry is stopped or read-only. A dry run reports and changes nothing.

:func:`purge_uploads` removes upload sessions older than a given age (distribution's upload
purging), judged by their ``startedat`` file, or their directory's modification time without one.

Errors: a manifest whose bytes cannot be parsed stops the collection (``GCError``) before anything
is deleted: its references are unknown, so nothing can safely be swept. A revision whose bytes are
missing is reported and skipped.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import DockyardError, InvalidArgument, NotFound
from dockyard.registry.config import RegistryConfig
from dockyard.registry.storage import build_driver, paths
from dockyard.registry.storage.driver import FileInfo, StorageDriver, basename, parent
from dockyard.registry.storage.errors import InvalidPath

__all__ = [
    "GCError",
    "GCResult",
    "collect",
    "main_gc",
    "parse_duration",
    "purge_uploads",
    "references",
    "repositories",
]

log = logging.getLogger(__name__)

Emit = Callable[[str], None]

DEFAULT_UPLOAD_AGE = datetime.timedelta(hours=168)


class GCError(DockyardError):
    """The store is in a state the collector will not sweep (an unreadable manifest)."""


@dataclass
class GCResult:
    """What a collection marked and removed (or, in a dry run, would remove)."""

    dry_run: bool
    marked: set[str] = field(default_factory=set)
    deleted_blobs: list[str] = field(default_factory=list)
    deleted_manifests: list[tuple[str, str]] = field(default_factory=list)
    deleted_layer_links: list[tuple[str, str]] = field(default_factory=list)
    purged_uploads: list[tuple[str, str]] = field(default_factory=list)
    missing_manifests: list[tuple[str, str]] = field(default_factory=list)
    bytes_freed: int = 0


def _quiet(_: str) -> None:
    pass


async def _list(driver: StorageDriver, path: str) -> list[str]:
    try:
        return await driver.list(path)
    except NotFound:
        return []


async def _digests_under(driver: StorageDriver, root: str) -> list[str]:
    """Digests of ``<root>/<alg>/<hex>/`` entries (revisions, layer links, tag history)."""
    found = []
    for alg_dir in await _list(driver, root):
        for hex_dir in await _list(driver, alg_dir):
            try:
                found.append(paths.digest_from_parts(basename(alg_dir), basename(hex_dir)))
            except InvalidPath:
                log.warning("ignoring foreign entry %s", hex_dir)
    return found


async def repositories(driver: StorageDriver) -> list[str]:
    """Every repository name: a directory holding ``_manifests``, ``_layers`` or ``_uploads``."""
    root = paths.repositories_root()
    names: set[str] = set()

    def internal(info: FileInfo) -> bool:
        return info.is_dir and basename(info.path).startswith("_")

    try:
        async for info in driver.walk(root, internal):
            if internal(info):
                names.add(parent(info.path)[len(root) + 1 :])
    except NotFound:
        return []
    return sorted(n for n in names if n)


def references(manifest: dict[str, Any]) -> list[str]:
    """Every digest a manifest or index names: config, layers, blobs, children, subject."""
    found: list[str] = []

    def add(descriptor: object) -> None:
        if isinstance(descriptor, dict) and isinstance(descriptor.get("digest"), str):
            found.append(descriptor["digest"])

    add(manifest.get("config"))
    add(manifest.get("subject"))
    for key in ("layers", "manifests", "blobs"):
        items = manifest.get(key)
        if isinstance(items, list):
            for item in items:
                add(item)
    fs_layers = manifest.get("fsLayers")  # Docker schema1
    if isinstance(fs_layers, list):
        for layer in fs_layers:
            if isinstance(layer, dict) and isinstance(layer.get("blobSum"), str):
                found.append(layer["blobSum"])
    return found


@dataclass
class _Repo:
    name: str
    revisions: set[str]
    manifests: dict[str, dict[str, Any]]  # revision → parsed manifest (missing bytes: absent)


async def _load_repo(driver: StorageDriver, name: str, result: GCResult, emit: Emit) -> _Repo:
    revisions = set(await _digests_under(driver, paths.manifest_revisions_root(name)))
    manifests: dict[str, dict[str, Any]] = {}
    for digest in sorted(revisions):
        try:
            raw = await driver.get_content(paths.blob_data_path(digest))
        except NotFound:
            emit(f"{name}: manifest {digest} has a revision link but no data; skipped")
            result.missing_manifests.append((name, digest))
            continue
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise GCError(f"{name}: manifest {digest} is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise GCError(f"{name}: manifest {digest} is not a JSON object")
        manifests[digest] = doc
    return _Repo(name, revisions, manifests)


async def _tagged(driver: StorageDriver, name: str) -> set[str]:
    tagged = set()
    for tag_dir in await _list(driver, paths.tags_root(name)):
        try:
            link = await driver.get_content(paths.tag_current_link_path(name, basename(tag_dir)))
        except (NotFound, InvalidPath):
            continue
        tagged.add(link.decode("ascii", "replace").strip())
    return tagged


def _reachable(repo: _Repo, roots: Iterable[str]) -> set[str]:
    """Revisions reachable from ``roots`` through index children, plus referrers of them."""
    keep: set[str] = set()
    todo = [d for d in roots if d in repo.revisions]
    while True:
        while todo:
            digest = todo.pop()
            if digest in keep:
                continue
            keep.add(digest)
            for child in references(repo.manifests.get(digest, {})):
                if child in repo.revisions and child not in keep:
                    todo.append(child)
        # Referrers of kept manifests are kept (an untagged signature of a tagged image).
        todo = [d for d, m in repo.manifests.items() if d not in keep and _subject(m) in keep]
        if not todo:
            return keep


def _subject(manifest: dict[str, Any]) -> str | None:
    subject = manifest.get("subject")
    if isinstance(subject, dict) and isinstance(subject.get("digest"), str):
        return str(subject["digest"])
    return None


async def _delete(driver: StorageDriver, path: str) -> None:
    try:
        await driver.delete(path)
    except NotFound:
        pass


async def _remove_manifest(driver: StorageDriver, repo: _Repo, digest: str) -> None:
    """A revision, its tag-history entries and its referrers link (never the blob: GC sweeps it)."""
    name = repo.name
    await _delete(driver, parent(paths.manifest_revision_link_path(name, digest)))
    for tag_dir in await _list(driver, paths.tags_root(name)):
        try:
            index_link = paths.tag_index_link_path(name, basename(tag_dir), digest)
        except InvalidPath:
            continue
        await _delete(driver, parent(index_link))
    subject = _subject(repo.manifests.get(digest, {}))
    if subject is not None:
        try:
            await _delete(driver, parent(paths.referrer_link_path(name, subject, digest)))
        except InvalidPath:
            pass


async def _blob_dirs(driver: StorageDriver) -> list[tuple[str, str]]:
    """``(digest, dir)`` for every blob directory under ``blobs/``."""
    found = []
    for alg_dir in await _list(driver, paths.blobs_root()):
        for prefix_dir in await _list(driver, alg_dir):
            for hex_dir in await _list(driver, prefix_dir):
                try:
                    digest = paths.digest_from_parts(basename(alg_dir), basename(hex_dir))
                except InvalidPath:
                    log.warning("ignoring foreign entry %s", hex_dir)
                    continue
                found.append((digest, hex_dir))
    return found


async def collect(
    driver: StorageDriver,
    *,
    dry_run: bool,
    delete_untagged: bool = False,
    emit: Emit = _quiet,
) -> GCResult:
    """Mark every referenced blob, then sweep the rest (see the module docstring).

    Raises GCError, before deleting anything, when a manifest cannot be parsed.
    """
    result = GCResult(dry_run=dry_run)
    marked = result.marked
    repos = [await _load_repo(driver, name, result, emit) for name in await repositories(driver)]

    doomed: list[tuple[_Repo, str]] = []
    for repo in repos:
        roots = repo.revisions
        if delete_untagged:
            roots = _reachable(repo, await _tagged(driver, repo.name))
            doomed += [(repo, d) for d in sorted(repo.revisions - roots)]
        for digest in sorted(roots):
            if digest not in marked:
                emit(f"{repo.name}: marking manifest {digest}")
                marked.add(digest)
            for ref in references(repo.manifests.get(digest, {})):
                if ref not in marked:
                    emit(f"{repo.name}: marking blob {ref}")
                    marked.add(ref)

    layer_links = [
        (repo.name, digest)
        for repo in repos
        for digest in await _digests_under(driver, paths.layers_root(repo.name))
    ]
    blobs = [(d, p) for d, p in await _blob_dirs(driver) if d not in marked]
    result.deleted_manifests = [(repo.name, d) for repo, d in doomed if d not in marked]
    result.deleted_blobs = [d for d, _ in blobs]
    result.deleted_layer_links = [(n, d) for n, d in layer_links if d not in marked]
    emit(
        f"\n{len(marked)} blobs marked, {len(blobs)} blobs and "
        f"{len(result.deleted_manifests)} manifests eligible for deletion"
    )
    for repo, digest in doomed:
        if digest in marked:  # a child of a kept manifest in another repository's view
            continue
        emit(f"{repo.name}: manifest eligible for deletion: {digest}")
        if not dry_run:
            await _remove_manifest(driver, repo, digest)
    for digest, blob_dir in blobs:
        emit(f"blob eligible for deletion: {digest}")
        try:
            result.bytes_freed += (await driver.stat(paths.blob_data_path(digest))).size
        except NotFound:
            pass
        if not dry_run:
            await _delete(driver, blob_dir)
    for name, digest in result.deleted_layer_links:
        emit(f"{name}: layer link eligible for deletion: {digest}")
        if not dry_run:
            await _delete(driver, parent(paths.layer_link_path(name, digest)))
    return result


def _parse_started(raw: bytes) -> float | None:
    text = raw.decode("ascii", "replace").strip()
    try:
        stamp = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.UTC)
    return stamp.timestamp()


async def purge_uploads(
    driver: StorageDriver,
    *,
    older_than: datetime.timedelta = DEFAULT_UPLOAD_AGE,
    dry_run: bool = False,
    now: float | None = None,
    emit: Emit = _quiet,
    result: GCResult | None = None,
) -> GCResult:
    """Remove upload sessions started more than ``older_than`` ago."""
    result = result if result is not None else GCResult(dry_run=dry_run)
    cutoff = (time.time() if now is None else now) - older_than.total_seconds()
    for name in await repositories(driver):
        for upload_dir in await _list(driver, paths.uploads_root(name)):
            upload_id = basename(upload_dir)
            try:
                started = _parse_started(
                    await driver.get_content(paths.upload_startedat_path(name, upload_id))
                )
            except (NotFound, InvalidPath):
                started = None
            if started is None:
                try:
                    started = (await driver.stat(upload_dir)).mod_time
                except NotFound:
                    continue
            if started >= cutoff:
                continue
            emit(f"{name}: upload eligible for deletion: {upload_id}")
            result.purged_uploads.append((name, upload_id))
            if not dry_run:
                await _delete(driver, upload_dir)
    return result


def main_gc(config: RegistryConfig, dry_run: bool, *, delete_untagged: bool = False) -> int:
    """``dockyard-registry garbage-collect``: collect, purge stale uploads, print what happened.

    Upload purging follows ``storage.maintenance.uploadpurging`` (``enabled``, default true;
    ``age``, a Go duration such as ``168h``, the default). Returns the process exit status.
    """
    try:
        upload_age = _upload_age(config.raw)
        driver = build_driver(config)
        result = asyncio.run(_run(driver, dry_run, delete_untagged, upload_age))
    except (GCError, InvalidArgument) as exc:
        print(f"garbage-collect failed: {exc}", file=sys.stderr)
        return 1
    verb = "would free" if dry_run else "freed"
    print(
        f"{len(result.deleted_blobs)} blobs, {len(result.deleted_manifests)} manifests, "
        f"{len(result.deleted_layer_links)} layer links, {len(result.purged_uploads)} uploads "
        f"{'eligible for deletion' if dry_run else 'deleted'}; {verb} {result.bytes_freed} bytes"
    )
    return 0


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str) -> datetime.timedelta:
    """A Go duration (``168h``, ``1h30m``, ``90s``) as distribution's config spells ages."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidArgument(f"invalid duration {text!r}: want e.g. 168h or 1h30m")
    return datetime.timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def _upload_age(raw: Mapping[str, Any]) -> datetime.timedelta | None:
    """``None`` when purging is disabled."""
    section: Any = raw
    for key in ("storage", "maintenance", "uploadpurging"):
        section = section.get(key) if isinstance(section, Mapping) else None
    if not isinstance(section, Mapping):
        return DEFAULT_UPLOAD_AGE
    enabled = section.get("enabled", True)
    if enabled is False or (isinstance(enabled, str) and enabled.lower() == "false"):
        return None
    age = section.get("age")
    if age is None:
        return DEFAULT_UPLOAD_AGE
    if isinstance(age, int | float) and not isinstance(age, bool):
        return datetime.timedelta(seconds=age)
    return parse_duration(str(age))


async def _run(
    driver: StorageDriver,
    dry_run: bool,
    delete_untagged: bool,
    upload_age: datetime.timedelta | None,
) -> GCResult:
    result = await collect(driver, dry_run=dry_run, delete_untagged=delete_untagged, emit=print)
    if upload_age is None:
        return result
    return await purge_uploads(
        driver, older_than=upload_age, dry_run=dry_run, emit=print, result=result
    )
