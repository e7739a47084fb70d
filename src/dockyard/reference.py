"""Image references, normalised the way Docker does.

``nginx`` → ``docker.io/library/nginx:latest``; ``host:5000/a/b:t``; ``repo@sha256:…``.
``familiar()`` gives the short form Docker shows (``nginx:latest``, ``127.0.0.1:5000/a:t``).
Pure: no I/O. Raises ``InvalidArgument`` with Docker's wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.errors import InvalidArgument

__all__ = ["DEFAULT_DOMAIN", "Reference", "is_digest", "parse"]

DEFAULT_DOMAIN = "docker.io"
_LEGACY_DOMAIN = "index.docker.io"
_OFFICIAL_PREFIX = "library/"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_COMPONENT_RE = re.compile(rf"^{_COMPONENT}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_DOMAIN_RE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
    r"(?::[0-9]+)?$|^\[[a-fA-F0-9:]+\](?::[0-9]+)?$"
)


def is_digest(value: str) -> bool:
    """True for a full ``sha256:<64 hex>`` digest."""
    return bool(_SHA256_RE.match(value))


@dataclass(frozen=True)
class Reference:
    """A normalised reference: domain, path, and a tag and/or digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Full repository name, e.g. ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """Repository as Docker shows it: ``busybox``, ``user/app``, ``host:5000/app``."""
        if self.domain == DEFAULT_DOMAIN:
            if (
                self.path.startswith(_OFFICIAL_PREFIX)
                and "/" not in self.path[len(_OFFICIAL_PREFIX) :]
            ):
                return self.path[len(_OFFICIAL_PREFIX) :]
            return self.path
        return self.name

    def familiar(self) -> str:
        """Short string form: ``busybox:latest`` or ``busybox@sha256:…``."""
        out = self.familiar_name
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    def __str__(self) -> str:
        out = self.name
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def with_default_tag(self) -> Reference:
        """Add ``latest`` when there is neither tag nor digest (what ``docker pull`` does)."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, "latest", None)
        return self


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain = first
        path = rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == _LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = _OFFICIAL_PREFIX + path
    return domain, path


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise ``text``; add ``latest`` unless a tag or digest is given.

    Raises ``InvalidArgument`` ("invalid reference format…") for anything Docker refuses.
    """
    if not text or len(text) > 255 + 128 + 80:
        raise InvalidArgument("invalid reference format")
    remainder = text
    digest: str | None = None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise InvalidArgument("invalid reference format")
    tag: str | None = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidArgument("invalid reference format")
    if not remainder:
        raise InvalidArgument("invalid reference format")
    domain, path = _split_domain(remainder)
    if domain != DEFAULT_DOMAIN and not _DOMAIN_RE.match(domain):
        raise InvalidArgument("invalid reference format")
    for component in path.split("/"):
        if not _COMPONENT_RE.match(component):
            if component.lower() != component and _COMPONENT_RE.match(component.lower()):
                raise InvalidArgument(
                    f"invalid reference format: repository name ({path}) must be lowercase"
                )
            raise InvalidArgument("invalid reference format")
    if len(path) > 255:
        raise InvalidArgument(
            "invalid reference format: repository name must not be more than 255 characters"
        )
    ref = Reference(domain, path, tag, digest)
    return ref.with_default_tag() if default_tag else ref
