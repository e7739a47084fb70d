"""Local images: records and names, unpack into snapshots, load/save, list/inspect/tag/delete.

What an image is here, and where each part lives:

    images row      id = "sha256:<config digest hex>", the config JSON, the manifest JSON
                    (as stored in content; it names the config and layer blobs), created,
                    size (bytes of its unpacked layers), last_tag_time
    tags row        "docker.io/library/busybox:latest" → image id          (RepoTags)
    digests row     "docker.io/library/busybox@sha256:…" → image id       (RepoDigests)
    content         config, manifest and layer blobs, verified by digest
    snapshots       one committed snapshot per layer stack, keyed by chain ID, unpacked
                    ONCE and shared by every image (and container) built on it

An image is visible once its row is committed, and its row is written only after every
blob and snapshot it needs exists, in one transaction with its names. Deleting goes the
other way: names and row first (one transaction), then snapshots and blobs no remaining
image uses. A crash in between leaves unreferenced blobs or snapshots, never an image
with missing parts.

Errors follow Docker's wording where clients parse it: ``NotFound("No such image:
busybox:latest")``, ``Conflict("conflict: unable to delete …")``; malformed input
(references, archives, filters) raises ``InvalidArgument``.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import contextlib
import hashlib
import io
import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from dockyard.archive import apply_layer, open_decompressed, write_layer_from_diff
from dockyard.content.store import ContentStore
from dockyard.errors import Conflict, InvalidArgument, NotFound, SystemError
from dockyard.events import EventSink, NullSink
from dockyard.images._records import ImageRecord, record_from_row
from dockyard.images._save import SaveWriter
from dockyard.images._sources import (
    ImageSource,
    LayerSource,
    read_images,
)
from dockyard.images._untar import extract
from dockyard.images.filters import familiar_match, parse_timestamp
from dockyard.oci import mediatypes
from dockyard.oci.descriptor import Descriptor, Platform
from dockyard.oci.digest import digest_hex, is_sha256, sha256_digest, short_id
from dockyard.oci.image import (
    ZERO_TIME,
    chain_ids,
    created_unix,
    diff_ids,
    docker_config,
    format_rfc3339,
    parse_rfc3339,
    validate_config,
)
from dockyard.oci.manifest import Manifest, parse_manifest
from dockyard.reference import Reference, parse
from dockyard.snapshots.overlay import EXTRACT_PREFIX, Kind, OverlaySnapshotter
from dockyard.store.db import Database

__all__ = ["Image", "ImageService", "Progress", "PullRecord", "PulledLayer"]

Progress = Callable[[dict[str, Any]], None]
Users = Callable[[str], list[str]]

_HEX_RE = re.compile(r"^[a-f0-9]{1,64}$")
_FULL_HEX_RE = re.compile(r"^[a-f0-9]{64}$")
_CHUNK = 1 << 20
_PROGRESS_STEP = 512 << 10
_IMAGE_FILTERS = frozenset({"before", "dangling", "label", "reference", "since", "until"})
_PRUNE_FILTERS = frozenset({"dangling", "label", "label!", "until"})


@dataclass(frozen=True)
class Image:
    """A local image as the rest of the engine sees it."""

    id: str
    config: dict[str, Any]
    chain_id: str | None
    repo_tags: list[str]
    repo_digests: list[str]
    created: int
    size: int


def _familiar(stored: str) -> str:
    return parse(stored, default_tag=False).familiar()


def _now_rfc3339() -> str:
    return format_rfc3339(datetime.now(UTC))


class _ProgressReader(io.RawIOBase):
    """Counts bytes read from ``inner`` and reports Docker's "Loading layer" messages."""

    def __init__(self, inner: BinaryIO, total: int, layer_id: str, report: Progress) -> None:
        self._inner = inner
        self._total = total
        self._id = layer_id
        self._report = report
        self._current = 0
        self._last = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._current += n
        if n == 0:
            if not self._done:
                self._done = True
                self._emit()
        elif self._current - self._last >= _PROGRESS_STEP:
            self._last = self._current
            self._emit()
        return n

    def _emit(self) -> None:
        self._report(
            {
                "status": "Loading layer",
                "progressDetail": {"current": self._current, "total": self._total},
                "id": self._id,
            }
        )


@dataclass
class _LayerJob:
    """Ingest and verify one layer blob of an image; ``unpack`` it when it is the first
    source of a layer stack (``chain`` = parent chain + this layer) not yet unpacked."""

    index: int
    chain: str
    parent: str | None
    diff_id: str
    source: LayerSource
    unpack: bool
    blob: str | None = None
    tmp_key: str | None = None


@dataclass
class _Undo:
    """What a failed load must take back."""

    blobs: set[str]
    tmp_keys: list[str]
    committed: list[str]


class _CallbackReader(io.RawIOBase):
    """Counts bytes read from ``inner`` and hands ``(current, total)`` to ``report``."""

    def __init__(self, inner: BinaryIO, total: int, report: Callable[[int, int], None]) -> None:
        self._inner = inner
        self._total = total
        self._report = report
        self._current = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if n:
            self._current += n
            self._report(self._current, self._total)
        return n


@dataclass(frozen=True)
class PulledLayer:
    """One layer of a pulled image, bottom first: its chain ID, its blob (in content), and
    the ``extract-…`` snapshot ``unpack_blob`` made for it (None: the chain was unpacked)."""

    chain: str
    blob: str
    extracted: str | None = None


@dataclass(frozen=True)
class PullRecord:
    """What ``record_pulled`` did: the image ID, and whether the first name given now points
    at a different image than before (Docker's "Downloaded newer image" vs "up to date")."""

    image_id: str
    updated: bool


