"""Content digests (``sha256:<64 hex>``): compute, validate, shorten. Pure."""

from __future__ import annotations

import hashlib
import re

from dockyard.errors import InvalidArgument

__all__ = ["digest_hex", "is_sha256", "sha256_digest", "short_id", "validate_digest"]

_SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_sha256(value: str) -> bool:
    """True for a well-formed ``sha256:<64 lowercase hex>`` digest."""
    return bool(_SHA256_RE.match(value))


def validate_digest(value: str) -> str:
    """Return ``value`` if it is a sha256 digest; raise ``InvalidArgument`` otherwise.

    Only sha256 is accepted: it is the one algorithm every image tool writes, and a
    fixed algorithm keeps on-disk paths (``blobs/sha256/<hex>``) safe to build.
    """
    if not _SHA256_RE.match(value):
        raise InvalidArgument(f"invalid digest {value!r}: expected sha256:<64 hex digits>")
    return value


def digest_hex(value: str) -> str:
    """The hex part of a validated digest."""
    return validate_digest(value)[len("sha256:") :]


def short_id(value: str) -> str:
    """Docker's short form: the first 12 hex digits (``stringid.TruncateID``)."""
    hex_part = value.split(":", 1)[1] if ":" in value else value
    return hex_part[:12]
