"""An overlayfs snapshotter in containerd's model: it returns mount lists, never mounts.

Vocabulary (containerd ``core/snapshots/snapshotter.go``):

- A **snapshot** is a directory tree with a **key**. It is *active* (writable, made by
  ``prepare``), a *view* (read-only, made by ``view``) or *committed* (immutable, made
  by ``commit`` from an active one). Only committed snapshots can be **parents**.
- A snapshot's contents are its own ``diff`` directory laid over its parents' diffs,
  nearest parent on top. The snapshotter never looks inside a diff: it only lays them
  out (``mounts``) and keeps the metadata.

Layout on disk (short numeric directory names keep overlay's ``lowerdir=`` option
well under a page even for a hundred layers)::

    <root>/<num>/diff     the snapshot's own files (the overlay upperdir when active)
    <root>/<num>/work     overlay's workdir; active snapshots only
    <root>/.rm-<num>-…    a directory being removed (``cleanup`` finishes the job)

Metadata lives in the ``snapshots`` table: ``key``, ``parent`` key, ``kind``,
``num`` (directory), ``size`` (bytes, fixed at commit) and ``created`` (Unix seconds).
Every change is one transaction; a directory exists before its record is visible and
is moved aside in the same transaction that deletes the record, so a crash leaves only
directories without records, which ``cleanup`` removes.

Importing a layer (what image unpack does)::

    prepare("extract-<random>-<chain id>", parent_chain_id)   # active, empty diff
    apply the layer tar into upper_dir(that key)               # no mount needed
    commit(chain_id, "extract-<random>-<chain id>")           # immutable, shared

Running a container::

    mounts = prepare(container_id, image_chain_id)             # rw overlay on the layers
    mount.mount_all(mounts, rootfs)  …  mount.unmount(rootfs)
    remove(container_id)

Errors: ``NotFound`` for an unknown key or parent; ``Conflict`` when a key is taken,
or when removing a snapshot that has children; ``InvalidArgument`` for an operation
the snapshot's kind does not allow (committing a view, a non-committed parent …).
"""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.mount import Mount
from dockyard.store.db import Database

__all__ = ["EXTRACT_PREFIX", "Kind", "OverlaySnapshotter", "SnapshotInfo", "disk_usage"]

EXTRACT_PREFIX = "extract-"
"""Keys of active snapshots that only exist while a layer is unpacked; ``cleanup``
removes those a crash left behind."""


class Kind(enum.StrEnum):
    ACTIVE = "active"
    VIEW = "view"
    COMMITTED = "committed"


@dataclass(frozen=True)
class SnapshotInfo:
    key: str
    parent: str | None
    kind: Kind
    num: int
    size: int
    created: int


class _Keep:
    """Sentinel: ``commit`` keeps the parent given to ``prepare``."""


_KEEP = _Keep()


