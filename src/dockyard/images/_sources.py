"""Read the images out of an unpacked ``docker load`` tarball. Checks structure and the
digests that name things; layer contents are checked later, when they are unpacked.

Two layouts are understood:

- **docker-archive** (``manifest.json`` at the top): ``[{"Config": "<hex>.json",
  "RepoTags": ["busybox:latest"], "Layers": ["<id>/layer.tar", …]}]``. Docker 25+ writes
  the same file with ``blobs/sha256/…`` paths, next to an OCI layout; ``manifest.json``
  wins when both are present, as in dockerd.
- **OCI image layout** (``oci-layout`` + ``index.json`` + ``blobs/``): each index entry is
  a manifest, or an index from which the wanted platform is picked. Names come from the
  entry's annotations: ``io.containerd.image.name`` (a full reference), else
  ``org.opencontainers.image.ref.name`` when it is a full reference (``name:tag``); a bare
  tag (``latest``), which names no repository, leaves the image untagged.

Errors: ``InvalidArgument`` for anything malformed or not matching its digest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.images._untar import Extracted
from dockyard.oci import mediatypes
from dockyard.oci.descriptor import Descriptor, Platform
from dockyard.oci.digest import digest_hex, sha256_digest
from dockyard.oci.manifest import parse_index, parse_manifest
from dockyard.reference import Reference, parse

__all__ = ["ImageSource", "LayerSource", "read_images"]

ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
_HEX_JSON_RE = re.compile(r"^(?:.*/)?([a-f0-9]{64})(?:\.json)?$")


@dataclass(frozen=True)
class LayerSource:
    """A layer blob in the archive; ``digest``/``size`` when a manifest names them."""

    path: Path
    digest: str | None = None
    size: int | None = None
    media_type: str | None = None


@dataclass
class ImageSource:
    config: bytes
    config_digest: str
    config_media_type: str
    layers: list[LayerSource]
    tags: list[Reference] = field(default_factory=list)
    repo_digests: list[Reference] = field(default_factory=list)
    manifest: bytes | None = None  # the original manifest, when the archive has one


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"invalid archive: {what}: {exc}") from None


def _tag_ref(text: str) -> Reference:
    ref = parse(text, default_tag=False)
    if ref.tag is None or ref.digest is not None:
        raise InvalidArgument(f'invalid tag "{text}"')
    return ref


def _docker_archive(arch: Extracted) -> list[ImageSource]:
    entries = _json(arch.read("manifest.json"), "manifest.json")
    if not isinstance(entries, list):
        raise InvalidArgument("invalid archive: manifest.json must be a list")
    out: list[ImageSource] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise InvalidArgument("invalid archive: manifest.json entries must be objects")
        config_name = entry.get("Config")
        layers = entry.get("Layers") or []
        tags = entry.get("RepoTags") or []
        if not isinstance(config_name, str) or not isinstance(layers, list):
            raise InvalidArgument("invalid archive: manifest.json entry needs Config and Layers")
        if not all(isinstance(x, str) for x in [*layers, *tags]):
            raise InvalidArgument("invalid archive: Layers and RepoTags must be strings")
        config = arch.read(config_name)
        digest = sha256_digest(config)
        named = _HEX_JSON_RE.match(config_name)
        if named and named.group(1) != digest_hex(digest):
            raise InvalidArgument(
                f"invalid archive: config {config_name} has digest {digest}"
                f" (expected sha256:{named.group(1)})"
            )
        out.append(
            ImageSource(
                config=config,
                config_digest=digest,
                config_media_type=mediatypes.DOCKER_CONFIG,
                layers=[LayerSource(arch.path(name)) for name in layers],
                tags=[_tag_ref(t) for t in tags],
            )
        )
    return out


def _blob(arch: Extracted, desc: Descriptor) -> bytes:
    data = arch.read(f"blobs/sha256/{digest_hex(desc.digest)}")
    if len(data) != desc.size or sha256_digest(data) != desc.digest:
        raise InvalidArgument(f"invalid archive: blob {desc.digest} does not match its digest")
    return data


def _names(desc: Descriptor) -> list[Reference]:
    full = desc.annotations.get(ANNOTATION_IMAGE_NAME)
    if full:
        return [_tag_ref(full)]
    ref_name = desc.annotations.get(ANNOTATION_REF_NAME, "")
    if ref_name and (":" in ref_name or "/" in ref_name):
        try:
            return [_tag_ref(ref_name)]
        except InvalidArgument:
            return []
    return []


def _oci_layout(arch: Extracted, platform: Platform) -> list[ImageSource]:
    layout = _json(arch.read("oci-layout"), "oci-layout")
    if not isinstance(layout, dict) or not isinstance(layout.get("imageLayoutVersion"), str):
        raise InvalidArgument("invalid archive: oci-layout has no imageLayoutVersion")
    index = parse_index(arch.read("index.json"))
    out: dict[str, ImageSource] = {}
    for desc in index.manifests:
        if mediatypes.is_index(desc.media_type):
            nested = parse_index(_blob(arch, desc))
            manifest_desc = nested.select(platform)
        elif mediatypes.is_manifest(desc.media_type):
            if desc.platform is not None and not desc.platform.matches(
                platform.os, platform.architecture, platform.variant
            ):
                continue
            manifest_desc = desc
        else:
            continue  # attestations, artifacts: not images
        manifest_bytes = _blob(arch, manifest_desc)
        manifest = parse_manifest(manifest_bytes)
        config = _blob(arch, manifest.config)
        names = _names(desc)
        source = out.get(manifest.config.digest)
        if source is None:
            source = out[manifest.config.digest] = ImageSource(
                config=config,
                config_digest=manifest.config.digest,
                config_media_type=manifest.config.media_type,
                layers=[
                    LayerSource(
                        arch.path(f"blobs/sha256/{digest_hex(layer.digest)}"),
                        digest=layer.digest,
                        size=layer.size,
                        media_type=layer.media_type,
                    )
                    for layer in manifest.layers
                ],
                manifest=manifest_bytes,
            )
        for name in names:
            if name not in source.tags:
                source.tags.append(name)
            canonical = Reference(name.domain, name.path, None, desc.digest)
            if canonical not in source.repo_digests:
                source.repo_digests.append(canonical)
    if not out:
        wanted = f"{platform.os}/{platform.architecture}"
        raise InvalidArgument(f"invalid archive: no image for {wanted} in index.json")
    return list(out.values())


def read_images(arch: Extracted, platform: Platform) -> list[ImageSource]:
    """Every image in the archive (see the module docstring for the layouts)."""
    if arch.has("manifest.json"):
        return _docker_archive(arch)
    if arch.has("index.json"):
        return _oci_layout(arch, platform)
    raise InvalidArgument(
        "invalid archive: neither manifest.json (docker save) nor index.json (OCI layout)"
    )
