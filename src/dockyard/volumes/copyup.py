"""Copy-up: fill a new, empty volume with what the image has at the mount target.

Docker copies an image directory into an empty volume mounted over it, keeping owners, modes,
times and extended attributes (``CopyImagePathContent``). Both trees may be hostile: the
image may hold symlinks to ``/`` or ``../..``, and another container may write into the
volume while we copy. So every step works relative to open directory descriptors and never
follows a symlink: entries are opened and created with ``O_NOFOLLOW`` (and ``O_EXCL``),
symlinks are copied as symlinks, and nothing is resolved by path below the two roots.

Errors: ``InvalidArgument`` for a tree deeper than ``MAX_DEPTH``; ``SystemError`` when the
kernel refuses a step (disk full, permissions).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from dockyard.errors import InvalidArgument, SystemError

__all__ = ["MAX_DEPTH", "copy_up", "is_empty_dir"]

MAX_DEPTH = 256
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SKIP_XATTR_PREFIXES = ("trusted.overlay.", "security.selinux")


def is_empty_dir(path: Path) -> bool:
    """True when ``path`` is a directory (not a symlink to one) with no entries."""
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError:
        return False
    try:
        with os.scandir(fd) as it:
            return next(it, None) is None
    finally:
        os.close(fd)


def copy_up(source: Path, dest: Path) -> bool:
    """Copy the directory tree at ``source`` into the empty directory ``dest``.

    ``source`` must already be resolved inside its root (its last component is opened with
    ``O_NOFOLLOW``). Returns False, copying nothing, when ``source`` is not a directory or
    ``dest`` is not empty; True after a copy. ``dest`` itself takes ``source``'s owner and mode.
    """
    try:
        src_fd = os.open(source, _DIR_FLAGS)
    except OSError:
        return False
    try:
        try:
            dst_fd = os.open(dest, _DIR_FLAGS)
        except OSError as exc:
            raise SystemError(f"copy-up into {dest}: {exc.strerror}") from None
        try:
            with os.scandir(dst_fd) as it:
                if next(it, None) is not None:
                    return False
            try:
                _copy_tree(src_fd, dst_fd, 0)
                _copy_metadata(src_fd, dst_fd, os.fstat(src_fd))
            except OSError as exc:
                raise SystemError(
                    f"copy-up from {source} into {dest}: {exc.strerror or exc}"
                ) from None
            return True
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def _copy_tree(src_dir: int, dst_dir: int, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidArgument(f"copy-up: directory tree deeper than {MAX_DEPTH} levels")
    with os.scandir(src_dir) as it:
        names = [entry.name for entry in it]
    for name in names:
        try:
            st = os.stat(name, dir_fd=src_dir, follow_symlinks=False)
        except FileNotFoundError:
            continue
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst_dir)
            child_src = os.open(name, _DIR_FLAGS, dir_fd=src_dir)
            try:
                child_dst = os.open(name, _DIR_FLAGS, dir_fd=dst_dir)
                try:
                    _copy_tree(child_src, child_dst, depth + 1)
                    _copy_metadata(child_src, child_dst, st)
                finally:
                    os.close(child_dst)
            finally:
                os.close(child_src)
        elif stat.S_ISREG(mode):
            _copy_file(name, src_dir, dst_dir, st)
        elif stat.S_ISLNK(mode):
            target = os.readlink(name, dir_fd=src_dir)
            os.symlink(target, name, dir_fd=dst_dir)
            _lchown(name, dst_dir, st)
            with contextlib.suppress(OSError, NotImplementedError):
                os.utime(
                    name,
                    ns=(st.st_atime_ns, st.st_mtime_ns),
                    dir_fd=dst_dir,
                    follow_symlinks=False,
                )
        elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            if stat.S_ISFIFO(mode):
                os.mkfifo(name, 0o600, dir_fd=dst_dir)
            else:
                os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dst_dir)
            _lchown(name, dst_dir, st)
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dst_dir)
            with contextlib.suppress(OSError):
                os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir)
        # sockets are not copied (Docker's tar copy skips them too)


def _copy_file(name: str, src_dir: int, dst_dir: int, st: os.stat_result) -> None:
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dir)
    try:
        dst = os.open(
            name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dst_dir,
        )
        try:
            _copy_bytes(src, dst, st.st_size)
            _copy_metadata(src, dst, st)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_bytes(src: int, dst: int, size: int) -> None:
    remaining = size
    while remaining > 0:
        try:
            n = os.copy_file_range(src, dst, min(remaining, 1 << 30))
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            break
        if n == 0:
            return
        remaining -= n
    while True:
        chunk = os.read(src, 1 << 20)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]


def _copy_metadata(src: int, dst: int, st: os.stat_result) -> None:
    """Owner, then mode (chown clears set-id bits), xattrs, then times (last: writes move them)."""
    os.fchown(dst, st.st_uid, st.st_gid)
    os.fchmod(dst, stat.S_IMODE(st.st_mode))
    with contextlib.suppress(OSError):
        for key in os.listxattr(src):
            if key.startswith(_SKIP_XATTR_PREFIXES):
                continue
            with contextlib.suppress(OSError):
                os.setxattr(dst, key, os.getxattr(src, key))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _lchown(name: str, dir_fd: int, st: os.stat_result) -> None:
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dir_fd, follow_symlinks=False)
