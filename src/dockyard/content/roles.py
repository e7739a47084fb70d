"""The narrow roles callers ask for, so a fake or a remote store can stand in.

``ContentStore`` satisfies all of them; functions take the smallest one they need.
"""

from __future__ import annotations

from typing import BinaryIO, Protocol

__all__ = ["Deleter", "Ingester", "Provider"]


class Provider(Protocol):
    """Reads verified blobs. ``open``/``size`` raise ``NotFound`` for an absent blob."""

    def has(self, digest: str) -> bool: ...

    def open(self, digest: str) -> BinaryIO: ...

    def size(self, digest: str) -> int: ...


class Ingester(Protocol):
    """Writes blobs, checking content against the digest the caller expects."""

    def ingest(
        self,
        src: BinaryIO,
        expected: str | None = None,
        expected_size: int | None = None,
    ) -> str: ...

    def write_blob(self, data: bytes, expected: str | None = None) -> str: ...


class Deleter(Protocol):
    """Removes blobs (garbage collection). ``NotFound`` for an absent blob."""

    def delete(self, digest: str) -> None: ...
