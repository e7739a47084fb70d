"""Streams that sha256 what passes through them: a layer's diff_id in one pass.

The diff_id is the digest of the *uncompressed* tar.  Hashing while tarfile
reads (or writes) avoids a second pass over a possibly multi-GiB stream.
"""

from __future__ import annotations

import hashlib
import io
from typing import BinaryIO

from dockyard.errors import SystemError

__all__ = ["HashingReader", "HashingWriter"]


class HashingReader(io.RawIOBase):
    """Reads from `inner`, hashing and counting every byte returned."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self._sha = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self._inner.read(len(view))
        self._sha.update(data)
        self.count += len(data)
        view[: len(data)] = data
        return len(data)

    def digest(self) -> str:
        return "sha256:" + self._sha.hexdigest()


class HashingWriter(io.RawIOBase):
    """Writes to `out`, hashing every byte; `OSError` from `out` becomes `SystemError`."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._sha = hashlib.sha256()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            self._out.write(data)
        except OSError as e:
            raise SystemError(f"writing layer stream: {e}") from e
        self._sha.update(data)
        self.count += len(data)
        return len(data)

    def digest(self) -> str:
        return "sha256:" + self._sha.hexdigest()
