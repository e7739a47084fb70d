"""The stored form of an image (one ``images`` row) and what it keeps alive."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.oci.digest import sha256_digest
from dockyard.oci.image import chain_ids, diff_ids
from dockyard.oci.manifest import parse_manifest

__all__ = ["ImageRecord", "record_from_row"]


@dataclass(frozen=True)
class ImageRecord:
    """An ``images`` row: the config exactly as loaded (its digest is the ID) and the
    manifest that names the image's blobs in the content store."""

    id: str
    config_raw: bytes
    config: dict[str, Any]
    manifest: bytes
    created: int
    size: int
    last_tag_time: str

    @property
    def chains(self) -> list[str]:
        """Chain IDs of the image's layers, bottom first (the snapshot keys)."""
        return chain_ids(diff_ids(self.config))

    def blobs(self) -> set[str]:
        """Digests of the content this image keeps alive: config, manifest, layers."""
        out = {self.id, sha256_digest(self.manifest)}
        with contextlib.suppress(InvalidArgument):
            out.update(layer.digest for layer in parse_manifest(self.manifest).layers)
        return out


def record_from_row(r: sqlite3.Row) -> ImageRecord:
    return ImageRecord(
        id=r["id"],
        config_raw=r["config"].encode(),
        config=json.loads(r["config"]),
        manifest=r["manifest"].encode(),
        created=int(r["created"]),
        size=int(r["size"]),
        last_tag_time=r["last_tag_time"],
    )
