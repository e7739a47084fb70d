"""Manifests and indexes as the registry sees them: what they point at, and what type they are.

Pure: bytes in, ``ParsedManifest`` out, ``ManifestInvalid`` for anything the registry will not
store. The registry accepts the four manifest types of OCI image-spec 1.1 and Docker schema 2
(image manifest and index of each family) and stores their bytes exactly as pushed; this module
only reads them to learn

- the media type to serve them with (the ``mediaType`` field; without one, the OCI type the
  shape implies -- Docker schema 2 requires the field),
- the descriptors that must exist before the manifest may (config and layers of an image
  manifest, except foreign layers that carry ``urls``; the children of an index),
- ``subject``, ``artifactType`` and ``annotations`` for the referrers API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.oci import mediatypes
from dockyard.registry import grammar

__all__ = [
    "MANIFEST_TYPES",
    "ManifestInvalid",
    "ParsedManifest",
    "Ref",
    "parse_manifest",
    "stored_media_type",
]

MANIFEST_TYPES = frozenset(
    {
        mediatypes.OCI_MANIFEST,
        mediatypes.OCI_INDEX,
        mediatypes.DOCKER_MANIFEST,
        mediatypes.DOCKER_MANIFEST_LIST,
    }
)
_INDEX_TYPES = frozenset({mediatypes.OCI_INDEX, mediatypes.DOCKER_MANIFEST_LIST})
_DOCKER_TYPES = frozenset({mediatypes.DOCKER_MANIFEST, mediatypes.DOCKER_MANIFEST_LIST})


class ManifestInvalid(InvalidArgument):
    """The bytes are not a manifest this registry stores; ``detail`` says where."""

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class Ref:
    """One descriptor inside a manifest."""

    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    platform: tuple[str, str, str] | None = None  # (os, architecture, variant)


@dataclass(frozen=True)
class ParsedManifest:
    media_type: str
    config: Ref | None = None
    layers: tuple[Ref, ...] = ()
    manifests: tuple[Ref, ...] = ()
    subject: Ref | None = None
    artifact_type: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in _INDEX_TYPES

    def blob_refs(self) -> list[Ref]:
        """Blobs that must be in the repository: config and every layer without ``urls``."""
        refs = [self.config] if self.config is not None else []
        return refs + [layer for layer in self.layers if not layer.urls]

    def referrer_artifact_type(self) -> str:
        """``artifactType`` as the referrers API reports it ("" means omit)."""
        if self.artifact_type:
            return self.artifact_type
        if not self.is_index and self.config is not None:
            return self.config.media_type
        return ""


def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _ref(value: Any, where: str) -> Ref:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where}: expected a descriptor object", {"field": where})
    media_type = value.get("mediaType")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}: mediaType must be a non-empty string", {"field": where})
    digest = value.get("digest")
    if not isinstance(digest, str) or not grammar.is_digest(digest):
        raise ManifestInvalid(
            f"{where}: unsupported or malformed digest {digest!r}", {"field": where}
        )
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}: size must be a non-negative integer", {"field": where})
    urls = value.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ManifestInvalid(f"{where}: urls must be a list of strings", {"field": where})
    platform = None
    raw_platform = value.get("platform")
    if raw_platform is not None:
        if not isinstance(raw_platform, dict):
            raise ManifestInvalid(f"{where}: platform must be an object", {"field": where})
        platform = (
            str(raw_platform.get("os", "")),
            str(raw_platform.get("architecture", "")),
            str(raw_platform.get("variant", "")),
        )
    return Ref(media_type, digest, size, tuple(urls), platform)


def _refs(value: Any, where: str) -> tuple[Ref, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ManifestInvalid(f"{where}: expected a list", {"field": where})
    return tuple(_ref(v, f"{where}[{i}]") for i, v in enumerate(value))


def _load(data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestInvalid(f"manifest is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    return obj


def _shape_type(obj: Mapping[str, Any]) -> str:
    if "manifests" in obj:
        return mediatypes.OCI_INDEX
    return mediatypes.OCI_MANIFEST


def parse_manifest(data: bytes, content_type: str | None = None) -> ParsedManifest:
    """Validate a pushed manifest. ``content_type`` is the PUT's ``Content-Type``: parameters
    are ignored; when it names a manifest type it must agree with the ``mediaType`` field."""
    obj = _load(data)
    version = obj.get("schemaVersion")
    if version != 2 or isinstance(version, bool):
        raise ManifestInvalid(
            f"unsupported schemaVersion {version!r}: only schema 2 manifests are accepted",
            {"field": "schemaVersion"},
        )
    declared = obj.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string", {"field": "mediaType"})
    header = _base_type(content_type)
    header_is_manifest = header in MANIFEST_TYPES
    if declared:
        if declared not in MANIFEST_TYPES:
            raise ManifestInvalid(f"unsupported manifest media type {declared!r}")
        if header_is_manifest and header != declared:
            raise ManifestInvalid(
                f"Content-Type {header!r} does not match the manifest's mediaType {declared!r}"
            )
        media_type = declared
    else:
        media_type = _shape_type(obj)
        if header_is_manifest and header != media_type:
            if header in _DOCKER_TYPES:
                raise ManifestInvalid(f"a {header} manifest must carry its mediaType field")
            raise ManifestInvalid(
                f"Content-Type {header!r} does not match the manifest's shape ({media_type})"
            )
    artifact_type = obj.get("artifactType", "")
    if not isinstance(artifact_type, str):
        raise ManifestInvalid("artifactType must be a string", {"field": "artifactType"})
    annotations = obj.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise ManifestInvalid("annotations must map strings to strings", {"field": "annotations"})
    subject = _ref(obj["subject"], "subject") if obj.get("subject") is not None else None
    if media_type in _INDEX_TYPES:
        if not isinstance(obj.get("manifests"), list):
            raise ManifestInvalid("an index needs a manifests list", {"field": "manifests"})
        return ParsedManifest(
            media_type=media_type,
            manifests=_refs(obj["manifests"], "manifests"),
            subject=subject,
            artifact_type=artifact_type,
            annotations=dict(annotations),
        )
    if "config" not in obj:
        raise ManifestInvalid("an image manifest needs a config descriptor", {"field": "config"})
    return ParsedManifest(
        media_type=media_type,
        config=_ref(obj["config"], "config"),
        layers=_refs(obj.get("layers"), "layers"),
        subject=subject,
        artifact_type=artifact_type,
        annotations=dict(annotations),
    )


def stored_media_type(data: bytes) -> str:
    """The type to serve stored manifest bytes with; never raises (bytes written by another
    registry may be anything): the ``mediaType`` field, else what the shape implies."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return "application/octet-stream"
    if not isinstance(obj, dict):
        return "application/octet-stream"
    declared = obj.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if obj.get("schemaVersion") == 1:
        return "application/vnd.docker.distribution.manifest.v1+prettyjws"
    return _shape_type(obj)
