"""Write ``docker save`` tarballs that both Docker and OCI tools read.

The layout is what Docker 25 writes: an OCI image layout (``oci-layout``, ``index.json``,
``blobs/sha256/…`` with *uncompressed* layers named by their diff IDs) and, beside it,
``manifest.json``, ``repositories``, ``<config hex>.json`` and dockerd 20.10's legacy
``<v1 id>/{VERSION,json,layer.tar}`` directories, whose ``layer.tar`` is a symlink to the
layer blob so no layer is stored twice. Output is reproducible: the same images give
the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

from dockyard.archive import open_decompressed, write_layer_from_diff
from dockyard.content.store import ContentStore
from dockyard.errors import InvalidArgument, NotFound, SystemError
from dockyard.images._records import ImageRecord
from dockyard.images._sources import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME
from dockyard.oci import mediatypes
from dockyard.oci.descriptor import Descriptor, Platform
from dockyard.oci.digest import digest_hex, sha256_digest
from dockyard.oci.image import ZERO_TIME, chain_ids, diff_ids, docker_config
from dockyard.oci.manifest import Index, Manifest, canonical_json, parse_manifest
from dockyard.reference import Reference
from dockyard.snapshots.overlay import OverlaySnapshotter

__all__ = ["SaveWriter"]

_CHUNK = 1 << 20


class SaveWriter:
    """Streams one save tarball; each layer is written once however many images share it."""

    def __init__(
        self, out: BinaryIO, tmp: Path, content: ContentStore, snapshots: OverlaySnapshotter
    ) -> None:
        self._out = out
        self._tmp = tmp
        self._content = content
        self._snapshots = snapshots
        self._dirs: set[str] = set()
        self._blobs: dict[str, int] = {}  # digest -> size, written under blobs/sha256/
        self._v1: set[str] = set()

    def write(self, images: list[tuple[ImageRecord, list[Reference]]]) -> None:
        manifest_json: list[dict[str, Any]] = []
        repositories: dict[str, dict[str, str]] = {}
        index_entries: list[Descriptor] = []
        stamp = max((row.created for row, _ in images), default=0)
        with tarfile.open(fileobj=self._out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for row, refs in images:
                mtime = row.created
                ids = diff_ids(row.config)
                chains = chain_ids(ids)
                try:
                    stored_layers = list(parse_manifest(row.manifest).layers)
                except InvalidArgument:
                    stored_layers = []
                layer_descs: list[Descriptor] = []
                for i, diff_id in enumerate(ids):
                    stored = stored_layers[i] if i < len(stored_layers) else None
                    size = self._layer(tar, diff_id, chains[i], stored, mtime)
                    layer_descs.append(Descriptor(mediatypes.OCI_LAYER, diff_id, size))
                self._blob(tar, row.id, row.config_raw, mtime)
                self._file(tar, f"{digest_hex(row.id)}.json", row.config_raw, mtime)
                v1_top = self._legacy(tar, row, ids, chains, mtime)
                manifest = Manifest(
                    config=Descriptor(mediatypes.OCI_CONFIG, row.id, len(row.config_raw)),
                    layers=tuple(layer_descs),
                )
                manifest_bytes = manifest.to_bytes()
                manifest_digest = sha256_digest(manifest_bytes)
                self._blob(tar, manifest_digest, manifest_bytes, mtime)
                platform = Platform(
                    str(row.config.get("os") or "linux"),
                    str(row.config.get("architecture") or "amd64"),
                    str(row.config.get("variant") or ""),
                )
                entries: list[Reference | None] = [*refs] or [None]
                for ref in entries:
                    annotations = (
                        {ANNOTATION_IMAGE_NAME: str(ref), ANNOTATION_REF_NAME: ref.tag or ""}
                        if ref is not None
                        else {}
                    )
                    index_entries.append(
                        Descriptor(
                            mediatypes.OCI_MANIFEST,
                            manifest_digest,
                            len(manifest_bytes),
                            annotations=annotations,
                            platform=platform,
                        )
                    )
                for ref in refs:
                    if ref.tag is not None and v1_top is not None:
                        repositories.setdefault(ref.familiar_name, {})[ref.tag] = v1_top
                manifest_json.append(
                    {
                        "Config": f"blobs/sha256/{digest_hex(row.id)}",
                        "RepoTags": [ref.familiar() for ref in refs] or None,
                        "Layers": [f"blobs/sha256/{digest_hex(d)}" for d in ids],
                    }
                )
            self._file(tar, "index.json", Index(tuple(index_entries)).to_bytes(), stamp)
            self._file(tar, "manifest.json", json.dumps(manifest_json).encode(), stamp)
            self._file(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}', stamp)
            if repositories:
                self._file(tar, "repositories", json.dumps(repositories).encode(), stamp)

    # entries

    @staticmethod
    def _info(name: str, mtime: int, mode: int = 0o644) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mtime = mtime
        info.mode = mode
        return info

    def _file(self, tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
        info = self._info(name, mtime)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    def _dir(self, tar: tarfile.TarFile, name: str, mtime: int) -> None:
        if name in self._dirs:
            return
        self._dirs.add(name)
        info = self._info(name, mtime, 0o755)
        info.type = tarfile.DIRTYPE
        tar.addfile(info)

    def _blob(self, tar: tarfile.TarFile, digest: str, data: bytes, mtime: int) -> None:
        if digest in self._blobs:
            return
        self._dir(tar, "blobs", mtime)
        self._dir(tar, "blobs/sha256", mtime)
        self._file(tar, f"blobs/sha256/{digest_hex(digest)}", data, mtime)
        self._blobs[digest] = len(data)

    def _layer(
        self,
        tar: tarfile.TarFile,
        diff_id: str,
        chain: str,
        stored: Descriptor | None,
        mtime: int,
    ) -> int:
        """Write uncompressed layer ``diff_id`` as a blob (once); return its size."""
        if diff_id in self._blobs:
            return self._blobs[diff_id]
        self._dir(tar, "blobs", mtime)
        self._dir(tar, "blobs/sha256", mtime)
        info = self._info(f"blobs/sha256/{digest_hex(diff_id)}", mtime)
        if self._content.has(diff_id):  # stored uncompressed: the blob is the layer
            info.size = self._content.size(diff_id)
            with self._content.open(diff_id) as src:
                tar.addfile(info, src)
        else:
            tmp = self._materialise(diff_id, chain, stored)
            try:
                info.size = tmp.stat().st_size
                with open(tmp, "rb") as src:
                    tar.addfile(info, src)
            finally:
                tmp.unlink(missing_ok=True)
        self._blobs[diff_id] = info.size
        return info.size

    def _materialise(self, diff_id: str, chain: str, stored: Descriptor | None) -> Path:
        """The uncompressed layer in a temp file: the stored (compressed) blob inflated,
        else regenerated from the layer's snapshot; either is checked against
        ``diff_id``. ``SystemError`` when neither gives it."""
        tmp = self._tmp / f"layer-{digest_hex(diff_id)}"
        if stored is not None and self._content.has(stored.digest):
            h = hashlib.sha256()
            with (
                self._content.open(stored.digest) as blob,
                open_decompressed(blob) as plain,
                open(tmp, "wb") as f,
            ):
                while chunk := plain.read(_CHUNK):
                    h.update(chunk)
                    f.write(chunk)
            if "sha256:" + h.hexdigest() == diff_id:
                return tmp
        try:
            diff_dir = self._snapshots.upper_dir(chain)
        except NotFound:
            tmp.unlink(missing_ok=True)
            raise SystemError(f"layer {diff_id} is missing: no blob and no snapshot") from None
        with open(tmp, "wb") as f:
            got = write_layer_from_diff(diff_dir, f)
        if got != diff_id:
            tmp.unlink(missing_ok=True)
            raise SystemError(f"layer {diff_id} cannot be reproduced from its snapshot (got {got})")
        return tmp

    def _legacy(
        self,
        tar: tarfile.TarFile,
        row: ImageRecord,
        ids: list[str],
        chains: list[str],
        mtime: int,
    ) -> str | None:
        """dockerd 20.10's ``<v1 id>/{VERSION,json,layer.tar}``; returns the top v1 ID.

        v1 IDs are derived as dockerd's ``v1.CreateID`` does (digest of the v1 JSON with
        the chain ID and parent), so saving an image twice gives the same tarball."""
        parent: str | None = None
        created = row.config.get("created") or ZERO_TIME
        for i, (diff_id, chain) in enumerate(zip(ids, chains, strict=True)):
            if i == len(ids) - 1:
                v1: dict[str, Any] = {
                    k: v for k, v in row.config.items() if k not in ("rootfs", "history")
                }
            else:
                v1 = {"created": created, "container_config": docker_config({})}
                if row.config.get("os"):
                    v1["os"] = row.config["os"]
            if parent is not None:
                v1["parent"] = parent
            v1_id = digest_hex(sha256_digest(canonical_json(dict(v1, layer_id=chain))))
            v1["id"] = v1_id
            if v1_id not in self._v1:
                self._v1.add(v1_id)
                self._dir(tar, v1_id, mtime)
                self._file(tar, f"{v1_id}/VERSION", b"1.0", mtime)
                self._file(tar, f"{v1_id}/json", canonical_json(v1), mtime)
                link = self._info(f"{v1_id}/layer.tar", mtime, 0o777)
                link.type = tarfile.SYMTYPE
                link.linkname = f"../blobs/sha256/{digest_hex(diff_id)}"
                tar.addfile(link)
            parent = v1_id
        return parent
