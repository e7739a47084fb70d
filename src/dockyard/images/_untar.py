"""Unpack an uploaded image tarball (``docker load``) into a scratch directory, safely.

The tarball is hostile input. Only directories and regular files are created on disk,
all below the scratch directory; symlinks and hardlinks are *recorded*, and names are
resolved through them by ``Extracted.path`` without the filesystem ever following a
link, so no entry can make us read or write outside the directory. The outer tar may
be compressed (gzip, zstd, xz, bzip2), as ``docker load`` allows.

Errors: ``InvalidArgument`` for a truncated, corrupt or malformed tarball (Docker
reports these as 400s too); ``SystemError`` when our own disk fails.
"""

from __future__ import annotations

import gzip
import lzma
import os
import posixpath
import shutil
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO

from dockyard.archive import open_decompressed
from dockyard.errors import InvalidArgument, SystemError

__all__ = ["Extracted", "extract"]

_MAX_LINK_HOPS = 40
_CORRUPT = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)


def _clean(name: str) -> str:
    """Normalise a member name to a relative path inside the archive; '' for the root."""
    norm = posixpath.normpath("/" + name.replace("\\", "/")).lstrip("/")
    return "" if norm == "." else norm


class Extracted:
    """The files of an unpacked tarball, addressed by their names in the archive."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._symlinks: dict[str, str] = {}

    def _resolve(self, name: str) -> str:
        parts = [p for p in _clean(name).split("/") if p]
        resolved: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            candidate = "/".join([*resolved, part])
            target = self._symlinks.get(candidate)
            if target is None:
                resolved.append(part)
                continue
            hops += 1
            if hops > _MAX_LINK_HOPS:
                raise InvalidArgument(f"invalid archive: too many levels of links at {name}")
            base = "" if target.startswith("/") else "/".join(resolved)
            # links are resolved within the archive: '..' stops at its root
            parts = [p for p in _clean(base + "/" + target).split("/") if p] + parts
            resolved = []
        return "/".join(resolved)

    def path(self, name: str) -> Path:
        """The on-disk path of regular file ``name``, following the archive's links.
        ``InvalidArgument`` when there is no such file in the archive."""
        rel = self._resolve(name)
        p = self.root / rel if rel else self.root
        if not rel or not p.is_file() or p.is_symlink():
            raise InvalidArgument(f"invalid archive: no file {name!r}")
        return p

    def has(self, name: str) -> bool:
        try:
            self.path(name)
        except InvalidArgument:
            return False
        return True

    def read(self, name: str, limit: int = 64 << 20) -> bytes:
        """A small file's bytes (manifests, configs, indexes)."""
        p = self.path(name)
        if p.stat().st_size > limit:
            raise InvalidArgument(f"invalid archive: {name} is too large")
        return p.read_bytes()

    def _add_symlink(self, name: str, target: str) -> None:
        self._symlinks[name] = target


def _target_path(root: Path, rel: str) -> Path:
    """Create the parents of ``rel`` (plain directories only) and return its path."""
    p = root
    for part in rel.split("/")[:-1]:
        p = p / part
        if p.is_symlink() or (p.exists() and not p.is_dir()):
            raise InvalidArgument(f"invalid archive: {rel} is below a non-directory")
        p.mkdir(exist_ok=True)
    return root / rel


def extract(src: BinaryIO, dest: Path) -> Extracted:
    """Unpack the (possibly compressed) tar stream ``src`` into empty (or new) ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    out = Extracted(dest)
    try:
        with (
            open_decompressed(src) as plain,
            tarfile.open(fileobj=plain, mode="r|") as tar,
        ):
            for member in tar:
                rel = _clean(member.name)
                if not rel:
                    continue
                if member.isdir():
                    p = _target_path(dest, rel)
                    if p.exists() and not p.is_dir():
                        raise InvalidArgument(f"invalid archive: {rel} is not a directory")
                    p.mkdir(exist_ok=True)
                elif member.isreg():
                    p = _target_path(dest, rel)
                    if p.is_dir():
                        raise InvalidArgument(f"invalid archive: {rel} is a directory")
                    out._symlinks.pop(rel, None)
                    fileobj = tar.extractfile(member)
                    if fileobj is None:  # pragma: no cover - regular members have data
                        continue
                    with fileobj, open(p, "wb") as f:
                        shutil.copyfileobj(fileobj, f, 1 << 20)
                        written = f.tell()
                    if written != member.size:  # pragma: no cover - tarfile raises first
                        raise InvalidArgument(f"invalid archive: {rel} is truncated")
                elif member.issym():
                    out._add_symlink(rel, member.linkname)
                elif member.islnk():
                    source = out.path(member.linkname)
                    p = _target_path(dest, rel)
                    if p.is_dir():
                        raise InvalidArgument(f"invalid archive: {rel} is a directory")
                    if p.exists():
                        p.unlink()
                    out._symlinks.pop(rel, None)
                    os.link(source, p)
                # devices, fifos …: nothing an image archive needs
    except InvalidArgument as exc:
        if exc.message.startswith("invalid archive"):
            raise
        raise InvalidArgument(f"invalid tar archive: {exc}") from None
    except _CORRUPT as exc:
        raise InvalidArgument(f"invalid tar archive: {exc or 'unexpected EOF'}") from None
    except OSError as exc:
        raise SystemError(f"unpacking archive: {exc}") from None
    return out
