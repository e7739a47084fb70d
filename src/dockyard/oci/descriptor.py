"""Content descriptors and platforms (OCI image spec ``descriptor.md``). Pure.

Parsing validates shape and types and raises ``InvalidArgument`` with the field at
fault; serialisation emits only fields that are set, as Go's ``omitempty`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.oci.digest import validate_digest

__all__ = ["Descriptor", "Platform"]


def _str(obj: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InvalidArgument(f"invalid {where}: {key!r} must be a non-empty string")
    return value


def _str_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidArgument(f"invalid {where}: annotations must map strings to strings")
    return dict(value)


@dataclass(frozen=True)
class Platform:
    """The platform an image runs on; ``variant`` and ``os_version`` may be empty."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""

    @classmethod
    def from_json(cls, obj: Any) -> Platform:
        if not isinstance(obj, dict):
            raise InvalidArgument("invalid platform: expected an object")
        return cls(
            os=_str(obj, "os", "platform"),
            architecture=_str(obj, "architecture", "platform"),
            variant=_str(obj, "variant", "platform", required=False),
            os_version=_str(obj, "os.version", "platform", required=False),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        return out

    def matches(self, os: str, architecture: str, variant: str = "") -> bool:
        """True when this platform can run on ``os/architecture[/variant]``.

        amd64 has no variants in practice; for arm an empty wanted variant accepts any.
        """
        if self.os != os or self.architecture != architecture:
            return False
        return not variant or not self.variant or self.variant == variant


@dataclass(frozen=True)
class Descriptor:
    """A typed pointer to content: media type, digest and size (+ optional extras)."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: Any, *, where: str = "descriptor") -> Descriptor:
        if not isinstance(obj, dict):
            raise InvalidArgument(f"invalid {where}: expected an object")
        media_type = _str(obj, "mediaType", where)
        digest = obj.get("digest")
        if not isinstance(digest, str):
            raise InvalidArgument(f"invalid {where}: 'digest' must be a string")
        validate_digest(digest)
        size = obj.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidArgument(f"invalid {where}: 'size' must be a non-negative integer")
        platform = Platform.from_json(obj["platform"]) if obj.get("platform") is not None else None
        urls = obj.get("urls") or []
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise InvalidArgument(f"invalid {where}: 'urls' must be a list of strings")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations=_str_map(obj.get("annotations"), where),
            platform=platform,
            urls=tuple(urls),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out
