"""Reaching paths under a layer root through directory fds, never through a symlink.

Every directory on the way to an entry is opened with O_NOFOLLOW relative to
its parent's fd (openat), and every entry is created relative to its parent's
fd.  So a symlink planted by a hostile layer -- `link -> /` followed by
`link/etc/passwd` -- is met as ELOOP instead of being followed out of the
root, and nothing depends on the process's cwd.  Path strings are only ever
joined for error messages.

`DirCursor` keeps the fd chain of the last directory it entered: tar entries
come depth-first, so consecutive entries share most of their chain and each
entry costs about one openat instead of one per path component.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from collections.abc import Sequence

from dockyard.errors import InvalidArgument

__all__ = ["DirCursor", "open_child_dir", "quote", "remove_entry"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def quote(name: str) -> str:
    """A tar name for an error message: double-quoted, control characters escaped."""
    return json.dumps(name)


def open_child_dir(dirfd: int, name: str, *, create: bool, entry: str, shown: str) -> int:
    """Open directory `name` in `dirfd` without following it, creating it (0755) if asked.

    Raises `InvalidArgument` naming `entry` when `name` is a symlink or not a
    directory (`shown` is the path of `name` for the message), and
    `FileNotFoundError` when it is missing and `create` is false.
    """
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dirfd)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            is_link = stat.S_ISLNK(os.lstat(name, dir_fd=dirfd).st_mode)
            what = "a symlink" if is_link else "not a directory"
            raise InvalidArgument(
                f"invalid layer: path {quote(entry)} goes through {quote(shown)}, which is {what}"
            ) from e
        raise
    os.mkdir(name, 0o755, dir_fd=dirfd)
    fd = os.open(name, _DIR_FLAGS, dir_fd=dirfd)
    os.fchmod(fd, 0o755)  # mkdir's mode is filtered by the umask
    return fd


class DirCursor:
    """Open fds of the directory chain from the root to the last directory entered.

    The cursor owns the fds it opened (not the root fd); `close()` releases
    them.  An fd returned by `enter` stays valid until the next `enter` or
    `close`.
    """

    def __init__(self, root_fd: int) -> None:
        self._root = root_fd
        self._names: list[str] = []
        self._fds: list[int] = []

    def enter(self, parts: Sequence[str], *, entry: str, create: bool = True) -> int:
        """Return an fd of directory `parts` (relative to the root), creating missing ones."""
        keep = 0
        limit = min(len(parts), len(self._names))
        while keep < limit and self._names[keep] == parts[keep]:
            keep += 1
        self._truncate(keep)
        for i in range(keep, len(parts)):
            parent = self._fds[-1] if self._fds else self._root
            fd = open_child_dir(
                parent, parts[i], create=create, entry=entry, shown="/".join(parts[: i + 1])
            )
            self._names.append(parts[i])
            self._fds.append(fd)
        return self._fds[-1] if self._fds else self._root

    def close(self) -> None:
        self._truncate(0)

    def _truncate(self, keep: int) -> None:
        while len(self._fds) > keep:
            self._names.pop()
            os.close(self._fds.pop())


def remove_entry(dirfd: int, name: str) -> bool:
    """Remove `name` from `dirfd` (a directory recursively); return whether it was a directory.

    shutil.rmtree with dir_fd walks by fds too, so it cannot be redirected
    out of the root by symlinks inside the tree it removes.
    """
    st = os.lstat(name, dir_fd=dirfd)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dirfd)
        return True
    os.unlink(name, dir_fd=dirfd)
    return False
