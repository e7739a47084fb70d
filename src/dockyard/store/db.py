"""SQLite metadata store: one file, WAL, ordered migrations, one transaction per change.

Schema (version = number of applied migrations, kept in ``PRAGMA user_version``):

    images      id (sha256:<config digest>) PK, config JSON, manifest JSON, created, size,
                last_tag_time
    tags        ref (normalised ``domain/path:tag``) PK → image_id
    digests     ref (normalised ``domain/path@sha256:…``) PK → image_id   (RepoDigests)
    snapshots   key PK, parent key, kind ('committed'|'active'|'view'), num (dir name), size, created
    containers  id PK, name UNIQUE, image_id, record JSON (the container's whole state), created
    blob_sources      (digest, registry, repository) PK, seen: where a blob lives remotely
    compressed_blobs  digest (uncompressed layer blob) PK → compressed digest, media_type, size
    networks    id PK, name UNIQUE, record JSON (Docker's network object), created
    endpoints   (container_id, network_id) PK, config JSON, address (NULL unless running;
                UNIQUE per network: the IPAM allocations), state JSON (veth, ifname, mac)
    sandboxes   container_id PK, state JSON (netns handle, published ports) while it runs
    volumes     name PK, driver, labels JSON, options JSON (DriverOpts), created
    container_mounts  container_id PK, mounts JSON (MountPoint records), active (running)

Callers hold a ``Database`` and use ``transaction()`` for every write; reads may use ``query``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["MIGRATIONS", "Database"]

MIGRATIONS: list[str] = [
    # 1: images, tags, digests
    """
    CREATE TABLE images (
        id TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        manifest TEXT NOT NULL,
        created INTEGER NOT NULL,
        size INTEGER NOT NULL
    );
    CREATE TABLE tags (ref TEXT PRIMARY KEY, image_id TEXT NOT NULL REFERENCES images(id));
    CREATE TABLE digests (ref TEXT PRIMARY KEY, image_id TEXT NOT NULL REFERENCES images(id));
    CREATE INDEX tags_image ON tags(image_id);
    CREATE INDEX digests_image ON digests(image_id);
    """,
    # 2: snapshots
    """
    CREATE TABLE snapshots (
        key TEXT PRIMARY KEY,
        parent TEXT REFERENCES snapshots(key),
        kind TEXT NOT NULL,
        num INTEGER NOT NULL UNIQUE,
        size INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL
    );
    """,
    # 3: containers
    """
    CREATE TABLE containers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        image_id TEXT NOT NULL,
        record TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    """,
    # 4: images.last_tag_time (RFC 3339; '' = never tagged here): inspect's Metadata.LastTagTime
    """
    ALTER TABLE images ADD COLUMN last_tag_time TEXT NOT NULL DEFAULT ''
    """,
    # 5: distribution: the repositories a blob was pulled from or pushed to (cross-repository
    # mounts), and the gzip blob pushed for an uncompressed layer blob (stable push digests)
    """
    CREATE TABLE blob_sources (
        digest TEXT NOT NULL,
        registry TEXT NOT NULL,
        repository TEXT NOT NULL,
        seen INTEGER NOT NULL,
        PRIMARY KEY (digest, registry, repository)
    );
    CREATE TABLE compressed_blobs (
        digest TEXT PRIMARY KEY,
        compressed TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL
    );
    """,
    # 6: networks: network records, endpoints (a container's attachment; address set while it
    # runs: the IPAM allocations), sandboxes (a running container's netns and published ports)
    """
    CREATE TABLE networks (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        record TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE TABLE endpoints (
        container_id TEXT NOT NULL,
        network_id TEXT NOT NULL REFERENCES networks(id),
        config TEXT NOT NULL,
        address TEXT,
        state TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (container_id, network_id)
    );
    CREATE UNIQUE INDEX endpoints_address ON endpoints(network_id, address);
    CREATE TABLE sandboxes (container_id TEXT PRIMARY KEY, state TEXT NOT NULL);
    """,
    # 7: build cache: a build step's result image, keyed by parent image + instruction (+ the
    # content hash of COPY/ADD sources); entries die with their image (builder prune)
    """
    CREATE TABLE build_cache (
        key TEXT PRIMARY KEY,
        parent TEXT NOT NULL,
        image_id TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE INDEX build_cache_image ON build_cache(image_id);
    """,
    # 8: volumes (the local driver's metadata: labels, driver options) and each container's
    # mount points (Docker's MountPoint records; active = 1 while the container runs)
    """
    CREATE TABLE volumes (
        name TEXT PRIMARY KEY,
        driver TEXT NOT NULL,
        labels TEXT NOT NULL,
        options TEXT NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE TABLE container_mounts (
        container_id TEXT PRIMARY KEY,
        mounts TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 9: build cache use (BuildKit's LastUsedAt and UsageCount in system df); ``created``
    # holds sub-second times from here on
    """
    ALTER TABLE build_cache ADD COLUMN last_used REAL;
    ALTER TABLE build_cache ADD COLUMN usage_count INTEGER NOT NULL DEFAULT 0;
    """,
]


class Database:
    """A thread-safe handle on ``dockyard.db``; applies pending migrations when opened."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA cache_size=-512")  # 512 KiB: the metadata is small
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in script.split(";"):
                        if statement.strip():
                            self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version={number}")
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise

    @property
    def version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one IMMEDIATE transaction; roll back on any exception."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def close(self) -> None:
        with self._lock:
            self._conn.close()
