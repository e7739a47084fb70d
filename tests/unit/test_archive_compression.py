"""open_decompressed sniffs and streams; compress_gzip is reproducible."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
from collections.abc import Callable

import pytest
import zstandard

from dockyard.archive import compress_gzip, open_decompressed
from dockyard.errors import InvalidArgument, SystemError

DATA = os.urandom(200_000) + b"\0" * 300_000  # incompressible and compressible parts


class Trickle(io.RawIOBase):
    """A non-seekable source that returns at most 3 bytes per read, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        n = min(3, len(buffer), len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


class Broken(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        raise ConnectionResetError("peer went away")


def _zstd_two_frames(data: bytes) -> bytes:
    half = len(data) // 2
    cctx = zstandard.ZstdCompressor()
    return cctx.compress(data[:half]) + cctx.compress(data[half:])


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda b: b,
    "gzip": gzip.compress,
    "gzip-multimember": lambda b: gzip.compress(b[:1000]) + gzip.compress(b[1000:]),
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "zstd-multiframe": _zstd_two_frames,
    "xz": lzma.compress,
    "bzip2": bz2.compress,
}


@pytest.mark.unit
@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_open_decompressed_sniffs_every_format(kind: str) -> None:
    with open_decompressed(io.BytesIO(COMPRESSORS[kind](DATA))) as stream:
        assert stream.read() == DATA


@pytest.mark.unit
@pytest.mark.parametrize("kind", ["plain", "gzip", "zstd"])
def test_open_decompressed_streams_from_short_reads(kind: str) -> None:
    blob = COMPRESSORS[kind](DATA[:20_000])
    src = io.BufferedReader(Trickle(blob), buffer_size=4)
    with open_decompressed(src) as stream:
        out = b"".join(iter(lambda: stream.read(777), b""))
    assert out == DATA[:20_000]


@pytest.mark.unit
def test_tiny_and_empty_inputs_pass_through() -> None:
    assert open_decompressed(io.BytesIO(b"")).read() == b""
    assert open_decompressed(io.BytesIO(b"\x1f")).read() == b"\x1f"  # half a gzip magic


@pytest.mark.unit
def test_closing_the_stream_does_not_close_the_source() -> None:
    src = io.BytesIO(gzip.compress(b"abc"))
    with open_decompressed(src) as stream:
        assert stream.read() == b"abc"
    assert not src.closed


@pytest.mark.unit
@pytest.mark.parametrize(
    ("blob", "kind"),
    [
        (gzip.compress(DATA)[:-20_000], "gzip"),  # truncated
        (b"\x1f\x8b\x08\x00" + b"\xff" * 100, "gzip"),  # garbage after the magic
        (gzip.compress(DATA)[:-8] + b"\0\0\0\0" + gzip.compress(DATA)[-4:], "gzip"),  # CRC
        (lzma.compress(DATA)[:-100], "xz"),
        (zstandard.ZstdCompressor().compress(b"x" * 100)[:4] + b"\xff" * 50, "zstd"),
    ],
)
def test_corrupt_data_raises_invalid_argument(blob: bytes, kind: str) -> None:
    with pytest.raises(InvalidArgument, match=f"corrupt {kind} data"):
        open_decompressed(io.BytesIO(blob)).read()


@pytest.mark.unit
def test_a_failing_source_raises_system_error() -> None:
    with pytest.raises(SystemError, match="peer went away"):
        open_decompressed(Broken()).read()  # type: ignore[arg-type]


@pytest.mark.unit
@pytest.mark.parametrize("level", range(10))
def test_compress_gzip_round_trips_reproducibly(level: int) -> None:
    outs = []
    for _ in range(2):
        dst = io.BytesIO()
        compress_gzip(io.BytesIO(DATA), dst, level)
        outs.append(dst.getvalue())
    assert outs[0] == outs[1]
    assert gzip.decompress(outs[0]) == DATA
    header = outs[0][:10]
    assert header[:2] == b"\x1f\x8b"
    assert header[3] & 0x08 == 0  # no file name
    assert header[4:8] == b"\0\0\0\0"  # mtime 0
    if level >= 1:
        assert len(outs[0]) < len(DATA) * 0.5


@pytest.mark.unit
def test_compress_gzip_default_level_compresses_and_reads_back() -> None:
    dst = io.BytesIO()
    compress_gzip(io.BytesIO(DATA), dst)
    assert open_decompressed(io.BytesIO(dst.getvalue())).read() == DATA


@pytest.mark.unit
@pytest.mark.parametrize("level", [-1, 10])
def test_compress_gzip_rejects_bad_levels(level: int) -> None:
    with pytest.raises(InvalidArgument, match="gzip level"):
        compress_gzip(io.BytesIO(b"x"), io.BytesIO(), level)
