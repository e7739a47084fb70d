"""Resolve a path inside a root the way the container would see it, never leaving the root.

Symlinks are followed as if ``root`` were ``/`` (absolute targets restart at ``root``, ``..``
stops at ``root``), so an image whose ``/etc/passwd`` or WORKDIR is a symlink to ``/`` or
``../../`` cannot make the daemon read or create files on the host.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from dockyard.errors import InvalidArgument

__all__ = ["mkdir_in_root", "secure_join"]

_MAX_LINKS = 255


def secure_join(root: Path, unsafe: str) -> Path:
    parts = [p for p in unsafe.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise InvalidArgument(f"too many levels of symbolic links in {unsafe}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def mkdir_in_root(root: Path, unsafe: str, mode: int = 0o755) -> Path:
    """``mkdir -p`` of ``unsafe`` inside ``root``; a non-directory in the way is an error."""
    target = secure_join(root, unsafe)
    current = root
    for part in target.relative_to(root).parts:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, mode)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidArgument(f"cannot create directory {unsafe}: {part} is not a directory")
    return target
