"""The distribution spec's grammar for names, tags, digests and upload ids. Pure predicates.

- repository name: ``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*``,
  at most 255 characters (clients limit host + ``/`` + name to 255)
- tag: ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``
- digest: ``sha256:<64 hex>`` or ``sha512:<128 hex>`` (lowercase); other algorithms are
  refused as unsupported
- upload id: a lowercase RFC 4122 UUID (we mint them)

None of these admit ``/.``, ``..`` or a leading dot, which is what keeps storage paths built
from them inside their repository.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "DIGEST_ALGORITHMS",
    "MAX_NAME_LENGTH",
    "is_digest",
    "is_name",
    "is_tag",
    "is_upload_id",
    "new_hasher",
]

MAX_NAME_LENGTH = 255
DIGEST_ALGORITHMS = {"sha256": 64, "sha512": 128}

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST_RE = re.compile(r"(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})")
_UUID_RE = re.compile(r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}")


def is_name(value: str) -> bool:
    return len(value) <= MAX_NAME_LENGTH and _NAME_RE.fullmatch(value) is not None


def is_tag(value: str) -> bool:
    return _TAG_RE.fullmatch(value) is not None


def is_digest(value: str) -> bool:
    return _DIGEST_RE.fullmatch(value) is not None


def is_upload_id(value: str) -> bool:
    return _UUID_RE.fullmatch(value) is not None


def new_hasher(algorithm: str) -> hashlib._Hash:
    """A fresh hash object for a supported algorithm (``KeyError`` otherwise)."""
    if algorithm not in DIGEST_ALGORITHMS:
        raise KeyError(algorithm)
    return hashlib.new(algorithm)