def disk_usage(path: Path) -> int:
    """Bytes used by the files under ``path``: sizes of non-directories, each inode once
    (how Docker's overlay2 driver sizes a layer)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [str(path)]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except FileNotFoundError:
            continue
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
                continue
            ident = (st.st_dev, st.st_ino)
            if st.st_nlink > 1:
                if ident in seen:
                    continue
                seen.add(ident)
            total += st.st_size
    return total


def _overlay_options(params: Path) -> tuple[str, ...]:
    """Options every overlay mount gets, from the kernel module's defaults.

    ``index=off`` lets many overlays share lower layers (containerd and Docker's overlay2
    pass it whenever the knob exists). ``redirect_dir`` and ``metacopy`` are turned off
    when the kernel defaults them on: with them an upper dir cannot be turned back into a
    layer tar by reading it alone (``docker commit``, build, export).
    """
    out: list[str] = []
    if (params / "index").exists():
        out.append("index=off")
    for knob in ("redirect_dir", "metacopy"):
        try:
            if (params / knob).read_text().strip() in ("Y", "on"):
                out.append(f"{knob}=off")
        except OSError:
            pass
    return tuple(out)


def _info(row: sqlite3.Row) -> SnapshotInfo:
    return SnapshotInfo(
        key=row["key"],
        parent=row["parent"],
        kind=Kind(row["kind"]),
        num=int(row["num"]),
        size=int(row["size"]),
        created=int(row["created"]),
    )


class OverlaySnapshotter:
    """Snapshots as overlayfs layers under ``root``; metadata in ``db`` (see module doc)."""

    def __init__(self, root: Path, db: Database) -> None:
        self.root = root
        self._db = db
        root.mkdir(parents=True, exist_ok=True)
        self._overlay_options = _overlay_options(Path("/sys/module/overlay/parameters"))

    # -- paths ---------------------------------------------------------------------------

    def _dir(self, num: int) -> Path:
        return self.root / str(num)

    def _diff(self, num: int) -> Path:
        return self.root / str(num) / "diff"

    def _work(self, num: int) -> Path:
        return self.root / str(num) / "work"

    # -- metadata helpers (call inside a transaction or with the db lock) -----------------

    @staticmethod
    def _get(conn: sqlite3.Connection, key: str) -> SnapshotInfo | None:
        row = conn.execute("SELECT * FROM snapshots WHERE key = ?", (key,)).fetchone()
        return _info(row) if row is not None else None

    def _chain(self, conn: sqlite3.Connection, key: str | None) -> list[SnapshotInfo]:
        out: list[SnapshotInfo] = []
        while key is not None:
            info = self._get(conn, key)
            if info is None:
                raise NotFound(f"snapshot {key}: not found")
            out.append(info)
            key = info.parent
        return out

    def _create(self, key: str, parent: str | None, kind: Kind) -> list[Mount]:
        if not key:
            raise InvalidArgument("snapshot key must not be empty")
        with self._db.transaction() as conn:
            if self._get(conn, key) is not None:
                raise Conflict(f"snapshot {key}: already exists")
            if parent is not None:
                p = self._get(conn, parent)
                if p is None:
                    raise NotFound(f"snapshot {parent}: not found")
                if p.kind is not Kind.COMMITTED:
                    raise InvalidArgument(f"snapshot {parent}: parent is not committed")
            row = conn.execute("SELECT COALESCE(MAX(num), 0) + 1 FROM snapshots").fetchone()
            num = int(row[0])
            conn.execute(
                "INSERT INTO snapshots (key, parent, kind, num, size, created)"
                " VALUES (?, ?, ?, ?, 0, ?)",
                (key, parent, kind.value, num, int(time.time())),
            )
            d = self._dir(num)
            if d.exists():  # left by a crash: no record owns it (num is unique)
                shutil.rmtree(d)
            try:
                self._diff(num).mkdir(parents=True)
                if kind is Kind.ACTIVE:
                    self._work(num).mkdir()
            except BaseException:
                shutil.rmtree(d, ignore_errors=True)
                raise
            return self._mounts(conn, key)

    def _mounts(self, conn: sqlite3.Connection, key: str) -> list[Mount]:
        chain = self._chain(conn, key)
        top, parents = chain[0], chain[1:]
        if top.kind is Kind.ACTIVE:
            if not parents:
                return [Mount("bind", str(self._diff(top.num)), ("rw", "rbind"))]
            options = list(self._overlay_options)
            options += [
                f"workdir={self._work(top.num)}",
                f"upperdir={self._diff(top.num)}",
                "lowerdir=" + ":".join(str(self._diff(p.num)) for p in parents),
            ]
            return [Mount("overlay", "overlay", tuple(options))]
        # read-only: a view shows its parents; a committed snapshot shows itself too
        layers = parents if top.kind is Kind.VIEW else chain
        if len(layers) == 1:
            return [Mount("bind", str(self._diff(layers[0].num)), ("ro", "rbind"))]
        options = list(self._overlay_options)
        options.append("lowerdir=" + ":".join(str(self._diff(p.num)) for p in layers))
        return [Mount("overlay", "overlay", tuple(options))]

    # -- the API -------------------------------------------------------------------------

    def prepare(self, key: str, parent: str | None) -> list[Mount]:
        """Create an active (writable) snapshot on ``parent`` (committed, or None for an
        empty base) and return how to mount it. ``Conflict`` if ``key`` exists,
        ``NotFound`` for an unknown parent, ``InvalidArgument`` for a non-committed one."""
        return self._create(key, parent, Kind.ACTIVE)

    def view(self, key: str, parent: str) -> list[Mount]:
        """Create a read-only view of committed ``parent``; its mounts have no upperdir.
        Errors as for ``prepare``."""
        return self._create(key, parent, Kind.VIEW)

    def mounts(self, key: str) -> list[Mount]:
        """How to mount an existing snapshot: active → read-write; view → its parent read
        only; committed → itself and its parents read only. ``NotFound`` if unknown."""
        with self._db.transaction() as conn:
            return self._mounts(conn, key)

    def commit(self, name: str, key: str, *, parent: str | _Keep | None = _KEEP) -> None:
        """Turn active ``key`` into committed ``name`` (immutable from now on).

        ``parent`` re-bases the snapshot before it is committed: unpacking may prepare
        every layer of an image at once without parents (a layer's files do not depend on
        what is below it) and give each its parent here, bottom layer first.
        ``NotFound`` for an unknown key (or parent), ``Conflict`` if ``name`` exists,
        ``InvalidArgument`` if ``key`` is not active or ``parent`` not committed.
        """
        with self._db.transaction() as conn:
            info = self._get(conn, key)
            if info is None:
                raise NotFound(f"snapshot {key}: not found")
            if info.kind is not Kind.ACTIVE:
                raise InvalidArgument(f"snapshot {key}: is not active")
            if name != key and self._get(conn, name) is not None:
                raise Conflict(f"snapshot {name}: already exists")
            new_parent = info.parent
            if not isinstance(parent, _Keep):
                if parent is not None:
                    p = self._get(conn, parent)
                    if p is None:
                        raise NotFound(f"snapshot {parent}: not found")
                    if p.kind is not Kind.COMMITTED:
                        raise InvalidArgument(f"snapshot {parent}: parent is not committed")
                new_parent = parent
            size = disk_usage(self._diff(info.num))
            conn.execute(
                "UPDATE snapshots SET key = ?, parent = ?, kind = ?, size = ? WHERE key = ?",
                (name, new_parent, Kind.COMMITTED.value, size, key),
            )
        shutil.rmtree(self._work(info.num), ignore_errors=True)

    def remove(self, key: str) -> None:
        """Remove a snapshot and its files. ``NotFound`` if unknown; ``Conflict`` if other
        snapshots have it as their parent. The caller unmounts it first."""
        with self._db.transaction() as conn:
            info = self._get(conn, key)
            if info is None:
                raise NotFound(f"snapshot {key}: not found")
            child = conn.execute(
                "SELECT key FROM snapshots WHERE parent = ? LIMIT 1", (key,)
            ).fetchone()
            if child is not None:
                raise Conflict(f"snapshot {key}: cannot remove snapshot with child {child[0]}")
            conn.execute("DELETE FROM snapshots WHERE key = ?", (key,))
            trash = self.root / f".rm-{info.num}-{uuid.uuid4().hex[:8]}"
            with contextlib.suppress(FileNotFoundError):
                os.rename(self._dir(info.num), trash)
        shutil.rmtree(trash, ignore_errors=True)

    def stat(self, key: str) -> SnapshotInfo | None:
        """The snapshot's metadata, or None."""
        rows = self._db.query("SELECT * FROM snapshots WHERE key = ?", (key,))
        return _info(rows[0]) if rows else None

    def walk(self) -> list[SnapshotInfo]:
        """Every snapshot, ordered by creation (directory number)."""
        return [_info(r) for r in self._db.query("SELECT * FROM snapshots ORDER BY num")]

    def chain(self, key: str) -> list[SnapshotInfo]:
        """``key`` and its ancestors, nearest first. ``NotFound`` if unknown."""
        with self._db.transaction() as conn:
            return self._chain(conn, key)

    def upper_dir(self, key: str) -> Path:
        """The snapshot's own diff directory: the overlay upperdir of an active snapshot
        (write a layer into it, export it, size it) or the layer of a committed one (read
        only!). ``NotFound`` if unknown; ``InvalidArgument`` for a view, which has none."""
        info = self.stat(key)
        if info is None:
            raise NotFound(f"snapshot {key}: not found")
        if info.kind is Kind.VIEW:
            raise InvalidArgument(f"snapshot {key}: a view has no upper directory")
        return self._diff(info.num)

    def usage(self, key: str) -> int:
        """Bytes in the snapshot's own diff: fixed at commit, measured now when active."""
        info = self.stat(key)
        if info is None:
            raise NotFound(f"snapshot {key}: not found")
        if info.kind is Kind.COMMITTED:
            return info.size
        return disk_usage(self._diff(info.num))

    def cleanup(self) -> None:
        """Start-up: drop records of half-made layer snapshots (active, ``extract-…``) and
        every directory that no record owns. Only call this while nothing else runs."""
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT key FROM snapshots WHERE kind = ? AND key LIKE ? AND key NOT IN"
                " (SELECT parent FROM snapshots WHERE parent IS NOT NULL)",
                (Kind.ACTIVE.value, EXTRACT_PREFIX + "%"),
            ).fetchall()
            for row in rows:
                conn.execute("DELETE FROM snapshots WHERE key = ?", (row[0],))
            nums = {str(r[0]) for r in conn.execute("SELECT num FROM snapshots").fetchall()}
        for entry in self.root.iterdir():
            if entry.name in nums:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
