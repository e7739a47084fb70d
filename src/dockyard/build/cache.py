"""The build cache: which image a build step made from which parent.

A key is the sha256 of the parent image ID, the step's evaluated instruction (with the
build-time environment that changes its meaning, e.g. ARG values for RUN) and, for
COPY/ADD, the hash of the sources' content and metadata (`hash_sources`). An entry is
valid while its image exists; it goes with the image (``builder prune``, image delete).
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.store.db import Database

__all__ = [
    "PRUNE_FILTERS",
    "BuildCache",
    "cache_key",
    "entry_record",
    "hash_sources",
    "select_prunable",
]


def cache_key(parent: str, step: str, content: str = "") -> str:
    h = hashlib.sha256()
    for part in (parent, step, content):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def hash_sources(paths: Iterable[tuple[str, Path]]) -> str:
    """Hash of (name, tree) pairs: every entry's relative path, type, mode, size, link
    target and file bytes (owners and times are not: COPY resets them)."""
    h = hashlib.sha256()
    for name, root in paths:
        h.update(f"S {name}\0".encode())
        for rel, full in _walk(root):
            st = os.lstat(full)
            h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(full).encode())
            elif stat.S_ISREG(st.st_mode):
                h.update(str(st.st_size).encode())
                with open(full, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
            h.update(b"\0")
    return h.hexdigest()


def _walk(root: Path) -> Iterable[tuple[str, str]]:
    yield ".", str(root)
    if not root.is_dir() or root.is_symlink():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            yield os.path.relpath(full, root), full


class BuildCache:
    """The ``build_cache`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, key: str) -> str | None:
        rows = self._db.query("SELECT image_id FROM build_cache WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def used(self, key: str) -> None:
        """A build step took this entry (``system df``'s LAST USED and USAGE)."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE build_cache SET last_used = ?, usage_count = usage_count + 1 WHERE key = ?",
                (time.time(), key),
            )

    def put(self, key: str, parent: str, image_id: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO build_cache (key, parent, image_id, created)"
                " VALUES (?, ?, ?, ?)",
                (key, parent, image_id, time.time()),
            )

    def forget(self, key: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM build_cache WHERE key = ?", (key,))

    def count(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM build_cache")[0][0])

    def ancestors(self, image_ids: Iterable[str]) -> set[str]:
        """The images and, following the cache's parent links, every image they were built on."""
        parents: dict[str, str] = {
            str(row["image_id"]): str(row["parent"])
            for row in self._db.query("SELECT image_id, parent FROM build_cache")
        }
        out: set[str] = set()
        for image_id in image_ids:
            current: str | None = image_id
            while current and current not in out:
                out.add(current)
                current = parents.get(current)
        return out

    def entries(self) -> list[dict[str, Any]]:
        """Every cache entry (``system df``)."""
        rows = self._db.query(
            "SELECT key, parent, image_id, created, last_used, usage_count FROM build_cache"
            " ORDER BY created"
        )
        return [dict(row) for row in rows]

    def prune(self) -> int:
        """Drop every entry; return how many there were."""
        with self._db.transaction() as conn:
            n = int(conn.execute("SELECT COUNT(*) FROM build_cache").fetchone()[0])
            conn.execute("DELETE FROM build_cache")
        return n

    def forget_all(self, keys: Iterable[str]) -> None:
        with self._db.transaction() as conn:
            conn.executemany("DELETE FROM build_cache WHERE key = ?", [(k,) for k in keys])


# BuildKit's cache record fields that ``/build/prune`` filters on, plus ``until``.
PRUNE_FILTERS = frozenset(
    {"id", "parent", "type", "description", "inuse", "shared", "private", "until"}
)


def entry_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A cache entry as BuildKit's ``BuildCache`` record (``system df``, prune filters).

    The data is the image's layers, counted under Images: ``Shared`` and ``Size`` 0.
    """
    return {
        "ID": str(row["key"])[:64],
        "Parent": row["parent"],
        "Type": "regular",
        "Description": f"cached step producing {str(row['image_id'])[:19]}",
        "InUse": False,
        "Shared": True,
        "Size": 0,
        "CreatedAt": _rfc3339(float(row["created"])),
        "LastUsedAt": _rfc3339(float(row["last_used"])) if row.get("last_used") else None,
        "UsageCount": int(row.get("usage_count") or 0),
    }


def _rfc3339(when: float) -> str:
    whole = int(when)
    micros = round((when - whole) * 1_000_000)
    if micros >= 1_000_000:
        whole, micros = whole + 1, 0
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{stamp}.{micros:06d}Z" if micros else f"{stamp}Z"


def select_prunable(
    entries: Iterable[Mapping[str, Any]],
    filters: Mapping[str, list[str]],
    *,
    until: float | None = None,
    keep_storage: int = 0,
) -> list[str]:
    """The keys ``POST /build/prune`` removes: entries matching every filter (one value each,
    as BuildKit's), created before ``until``; with ``keep_storage``, the newest are kept while
    their sizes fit in it."""
    for key, values in filters.items():
        if key not in PRUNE_FILTERS:
            raise InvalidArgument(f'"{key}" filter not supported')
        if len(values) > 1:
            raise InvalidArgument("filters expect only one value")
    wanted = {k: v[0] for k, v in filters.items() if v and k != "until"}
    chosen: list[dict[str, Any]] = []
    for row in entries:
        record = entry_record(row)
        if until is not None and row["created"] > until:
            continue
        if not all(_record_matches(record, k, v) for k, v in wanted.items()):
            continue
        chosen.append(record)
    if keep_storage > 0:
        kept = 0
        for record in sorted(chosen, key=lambda r: str(r["CreatedAt"]), reverse=True):
            if kept + int(record["Size"]) <= keep_storage:
                kept += int(record["Size"])
                record["kept"] = True
        chosen = [r for r in chosen if not r.get("kept")]
    return [str(r["ID"]) for r in chosen]


def _record_matches(record: Mapping[str, Any], key: str, value: str) -> bool:
    if key == "description":
        return value in str(record["Description"])
    if key in ("inuse", "shared", "private"):
        field = {"inuse": "InUse", "shared": "Shared", "private": "Shared"}[key]
        truth = bool(record[field]) if key != "private" else not record[field]
        return value.lower() in ("", "true", "1") if truth else value.lower() in ("false", "0")
    field = {"id": "ID", "parent": "Parent", "type": "Type"}[key]
    return str(record[field]) == value
