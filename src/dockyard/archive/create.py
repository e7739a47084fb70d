"""Write directory trees as tar: layer diffs (`docker commit`, build) and exports.

`write_layer_from_diff` turns an overlayfs upper directory into an OCI layer:
0:0 character devices (overlay whiteouts) become `.wh.NAME` entries and
`trusted.overlay.opaque=y` directories get a `DIR/.wh..wh..opq` entry.
`write_tree` archives a merged rootfs as it is (`docker export`).

The output is reproducible, so that committing the same change twice gives
the same diff_id: entries in sorted order (whiteouts first in a directory,
like the test-image builder), numeric ids with empty user and group names,
mtimes truncated to whole seconds (as Docker does), PAX format, xattrs in
sorted order.  Files that share an inode become tar hardlinks to the first
name.  Symlinks are archived, never followed; the walk goes through
directory fds opened with O_NOFOLLOW.

xattrs: everything except overlayfs's own (`trusted.overlay.*`,
`user.overlay.*`: internal state, meaningless in another tree) and
`security.selinux` (a label of this host, which Docker also leaves out).
Sockets are skipped, as Docker does.  Upper dirs written with overlay's
redirect_dir or metacopy features cannot be diffed by reading the upper
alone; those raise `SystemError` -- the snapshotter must mount without them.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dockyard.archive._hashio import HashingWriter
from dockyard.archive._whiteouts import (
    OPAQUE_MARKER,
    OPAQUE_VALUE,
    OPAQUE_XATTR,
    WHITEOUT_PREFIX,
    is_overlay_xattr,
)
from dockyard.errors import DockyardError, NotFound, SystemError

__all__ = ["write_layer_from_diff", "write_tree"]

_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SKIPPED_XATTRS = {"security.selinux"}
_UNDIFFABLE_XATTRS = ("trusted.overlay.redirect", "trusted.overlay.metacopy")


def write_layer_from_diff(diff_dir: Path, out: BinaryIO) -> str:
    """Write the overlay upper dir `diff_dir` to `out` as an uncompressed OCI layer tar.

    Returns the diff_id, "sha256:<hex>" of the bytes written.  Raises
    `NotFound` if `diff_dir` is missing and `SystemError` on I/O errors or an
    upper dir that needs redirect_dir/metacopy to be understood.
    """
    return _write(diff_dir, out, whiteouts=True, exclude=None)


def write_tree(root: Path, out: BinaryIO, *, exclude: Callable[[str], bool] | None = None) -> None:
    """Write the tree `root` to `out` as a plain tar, without whiteout conversion.

    `exclude` gets each path relative to `root` ("etc/passwd", no leading
    "/" or "./") and drops the entry -- and a directory's whole subtree --
    when it returns True.  Raises `NotFound` if `root` is missing and
    `SystemError` on I/O errors.
    """
    _write(root, out, whiteouts=False, exclude=exclude)


@dataclass(frozen=True)
class _Node:
    """One directory entry: where it is, what lstat says, and its name in the tar."""

    parent_fd: int
    name: str  # on disk
    rel: str  # in the tar, relative to the root
    st: os.stat_result
    whiteout: bool


def _write(
    root: Path, out: BinaryIO, *, whiteouts: bool, exclude: Callable[[str], bool] | None
) -> str:
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError as e:
        raise NotFound(f"directory {root} does not exist") from e
    except OSError as e:
        raise SystemError(f"opening {root}: {e.strerror}") from e
    writer = HashingWriter(out)
    rel = ""
    try:
        with tarfile.open(
            fileobj=writer,
            mode="w|",
            format=tarfile.PAX_FORMAT,
            bufsize=_CHUNK,
            encoding="utf-8",
            errors="surrogateescape",
        ) as tar:
            links: dict[tuple[int, int], str] = {}
            for node in _walk(root_fd, whiteouts=whiteouts, exclude=exclude):
                rel = node.rel
                _add(tar, node, links, whiteouts=whiteouts)
    except DockyardError:
        raise
    except OSError as e:
        raise SystemError(f"archiving {rel or root}: {e.strerror or e}") from e
    finally:
        os.close(root_fd)
    return writer.digest()


def _walk(
    root_fd: int, *, whiteouts: bool, exclude: Callable[[str], bool] | None
) -> Iterator[_Node]:
    """Depth-first, parents before children, siblings sorted by their tar names.

    Iterative (an explicit stack of directory fds), so deep trees do not hit
    Python's recursion limit.  Entries that vanish during the walk are skipped.
    """
    stack: list[tuple[int, Iterator[_Node]]] = [(root_fd, _children(root_fd, "", whiteouts))]
    try:
        while stack:
            node = next(stack[-1][1], None)
            if node is None:
                fd, _ = stack.pop()
                if fd != root_fd:
                    os.close(fd)
                continue
            if exclude is not None and exclude(node.rel):
                continue
            yield node
            if stat.S_ISDIR(node.st.st_mode):
                try:
                    fd = os.open(node.name, _DIR_FLAGS, dir_fd=node.parent_fd)
                except FileNotFoundError:
                    continue
                stack.append((fd, _children(fd, node.rel + "/", whiteouts)))
    finally:
        for fd, _ in stack:
            if fd != root_fd:
                os.close(fd)


def _children(dir_fd: int, prefix: str, whiteouts: bool) -> Iterator[_Node]:
    nodes = []
    for name in os.listdir(dir_fd):
        try:
            st = os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            continue
        wo = whiteouts and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        tar_name = WHITEOUT_PREFIX + name if wo else name
        nodes.append(_Node(dir_fd, name, prefix + tar_name, st, wo))
    nodes.sort(key=lambda n: (not n.whiteout, os.fsencode(n.rel)))
    return iter(nodes)


def _read_xattrs(node: _Node) -> dict[str, bytes]:
    path = f"/proc/self/fd/{node.parent_fd}/{node.name}"  # through the fd, not following
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}  # filesystem without xattrs
    values = {}
    for name in sorted(names):
        try:
            values[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue  # removed meanwhile, or not readable on this filesystem
    return values


def _pax_xattrs(xattrs: dict[str, bytes]) -> dict[str, str]:
    """PAX records for the xattrs a layer carries; tarfile turns the values back to bytes."""
    return {
        "SCHILY.xattr." + name: value.decode("utf-8", "surrogateescape")
        for name, value in xattrs.items()
        if not is_overlay_xattr(name) and name not in _SKIPPED_XATTRS
    }


def _header(node: _Node, name: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    st = node.st
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    return ti


def _add(
    tar: tarfile.TarFile, node: _Node, links: dict[tuple[int, int], str], *, whiteouts: bool
) -> None:
    st, mode = node.st, node.st.st_mode
    ti = _header(node, node.rel)
    if node.whiteout:
        ti.type, ti.mode, ti.size = tarfile.REGTYPE, 0o600, 0
        tar.addfile(ti)
        return
    if stat.S_ISSOCK(mode):
        return
    xattrs = _read_xattrs(node)
    if whiteouts:
        for name in _UNDIFFABLE_XATTRS:
            if name in xattrs:
                raise SystemError(
                    f"cannot diff {node.rel}: it carries {name}; mount overlay with "
                    "redirect_dir=off,metacopy=off"
                )
    ti.pax_headers = _pax_xattrs(xattrs)
    if not stat.S_ISDIR(mode) and st.st_nlink > 1:
        first = links.setdefault((st.st_dev, st.st_ino), node.rel)
        if first != node.rel:
            ti.type, ti.linkname, ti.size = tarfile.LNKTYPE, first, 0
            tar.addfile(ti)
            return
    if stat.S_ISDIR(mode):
        ti.type = tarfile.DIRTYPE
        tar.addfile(ti)
        if whiteouts and xattrs.get(OPAQUE_XATTR) == OPAQUE_VALUE:
            marker = _header(node, f"{node.rel}/{OPAQUE_MARKER}")
            marker.type, marker.mode, marker.size = tarfile.REGTYPE, stat.S_IMODE(mode) & 0o777, 0
            tar.addfile(marker)
    elif stat.S_ISREG(mode):
        ti.type, ti.size = tarfile.REGTYPE, st.st_size
        fd = os.open(node.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=node.parent_fd)
        with os.fdopen(fd, "rb", buffering=_CHUNK) as f:
            tar.addfile(ti, f)
    elif stat.S_ISLNK(mode):
        ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(node.name, dir_fd=node.parent_fd)
        tar.addfile(ti)
    elif stat.S_ISFIFO(mode):
        ti.type = tarfile.FIFOTYPE
        tar.addfile(ti)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tar.addfile(ti)