class ImageService:
    """Images of one engine; thread-safe (the database serialises writers)."""

    def __init__(
        self,
        db: Database,
        content: ContentStore,
        snapshotter: OverlaySnapshotter,
        *,
        platform: Platform | None = None,
        workers: int = 4,
        events: EventSink | None = None,
    ) -> None:
        self._db = db
        self._events: EventSink = events or NullSink()
        self._content = content
        self._snapshots = snapshotter
        self._platform = platform or Platform("linux", "amd64")
        self._workers = max(1, workers)
        self._progress_lock = threading.Lock()
        self._prune_lock = threading.Lock()

    # -- records ---------------------------------------------------------------------------

    def _get_row(self, image_id: str) -> ImageRecord | None:
        rows = self._db.query("SELECT * FROM images WHERE id = ?", (image_id,))
        return record_from_row(rows[0]) if rows else None

    def _all_rows(self) -> list[ImageRecord]:
        return [record_from_row(r) for r in self._db.query("SELECT * FROM images")]

    def _names_of(self, image_id: str) -> tuple[list[str], list[str]]:
        tags = [
            r[0] for r in self._db.query("SELECT ref FROM tags WHERE image_id = ?", (image_id,))
        ]
        digests = [
            r[0] for r in self._db.query("SELECT ref FROM digests WHERE image_id = ?", (image_id,))
        ]
        return sorted(tags), sorted(digests)

    def _image(self, row: ImageRecord) -> Image:
        tags, digests = self._names_of(row.id)
        chains = row.chains
        return Image(
            id=row.id,
            config=row.config,
            chain_id=chains[-1] if chains else None,
            repo_tags=[_familiar(t) for t in tags],
            repo_digests=[_familiar(d) for d in digests],
            created=row.created,
            size=row.size,
        )

    def count(self) -> int:
        """Number of images (tagged or not)."""
        return int(self._db.query("SELECT COUNT(*) FROM images")[0][0])

    def rootfs_parent(self, image: Image) -> str | None:
        """The snapshot key a container's rw layer is prepared on (None: empty rootfs)."""
        return image.chain_id

    # -- resolving names -------------------------------------------------------------------

    def _lookup_ref(self, ref: Reference) -> str | None:
        if ref.digest is not None:
            key = str(Reference(ref.domain, ref.path, None, ref.digest))
            rows = self._db.query("SELECT image_id FROM digests WHERE ref = ?", (key,))
        else:
            rows = self._db.query("SELECT image_id FROM tags WHERE ref = ?", (str(ref),))
        return str(rows[0][0]) if rows else None

    def _search_id(self, text: str) -> str | None:
        hex_part = text[len("sha256:") :] if text.startswith("sha256:") else text
        if not _HEX_RE.match(hex_part):
            return None
        rows = self._db.query(
            "SELECT id FROM images WHERE substr(id, 1, ?) = ? LIMIT 2",
            (len("sha256:") + len(hex_part), "sha256:" + hex_part),
        )
        return str(rows[0][0]) if len(rows) == 1 else None

    def _resolve_id(self, name: str) -> str:
        """moby's GetImage: a full ID; else a tag or digest reference; else an ID prefix."""
        if _FULL_HEX_RE.match(name) or is_sha256(name):
            image_id = name if is_sha256(name) else "sha256:" + name
            if self._get_row(image_id) is None:
                raise NotFound(f"No such image: {image_id}")
            return image_id
        ref = parse(name)
        found = self._lookup_ref(ref)
        if found is not None:
            return found
        found = self._search_id(name)
        if found is not None:
            return found
        raise NotFound(f"No such image: {ref.familiar()}")

    def resolve(self, name: str) -> Image:
        """The image ``name`` refers to: an ID (``sha256:<hex>``, ``<hex>``, a unique hex
        prefix), or a reference (``busybox``, ``busybox:1``, ``repo@sha256:<manifest>``).
        ``NotFound("No such image: busybox:latest")``; ``InvalidArgument`` for a malformed
        reference."""
        image_id = self._resolve_id(name)
        row = self._get_row(image_id)
        if row is None:  # deleted meanwhile
            raise NotFound(f"No such image: {name}")
        return self._image(row)

    # -- list / inspect --------------------------------------------------------------------

    def list(
        self, *, all: bool = False, filters: dict[str, builtins.list[str]] | None = None
    ) -> builtins.list[dict[str, Any]]:
        """``GET /images/json``: ImageSummary objects, newest first.

        ``all`` is accepted for compatibility; there are no intermediate images to hide.
        Filters: ``reference`` (Go path patterns on the familiar ref or name; only the
        matching names are shown), ``dangling`` (true/false), ``label`` (``key`` or
        ``key=value``, all must match), ``before``/``since`` (an image), ``until`` (a
        time). ``InvalidArgument("Invalid filter 'x'")`` for unknown filters or values.
        """
        del all
        filters = {k: v for k, v in (filters or {}).items() if v}
        for key in filters:
            if key not in _IMAGE_FILTERS:
                raise InvalidArgument(f"Invalid filter '{key}'")
        dangling: bool | None = None
        for value in filters.get("dangling", []):
            if value.lower() in ("true", "1"):
                dangling = True
            elif value.lower() in ("false", "0"):
                dangling = False
            else:
                raise InvalidArgument(f"Invalid filter 'dangling={value}'")
        before = min((self.resolve(v).created for v in filters.get("before", [])), default=None)
        since = max((self.resolve(v).created for v in filters.get("since", [])), default=None)
        until = min((parse_timestamp(v) for v in filters.get("until", [])), default=None)
        patterns = filters.get("reference", [])
        labels = filters.get("label", [])

        out: builtins.list[dict[str, Any]] = []
        for row in self._all_rows():
            tags, digests = self._names_of(row.id)
            if dangling is not None and dangling != (not tags and not digests):
                continue
            if before is not None and row.created >= before:
                continue
            if since is not None and row.created <= since:
                continue
            if until is not None and row.created > until:
                continue
            image_labels = (row.config.get("config") or {}).get("Labels") or {}
            if not builtins.all(_label_matches(image_labels, spec) for spec in labels):
                continue
            if patterns:
                tags = [t for t in tags if _any_match(patterns, t)]
                digests = [d for d in digests if _any_match(patterns, d)]
                if not tags and not digests:
                    continue
            out.append(
                {
                    "Id": row.id,
                    "ParentId": "",
                    "RepoTags": [_familiar(t) for t in tags],
                    "RepoDigests": [_familiar(d) for d in digests],
                    "Created": row.created,
                    "Size": row.size,
                    "SharedSize": -1,
                    "Labels": dict(image_labels),
                    "Containers": -1,
                }
            )
        out.sort(key=lambda s: (s["Created"], s["Id"]), reverse=True)
        return out

    def inspect(self, name: str) -> dict[str, Any]:
        """``GET /images/{name}/json``: ImageInspect v1.44. ``NotFound`` as ``resolve``."""
        image_id = self._resolve_id(name)
        row = self._get_row(image_id)
        if row is None:
            raise NotFound(f"No such image: {name}")
        image = self._image(row)
        config = row.config
        created = config.get("created")
        out: dict[str, Any] = {
            "Id": row.id,
            "RepoTags": image.repo_tags,
            "RepoDigests": image.repo_digests,
            "Parent": "",
            "Comment": config.get("comment") or "",
            "Created": _rfc3339(created) if isinstance(created, str) and created else "",
            "Container": "",
            "ContainerConfig": docker_config({}),
            "DockerVersion": config.get("docker_version") or "",
            "Author": config.get("author") or "",
            "Config": docker_config(config),
            "Architecture": config.get("architecture") or "",
            "Os": config.get("os") or "",
            "Size": row.size,
            "GraphDriver": {"Name": "overlay2", "Data": self._graph_driver_data(image)},
            "RootFS": {"Type": "layers", "Layers": diff_ids(config)},
            "Metadata": {"LastTagTime": row.last_tag_time or ZERO_TIME},
        }
        if config.get("variant"):
            out["Variant"] = config["variant"]
        if config.get("os.version"):
            out["OsVersion"] = config["os.version"]
        return out

    def _graph_driver_data(self, image: Image) -> dict[str, str]:
        if image.chain_id is None:
            return {}
        try:
            chain = self._snapshots.chain(image.chain_id)
        except NotFound:
            return {}
        dirs = [str(self._snapshots.upper_dir(s.key)) for s in chain]
        top = Path(dirs[0]).parent
        data = {
            "MergedDir": str(top / "merged"),
            "UpperDir": dirs[0],
            "WorkDir": str(top / "work"),
        }
        if len(dirs) > 1:
            data["LowerDir"] = ":".join(dirs[1:])
        return data

    # -- tag -------------------------------------------------------------------------------

    def tag(self, source: str, repo: str, tag: str | None) -> None:
        """``POST /images/{source}/tag?repo=…&tag=…``: point ``repo:tag`` (default
        ``latest``) at ``source``'s image, moving it from any other image. ``NotFound`` for
        a missing source; ``InvalidArgument`` for a bad reference or a digest in ``repo``."""
        image_id = self._resolve_id(source)
        ref = parse(repo, default_tag=False)
        if ref.digest is not None:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        if tag:
            ref = parse(f"{ref.name}:{tag}", default_tag=False)
        ref = ref.with_default_tag()
        if ref.familiar_name == "sha256":
            raise InvalidArgument(
                "refusing to create an ambiguous tag using digest algorithm as name"
            )
        if _FULL_HEX_RE.match(ref.familiar_name):
            raise InvalidArgument(
                f"invalid repository name ({ref.familiar_name}), cannot specify 64-byte"
                " hexadecimal strings"
            )
        with self._db.transaction() as conn:
            if conn.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None:
                raise NotFound(f"No such image: {source}")
            conn.execute(
                "INSERT OR REPLACE INTO tags (ref, image_id) VALUES (?, ?)", (str(ref), image_id)
            )
            conn.execute(
                "UPDATE images SET last_tag_time = ? WHERE id = ?", (_now_rfc3339(), image_id)
            )
        self.emit(image_id, ref.familiar(), "tag")

    def emit(self, actor_id: str, name: str, action: str) -> None:
        """An image event (dockerd's ``LogImageEvent``): the ``name`` attribute, plus the
        image's labels when ``actor_id`` is a known image."""
        attributes: dict[str, str] = {}
        row = self._get_row(actor_id) if actor_id.startswith("sha256:") else None
        if row is not None:
            labels = (row.config.get("config") or {}).get("Labels") or {}
            attributes.update({str(k): str(v) for k, v in labels.items()})
        attributes["name"] = name
        self._events.emit("image", action, actor_id, attributes)

    # -- delete ----------------------------------------------------------------------------

    def delete(
        self,
        name: str,
        *,
        force: bool = False,
        prune: bool = True,
        users: Users,
        running: Users | None = None,
    ) -> builtins.list[dict[str, str]]:
        """Like ``_delete``; each untagged name and deleted image is an event."""
        image_id = self._resolve_id(name)
        records = self._delete(name, force=force, prune=prune, users=users, running=running)
        for item in records:
            if "Untagged" in item:
                self._events.emit("image", "untag", image_id, {"name": image_id})
            elif item.get("Deleted") == image_id:
                self._events.emit("image", "delete", image_id, {"name": image_id})
        return records

    def _delete(
        self,
        name: str,
        *,
        force: bool = False,
        prune: bool = True,
        users: Users,
        running: Users | None = None,
    ) -> builtins.list[dict[str, str]]:
        """``DELETE /images/{name}`` with dockerd's rules (``daemon/images/image_delete.go``).

        By reference: that name is untagged (and, when it was the repository's last tag,
        the repository's digest names too); if other names remain, that is all. By ID, or
        when the last name went: the image is deleted, then its layer snapshots that no
        other image or container uses, then its unreferenced blobs.

        ``users(id)`` gives the containers using the image, ``running(id)`` those of them
        that run. Conflicts (``Conflict``): a container uses the image and the name is a
        reference (unless ``force``); deleting by ID an image a container uses ("must be
        forced") or that runs ("cannot be forced"); deleting by ID an image with names in
        several repositories (unless ``force``). ``prune`` is accepted for compatibility:
        images have no parent images to prune.
        """
        del prune
        running = running or (lambda _id: [])
        image_id = self._resolve_id(name)
        records: builtins.list[dict[str, str]] = []
        removed_ref = False
        if not _is_id_prefix(image_id, name):
            if not force:
                in_use = users(image_id)
                if in_use:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{name}" (must force)'
                        f" - container {short_id(in_use[0])} is using its referenced image"
                        f" {short_id(image_id)}"
                    )
            ref = parse(name)
            with self._db.transaction() as conn:
                removed = self._remove_ref(conn, ref)
                if removed is None:
                    raise NotFound(f"No such image: {ref.familiar()}")
                records.append({"Untagged": ref.familiar()})
                tags, digests = self._refs_in(conn, image_id)
                if ref.digest is None and not any(
                    parse(t).name == ref.name for t in tags
                ):  # the repository's last tag went: its digest names go too
                    for d in builtins.list(digests):
                        if parse(d, default_tag=False).name == ref.name:
                            conn.execute("DELETE FROM digests WHERE ref = ?", (d,))
                            records.append({"Untagged": _familiar(d)})
                            digests.remove(d)
                if tags or digests:
                    return records
            removed_ref = True
        else:
            tags, digests = self._refs(image_id)
            if _is_single_reference(tags, digests):
                conflict = self._conflict(
                    image_id, soft=not force, references=False, users=users, running=running
                )
                if conflict is not None:
                    raise Conflict(conflict[1])
                with self._db.transaction() as conn:
                    for t in tags:
                        conn.execute("DELETE FROM tags WHERE ref = ?", (t,))
                        records.append({"Untagged": _familiar(t)})
                    for d in digests:
                        conn.execute("DELETE FROM digests WHERE ref = ?", (d,))
                        records.append({"Untagged": _familiar(d)})
        self._delete_helper(image_id, records, force, removed_ref, users, running)
        return records

    def _refs_in(
        self, conn: sqlite3.Connection, image_id: str
    ) -> tuple[builtins.list[str], builtins.list[str]]:
        tags = [r[0] for r in conn.execute("SELECT ref FROM tags WHERE image_id = ?", (image_id,))]
        digests = [
            r[0] for r in conn.execute("SELECT ref FROM digests WHERE image_id = ?", (image_id,))
        ]
        return tags, digests

    def _refs(self, image_id: str) -> tuple[builtins.list[str], builtins.list[str]]:
        return self._names_of(image_id)

    @staticmethod
    def _remove_ref(conn: sqlite3.Connection, ref: Reference) -> str | None:
        if ref.digest is not None:
            key = str(Reference(ref.domain, ref.path, None, ref.digest))
            table = "digests"
        else:
            key = str(ref)
            table = "tags"
        row = conn.execute(f"SELECT image_id FROM {table} WHERE ref = ?", (key,)).fetchone()
        if row is None:
            return None
        conn.execute(f"DELETE FROM {table} WHERE ref = ?", (key,))
        return str(row[0])

    def _conflict(
        self, image_id: str, *, soft: bool, references: bool, users: Users, running: Users
    ) -> tuple[bool, str, bool] | None:
        """moby's checkImageDeleteConflict: (hard, message, used) or None. Hard conflicts
        (a running container) always count; ``soft`` adds the forceable ones: names left
        (only when ``references``) and stopped containers."""
        hex12 = short_id(image_id)
        live = running(image_id)
        if live:
            return (
                True,
                f"conflict: unable to delete {hex12} (cannot be forced) - image is being used"
                f" by running container {short_id(live[0])}",
                True,
            )
        if not soft:
            return None
        tags, digests = self._refs(image_id) if references else ([], [])
        if tags or digests:
            return (
                False,
                f"conflict: unable to delete {hex12} (must be forced) - image is referenced"
                " in multiple repositories",
                False,
            )
        stopped = [c for c in users(image_id) if c not in live]
        if stopped:
            return (
                False,
                f"conflict: unable to delete {hex12} (must be forced) - image is being used"
                f" by stopped container {short_id(stopped[0])}",
                True,
            )
        return None

    def _delete_helper(
        self,
        image_id: str,
        records: builtins.list[dict[str, str]],
        force: bool,
        quiet: bool,
        users: Users,
        running: Users,
    ) -> None:
        conflict = self._conflict(
            image_id, soft=not force, references=True, users=users, running=running
        )
        if conflict is not None:
            _, message, used = conflict
            if quiet and (not self._is_dangling(image_id) or used):
                return  # untagging was what the caller asked for; keep the image
            raise Conflict(message)
        with self._db.transaction() as conn:
            row = conn.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
            if row is None:
                raise NotFound(f"No such image: {image_id}")
            doomed = record_from_row(row)
            tags, digests = self._refs_in(conn, image_id)
            for t in tags:
                conn.execute("DELETE FROM tags WHERE ref = ?", (t,))
                records.append({"Untagged": _familiar(t)})
            for d in digests:
                conn.execute("DELETE FROM digests WHERE ref = ?", (d,))
                records.append({"Untagged": _familiar(d)})
            conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
        records.append({"Deleted": image_id})
        for chain in self._release_layers(doomed.chains):
            records.append({"Deleted": chain})
        self._release_blobs(doomed.blobs())

    def _is_dangling(self, image_id: str) -> bool:
        tags, digests = self._refs(image_id)
        return not tags and not digests

    def _release_layers(self, chains: Iterable[str]) -> builtins.list[str]:
        """Remove the layer snapshots (top first) that no image and no container uses."""
        used: set[str] = set()
        for row in self._all_rows():
            used.update(row.chains)
        removed: builtins.list[str] = []
        for chain in reversed(builtins.list(chains)):
            if chain in used:
                break
            try:
                self._snapshots.remove(chain)
            except NotFound:
                continue
            except Conflict:
                break  # a container's layer (or another stack) is built on it
            removed.append(chain)
        return removed

    def _release_blobs(self, blobs: Iterable[str]) -> None:
        used: set[str] = set()
        for row in self._all_rows():
            used.update(row.blobs())
        for digest in blobs:
            if digest not in used:
                with contextlib.suppress(NotFound):
                    self._content.delete(digest)

    # -- prune -----------------------------------------------------------------------------

    def prune(
        self,
        filters: dict[str, builtins.list[str]] | None,
        *,
        users: Users,
        running: Users | None = None,
        parents: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """``POST /images/prune`` as dockerd (``daemon/images/image_prune.go``).

        ``dangling=true`` (the default) prunes images without a tag (digest names are
        untagged with them); ``dangling=false`` every image. ``until`` (a time), ``label``
        (all must match) and ``label!`` (not all may match) narrow the choice. An image a
        container uses (running or not) stays: its delete conflicts, and a conflict skips.
        ``parents`` (image → the image it was built on, the build cache's links) stands
        for moby's parent chain: an untagged image that others were built on is an
        intermediate and is not a candidate; deleting an image deletes its untagged
        parents that have no other children left (``PruneChildren``). Layers and blobs
        that remaining images share stay. Answers ``{"ImagesDeleted": [...] | None,
        "SpaceReclaimed": bytes of the deleted layers}``. ``InvalidArgument`` for a bad
        filter; ``Conflict`` while another prune runs.
        """
        filters = {k: v for k, v in (filters or {}).items() if v}
        for key in filters:
            if key not in _PRUNE_FILTERS:
                raise InvalidArgument(f"Invalid filter '{key}'")
        dangling_only = True
        values = filters.get("dangling", [])
        if len(values) > 1:
            raise InvalidArgument(f"Invalid filter 'dangling={values}'")
        for value in values:
            if value.lower() == "true" or value == "1":
                dangling_only = True
            elif value.lower() == "false" or value == "0":
                dangling_only = False
            else:
                raise InvalidArgument(f"Invalid filter 'dangling={value}'")
        until: float | None = None
        if len(filters.get("until", [])) > 1:
            raise InvalidArgument("more than one until filter specified")
        for value in filters.get("until", []):
            until = parse_timestamp(value)
        running = running or (lambda _id: [])
        parents = parents or {}
        if not self._prune_lock.acquire(blocking=False):
            raise Conflict("a prune operation is already running")
        try:
            return self._prune(filters, dangling_only, until, users, running, parents)
        finally:
            self._prune_lock.release()

    def _prune(
        self,
        filters: dict[str, builtins.list[str]],
        dangling_only: bool,
        until: float | None,
        users: Users,
        running: Users,
        parents: dict[str, str],
    ) -> dict[str, Any]:
        rows = sorted(self._all_rows(), key=lambda r: (r.created, r.id))
        alive = {row.id for row in rows}
        sizes: dict[str, int] = {}
        for row in rows:
            for chain in row.chains:
                if chain not in sizes:
                    with contextlib.suppress(NotFound):
                        sizes[chain] = self._snapshots.usage(chain)

        def has_children(image_id: str) -> bool:
            return any(p == image_id and c in alive for c, p in parents.items())

        deleted: builtins.list[dict[str, str]] = []
        for row in rows:
            if row.id not in alive:
                continue  # went with a child deleted before it
            tags, digests = self._names_of(row.id)
            if not tags and not digests and has_children(row.id):
                continue  # an intermediate image: it goes with its children
            if until is not None and row.created > until:
                continue
            labels = (row.config.get("config") or {}).get("Labels") or {}
            if not _prune_labels_match(filters, labels):
                continue
            records: builtins.list[dict[str, str]] = []
            try:
                if tags or digests:
                    if dangling_only and tags:
                        continue
                    for ref in [*tags, *digests]:
                        with contextlib.suppress(Conflict, NotFound):
                            records += self.delete(ref, users=users, running=running)
                else:
                    records += self.delete(row.id, users=users, running=running)
            except (Conflict, NotFound):
                pass
            if self._get_row(row.id) is None:
                alive.discard(row.id)
                self._prune_parents(row.id, parents, alive, has_children, records, users, running)
            deleted += records
        reclaimed = sum(sizes.get(r["Deleted"], 0) for r in deleted if "Deleted" in r)
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def _prune_parents(
        self,
        image_id: str,
        parents: dict[str, str],
        alive: set[str],
        has_children: Callable[[str], bool],
        records: builtins.list[dict[str, str]],
        users: Users,
        running: Users,
    ) -> None:
        """Delete the untagged, unused, childless images ``image_id`` was built on."""
        parent = parents.get(image_id)
        seen: set[str] = set()
        while parent and parent in alive and parent not in seen:
            seen.add(parent)
            if not self._is_dangling(parent) or has_children(parent):
                return
            if self._conflict(parent, soft=True, references=True, users=users, running=running):
                return
            try:
                self._delete_helper(parent, records, False, True, users, running)
            except (Conflict, NotFound):
                return
            alive.discard(parent)
            parent = parents.get(parent)

    # -- load ------------------------------------------------------------------------------

    def load(self, src: BinaryIO, *, progress: Progress = lambda m: None) -> builtins.list[str]:
        """``POST /images/load``: import a ``docker save`` tarball or an OCI layout tarball.

        Everything is verified (config digests, manifest and blob digests, each layer's
        diff ID against the config) before the images and their names are recorded, in
        one transaction. Layers whose chain is already unpacked are verified, not unpacked
        again. Returns Docker's messages ("Loaded image: busybox:latest", "Loaded image ID:
        sha256:…"); ``progress`` gets "Loading layer" JSON messages. A truncated or corrupt
        tarball raises ``InvalidArgument`` and leaves nothing behind.
        """
        report = self._locked(progress)
        undo = _Undo(set(), [], [])
        try:
            with self._content.tempdir("load-") as tmp:
                archive = extract(src, tmp / "x")
                sources = read_images(archive, self._platform)
                return self._import(sources, report, undo)
        except BaseException:
            self._rollback(undo)
            raise

    def _locked(self, progress: Progress) -> Progress:
        def report(message: dict[str, Any]) -> None:
            with self._progress_lock:
                progress(message)

        return report

    def _import(
        self, sources: builtins.list[ImageSource], report: Progress, undo: _Undo
    ) -> builtins.list[str]:
        plans: builtins.list[tuple[ImageSource, str, dict[str, Any], builtins.list[_LayerJob]]] = []
        jobs: dict[tuple[str, str], _LayerJob] = {}
        chains_seen: set[str] = set()
        for source in sources:
            try:
                config_text = source.config.decode("utf-8")
                config = validate_config(json.loads(config_text))
            except ValueError as exc:  # UnicodeDecodeError is one
                raise InvalidArgument(f"invalid image config: {exc}") from None
            if config.get("os", self._platform.os) != self._platform.os:
                raise InvalidArgument(
                    f"image operating system {config.get('os')!r} cannot be used on this platform"
                )
            ids = diff_ids(config)
            if len(ids) != len(source.layers):
                raise InvalidArgument(
                    f"invalid manifest, layers length mismatch: expected {len(ids)},"
                    f" got {len(source.layers)}"
                )
            chains = chain_ids(ids)
            image_jobs: builtins.list[_LayerJob] = []
            for i, (chain, diff_id, layer) in enumerate(
                zip(chains, ids, source.layers, strict=True)
            ):
                key = (chain, layer.digest or str(layer.path))
                job = jobs.get(key)
                if job is None:
                    job = jobs[key] = _LayerJob(
                        index=i,
                        chain=chain,
                        parent=chains[i - 1] if i else None,
                        diff_id=diff_id,
                        source=layer,
                        unpack=chain not in chains_seen,
                    )
                    chains_seen.add(chain)
                image_jobs.append(job)
            plans.append((source, config_text, config, image_jobs))

        ordered = sorted(jobs.values(), key=lambda j: j.index)
        self._run_jobs(ordered, report, undo)
        for job in ordered:  # bottom up, so that every parent is committed first
            if job.tmp_key is None:
                continue
            try:
                self._snapshots.commit(job.chain, job.tmp_key, parent=job.parent)
                undo.committed.append(job.chain)
            except Conflict:  # a concurrent load committed the same layer first
                self._snapshots.remove(job.tmp_key)
            undo.tmp_keys.remove(job.tmp_key)

        records: builtins.list[tuple[ImageSource, str, str, int, int]] = []
        for source, config_text, config, image_jobs in plans:
            manifest = source.manifest or self._synthesize_manifest(source, image_jobs)
            for data in (source.config, manifest):
                digest = sha256_digest(data)
                if not self._content.has(digest):
                    self._content.write_blob(data)
                    undo.blobs.add(digest)
            size = 0
            for job in image_jobs:
                info = self._snapshots.stat(job.chain)
                size += info.size if info is not None else 0
            records.append((source, config_text, manifest.decode(), created_unix(config), size))

        messages: builtins.list[str] = []
        loaded: builtins.list[str] = []
        with self._db.transaction() as conn:
            # a concurrent delete may have released a layer this load found present
            for job in ordered:
                row = conn.execute(
                    "SELECT kind FROM snapshots WHERE key = ?", (job.chain,)
                ).fetchone()
                if (
                    row is None
                    or row[0] != Kind.COMMITTED.value
                    or job.blob is None
                    or not self._content.has(job.blob)
                ):
                    raise Conflict(
                        f"layer {job.chain} was removed while the image was loaded; load again"
                    )
            for source, config_text, manifest_text, created, size in records:
                image_id = source.config_digest
                conn.execute(
                    "INSERT OR IGNORE INTO images (id, config, manifest, created, size)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (image_id, config_text, manifest_text, created, size),
                )
                for ref in source.tags:
                    previous = conn.execute(
                        "SELECT image_id FROM tags WHERE ref = ?", (str(ref),)
                    ).fetchone()
                    if previous is not None and previous[0] != image_id:
                        messages.append(
                            f"The image {ref.familiar()} already exists, renaming the old one"
                            f" with ID {previous[0]} to empty string"
                        )
                    conn.execute(
                        "INSERT OR REPLACE INTO tags (ref, image_id) VALUES (?, ?)",
                        (str(ref), image_id),
                    )
                    messages.append(f"Loaded image: {ref.familiar()}")
                for ref in source.repo_digests:
                    conn.execute(
                        "INSERT OR REPLACE INTO digests (ref, image_id) VALUES (?, ?)",
                        (str(ref), image_id),
                    )
                if not source.tags:
                    messages.append(f"Loaded image ID: {image_id}")
                loaded.append(image_id)
        undo.blobs.clear()
        undo.committed.clear()
        for image_id in loaded:
            self.emit(image_id, image_id, "load")
        return messages

    def _run_jobs(self, jobs: builtins.list[_LayerJob], report: Progress, undo: _Undo) -> None:
        """Ingest, verify and unpack layers, several at once (each into its own dir)."""
        undo_lock = threading.Lock()

        def run(job: _LayerJob) -> None:
            self._unpack(job, report, undo, undo_lock)

        if len(jobs) <= 1 or self._workers == 1:
            for job in jobs:
                run(job)
            return
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=min(self._workers, len(jobs)), thread_name_prefix="unpack"
        ) as pool:
            futures = [pool.submit(run, job) for job in jobs]
            concurrent.futures.wait(futures)
        for future in futures:  # the first failure, in layer order
            future.result()

    def _unpack(self, job: _LayerJob, report: Progress, undo: _Undo, lock: threading.Lock) -> None:
        layer = job.source
        had = layer.digest is not None and self._content.has(layer.digest)
        job.blob = self._content.ingest_file(layer.path, layer.digest, layer.size)
        if not had:
            with lock:
                undo.blobs.add(job.blob)
        existing = self._snapshots.stat(job.chain)
        if not job.unpack or (existing is not None and existing.kind is Kind.COMMITTED):
            with self._content.open(job.blob) as blob, open_decompressed(blob) as plain:
                got = _hash_stream(plain)
        else:
            key = f"{EXTRACT_PREFIX}{uuid.uuid4().hex[:12]}-{digest_hex(job.chain)[:12]}"
            self._snapshots.prepare(key, None)
            with lock:
                undo.tmp_keys.append(key)
            job.tmp_key = key
            total = self._content.size(job.blob)
            with self._content.open(job.blob) as blob:
                reader = io.BufferedReader(
                    _ProgressReader(blob, total, short_id(job.chain), report), _CHUNK
                )
                got = apply_layer(reader, self._snapshots.upper_dir(key)).diff_id
        if got != job.diff_id:
            raise InvalidArgument(
                f'invalid diffID for layer {job.index}: expected "{job.diff_id}", got "{got}"'
            )

    def _synthesize_manifest(self, source: ImageSource, jobs: builtins.list[_LayerJob]) -> bytes:
        """An OCI manifest for a docker-archive image, naming the layer blobs as stored."""
        layers = []
        for job in jobs:
            if job.blob is None:  # pragma: no cover - every job ran before this
                raise SystemError(f"layer {job.diff_id} was not ingested")
            media_type = _sniff_layer_type(self._content, job.blob)
            layers.append(Descriptor(media_type, job.blob, self._content.size(job.blob)))
        manifest = Manifest(
            config=Descriptor(mediatypes.OCI_CONFIG, source.config_digest, len(source.config)),
            layers=tuple(layers),
        )
        return manifest.to_bytes()

    def _rollback(self, undo: _Undo) -> None:
        """Take back what a failed load made: half-made and new layer snapshots, new blobs
        (each only while no recorded image uses it)."""
        for key in undo.tmp_keys:
            with contextlib.suppress(NotFound, Conflict):
                self._snapshots.remove(key)
        if undo.committed:
            used: set[str] = set()
            for row in self._all_rows():
                used.update(row.chains)
            for chain in reversed(undo.committed):  # top first: children before parents
                if chain not in used:
                    with contextlib.suppress(NotFound, Conflict):
                        self._snapshots.remove(chain)
        if undo.blobs:
            self._release_blobs(undo.blobs)

    # -- save ------------------------------------------------------------------------------

    def save(self, names: builtins.list[str], out: BinaryIO) -> None:
        """``GET /images/get``: write the images as one tarball both ``docker load`` and
        OCI tools read: dockerd's legacy layout (``<id>/{VERSION,json,layer.tar}``,
        ``<config hex>.json``, ``manifest.json``, ``repositories``) plus an OCI layout
        (``oci-layout``, ``index.json``, ``blobs/sha256/…``), as Docker 25 writes it; the
        legacy ``layer.tar`` files are symlinks to the uncompressed layer blobs.

        A name without tag (``busybox``) saves every tag of that repository, as dockerd
        does. ``NotFound("No such image: X")`` for an unknown name (before anything is
        written).
        """
        selected: dict[str, builtins.list[Reference]] = {}
        for name in names:
            for image_id, ref in self._save_targets(name):
                refs = selected.setdefault(image_id, [])
                if ref is not None and ref not in refs:
                    refs.append(ref)
        rows = []
        for image_id in selected:
            row = self._get_row(image_id)
            if row is None:
                raise NotFound(f"No such image: {image_id}")
            rows.append(row)
        with self._content.tempdir("save-") as tmp:
            writer = SaveWriter(out, tmp, self._content, self._snapshots)
            writer.write([(row, selected[row.id]) for row in rows])
        for row in rows:
            self.emit(row.id, row.id, "save")

    def _save_targets(self, name: str) -> Iterator[tuple[str, Reference | None]]:
        if _FULL_HEX_RE.match(name) or is_sha256(name):
            image_id = name if is_sha256(name) else "sha256:" + name
            if self._get_row(image_id) is None:
                raise NotFound(f"No such image: {name}")
            yield image_id, None
            return
        ref = parse(name, default_tag=False)
        if ref.familiar_name == "sha256":
            found = self._search_id(name)
            if found is None:
                raise NotFound(f"No such image: {name}")
            yield found, None
            return
        if ref.tag is None and ref.digest is None:
            prefix = ref.name + ":"
            rows = self._db.query(
                "SELECT ref, image_id FROM tags WHERE substr(ref, 1, ?) = ? ORDER BY ref",
                (len(prefix), prefix),
            )
            if rows:
                for r in rows:
                    yield str(r[1]), parse(r[0], default_tag=False)
                return
            found = self._search_id(name)
            if found is None:
                raise NotFound(f"No such image: {ref.with_default_tag().familiar()}")
            yield found, None
            return
        found = self._lookup_ref(ref)
        if found is None:
            raise NotFound(f"No such image: {ref.familiar()}")
        yield found, (ref if ref.digest is None else None)

    # -- pull and push (the registry client builds on these) -------------------------------

    def layer_chains(self, image_id: str) -> builtins.list[str]:
        """The chain IDs of the image's layers, bottom first (``[]`` for an unknown ID)."""
        row = self._get_row(image_id)
        return builtins.list(row.chains) if row is not None else []

    def has_image(self, image_id: str) -> bool:
        """True when an image with this ID (``sha256:<config digest>``) is recorded."""
        return self._get_row(image_id) is not None

    def layer_unpacked(self, chain: str) -> bool:
        """True when the layer stack ``chain`` is unpacked (a committed snapshot)."""
        info = self._snapshots.stat(chain)
        return info is not None and info.kind is Kind.COMMITTED

    def unpack_blob(
        self,
        blob: str,
        diff_id: str,
        chain: str,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> str:
        """Unpack layer blob ``blob`` (in content) into a new ``extract-…`` snapshot without
        parent and check its diff ID; return the snapshot key for ``record_pulled``.

        Layers unpack independently (several at once); ``record_pulled`` gives each its
        parent when it commits them bottom up. ``progress(current, total)`` counts blob
        bytes read. ``InvalidArgument`` for a corrupt layer or a diff ID that is not
        ``diff_id``; ``NotFound`` for a missing blob. Nothing is left behind on failure.
        """
        key = f"{EXTRACT_PREFIX}{uuid.uuid4().hex[:12]}-{digest_hex(chain)[:12]}"
        self._snapshots.prepare(key, None)
        try:
            total = self._content.size(blob)
            with self._content.open(blob) as f:
                src: BinaryIO = f
                if progress is not None:
                    src = io.BufferedReader(_CallbackReader(f, total, progress), _CHUNK)
                got = apply_layer(src, self._snapshots.upper_dir(key)).diff_id
            if got != diff_id:
                raise InvalidArgument(
                    f'invalid diffID for layer {short_id(blob)}: expected "{diff_id}", got "{got}"'
                )
        except BaseException:
            with contextlib.suppress(NotFound, Conflict):
                self._snapshots.remove(key)
            raise
        return key

    def verify_blob(self, blob: str, diff_id: str) -> None:
        """Check that layer blob ``blob`` uncompresses to ``diff_id`` (when its chain is
        unpacked already and only the blob was fetched). ``InvalidArgument`` otherwise."""
        with self._content.open(blob) as f, open_decompressed(f) as plain:
            got = _hash_stream(plain)
        if got != diff_id:
            raise InvalidArgument(
                f'invalid diffID for layer {short_id(blob)}: expected "{diff_id}", got "{got}"'
            )

    def record_pulled(
        self,
        config: bytes,
        manifest: bytes,
        layers: builtins.list[PulledLayer],
        names: builtins.list[Reference],
    ) -> PullRecord:
        """Make a pulled image visible: commit its ``extract-…`` snapshots bottom up (each on
        the layer below), store config and manifest, then record the image (ID = config
        digest) and ``names`` (tags, and ``repo@sha256:…`` digests for RepoDigests) in one
        transaction.

        When the image is recorded already only the names are set. ``Conflict`` when a layer
        went away meanwhile (a concurrent delete); on any failure what this call made is
        taken back and the extract snapshots are removed.
        """
        image_id = sha256_digest(config)
        undo = _Undo(set(), [], [])
        try:
            parent: str | None = None
            for layer in layers:
                if layer.extracted is not None:
                    try:
                        self._snapshots.commit(layer.chain, layer.extracted, parent=parent)
                        undo.committed.append(layer.chain)
                    except Conflict:  # a concurrent pull committed the same layer first
                        self._snapshots.remove(layer.extracted)
                parent = layer.chain
            exists = self.has_image(image_id)
            size = 0
            manifest_text = manifest.decode()
            config_text = config.decode()
            parsed = validate_config(json.loads(config_text))
            chains = chain_ids(diff_ids(parsed))
            if not exists:
                for data in (config, manifest):
                    digest = sha256_digest(data)
                    if not self._content.has(digest):
                        self._content.write_blob(data)
                        undo.blobs.add(digest)
                for chain in chains:
                    info = self._snapshots.stat(chain)
                    size += info.size if info is not None else 0
            with self._db.transaction() as conn:
                row = conn.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone()
                if row is None:
                    for chain in chains:
                        found = conn.execute(
                            "SELECT kind FROM snapshots WHERE key = ?", (chain,)
                        ).fetchone()
                        if found is None or found[0] != Kind.COMMITTED.value:
                            raise Conflict(
                                f"layer {chain} was removed while the image was pulled; pull again"
                            )
                    for layer in layers:
                        if not self._content.has(layer.blob):
                            raise Conflict(
                                f"blob {layer.blob} was removed while the image was pulled;"
                                " pull again"
                            )
                    conn.execute(
                        "INSERT INTO images (id, config, manifest, created, size)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (image_id, config_text, manifest_text, created_unix(parsed), size),
                    )
                changed = self._set_names(conn, image_id, names)
        except BaseException:
            for layer in layers:
                if layer.extracted is not None and layer.chain not in undo.committed:
                    with contextlib.suppress(NotFound, Conflict):
                        self._snapshots.remove(layer.extracted)
            self._rollback(undo)
            raise
        return PullRecord(image_id, bool(changed and changed[0]))

    @staticmethod
    def _set_names(
        conn: sqlite3.Connection, image_id: str, names: builtins.list[Reference]
    ) -> builtins.list[bool]:
        """Point each name at ``image_id``; for each, whether it pointed elsewhere before."""
        changed: builtins.list[bool] = []
        for ref in names:
            if ref.digest is not None:
                table, key = "digests", str(Reference(ref.domain, ref.path, None, ref.digest))
            else:
                table, key = "tags", str(ref.with_default_tag())
            previous = conn.execute(
                f"SELECT image_id FROM {table} WHERE ref = ?", (key,)
            ).fetchone()
            conn.execute(
                f"INSERT OR REPLACE INTO {table} (ref, image_id) VALUES (?, ?)", (key, image_id)
            )
            changed.append(previous is None or previous[0] != image_id)
        return changed

    def discard_pulled(self, blobs: Iterable[str], extracted: Iterable[str]) -> None:
        """Take back what a failed pull made: its ``extract-…`` snapshots, and the blobs it
        fetched that no recorded image uses."""
        for key in extracted:
            with contextlib.suppress(NotFound, Conflict):
                self._snapshots.remove(key)
        wanted = set(blobs)
        if wanted:
            self._release_blobs(wanted)

    def push_source(self, ref: Reference) -> tuple[str, bytes, bytes] | None:
        """For ``repo:tag``: (image ID, config bytes, manifest bytes) as stored, or None."""
        image_id = self._lookup_ref(ref)
        if image_id is None:
            return None
        row = self._get_row(image_id)
        if row is None:
            return None
        return row.id, row.config_raw, row.manifest

    def repository_tags(self, name: str) -> builtins.list[Reference]:
        """Every tag of repository ``name`` (``domain/path``), sorted."""
        prefix = name + ":"
        rows = self._db.query(
            "SELECT ref FROM tags WHERE substr(ref, 1, ?) = ? ORDER BY ref",
            (len(prefix), prefix),
        )
        return [parse(r[0], default_tag=False) for r in rows]

    def add_repo_digest(self, image_id: str, ref: Reference) -> None:
        """Record ``repo@sha256:…`` (a pushed manifest) as a RepoDigest of ``image_id``."""
        if ref.digest is None:
            raise InvalidArgument("a repo digest needs a digest")
        with self._db.transaction() as conn:
            if conn.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None:
                raise NotFound(f"No such image: {image_id}")
            self._set_names(conn, image_id, [ref])

    # -- commit (build, ``docker commit``) -------------------------------------------------

    def raw_config(self, image: Image) -> dict[str, Any]:
        """The image's whole stored config (``architecture``, ``rootfs``, ``history`` …)."""
        row = self._get_row(image.id)
        if row is None:
            raise NotFound(f"No such image: {image.id}")
        return dict(row.config)

    def commit(
        self,
        parent: Image | None,
        diff_dir: Path | None,
        container_config: dict[str, Any],
        history: dict[str, Any],
        *,
        tags: Iterable[str] = (),
        extra: dict[str, Any] | None = None,
    ) -> Image:
        """Record a new image on ``parent`` (None: an empty rootfs, ``FROM scratch``).

        ``diff_dir`` (an overlay upper dir, whiteouts as 0:0 char devices) becomes one new
        uncompressed layer (blob in content, unpacked into the snapshot of its chain ID,
        shared when it exists already); None adds no layer and marks the history entry
        ``empty_layer``. ``container_config`` is the new image's ``config``; ``history``
        (``created_by``, ``comment`` …) is appended; ``extra`` sets top-level config keys
        (``author``, ``comment``). ``tags`` are set in the same transaction as the row.
        Nothing is left behind on failure (blobs and snapshots no image uses are released).
        """
        if parent is not None:
            base = self.raw_config(parent)
            row = self._get_row(parent.id)
            assert row is not None
            layers = builtins.list(parse_manifest_layers(row.manifest))
        else:
            base = {
                "architecture": self._platform.architecture,
                "os": self._platform.os,
                "rootfs": {"type": "layers", "diff_ids": []},
            }
            layers = []
        now = _now_rfc3339()
        config: dict[str, Any] = {
            k: v for k, v in base.items() if k not in ("config", "container_config", "container")
        }
        config.update(extra or {})
        config["created"] = now
        config["config"] = container_config
        ids = builtins.list(base.get("rootfs", {}).get("diff_ids") or [])
        entry = {"created": now, **history}
        undo = _Undo(set(), [], [])
        try:
            if diff_dir is not None:
                parent_chain = chain_ids(ids)[-1] if ids else None
                with self._content.tempdir("commit-") as tmp:
                    tar_path = tmp / "layer.tar"
                    with open(tar_path, "wb") as out:
                        diff_id = write_layer_from_diff(diff_dir, out)
                    had = self._content.has(diff_id)
                    blob = self._content.ingest_file(tar_path, diff_id)
                    if not had:
                        undo.blobs.add(blob)
                    chain = chain_ids([*ids, diff_id])[-1]
                    if not self.layer_unpacked(chain):
                        key = f"{EXTRACT_PREFIX}{uuid.uuid4().hex[:12]}-{digest_hex(chain)[:12]}"
                        self._snapshots.prepare(key, parent_chain)
                        undo.tmp_keys.append(key)
                        with open(tar_path, "rb") as f:
                            apply_layer(f, self._snapshots.upper_dir(key))
                        try:
                            self._snapshots.commit(chain, key)
                            undo.committed.append(chain)
                        except Conflict:  # a concurrent commit made the same layer
                            self._snapshots.remove(key)
                        undo.tmp_keys.remove(key)
                ids.append(diff_id)
                layers.append(Descriptor(mediatypes.OCI_LAYER, blob, self._content.size(blob)))
            else:
                entry["empty_layer"] = True
            config["rootfs"] = {"type": "layers", "diff_ids": ids}
            config["history"] = [*(base.get("history") or []), entry]
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
            image_id = sha256_digest(config_bytes)
            manifest = Manifest(
                config=Descriptor(mediatypes.OCI_CONFIG, image_id, len(config_bytes)),
                layers=tuple(layers),
            ).to_bytes()
            for data in (config_bytes, manifest):
                digest = sha256_digest(data)
                if not self._content.has(digest):
                    self._content.write_blob(data)
                    undo.blobs.add(digest)
            size = 0
            for chain in chain_ids(ids):
                info = self._snapshots.stat(chain)
                size += info.size if info is not None else 0
            refs = [parse(t).with_default_tag() for t in tags]
            with self._db.transaction() as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO images (id, config, manifest, created, size)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        image_id,
                        config_bytes.decode(),
                        manifest.decode(),
                        created_unix(config),
                        size,
                    ),
                )
                self._set_names(conn, image_id, refs)
                if refs:
                    conn.execute(
                        "UPDATE images SET last_tag_time = ? WHERE id = ?", (now, image_id)
                    )
        except BaseException:
            self._rollback(undo)
            raise
        return self.resolve(image_id)

    def set_tags(self, image_id: str, tags: builtins.list[str]) -> None:
        """Point each of ``tags`` at ``image_id`` (``docker build -t`` on a cached image)."""
        refs = [parse(t).with_default_tag() for t in tags]
        with self._db.transaction() as conn:
            if conn.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None:
                raise NotFound(f"No such image: {image_id}")
            self._set_names(conn, image_id, refs)
            conn.execute(
                "UPDATE images SET last_tag_time = ? WHERE id = ?", (_now_rfc3339(), image_id)
            )

    def history(self, name: str) -> builtins.list[dict[str, Any]]:
        """``GET /images/{name}/history``: newest first, as dockerd. Entries with a layer
        carry its chain's snapshot size and, for the top one, the image ID; the others
        ``<missing>`` (there are no parent images), as for a pulled image in Docker."""
        image = self.resolve(name)
        config = self.raw_config(image)
        ids = builtins.list(config.get("rootfs", {}).get("diff_ids") or [])
        chains = chain_ids(ids)
        out: builtins.list[dict[str, Any]] = []
        layer = 0
        for entry in config.get("history") or []:
            size = 0
            if not entry.get("empty_layer") and layer < len(chains):
                info = self._snapshots.stat(chains[layer])
                size = info.size if info is not None else 0
                layer += 1
            created = entry.get("created")
            out.append(
                {
                    "Id": "<missing>",
                    "Created": created_unix({"created": created}),
                    "CreatedBy": entry.get("created_by") or "",
                    "Tags": None,
                    "Size": size,
                    "Comment": entry.get("comment") or "",
                }
            )
        out.reverse()
        if out:
            out[0]["Id"] = image.id
            out[0]["Tags"] = image.repo_tags or None
        else:
            out.append(
                {
                    "Id": image.id,
                    "Created": image.created,
                    "CreatedBy": "",
                    "Tags": image.repo_tags or None,
                    "Size": image.size,
                    "Comment": "",
                }
            )
        return out


