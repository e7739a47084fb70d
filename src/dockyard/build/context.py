"""The build context: a tar stream (plain, gzip, …) unpacked into a private directory.

Every member must stay inside the context root: a name or hard link that climbs out
(``../x``), or a write through a symlink that points out, is an ``InvalidArgument`` and
nothing is kept. Symlinks themselves are kept as they are (COPY copies links, not their
targets); what they point at is resolved later inside the root only.
"""

from __future__ import annotations

import posixpath
import shutil
import tarfile
from pathlib import Path
from typing import BinaryIO, cast

from dockyard.archive import open_decompressed
from dockyard.errors import InvalidArgument

__all__ = ["extract_context"]


def _check_name(name: str) -> None:
    cleaned = posixpath.normpath("/" + name.lstrip("/"))
    rel = posixpath.normpath(name.lstrip("/")) if name.strip("/") else "."
    if rel == ".." or rel.startswith("../") or not cleaned.startswith("/"):
        raise InvalidArgument(f'build context path "{name}" is outside of the context')


def extract_context(src: BinaryIO, dest: Path) -> None:
    """Unpack the context tar ``src`` into the existing empty directory ``dest``.

    ``InvalidArgument`` for a corrupt archive or a path escaping the root; ``dest`` is
    emptied again on failure."""
    try:
        with (
            open_decompressed(src) as plain,
            tarfile.open(fileobj=cast(BinaryIO, _LenientEnd(plain)), mode="r|") as tar,
        ):
            for member in tar:
                _check_name(member.name)
                if member.islnk():
                    _check_name(member.linkname)
                try:
                    tar.extract(member, dest, filter="tar")
                except tarfile.FilterError as exc:
                    raise InvalidArgument(
                        f'build context path "{member.name}" is outside of the context: {exc}'
                    ) from None
    except (tarfile.TarError, EOFError) as exc:
        _empty(dest)
        raise InvalidArgument(f"invalid build context: {exc}") from None
    except BaseException:
        _empty(dest)
        raise


class _LenientEnd:
    """A tar stream that may stop right after its last member's data.

    The docker CLI's ``build -f - DIR`` rewrites the context with Go's tar writer and
    sends it without the last member's padding or the end-of-archive blocks; Go's reader
    accepts that. This reader follows the headers as bytes pass and, when the stream ends
    exactly where a member's data ends, supplies the missing zeros. A stream cut anywhere
    else stays truncated, so corrupt input is still refused.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._pos = 0
        self._header_at = 0  # offset of the next header block
        self._header = bytearray()
        self._data_end = -1  # where the current member's data ends (unpadded)
        self._tail = b""
        self._eof = False

    def _track(self, chunk: bytes) -> None:
        start = self._pos
        self._pos += len(chunk)
        while self._header_at < self._pos:
            lo = max(self._header_at, start) - start
            hi = min(self._header_at + 512, self._pos) - start
            self._header += chunk[lo:hi]
            if len(self._header) < 512:
                return
            size = _header_size(bytes(self._header))
            self._data_end = self._header_at + 512 + size
            self._header_at += 512 + -(-size // 512) * 512
            self._header = bytearray()

    def read(self, n: int = -1) -> bytes:
        if self._eof:
            out, self._tail = (self._tail, b"") if n < 0 else (self._tail[:n], self._tail[n:])
            return out
        chunk = self._raw.read(n)
        if chunk:
            self._track(chunk)
            return chunk
        self._eof = True
        if self._pos == self._data_end and self._pos % 512:
            self._tail = bytes(512 - self._pos % 512) + bytes(1024)
        return self.read(n)


def _header_size(block: bytes) -> int:
    """The size field of a tar header block (octal, or base-256 for large sizes)."""
    field = block[124:136]
    if field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    text = field.rstrip(b"\0 ").strip()
    try:
        return int(text or b"0", 8)
    except ValueError:
        return 0


def _empty(dest: Path) -> None:
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
