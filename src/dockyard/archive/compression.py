"""Layer blob compression: sniff and stream-decompress, and deterministic gzip.

Layers arrive as gzip (almost all registries), zstd (newer BuildKit output) or
plain tar (`docker save` of old images, `docker import`).  The media type is
not trusted: like Docker we sniff the magic bytes, so a mislabelled blob still
unpacks.  Everything streams -- a layer can be many GiB, so there are no temp
files and memory stays bounded by one read.

isal's igzip is used when it is importable: it inflates and deflates several
times faster than zlib, and decompression speed is most of `docker pull`'s
CPU time.

Errors: corrupt compressed data raises `InvalidArgument` ("invalid layer:
..."); an `OSError` from the caller's source stream raises `SystemError`.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from collections.abc import Callable
from typing import BinaryIO, Protocol, cast

import zstandard

from dockyard.errors import DockyardError, InvalidArgument, SystemError

_IGzipFile: Callable[..., io.BufferedIOBase] | None
_ISAL_ERRORS: tuple[type[BaseException], ...]
try:  # isal is a declared dependency, but a source checkout may lack the wheel
    from isal import igzip as _igzip
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - exercised only without isal
    _IGzipFile, _ISAL_ERRORS = None, ()
else:
    _IGzipFile = _igzip.GzipFile
    _ISAL_ERRORS = (cast(type[BaseException], _isal_zlib.error),)

__all__ = ["compress_gzip", "open_decompressed"]

_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_BZIP2_MAGIC = b"BZh"
_SNIFF = 6  # longest magic above

# Errors the decompressors raise on malformed input.  BadGzipFile is an OSError,
# which is why source errors are translated before they reach a decompressor.
_CORRUPT: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    zstandard.ZstdError,
    *_ISAL_ERRORS,
)

# zlib level -> isal level.  isal has levels 0-3: its 1 compresses about like
# zlib 1 and its 3 about like zlib 3, at 5-10x the speed.  Levels 0 ("store")
# and 7-9 ("smallest, whatever the cost") are requests isal cannot honour, so
# those go to zlib.
_ISAL_LEVEL = {1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 3}


class _Reader(Protocol):
    def read(self, size: int = ..., /) -> bytes | None: ...

    def close(self) -> None: ...


class _Source(io.RawIOBase):
    """The caller's stream with the sniffed prefix put back in front.

    Never closes the caller's stream: whoever opened it closes it.  An OSError
    from the caller's stream becomes SystemError here, so that the decompressors'
    own OSErrors (gzip.BadGzipFile) can mean "corrupt data" further up.
    """

    def __init__(self, src: BinaryIO, prefix: bytes) -> None:
        self._src = src
        self._prefix = prefix

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = _read_source(self._src, len(view))
        view[: len(data)] = data
        return len(data)


class _Guard(io.RawIOBase):
    """Turns a decompressor's exceptions into `InvalidArgument`."""

    def __init__(self, inner: _Reader, kind: str) -> None:
        self._inner = inner
        self._kind = kind

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        try:
            data = self._inner.read(len(view))
        except DockyardError:
            raise
        except _CORRUPT as e:
            raise InvalidArgument(f"invalid layer: corrupt {self._kind} data: {e}") from e
        if data is None:  # pragma: no cover - only non-blocking sources return None
            return 0
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


def _read_source(src: BinaryIO, size: int) -> bytes:
    try:
        return src.read(size)
    except OSError as e:
        raise SystemError(f"reading layer stream: {e}") from e


def _sniff(src: BinaryIO) -> bytes:
    """Read the first bytes, looping because pipes and sockets may return short reads."""
    head = b""
    while len(head) < _SNIFF:
        data = _read_source(src, _SNIFF - len(head))
        if not data:
            break
        head += data
    return head


def _gzip_reader(raw: BinaryIO) -> _Reader:
    if _IGzipFile is not None:
        return _IGzipFile(fileobj=raw, mode="rb")
    return gzip.GzipFile(fileobj=raw, mode="rb")


def _zstd_reader(raw: BinaryIO) -> _Reader:
    # read_across_frames: multi-frame blobs (seekable/chunked zstd) are one stream.
    # A frame cut short reads as EOF here; the tar reader above then fails on
    # the truncated entry or header, and the diff_id check catches the rest.
    reader: _Reader = zstandard.ZstdDecompressor().stream_reader(
        raw, read_across_frames=True, closefd=True
    )
    return reader


def _xz_reader(raw: BinaryIO) -> _Reader:
    return lzma.LZMAFile(raw, "rb")


def _bzip2_reader(raw: BinaryIO) -> _Reader:
    return bz2.BZ2File(raw, "rb")


_DECODERS: list[tuple[bytes, str, Callable[[BinaryIO], _Reader]]] = [
    (_GZIP_MAGIC, "gzip", _gzip_reader),
    (_ZSTD_MAGIC, "zstd", _zstd_reader),
    (_XZ_MAGIC, "xz", _xz_reader),
    (_BZIP2_MAGIC, "bzip2", _bzip2_reader),
]


def open_decompressed(src: BinaryIO) -> BinaryIO:
    """Return a stream of `src`'s uncompressed bytes, whatever its compression.

    Sniffs gzip, zstd, xz and bzip2 magic (Docker's set); anything else is
    passed through as a plain tar.  Reads `src` sequentially and never seeks,
    so a socket or pipe works.  Closing the result does not close `src`.
    Reads raise `InvalidArgument` on corrupt or truncated compressed data and
    `SystemError` when `src` itself fails.
    """
    head = _sniff(src)
    raw = io.BufferedReader(_Source(src, head), buffer_size=_CHUNK)
    for magic, kind, make in _DECODERS:
        if head.startswith(magic):
            try:
                inner = make(raw)
            except _CORRUPT as e:
                raise InvalidArgument(f"invalid layer: corrupt {kind} data: {e}") from e
            return io.BufferedReader(_Guard(inner, kind), buffer_size=_CHUNK)
    return io.BufferedReader(_Guard(raw, "tar"), buffer_size=_CHUNK)


def compress_gzip(src: BinaryIO, dst: BinaryIO, level: int = 6) -> None:
    """Gzip all of `src` into `dst`, reproducibly (mtime 0, no file name).

    `level` has zlib's meaning (0-9).  Levels 1-6 use isal when available
    (mapped to isal's 1-3: a little larger output, several times faster);
    0 and 7-9 use zlib, which alone can store or squeeze harder.  The same
    input and level always give the same bytes, so pushed layer digests are
    stable.  Raises `InvalidArgument` for a level outside 0-9 and
    `SystemError` when reading or writing fails.
    """
    if not 0 <= level <= 9:
        raise InvalidArgument(f"invalid gzip level {level}: must be 0-9")
    gz: io.BufferedIOBase
    if _IGzipFile is not None and level in _ISAL_LEVEL:
        gz = _IGzipFile(
            filename="", mode="wb", compresslevel=_ISAL_LEVEL[level], fileobj=dst, mtime=0
        )
    else:
        gz = gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=dst, mtime=0)
    try:
        with gz:
            while data := _read_source(src, _CHUNK):
                gz.write(data)
    except OSError as e:
        raise SystemError(f"writing gzip stream: {e}") from e
