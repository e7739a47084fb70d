"""Image manifests and indexes (OCI ``manifest.md``/``image-index.md``, Docker schema 2). Pure.

``parse_manifest`` and ``parse_index`` accept both families; a manifest without a
``mediaType`` field is taken as OCI (the field is optional there). Malformed input raises
``InvalidArgument``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.oci import mediatypes
from dockyard.oci.descriptor import Descriptor, Platform

__all__ = ["Index", "Manifest", "canonical_json", "parse_index", "parse_manifest"]


def canonical_json(obj: Any) -> bytes:
    """Deterministic compact JSON (sorted keys, no spaces): stable digests for what we write."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _load(data: bytes | str, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"invalid {what}: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidArgument(f"invalid {what}: expected a JSON object")
    return obj


def _annotations(obj: Mapping[str, Any], what: str) -> dict[str, str]:
    value = obj.get("annotations") or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidArgument(f"invalid {what}: annotations must map strings to strings")
    return dict(value)


def _schema(obj: Mapping[str, Any], what: str) -> None:
    if obj.get("schemaVersion") != 2:
        raise InvalidArgument(f"invalid {what}: schemaVersion must be 2")


@dataclass(frozen=True)
class Manifest:
    """One image for one platform: a config descriptor and ordered layers (bottom first)."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = mediatypes.OCI_MANIFEST
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())


@dataclass(frozen=True)
class Index:
    """A list of manifests (usually one per platform), each with its descriptor."""

    manifests: tuple[Descriptor, ...]
    media_type: str = mediatypes.OCI_INDEX
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [m.to_json() for m in self.manifests],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    def select(self, platform: Platform) -> Descriptor:
        """The first manifest entry for ``platform``; entries without a platform match anything
        only when they are the sole entry. ``NotFound``-like misses raise ``InvalidArgument``
        with Docker's wording, because the caller sent an image that cannot run here."""
        candidates = [m for m in self.manifests if mediatypes.is_manifest(m.media_type)]
        for m in candidates:
            if m.platform is not None and m.platform.matches(
                platform.os, platform.architecture, platform.variant
            ):
                return m
        if len(candidates) == 1 and candidates[0].platform is None:
            return candidates[0]
        wanted = f"{platform.os}/{platform.architecture}"
        raise InvalidArgument(f"no matching manifest for {wanted} in the manifest list entries")


def _descriptors(value: Any, what: str) -> tuple[Descriptor, ...]:
    if not isinstance(value, list):
        raise InvalidArgument(f"invalid {what}: expected a list")
    return tuple(Descriptor.from_json(v, where=what) for v in value)


def parse_manifest(data: bytes | str) -> Manifest:
    """Parse an image manifest; raises ``InvalidArgument`` for an index or malformed JSON."""
    obj = _load(data, "manifest")
    _schema(obj, "manifest")
    media_type = obj.get("mediaType") or mediatypes.OCI_MANIFEST
    if not isinstance(media_type, str) or not mediatypes.is_manifest(media_type):
        raise InvalidArgument(f"invalid manifest: unexpected media type {media_type!r}")
    if "config" not in obj:
        raise InvalidArgument("invalid manifest: no config")
    return Manifest(
        config=Descriptor.from_json(obj["config"], where="manifest config"),
        layers=_descriptors(obj.get("layers", []), "manifest layers"),
        media_type=media_type,
        annotations=_annotations(obj, "manifest"),
    )


def parse_index(data: bytes | str) -> Index:
    """Parse an image index or Docker manifest list (``index.json`` of a layout too)."""
    obj = _load(data, "index")
    _schema(obj, "index")
    media_type = obj.get("mediaType") or mediatypes.OCI_INDEX
    if not isinstance(media_type, str) or not mediatypes.is_index(media_type):
        raise InvalidArgument(f"invalid index: unexpected media type {media_type!r}")
    return Index(
        manifests=_descriptors(obj.get("manifests", []), "index manifests"),
        media_type=media_type,
        annotations=_annotations(obj, "index"),
    )
