"""``docker diff``: a container's filesystem changes, read from its overlay upper directory.

The rules are moby's ``archive.OverlayChanges`` (what dockerd's overlay2 driver answers):

- every entry of the upper directory is a change, visited in ``filepath.Walk`` order (depth
  first, names sorted bytewise), the root itself excepted;
- a whiteout (character device 0:0) is ``Delete`` of its path; so is an opaque directory
  (``trusted.overlay.opaque=y``: its lower contents are gone), whose upper entries then
  follow as changes of their own;
- anything else is ``Add``, unless its path exists in a lower layer: then ``Modify``. A
  directory whose size, mode and mtime equal the lower one's was only copied up to hold a
  changed child and is not a change itself;
- an ``Add`` or ``Delete`` whose parent directory was not reported yet reports the parent as
  ``Modify`` first (moby/moby#13590).

Docker keeps the mount points the runtime needs (``/etc/hosts``, ``/etc/hostname``,
``/etc/resolv.conf``, ``/proc``, ``/sys``, ``/dev`` …) in a separate init layer, so they never
show in a diff. Dockyard has no init layer: runc creates those mount points in the upper
directory. ``RUNTIME_PATHS`` are therefore hidden while they are still bare placeholders
(empty files, directories holding only placeholders), and so is a directory that only holds
hidden entries.

Reading only: nothing here writes. Errors other than a vanished entry (``OSError``) propagate.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.mount import Mount

__all__ = [
    "ADD",
    "DELETE",
    "MODIFY",
    "RUNTIME_PATHS",
    "Change",
    "changes",
    "layer_dirs",
    "overlay_deleted",
]

MODIFY = 0
ADD = 1
DELETE = 2

# moby's init layer (daemon/initlayer): path → what the placeholder is.
RUNTIME_PATHS: dict[str, str] = {
    "/dev": "dir",
    "/dev/pts": "dir",
    "/dev/shm": "dir",
    "/dev/console": "file",
    "/proc": "dir",
    "/sys": "dir",
    "/.dockerenv": "file",
    "/etc/resolv.conf": "file",
    "/etc/hosts": "file",
    "/etc/hostname": "file",
    "/etc/mtab": "link",
}

_OPAQUE = "trusted.overlay.opaque"


@dataclass(frozen=True)
class Change:
    """One line of ``docker diff``: ``Kind`` 0 modified (C), 1 added (A), 2 deleted (D)."""

    path: str
    kind: int

    def to_json(self) -> dict[str, object]:
        return {"Path": self.path, "Kind": self.kind}

    @property
    def letter(self) -> str:
        return "CAD"[self.kind]


# (upper root, container path, lstat of the upper entry) → the deleted path, or None.
DeletedFn = Callable[[Path, str, os.stat_result], "str | None"]


def overlay_deleted(upper: Path, path: str, st: os.stat_result) -> str | None:
    """overlayfs deletions: a 0:0 character device (whiteout) or an opaque directory."""
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return path
    if stat.S_ISDIR(st.st_mode):
        try:
            value = os.getxattr(upper / path.lstrip("/"), _OPAQUE, follow_symlinks=False)
        except OSError:
            return None
        if value == b"y":
            return path
    return None


def layer_dirs(mounts: Sequence[Mount]) -> list[Path]:
    """The lower directories (top first) of a snapshot's mount list; none for a bind."""
    for m in mounts:
        if m.type != "overlay":
            continue
        for option in m.options:
            if option.startswith("lowerdir="):
                return [Path(p) for p in option[len("lowerdir=") :].split(":") if p]
    return []


def _same_time(a: int, b: int) -> bool:
    """moby's ``sameFsTime``: equal, or equal seconds when either has no nanoseconds."""
    if a == b:
        return True
    return a // 1_000_000_000 == b // 1_000_000_000 and (
        a % 1_000_000_000 == 0 or b % 1_000_000_000 == 0
    )


def _sorted_entries(directory: Path) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as it:
        entries = list(it)
    entries.sort(key=lambda e: os.fsencode(e.name))
    return entries


def _hidden(host: Path, path: str, st: os.stat_result) -> bool:
    """Whether ``path`` is only a runtime mount point placeholder (see the module docstring)."""
    kind = RUNTIME_PATHS.get(path)
    if stat.S_ISDIR(st.st_mode):
        try:
            entries = _sorted_entries(host)
        except OSError:
            return False
        if not entries and kind != "dir":
            return False  # an empty directory someone made: a change
        for entry in entries:
            child = f"{path.rstrip('/')}/{entry.name}"
            try:
                child_st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not _hidden(Path(entry.path), child, child_st):
                return False
        return True
    if kind == "file":
        return stat.S_ISREG(st.st_mode) and st.st_size == 0
    if kind == "link":
        return stat.S_ISLNK(st.st_mode)
    return False


def changes(
    upper: Path,
    lowers: Sequence[Path],
    *,
    deleted: DeletedFn = overlay_deleted,
    hide_runtime_paths: bool = True,
) -> list[Change]:
    """The changes of ``upper`` over ``lowers`` (top layer first), in moby's order."""
    out: list[Change] = []
    changed_dirs: set[str] = set()

    def visit(host: Path, path: str, st: os.stat_result) -> bool:
        """Record ``path``; False when its subtree must not be walked."""
        if hide_runtime_paths and _hidden(host, path, st):
            return False
        gone = deleted(upper, path, st)
        is_dir = stat.S_ISDIR(st.st_mode)
        if gone is not None:
            change = Change(gone, DELETE)
        else:
            change = Change(path, ADD)
            for layer in lowers:
                try:
                    lower_st = os.stat(layer / path.lstrip("/"))
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if (
                    stat.S_ISDIR(lower_st.st_mode)
                    and is_dir
                    and st.st_size == lower_st.st_size
                    and st.st_mode == lower_st.st_mode
                    and _same_time(st.st_mtime_ns, lower_st.st_mtime_ns)
                ):
                    return True  # copied up for a child's sake: not a change itself
                change = Change(path, MODIFY)
                break
        if is_dir:
            changed_dirs.add(path)
        if change.kind in (ADD, DELETE):
            parent = os.path.dirname(change.path)
            if parent not in changed_dirs and parent != "/":
                out.append(Change(parent, MODIFY))
                changed_dirs.add(parent)
        out.append(change)
        return True

    def walk(host: Path, path: str) -> None:
        try:
            entries = _sorted_entries(host)
        except FileNotFoundError:
            return
        for entry in entries:
            child = f"{path.rstrip('/')}/{entry.name}"
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if visit(Path(entry.path), child, st) and stat.S_ISDIR(st.st_mode):
                walk(Path(entry.path), child)

    walk(upper, "/")
    return out