# -- helpers -----------------------------------------------------------------------------------


def _rfc3339(text: str) -> str:
    """Docker's RFC3339Nano in UTC; a time already in UTC keeps its digits."""
    if text.endswith("Z"):
        return text
    return format_rfc3339(parse_rfc3339(text))


def _hash_stream(src: BinaryIO) -> str:
    h = hashlib.sha256()
    while chunk := src.read(_CHUNK):
        h.update(chunk)
    return "sha256:" + h.hexdigest()


def _sniff_layer_type(content: ContentStore, digest: str) -> str:
    with content.open(digest) as f:
        head = f.read(4)
    if head.startswith(b"\x1f\x8b"):
        return mediatypes.OCI_LAYER_GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return mediatypes.OCI_LAYER_ZSTD
    return mediatypes.OCI_LAYER


def parse_manifest_layers(manifest: bytes) -> tuple[Descriptor, ...]:
    """The layer descriptors a stored manifest names."""
    return parse_manifest(manifest).layers


def _is_id_prefix(image_id: str, name: str) -> bool:
    """moby's isImageIDPrefix."""
    return image_id.startswith(name) or image_id[len("sha256:") :].startswith(name)


def _is_single_reference(tags: builtins.list[str], digests: builtins.list[str]) -> bool:
    """moby's isSingleReference: at most one tag, and all names in that one repository."""
    if len(tags) + len(digests) <= 1:
        return len(tags) + len(digests) == 1
    if len(tags) > 1:
        return False
    repos = {parse(d, default_tag=False).name for d in digests}
    single = parse(tags[0]).name if tags else parse(digests[0], default_tag=False).name
    return len(repos) == 1 and single in repos


def _label_matches(labels: dict[str, str], spec: str) -> bool:
    key, sep, value = spec.partition("=")
    if key not in labels:
        return False
    return not sep or labels[key] == value


def _prune_labels_match(filters: dict[str, builtins.list[str]], labels: dict[str, str]) -> bool:
    """moby's matchLabels: every ``label`` matches, and not every ``label!`` does."""
    wanted = filters.get("label", [])
    if wanted and not builtins.all(_label_matches(labels, spec) for spec in wanted):
        return False
    unwanted = filters.get("label!", [])
    return not (unwanted and builtins.all(_label_matches(labels, spec) for spec in unwanted))


def _any_match(patterns: builtins.list[str], stored: str) -> bool:
    ref = parse(stored, default_tag=False)
    return any(familiar_match(p, ref) for p in patterns)
