"""The ``local`` volume driver and the volume metadata: Docker's named and anonymous volumes.

Layout (``root`` is ``<data-root>/volumes``)::

    volumes/                      0701
      <name>/                     0701
        _data/                    0755, the volume's content (Mountpoint)
      .trash-<random>/            a volume being removed (renamed away first, then deleted)

Metadata lives in the ``volumes`` table (name, driver, labels, options, created). A volume
directory without a row (a crash between ``mkdir`` and the insert) is adopted as a plain
volume at start-up, as Docker's local driver does; a row whose directory vanished gets an
empty one back.

Lifecycle and references. Containers ``acquire`` the volumes they mount when they are
created (``create(..., ref=container_id)`` for the ones they create) and ``release`` them
when removed; references are kept in memory and rebuilt by the container side at start-up.
A referenced volume cannot be removed (``Conflict``) nor pruned, and is not ``dangling``.

Volumes with driver options (``type``/``device``/``o``: a tmpfs, a bind of a host path, a
block device) are mounted on their ``_data`` by ``mount`` and unmounted by ``unmount``; the
container side calls them when the first user starts and the last one stops. Only
``dockyard.mount`` performs the mounts. A volume is unmounted before its directory is
deleted, so removal never reaches into a mounted host directory.

Errors follow dockerd's words: ``NotFound`` ``get NAME: no such volume``; ``InvalidArgument``
``create NAME: …`` for bad names and options; ``NotFound`` for an unknown driver
(``plugin "x" not found``); ``Conflict`` ``remove NAME: volume is in use - [ids]``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard import errors
from dockyard.events import EventSink, NullSink
from dockyard.mount import Mount, is_mounted, mount_all, unmount_all
from dockyard.store import Database

__all__ = [
    "ANONYMOUS_LABEL",
    "DEFAULT_DRIVER",
    "Volume",
    "VolumeService",
    "validate_name",
]

DEFAULT_DRIVER = "local"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_VALID_OPTS = ("type", "o", "device", "size")
_REQUIRED_OPTS = (("device", ("type",)), ("type", ("device",)), ("o", ("device", "type")))
_LIST_FILTERS = {"dangling", "name", "label", "driver"}
_PRUNE_FILTERS = {"label", "label!", "all"}
_TRUE = {"1", "true", "True", "TRUE", "t", "T"}
_FALSE = {"0", "false", "False", "FALSE", "f", "F"}


def go_quote(text: str) -> str:
    """Go's ``%q`` for the names in error messages."""
    return json.dumps(text, ensure_ascii=False)


def validate_name(name: str) -> None:
    """The local driver's name rule; raises ``InvalidArgument`` with dockerd's message
    (without the ``create NAME:`` prefix)."""
    if len(name) == 1:
        raise errors.InvalidArgument(
            "volume name is too short, names should be at least two alphanumeric characters"
        )
    if not _NAME.match(name):
        raise errors.InvalidArgument(
            f"{go_quote(name)} includes invalid characters for a local volume name, only "
            f"{go_quote(_NAME_CHARS)} are allowed. If you intended to pass a host directory, "
            "use absolute path"
        )


def _validate_opts(opts: dict[str, str]) -> None:
    for key in opts:
        if key not in _VALID_OPTS:
            raise errors.InvalidArgument(f"invalid option: {go_quote(key)}")
    for key, required in _REQUIRED_OPTS:
        if key in opts:
            for other in required:
                if other not in opts:
                    raise errors.InvalidArgument(f"missing required option: {go_quote(other)}")
    if "size" in opts:
        raise errors.InvalidArgument("quota size requested but no quota support")


