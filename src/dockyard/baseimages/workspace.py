"""Scratch directories that are removed even on failure, and never with a mount inside.

Builds mount /proc (and debootstrap mounts /proc and /sys) inside a chroot. Those mounts live
in a private mount namespace (`unshare --mount`), so they vanish with the build process; but
if one ever leaked into the host namespace, `shutil.rmtree` would walk into it and delete the
host's files. So removal first lazily unmounts whatever is still mounted below the directory,
and refuses to delete anything if a mount remains.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dockyard.errors import SystemError

__all__ = ["mounts_below", "remove_tree", "workspace"]

_MOUNTINFO = Path("/proc/self/mountinfo")


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo (octal)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_below(path: Path) -> list[Path]:
    """Mount points at or below `path` in this process's mount namespace, deepest first."""
    base = str(path.resolve()).rstrip("/") + "/"
    try:
        lines = _MOUNTINFO.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4:
            point = _unescape(fields[4])
            if (point.rstrip("/") + "/").startswith(base):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_tree(path: Path) -> None:
    """Delete `path` recursively after unmounting anything below it.

    Raises SystemError, and deletes nothing, if a mount cannot be removed.
    """
    if not path.exists() and not path.is_symlink():
        return
    for point in mounts_below(path):
        subprocess.run(["umount", "-l", str(point)], check=False, timeout=60, capture_output=True)
    left = mounts_below(path)
    if left:
        raise SystemError(
            f"refusing to delete {path}: still mounted below it: {', '.join(map(str, left))}"
        )
    shutil.rmtree(path)


@contextmanager
def workspace(parent: Path, label: str) -> Iterator[Path]:
    """A fresh directory under `parent`, removed (mount-safely) when the block ends."""
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=parent))
    try:
        yield path
    finally:
        remove_tree(path)
