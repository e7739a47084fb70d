"""What the engine remembers about blobs and registries (docker's "v2 metadata" service).

- ``blob_sources``: the repositories a blob was pulled from or pushed to. A push to another
  repository of the same registry asks the registry to mount the blob from there instead of
  uploading it again.
- ``compressed_blobs``: for a layer stored uncompressed (``docker load``), the gzip blob a
  push made of it. The next push can ``HEAD`` that digest without compressing again, and
  pushes stay stable even if the compressor changes.

Both are hints: a stale row costs one failed mount or one extra compression, never a wrong
image. Tables come from migration 5 in ``store/db.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from dockyard.store.db import Database

__all__ = ["BlobMetadata", "CompressedBlob"]

_MAX_SOURCES = 8


@dataclass(frozen=True)
class CompressedBlob:
    digest: str
    media_type: str
    size: int


class BlobMetadata:
    """Blob sources and compressed forms, in the engine's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add_sources(self, digests: Iterable[str], registry: str, repository: str) -> None:
        now = int(time.time())
        with self._db.transaction() as conn:
            for digest in digests:
                conn.execute(
                    "INSERT OR REPLACE INTO blob_sources (digest, registry, repository, seen)"
                    " VALUES (?, ?, ?, ?)",
                    (digest, registry, repository, now),
                )

    def sources(self, digest: str, registry: str) -> list[str]:
        """Repositories of ``registry`` known to hold ``digest``, most recently seen first."""
        rows = self._db.query(
            "SELECT repository FROM blob_sources WHERE digest = ? AND registry = ?"
            " ORDER BY seen DESC, repository LIMIT ?",
            (digest, registry, _MAX_SOURCES),
        )
        return [str(r[0]) for r in rows]

    def compressed(self, digest: str) -> CompressedBlob | None:
        rows = self._db.query(
            "SELECT compressed, media_type, size FROM compressed_blobs WHERE digest = ?",
            (digest,),
        )
        if not rows:
            return None
        return CompressedBlob(str(rows[0][0]), str(rows[0][1]), int(rows[0][2]))

    def set_compressed(self, digest: str, blob: CompressedBlob) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO compressed_blobs (digest, compressed, media_type, size)"
                " VALUES (?, ?, ?, ?)",
                (digest, blob.digest, blob.media_type, blob.size),
            )
