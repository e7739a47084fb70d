"""Content-addressed blob store on the local filesystem.

Layout (one mapper, ``_blob_path``, builds every path)::

    <root>/blobs/sha256/<hex>     verified, immutable blobs (mode 0644)
    <root>/ingest/<random>        writes in progress; removed by ``clean_ingests``
    <root>/ingest/work-<random>   scratch directories lent out by ``tempdir``

A blob becomes visible only by an atomic ``rename`` from ``ingest/`` after its
digest (and size, when given) were checked and the data fsynced, so readers never
see partial content and a crash leaves at most a stray file under ``ingest/``.
Concurrent writers of the same content each write their own temp file; the
rename makes the last one win with identical bytes.

Errors: ``NotFound`` for an absent blob, ``InvalidArgument`` for a malformed
digest or content that does not match what the caller expected.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from dockyard.errors import InvalidArgument, NotFound
from dockyard.oci.digest import is_sha256, validate_digest

__all__ = ["ContentStore"]

_CHUNK = 1 << 20


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ContentStore:
    """Blobs keyed by ``sha256:<hex>``; see the module docstring for the guarantees."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "blobs" / "sha256"
        self._ingest = root / "ingest"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(parents=True, exist_ok=True)

    # -- reading -------------------------------------------------------------------------

    def _blob_path(self, digest: str) -> Path:
        return self._blobs / validate_digest(digest)[len("sha256:") :]

    def has(self, digest: str) -> bool:
        """True when the blob is present. ``InvalidArgument`` for a malformed digest."""
        return self._blob_path(digest).is_file()

    def path(self, digest: str) -> Path:
        """Where the blob lives (read only!). ``NotFound`` if absent."""
        p = self._blob_path(digest)
        if not p.is_file():
            raise NotFound(f"content {digest}: not found")
        return p

    def open(self, digest: str) -> BinaryIO:
        """Open the blob for reading. ``NotFound`` if absent."""
        try:
            return self._blob_path(digest).open("rb")
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    def size(self, digest: str) -> int:
        """Size in bytes. ``NotFound`` if absent."""
        try:
            return self._blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    def walk(self) -> list[str]:
        """Digests of every blob, sorted."""
        return sorted(
            "sha256:" + p.name for p in self._blobs.iterdir() if is_sha256("sha256:" + p.name)
        )

    # -- writing -------------------------------------------------------------------------

    def write_blob(self, data: bytes, expected: str | None = None) -> str:
        """Store ``data``; return its digest. ``InvalidArgument`` if it is not ``expected``."""
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if expected is not None and validate_digest(expected) != actual:
            raise InvalidArgument(f"digest mismatch: expected {expected}, got {actual}")
        if self.has(actual):
            return actual
        fd, tmp = tempfile.mkstemp(dir=self._ingest, prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self._commit(Path(tmp), actual)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return actual

    def ingest(
        self,
        src: BinaryIO,
        expected: str | None = None,
        expected_size: int | None = None,
    ) -> str:
        """Stream ``src`` into the store; return the digest.

        The data is hashed while it is written, fsynced, checked against ``expected``
        and ``expected_size`` (``InvalidArgument`` on a mismatch, nothing kept) and
        renamed into place. When ``expected`` is already present the call returns at
        once without reading ``src``.
        """
        if expected is not None:
            validate_digest(expected)
            if self.has(expected):
                return expected
        fd, tmp = tempfile.mkstemp(dir=self._ingest, prefix="blob-")
        try:
            h = hashlib.sha256()
            written = 0
            with os.fdopen(fd, "wb") as f:
                while chunk := src.read(_CHUNK):
                    h.update(chunk)
                    f.write(chunk)
                    written += len(chunk)
                    if expected_size is not None and written > expected_size:
                        raise InvalidArgument(
                            f"size mismatch: expected {expected_size} bytes, got more"
                        )
                f.flush()
                os.fsync(f.fileno())
            actual = "sha256:" + h.hexdigest()
            if expected_size is not None and written != expected_size:
                raise InvalidArgument(
                    f"size mismatch: expected {expected_size} bytes, got {written}"
                )
            if expected is not None and actual != expected:
                raise InvalidArgument(f"digest mismatch: expected {expected}, got {actual}")
            self._commit(Path(tmp), actual)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return actual

    def ingest_file(
        self,
        path: Path,
        expected: str | None = None,
        expected_size: int | None = None,
    ) -> str:
        """Store a file that already sits on the store's filesystem (say, in ``tempdir()``)
        without copying it: hash and check it as ``ingest`` does, then hard-link it into
        place (copying when the filesystem refuses links). The caller must not change the
        file afterwards; removing it is fine. ``InvalidArgument`` on a mismatch."""
        if expected is not None:
            validate_digest(expected)
            if self.has(expected):
                return expected
        h = hashlib.sha256()
        size = 0
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
            os.fsync(f.fileno())
        actual = "sha256:" + h.hexdigest()
        if expected_size is not None and size != expected_size:
            raise InvalidArgument(f"size mismatch: expected {expected_size} bytes, got {size}")
        if expected is not None and actual != expected:
            raise InvalidArgument(f"digest mismatch: expected {expected}, got {actual}")
        if self.has(actual):
            return actual
        tmp = self._ingest / f"link-{uuid.uuid4().hex}"
        try:
            try:
                os.link(path, tmp)
            except OSError:  # another filesystem, or links refused: copy
                with open(path, "rb") as src:
                    return self.ingest(src, actual, size)
            self._commit(tmp, actual)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return actual

    def _commit(self, tmp: Path, digest: str) -> None:
        target = self._blob_path(digest)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        _fsync_dir(self._blobs)

    def delete(self, digest: str) -> None:
        """Remove a blob. ``NotFound`` if absent."""
        try:
            self._blob_path(digest).unlink()
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    # -- housekeeping ---------------------------------------------------------------------

    @contextlib.contextmanager
    def tempdir(self, prefix: str = "work-") -> Iterator[Path]:
        """A scratch directory on the store's filesystem (so renames into it are cheap),
        removed on exit; ``clean_ingests`` removes any a crash left behind."""
        path = Path(tempfile.mkdtemp(dir=self._ingest, prefix=prefix))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def clean_ingests(self) -> None:
        """Start-up: remove partial ingests and scratch directories. Only call this while
        nothing else writes to the store."""
        for entry in self._ingest.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