def _rfc3339_seconds(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise errors.InvalidArgument(f"invalid {what}: expected an object of strings")
    return dict(value)


def _bool_filter(key: str, values: list[str]) -> bool:
    value = values[-1]
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.InvalidArgument(f"Invalid filter '{key}={value}'")


def _labels_match(labels: dict[str, str], wanted: Iterable[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels:
            return False
        if sep and labels[key] != value:
            return False
    return True


def _disk_usage(path: Path) -> int:
    """Bytes in regular files under ``path`` (each inode once), not crossing mount points."""
    total = 0
    seen: set[tuple[int, int]] = set()
    try:
        root_dev = os.lstat(path).st_dev
    except OSError:
        return 0
    stack = [str(path)]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.is_dir(follow_symlinks=False):
                if st.st_dev == root_dev:
                    stack.append(entry.path)
                continue
            ident = (st.st_dev, st.st_ino)
            if st.st_nlink > 1:
                if ident in seen:
                    continue
                seen.add(ident)
            total += st.st_size
    return total


@dataclass
class Volume:
    """One volume's metadata; ``mountpoint`` is ``<root>/<name>/_data``."""

    name: str
    mountpoint: Path
    driver: str = DEFAULT_DRIVER
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    created: int = 0  # Unix ns

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    @property
    def needs_mount(self) -> bool:
        """Created with driver options: mounted on ``_data`` while a container runs."""
        return bool(self.options.get("type") or self.options.get("device"))

    def to_api(self, *, usage: tuple[int, int] | None = None) -> dict[str, Any]:
        """Docker's ``Volume`` object (keys in Go's field order)."""
        out: dict[str, Any] = {
            "CreatedAt": _rfc3339_seconds(self.created),
            "Driver": self.driver,
            "Labels": dict(sorted(self.labels.items())) or None,
            "Mountpoint": str(self.mountpoint),
            "Name": self.name,
            "Options": dict(sorted(self.options.items())) or None,
            "Scope": "local",
        }
        if usage is not None:
            out["UsageData"] = {"Size": usage[0], "RefCount": usage[1]}
        return out


class VolumeService:
    """Volumes of the ``local`` driver: metadata in SQLite, data under ``root``."""

    def __init__(self, db: Database, root: Path, events: EventSink | None = None) -> None:
        self._db = db
        self.events: EventSink = events or NullSink()
        self._root = root
        self._volumes: dict[str, Volume] = {}
        self._refs: dict[str, set[str]] = {}
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o701)
        for row in db.query("SELECT name, driver, labels, options, created FROM volumes"):
            volume = Volume(
                name=row["name"],
                mountpoint=self._data_dir(row["name"]),
                driver=row["driver"],
                labels=json.loads(row["labels"]),
                options=json.loads(row["options"]),
                created=int(row["created"]),
            )
            self._volumes[volume.name] = volume
        self._reconcile_dirs()

    # ---- layout -------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self._root

    def _data_dir(self, name: str) -> Path:
        return self._root / name / "_data"

    def _make_dirs(self, name: str) -> None:
        base = self._root / name
        with contextlib.suppress(FileExistsError):
            os.mkdir(base, 0o701)
        with contextlib.suppress(FileExistsError):
            os.mkdir(base / "_data", 0o755)

    def _reconcile_dirs(self) -> None:
        """Finish interrupted removals, adopt stray volume directories, recreate lost ones."""
        for entry in list(os.scandir(self._root)):
            if entry.name.startswith(".trash-"):
                self._delete_tree(Path(entry.path))
                continue
            if entry.name in self._volumes or not entry.is_dir(follow_symlinks=False):
                continue
            if not _NAME.match(entry.name) or not os.path.isdir(os.path.join(entry.path, "_data")):
                continue
            created = int(entry.stat(follow_symlinks=False).st_ctime * 1e9)
            volume = Volume(name=entry.name, mountpoint=self._data_dir(entry.name), created=created)
            self._insert(volume)
            self._volumes[volume.name] = volume
        for name in self._volumes:
            self._make_dirs(name)

    def _insert(self, volume: Volume) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT OR REPLACE INTO volumes(name, driver, labels, options, created) "
                "VALUES (?,?,?,?,?)",
                (
                    volume.name,
                    volume.driver,
                    json.dumps(volume.labels),
                    json.dumps(volume.options),
                    volume.created,
                ),
            )

    def _delete_tree(self, path: Path) -> None:
        data = path / "_data"
        if is_mounted(data):
            unmount_all(data, detach=True)
        if is_mounted(data):  # pragma: no cover - unmount_all raises first
            raise errors.SystemError(f"volume directory {data} is still mounted")
        shutil.rmtree(path, ignore_errors=True)

    # ---- create, get, list ----------------------------------------------------------------

    def create(
        self,
        name: str = "",
        driver: str = "",
        driver_opts: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        *,
        ref: str | None = None,
    ) -> Volume:
        """Create a volume, or return the existing one of that name (Docker's behaviour).

        An empty ``name`` gets a random 64-hex one. ``ref`` (a container ID) is acquired in the
        same step, so the new volume is never unreferenced in between.
        """
        if not isinstance(name, str):
            raise errors.InvalidArgument("invalid volume name: expected a string")
        name = name or secrets.token_hex(32)
        driver = driver or DEFAULT_DRIVER
        if driver != DEFAULT_DRIVER:
            raise errors.NotFound(
                f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" '
                "not found"
            )
        existing = self._volumes.get(name)
        if existing is not None:
            if ref is not None:
                self.acquire(name, ref)
            return existing
        opts = _str_map(driver_opts, "DriverOpts")
        lbls = _str_map(labels, "Labels")
        try:
            validate_name(name)
            _validate_opts(opts)
        except errors.InvalidArgument as exc:
            raise errors.InvalidArgument(f"create {name}: {exc.message}") from None
        volume = Volume(
            name=name,
            mountpoint=self._data_dir(name),
            labels=lbls,
            options=opts,
            created=time.time_ns(),
        )
        try:
            self._make_dirs(name)
        except OSError as exc:
            raise errors.SystemError(f"create {name}: {exc.strerror or exc}") from None
        self._insert(volume)
        self._volumes[name] = volume
        self.events.emit("volume", "create", name, {"driver": volume.driver})
        if ref is not None:
            self.acquire(name, ref)
        return volume

    def get(self, name: str) -> Volume:
        volume = self._volumes.get(name)
        if volume is None:
            raise errors.NotFound(f"get {name}: no such volume")
        return volume

    def exists(self, name: str) -> bool:
        return name in self._volumes

    def list_volumes(self, filters: dict[str, list[str]] | None = None) -> list[Volume]:
        """Volumes matching Docker's list filters (dangling, name, label, driver), by name."""
        filters = filters or {}
        for key in filters:
            if key not in _LIST_FILTERS:
                raise errors.InvalidArgument(f"Invalid filter '{key}'")
        dangling: bool | None = None
        if filters.get("dangling"):
            dangling = _bool_filter("dangling", filters["dangling"])
        out = []
        for volume in sorted(self._volumes.values(), key=lambda v: v.name):
            if dangling is not None and self.in_use(volume.name) == dangling:
                continue
            if filters.get("name") and not any(
                _name_match(volume.name, n) for n in filters["name"]
            ):
                continue
            if filters.get("driver") and volume.driver not in filters["driver"]:
                continue
            if filters.get("label") and not _labels_match(volume.labels, filters["label"]):
                continue
            out.append(volume)
        return out

    def usage(self) -> list[tuple[Volume, int, int]]:
        """Every volume with its size in bytes and reference count (``system df``)."""
        return [
            (v, _disk_usage(v.mountpoint), len(self._refs.get(v.name, ())))
            for v in sorted(self._volumes.values(), key=lambda v: v.name)
        ]

    def count(self) -> int:
        return len(self._volumes)

    # ---- references -------------------------------------------------------------------------

    def acquire(self, name: str, ref: str) -> None:
        """Mark ``name`` as used by ``ref``; raises ``NotFound`` for an unknown volume."""
        self.get(name)
        self._refs.setdefault(name, set()).add(ref)

    def release(self, name: str, ref: str) -> None:
        users = self._refs.get(name)
        if users is not None:
            users.discard(ref)
            if not users:
                del self._refs[name]

    def users(self, name: str) -> list[str]:
        return sorted(self._refs.get(name, ()))

    def in_use(self, name: str) -> bool:
        return bool(self._refs.get(name))

    # ---- mounting (volumes with driver options) ---------------------------------------------

    def mount(self, name: str) -> Path:
        """Make the volume's data available and return its path; a volume with driver options
        is mounted on ``_data`` if it is not already."""
        volume = self.get(name)
        self._make_dirs(name)
        if volume.needs_mount and not is_mounted(volume.mountpoint):
            device = volume.options.get("device", "")
            fstype = volume.options.get("type", "")
            options = tuple(o for o in volume.options.get("o", "").split(",") if o)
            try:
                mount_all([Mount(type=fstype, source=device, options=options)], volume.mountpoint)
            except errors.DockyardError as exc:
                raise errors.SystemError(
                    f"error while mounting volume '{volume.mountpoint}': failed to mount local "
                    f"volume: {exc.message}"
                ) from None
        return volume.mountpoint

    def unmount(self, name: str) -> None:
        """Undo ``mount``: unmount a volume with driver options (a no-op for the others)."""
        volume = self._volumes.get(name)
        if volume is None or not volume.needs_mount:
            return
        if is_mounted(volume.mountpoint):
            unmount_all(volume.mountpoint, detach=True)

    # ---- remove, prune ------------------------------------------------------------------------

    def remove(self, name: str, *, force: bool = False) -> None:
        """Delete a volume and its data. ``force`` only forgives a missing volume (dockerd's
        ``PurgeOnError``): a volume in use is never removed."""
        volume = self._volumes.get(name)
        if volume is None:
            if force:
                return
            raise errors.NotFound(f"get {name}: no such volume")
        users = self.users(name)
        if users:
            raise errors.Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        self._remove(volume)

    def _remove(self, volume: Volume) -> None:
        base = self._root / volume.name
        if volume.needs_mount or is_mounted(volume.mountpoint):
            with contextlib.suppress(errors.DockyardError):
                unmount_all(volume.mountpoint, detach=True)
            if is_mounted(volume.mountpoint):
                raise errors.SystemError(
                    f"remove {volume.name}: the volume is still mounted at {volume.mountpoint}"
                )
        trash = self._root / f".trash-{secrets.token_hex(8)}"
        try:
            os.rename(base, trash)
        except FileNotFoundError:
            trash = base
        except OSError as exc:
            raise errors.SystemError(f"remove {volume.name}: {exc.strerror or exc}") from None
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM volumes WHERE name=?", (volume.name,))
        self._volumes.pop(volume.name, None)
        self._refs.pop(volume.name, None)
        self._delete_tree(trash)
        self.events.emit("volume", "destroy", volume.name, {"driver": volume.driver})

    def prune(self, filters: dict[str, list[str]] | None = None) -> tuple[list[str], int]:
        """Remove unused volumes: anonymous ones only, or all of them with ``all=true``
        (API 1.42+). Returns the names removed and the bytes reclaimed."""
        filters = filters or {}
        for key in filters:
            if key not in _PRUNE_FILTERS:
                raise errors.InvalidArgument(f"Invalid filter '{key}'")
        all_volumes = _bool_filter("all", filters["all"]) if filters.get("all") else False
        deleted: list[str] = []
        reclaimed = 0
        for volume in sorted(self._volumes.values(), key=lambda v: v.name):
            if self.in_use(volume.name) or volume.driver != DEFAULT_DRIVER:
                continue
            if not all_volumes and not volume.anonymous:
                continue
            if not _labels_match(volume.labels, filters.get("label", [])):
                continue
            if any(_labels_match(volume.labels, [f]) for f in filters.get("label!", [])):
                continue
            size = 0 if volume.needs_mount else _disk_usage(volume.mountpoint)
            try:
                self._remove(volume)
            except errors.DockyardError:
                continue
            deleted.append(volume.name)
            reclaimed += size
        return deleted, reclaimed


def _name_match(name: str, pattern: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return pattern in name
