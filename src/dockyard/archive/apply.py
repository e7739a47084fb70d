"""Unpack one image layer tar into its own overlayfs lower directory, safely.

Each layer is unpacked alone into an empty directory (the snapshotter stacks
the directories as overlay lowers), so layers unpack independently and in
parallel.  Conversions done here:

- `DIR/.wh.NAME` (OCI whiteout) becomes a 0:0 character device `DIR/NAME`,
  overlayfs's whiteout; `DIR/.wh..wh..opq` sets `trusted.overlay.opaque=y`
  on DIR.  Other `.wh..wh.*` entries are AUFS bookkeeping and are skipped
  (with their contents, at the root), as Docker does.
- A whiteout of NAME followed by a directory NAME in the same layer means
  "deleted, then created anew", so that directory is made opaque (Docker
  would merge the lower contents back in).

Layers are hostile input.  Nothing is created or changed outside `dest`:
names are normalised lexically (a leading "/" is dropped as Docker does, a
".." that leaves the root is refused), every directory is reached through
O_NOFOLLOW directory fds (see `_fs`), so an entry below a symlink is refused
rather than written through it, hardlinks may only point at files this same
tar created earlier, and xattrs in overlayfs's namespaces are refused since
they would change what the merged view shows.  Symlinks may point anywhere;
they are created, never followed.

Tar stream completeness: a header that is corrupt or cut short raises, but a
stream cut exactly between two entries reads as a shorter layer -- as with
Go's archive/tar.  The caller must compare `diff_id` with the image config.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import tarfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.archive._fs import DirCursor, open_child_dir, quote, remove_entry
from dockyard.archive._hashio import HashingReader
from dockyard.archive._whiteouts import (
    OPAQUE_MARKER,
    OPAQUE_VALUE,
    OPAQUE_XATTR,
    WHITEOUT_META_PREFIX,
    WHITEOUT_PREFIX,
    is_overlay_xattr,
)
from dockyard.archive.compression import open_decompressed
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound, SystemError

__all__ = ["LayerApplyResult", "apply_layer"]

_CHUNK = 1 << 20
_PATH_MAX = 4096
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SCHILY_XATTR = "SCHILY.xattr."
_LIBARCHIVE_XATTR = "LIBARCHIVE.xattr."
# setxattr failures that mean "this filesystem or kernel cannot store it":
# skipped, as tar and Docker do.  Anything else (ENOSPC, EIO) is an error.
_XATTR_UNSUPPORTED = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EINVAL, errno.E2BIG}

Parts = tuple[str, ...]


@dataclass(frozen=True)
class LayerApplyResult:
    """What applying a layer produced.

    `diff_id` is "sha256:<hex>" of the whole uncompressed stream, end-of-archive
    padding included; `size` is the bytes of regular file content written
    (Docker's layer "Size").
    """

    diff_id: str
    size: int


def apply_layer(src: BinaryIO, dest: Path) -> LayerApplyResult:
    """Unpack the layer blob `src` (gzip, zstd or plain tar) into the empty directory `dest`.

    Reads `src` once, to its end.  Raises `NotFound` if `dest` is missing,
    `Conflict` if it is not empty, `InvalidArgument` for a malformed or
    hostile layer (the message names the entry) and `SystemError` when the
    filesystem fails.  On error `dest` is left partly filled for the caller
    to delete; no fd stays open and the cwd is never changed.
    """
    root_fd = _open_dest(dest)
    try:
        with open_decompressed(src) as plain:
            hasher = HashingReader(plain)
            with io.BufferedReader(hasher, buffer_size=_CHUNK) as stream:
                applier = _Applier(root_fd)
                try:
                    applier.run(stream)
                finally:
                    applier.close()
                while stream.read(_CHUNK):  # trailing padding belongs to the diff_id too
                    pass
        return LayerApplyResult(diff_id=hasher.digest(), size=applier.size)
    finally:
        os.close(root_fd)


def _open_dest(dest: Path) -> int:
    try:
        fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError as e:
        raise NotFound(f"layer destination {dest} does not exist") from e
    except NotADirectoryError as e:
        raise InvalidArgument(f"layer destination {dest} is not a directory") from e
    except OSError as e:
        raise SystemError(f"opening layer destination {dest}: {e.strerror}") from e
    if os.listdir(fd):
        os.close(fd)
        raise Conflict(f"layer destination {dest} is not empty")
    return fd


class _CorruptHeader(Exception):
    """A tar header that is garbage or cut short.

    tarfile treats a bad header after the first as a silent end of archive;
    raising a non-tarfile exception from `frombuf` makes it propagate.
    """


class _StrictTarInfo(tarfile.TarInfo):
    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> _StrictTarInfo:
        try:
            return super().frombuf(buf, encoding, errors)
        # not in typeshed, but public names of tarfile since Python 3.2
        except (tarfile.EOFHeaderError, tarfile.EmptyHeaderError):  # type: ignore[attr-defined]
            raise  # a zero block, or the stream ends between entries: the end
        except tarfile.HeaderError as e:
            raise _CorruptHeader(str(e)) from None


def split_name(name: str, what: str) -> Parts:
    """Normalise a tar name to path components under the root, or refuse it.

    "/etc/x" -> ("etc", "x"); "a/./b/../c" -> ("a", "c"); "." -> ().  A ".."
    with nothing left to pop escapes the root: `InvalidArgument`.  The
    resolution is lexical: "link/../x" is "x" whatever "link" is.
    """
    parts: list[str] = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise InvalidArgument(f"invalid layer: {what} {quote(name)} escapes the layer root")
            parts.pop()
        else:
            parts.append(comp)
    if len(name.encode("utf-8", "surrogateescape")) >= _PATH_MAX:
        raise InvalidArgument(f"invalid layer: {what} {quote(name[:64] + '...')} is too long")
    return tuple(parts)


def _xattrs(member: tarfile.TarInfo) -> Iterator[tuple[str, bytes]]:
    for key, value in member.pax_headers.items():
        if key.startswith(_SCHILY_XATTR):
            # tarfile decoded the value with surrogateescape: this restores the bytes
            yield key[len(_SCHILY_XATTR) :], value.encode("utf-8", "surrogateescape")


def _refuse_overlay_xattrs(member: tarfile.TarInfo) -> None:
    for key in member.pax_headers:
        if key.startswith(_SCHILY_XATTR):
            name = key[len(_SCHILY_XATTR) :]
        elif key.startswith(_LIBARCHIVE_XATTR):
            name = urllib.parse.unquote(key[len(_LIBARCHIVE_XATTR) :])
        else:
            continue
        if is_overlay_xattr(name):
            raise InvalidArgument(
                f"invalid layer: entry {quote(member.name)} carries the overlayfs xattr "
                f"{quote(name)}, which a layer may not set"
            )


def _open_tar(stream: BinaryIO) -> tarfile.TarFile:
    try:
        return tarfile.open(
            fileobj=stream,
            mode="r|",
            bufsize=_CHUNK,
            tarinfo=_StrictTarInfo,
            encoding="utf-8",
            errors="surrogateescape",
        )
    except (tarfile.TarError, _CorruptHeader) as e:
        raise InvalidArgument(f"invalid layer: not a tar stream ({e})") from e


def _mtime_ns(member: tarfile.TarInfo) -> int:
    return int(member.mtime * 1_000_000_000)


class _Applier:
    """State of one layer application: cursor, what this tar created, deferred dirs."""

    def __init__(self, root_fd: int) -> None:
        self.size = 0
        self._root = root_fd
        self._cursor = DirCursor(root_fd)
        self._is_root = os.geteuid() == 0
        self._created: set[Parts] = set()  # non-directories made by this tar: hardlink targets
        self._whiteouts: set[Parts] = set()
        self._dirs: dict[Parts, tuple[int, int]] = {}  # dir -> (mode, mtime ns), set at the end

    def close(self) -> None:
        self._cursor.close()

    def run(self, stream: io.BufferedReader[HashingReader]) -> None:
        if not stream.peek(1):
            return  # an empty blob is an empty layer, as for Go's archive/tar
        with _open_tar(stream) as tar:
            while (member := self._next(tar)) is not None:
                self._guarded(tar, member)
                # stream mode keeps every header it read; bound the memory of huge layers
                tar.members.clear()  # type: ignore[attr-defined]
        self._finish_dirs()

    @staticmethod
    def _next(tar: tarfile.TarFile) -> tarfile.TarInfo | None:
        try:
            return tar.next()
        except (tarfile.TarError, _CorruptHeader) as e:
            raise InvalidArgument(f"invalid layer: corrupt tar stream ({e})") from e

    def _guarded(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = quote(member.name)
        try:
            self._apply(tar, member)
        except DockyardError:
            raise
        except tarfile.TarError as e:
            raise InvalidArgument(f"invalid layer: entry {name}: {e}") from e
        except OverflowError as e:
            raise InvalidArgument(f"invalid layer: entry {name}: value out of range") from e
        except OSError as e:
            if e.errno == errno.ENAMETOOLONG:
                raise InvalidArgument(f"invalid layer: path {name} is too long") from e
            raise SystemError(f"applying layer entry {name}: {e.strerror or e}") from e

    def _apply(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = split_name(m.name, "path")
        _refuse_overlay_xattrs(m)
        if not parts:
            if m.isdir():
                return  # the root's attributes come from the snapshotter, as in containerd
            raise InvalidArgument(f"invalid layer: entry {quote(m.name)} replaces the layer root")
        if parts[0].startswith(WHITEOUT_META_PREFIX) and parts != (OPAQUE_MARKER,):
            return  # AUFS bookkeeping at the root (.wh..wh.plnk/...), skipped like Docker
        *parent, base = parts
        pfd = self._cursor.enter(parent, entry=m.name)
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(pfd, tuple(parent), base, m)
        elif m.isdir():
            self._dir(pfd, parts, m)
        elif m.islnk():
            self._hardlink(pfd, parts, m)
        elif m.isreg():
            self._file(tar, pfd, parts, m)
        elif m.issym():
            self._symlink(pfd, parts, m)
        elif m.isfifo() or m.ischr() or m.isblk():
            self._special(pfd, parts, m)
        else:
            raise InvalidArgument(
                f"invalid layer: entry {quote(m.name)} has unsupported type {m.type!r}"
            )

    # -- replacing what is there ------------------------------------------

    def _clear(self, pfd: int, parts: Parts, *, keep_dir: bool) -> bool:
        """Make room for `parts`; return True if a directory is there and was kept."""
        try:
            st = os.lstat(parts[-1], dir_fd=pfd)
        except FileNotFoundError:
            return False
        if keep_dir and stat.S_ISDIR(st.st_mode):
            return True
        was_dir = remove_entry(pfd, parts[-1])
        self._created.discard(parts)
        self._whiteouts.discard(parts)
        self._dirs.pop(parts, None)
        if was_dir:
            n = len(parts)
            self._created = {p for p in self._created if p[:n] != parts}
            self._whiteouts = {p for p in self._whiteouts if p[:n] != parts}
            self._dirs = {p: v for p, v in self._dirs.items() if p[:n] != parts}
        return False

    # -- entry kinds -------------------------------------------------------

    def _whiteout(self, pfd: int, parent: Parts, base: str, m: tarfile.TarInfo) -> None:
        if base == OPAQUE_MARKER:
            os.setxattr(pfd, OPAQUE_XATTR, OPAQUE_VALUE)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return
        target = base[len(WHITEOUT_PREFIX) :]
        if target in ("", ".", ".."):
            raise InvalidArgument(f"invalid layer: whiteout {quote(m.name)} names no file")
        parts = (*parent, target)
        self._clear(pfd, parts, keep_dir=False)
        os.mknod(target, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)
        self._chown_at(pfd, target, m)
        ns = _mtime_ns(m)
        os.utime(target, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)
        self._whiteouts.add(parts)

    def _dir(self, pfd: int, parts: Parts, m: tarfile.TarInfo) -> None:
        recreated = parts in self._whiteouts  # "delete NAME, then mkdir NAME": opaque
        if not self._clear(pfd, parts, keep_dir=True):
            os.mkdir(parts[-1], 0o700, dir_fd=pfd)
        fd = open_child_dir(pfd, parts[-1], create=False, entry=m.name, shown=m.name)
        try:
            self._chown_fd(fd, m)
            self._set_xattrs(fd, m)
            if recreated:
                os.setxattr(fd, OPAQUE_XATTR, OPAQUE_VALUE)
        finally:
            os.close(fd)
        # mode and mtime last: children change the mtime, a 0500 mode could block them
        self._dirs[parts] = (stat.S_IMODE(m.mode), _mtime_ns(m))

    def _file(self, tar: tarfile.TarFile, pfd: int, parts: Parts, m: tarfile.TarInfo) -> None:
        self._clear(pfd, parts, keep_dir=False)
        data = tar.extractfile(m)
        assert data is not None  # regular members always have a data stream
        fd = os.open(parts[-1], _FILE_FLAGS, 0o600, dir_fd=pfd)
        try:
            while chunk := data.read(_CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                self.size += len(chunk)
            self._chown_fd(fd, m)
            os.fchmod(fd, stat.S_IMODE(m.mode))  # after chown, which clears setuid/setgid
            self._set_xattrs(fd, m)  # after chown, which clears security.capability
            ns = _mtime_ns(m)
            os.utime(fd, ns=(ns, ns))
        finally:
            os.close(fd)
        self._created.add(parts)

    def _symlink(self, pfd: int, parts: Parts, m: tarfile.TarInfo) -> None:
        if not m.linkname:
            raise InvalidArgument(f"invalid layer: symlink {quote(m.name)} has an empty target")
        self._clear(pfd, parts, keep_dir=False)
        os.symlink(m.linkname, parts[-1], dir_fd=pfd)
        self._finish_at(pfd, parts[-1], m, chmod=False)
        self._created.add(parts)

    def _special(self, pfd: int, parts: Parts, m: tarfile.TarInfo) -> None:
        self._clear(pfd, parts, keep_dir=False)
        if m.isfifo():
            os.mkfifo(parts[-1], 0o600, dir_fd=pfd)
        else:
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            try:
                os.mknod(parts[-1], kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
            except PermissionError:
                return  # no CAP_MKNOD (rootless, user namespace): skipped, as Docker does
        self._finish_at(pfd, parts[-1], m, chmod=True)
        self._created.add(parts)

    def _hardlink(self, pfd: int, parts: Parts, m: tarfile.TarInfo) -> None:
        target = split_name(m.linkname, f"hardlink {quote(m.name)} target")
        if target == parts and parts in self._created:
            return  # a link to itself: nothing to do
        self._clear(pfd, parts, keep_dir=False)
        if target not in self._created:
            raise InvalidArgument(
                f"invalid layer: hardlink {quote(m.name)} points to {quote(m.linkname)}, "
                "which is not an earlier file of this layer"
            )
        tfd = self._open_dir(target[:-1], m.name)
        try:
            os.link(target[-1], parts[-1], src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            if tfd != self._root:
                os.close(tfd)
        self._created.add(parts)

    # -- metadata ----------------------------------------------------------

    def _open_dir(self, parts: Parts, entry: str) -> int:
        """A private fd of directory `parts` (the root fd itself for ())."""
        fd = self._root
        try:
            for i, name in enumerate(parts):
                child = open_child_dir(
                    fd, name, create=False, entry=entry, shown="/".join(parts[: i + 1])
                )
                if fd != self._root:
                    os.close(fd)
                fd = child
        except BaseException:
            if fd != self._root:
                os.close(fd)
            raise
        return fd

    def _chown_fd(self, fd: int, m: tarfile.TarInfo) -> None:
        try:
            os.fchown(fd, m.uid, m.gid)
        except PermissionError:
            if self._is_root:
                raise  # unprivileged unpacking keeps our own ids, like tar

    def _chown_at(self, pfd: int, name: str, m: tarfile.TarInfo) -> None:
        try:
            os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        except PermissionError:
            if self._is_root:
                raise

    def _finish_at(self, pfd: int, name: str, m: tarfile.TarInfo, *, chmod: bool) -> None:
        """Owner, mode, xattrs and mtime of a node that cannot be opened (link, fifo, device)."""
        self._chown_at(pfd, name, m)
        if chmod:  # `name` was just created by us as a fifo or device: no symlink to follow
            os.chmod(name, stat.S_IMODE(m.mode), dir_fd=pfd)
        # /proc/self/fd/N/name reaches `name` through the directory fd, without following it
        self._set_xattrs(f"/proc/self/fd/{pfd}/{name}", m)
        ns = _mtime_ns(m)
        os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)

    @staticmethod
    def _set_xattrs(target: int | str, m: tarfile.TarInfo) -> None:
        for name, value in _xattrs(m):
            try:
                os.setxattr(target, name, value, follow_symlinks=isinstance(target, int))
            except OSError as e:
                if e.errno not in _XATTR_UNSUPPORTED:
                    raise

    def _finish_dirs(self) -> None:
        """Set directory modes and mtimes, children before parents.

        Reverse lexical order of the component tuples puts every directory
        after all of its descendants, and keeps neighbours sharing their fd
        chain in the cursor.
        """
        cursor = DirCursor(self._root)
        try:
            for parts in sorted(self._dirs, reverse=True):
                mode, ns = self._dirs[parts]
                pfd = cursor.enter(parts[:-1], entry="/".join(parts), create=False)
                fd = open_child_dir(
                    pfd, parts[-1], create=False, entry="/".join(parts), shown="/".join(parts)
                )
                try:
                    os.fchmod(fd, mode)
                    os.utime(fd, ns=(ns, ns))
                finally:
                    os.close(fd)
        except OSError as e:
            raise SystemError(f"setting directory attributes: {e.strerror or e}") from e
        finally:
            cursor.close()
