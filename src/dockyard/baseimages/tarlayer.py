"""Deterministic, uncompressed layer tarballs.

An image ID is the digest of its config, and the config lists the sha256 of every layer tar
(the diff IDs). So the same inputs must give the same bytes, or every rebuild would be a new
image. Each entry is therefore normalised before it is written:

- entries sorted component-wise (a parent before its children, siblings by name);
- mtime is the build epoch, user and group names are empty, numeric ids are kept;
- PAX format, so long or non-ASCII names are represented the same way every time;
- device nodes and sockets never appear (the engine provides /dev at run time).

Hardlinks are written as one regular file plus link entries pointing at the first path (in
sorted order) of the same inode *within this layer*: a link to a file that only exists in a
lower layer could not be applied by an overlay snapshotter.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal, cast

__all__ = [
    "DEFAULT_EPOCH",
    "Entry",
    "LayerWriter",
    "sort_key",
    "write_entries",
    "write_tree",
]

DEFAULT_EPOCH = 1704067200  # 2024-01-01T00:00:00Z, used when SOURCE_DATE_EPOCH is unset

EntryKind = Literal["dir", "file", "symlink"]


def sort_key(path: str) -> tuple[str, ...]:
    """Order that puts a directory before everything inside it."""
    return tuple(path.split("/"))


@dataclass(frozen=True)
class Entry:
    """One file system object described in memory (no file on disk needed, no root needed)."""

    path: str
    kind: EntryKind
    mode: int
    data: bytes = b""
    target: str = ""
    uid: int = 0
    gid: int = 0


class _HashingSink:
    """File-like sink that hashes and counts what tarfile writes through it."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)

    def flush(self) -> None:
        self._out.flush()


class LayerWriter:
    """Writes one layer tar to `path` and computes its diff ID in the same pass.

    Use as a context manager or call `close()`; `diff_id` and `size` are valid after close.
    On an exception inside the `with` block the partial file is removed.
    """

    def __init__(self, path: Path, epoch: int) -> None:
        self.path = path
        self.epoch = epoch
        self.entries = 0
        self.diff_id = ""
        self.size = 0
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._sink = _HashingSink(self._file)
        # "w|" (stream mode) only ever calls write(), which is all the sink implements.
        self._tar = tarfile.open(  # noqa: SIM115 - closed in close()
            fileobj=cast(BinaryIO, self._sink), mode="w|", format=tarfile.PAX_FORMAT
        )

    def add(self, info: tarfile.TarInfo, data: BinaryIO | None = None) -> None:
        info.mtime = self.epoch
        info.uname = ""
        info.gname = ""
        info.devmajor = 0
        info.devminor = 0
        self._tar.addfile(info, data)
        self.entries += 1

    def close(self) -> None:
        if self._file.closed:
            return
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self.diff_id = "sha256:" + self._sink.sha256.hexdigest()
        self.size = self._sink.size

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> LayerWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _info(path: str, type_: bytes, mode: int, uid: int = 0, gid: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type = type_
    info.mode = mode
    info.uid = uid
    info.gid = gid
    return info


def whiteout_info(path: str) -> tarfile.TarInfo:
    """An OCI whiteout (`dir/.wh.name`): an empty regular file that deletes `dir/name`."""
    return _info(path, tarfile.REGTYPE, 0o644)


def write_entries(writer: LayerWriter, entries: Iterable[Entry]) -> None:
    """Write in-memory entries in canonical order."""
    for entry in sorted(entries, key=lambda e: sort_key(e.path)):
        if entry.kind == "dir":
            writer.add(_info(entry.path, tarfile.DIRTYPE, entry.mode, entry.uid, entry.gid))
        elif entry.kind == "symlink":
            info = _info(entry.path, tarfile.SYMTYPE, 0o777, entry.uid, entry.gid)
            info.linkname = entry.target
            writer.add(info)
        else:
            info = _info(entry.path, tarfile.REGTYPE, entry.mode, entry.uid, entry.gid)
            info.size = len(entry.data)
            writer.add(info, io.BytesIO(entry.data))


def write_tree(
    writer: LayerWriter, root: Path, paths: Iterable[str], whiteouts: Iterable[str] = ()
) -> None:
    """Write `paths` (relative to `root`) and whiteout entries, in canonical order.

    Regular files, directories, symlinks and fifos are written; other types are skipped.
    """
    wh = set(whiteouts)
    first_path_of_inode: dict[tuple[int, int], str] = {}
    for rel in sorted(set(paths) | wh, key=sort_key):
        if rel in wh:
            writer.add(whiteout_info(rel))
            continue
        full = root / rel
        st = os.lstat(full)
        mode = st.st_mode
        info = _info(rel, tarfile.REGTYPE, stat.S_IMODE(mode), st.st_uid, st.st_gid)
        if stat.S_ISREG(mode):
            inode = (st.st_dev, st.st_ino)
            if st.st_nlink > 1:
                if inode in first_path_of_inode:
                    info.type = tarfile.LNKTYPE
                    info.linkname = first_path_of_inode[inode]
                    writer.add(info)
                    continue
                first_path_of_inode[inode] = rel
            info.size = st.st_size
            with open(full, "rb") as f:
                writer.add(info, f)
        elif stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            writer.add(info)
        elif stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(full)
            writer.add(info)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
            writer.add(info)
