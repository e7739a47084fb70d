"""Resolve Docker's ``--user`` against the image's ``/etc/passwd`` and ``/etc/group``.

Semantics are runc's ``libcontainer/user.GetExecUser`` as moby calls it (no defaults):

- ``""`` matches the passwd entry with uid 0 (root's gid and groups if there is one, else 0:0);
- ``"name"`` / ``"uid"`` with optional ``":group"`` / ``":gid"``; anything after a second ``:``
  is ignored;
- a numeric value is always an ID, never a name, and needs no entry in the files;
- supplementary groups are the groups listing the matched user name, and only when no group
  was given explicitly.

The files belong to an image, so they may be symlinks aimed anywhere (``/etc/passwd`` →
``/etc/passwd`` of the *host*). ``read_file_in_root`` resolves every component itself, one
``openat`` at a time with ``O_NOFOLLOW``, treating the rootfs as ``/`` (absolute links restart
at the rootfs, ``..`` stops there), and reads only regular files: nothing outside the rootfs is
ever opened.

Errors: ``InvalidArgument`` with runc's wording, e.g. ``unable to find user bob: no matching
entries in passwd file`` — that is what ``docker run --user bob`` prints.
"""

from __future__ import annotations

import os
import re
import stat
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.errors import InvalidArgument

__all__ = ["parse_group", "parse_passwd", "read_file_in_root", "resolve_user"]

MIN_ID = 0
MAX_ID = 2**31 - 1  # runc: for 32-bit systems compatibility
_MAX_SYMLINKS = 40  # Linux MAXSYMLINKS
_MAX_FILE = 16 * 1024 * 1024
_RANGE_ERROR = f"uids and gids must be in range {MIN_ID}-{MAX_ID}"
_ATOI = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str = ""


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: list[str] = field(default_factory=list)


def resolve_user(rootfs: Path, user: str) -> tuple[int, int, list[int]]:
    """Return ``(uid, gid, supplementary_gids)`` for ``user`` inside ``rootfs``.

    Raises ``InvalidArgument`` for an unknown user or group name or an ID out of range.
    """
    passwd = read_file_in_root(rootfs, "/etc/passwd")
    group = read_file_in_root(rootfs, "/etc/group")
    return resolve_user_from(
        user,
        parse_passwd(passwd) if passwd is not None else None,
        parse_group(group) if group is not None else None,
    )


def resolve_user_from(
    user: str,
    passwd: list[PasswdEntry] | None,
    group: list[GroupEntry] | None,
) -> tuple[int, int, list[int]]:
    """``resolve_user`` on parsed files; ``None`` means the file is missing."""
    parts = user.split(":")
    user_arg = parts[0]
    group_arg = parts[1] if len(parts) > 1 else ""
    uid_num = _atoi(user_arg)
    gid_num = _atoi(group_arg)

    uid, gid, sgids = 0, 0, []
    matched_name = ""

    def user_matches(u: PasswdEntry) -> bool:
        if user_arg == "":
            return u.uid == 0
        if uid_num is not None:
            return u.uid == uid_num
        return u.name == user_arg

    users = [u for u in passwd or [] if user_matches(u)]
    if users:
        matched_name = users[0].name
        uid, gid = users[0].uid, users[0].gid
    elif user_arg != "":
        if uid_num is None:
            raise InvalidArgument(
                f"unable to find user {user_arg}: no matching entries in passwd file"
            )
        if not MIN_ID <= uid_num <= MAX_ID:
            raise InvalidArgument(_RANGE_ERROR)
        uid = uid_num

    if group_arg != "" or matched_name != "":

        def group_matches(g: GroupEntry) -> bool:
            if group_arg == "":
                return matched_name in g.members
            if gid_num is not None:
                return g.gid == gid_num
            return g.name == group_arg

        groups = [g for g in group or [] if group_matches(g)]
        if group_arg != "":
            if groups:
                gid = groups[0].gid
            else:
                if gid_num is None:
                    raise InvalidArgument(
                        f"unable to find group {group_arg}: no matching entries in group file"
                    )
                if not MIN_ID <= gid_num <= MAX_ID:
                    raise InvalidArgument(_RANGE_ERROR)
                gid = gid_num
        elif groups:
            sgids = [g.gid for g in groups]
    return uid, gid, sgids


def _atoi(text: str) -> int | None:
    """Go's ``strconv.Atoi``: optional sign and ASCII digits, nothing else."""
    if not _ATOI.fullmatch(text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def _lenient_int(text: str) -> int:
    """runc's parseLine: conversion errors become 0."""
    value = _atoi(text)
    return 0 if value is None else value


def _lines(data: bytes) -> list[str]:
    """bufio.ScanLines: split on \\n, drop one trailing \\r per line."""
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def parse_passwd(data: bytes) -> list[PasswdEntry]:
    """``name:password:UID:GID:GECOS:directory:shell``; blank lines skipped, short lines allowed."""
    out: list[PasswdEntry] = []
    for raw in _lines(data):
        line = raw.strip()
        if not line:
            continue
        f = line.split(":") + [""] * 7
        out.append(
            PasswdEntry(name=f[0], uid=_lenient_int(f[2]), gid=_lenient_int(f[3]), home=f[5])
        )
    return out


def parse_group(data: bytes) -> list[GroupEntry]:
    """``name:password:GID:user_list``; lines are not trimmed (as in runc)."""
    out: list[GroupEntry] = []
    for line in _lines(data):
        if not line:
            continue
        f = line.split(":") + [""] * 4
        members = f[3].split(",") if f[3] else []
        out.append(GroupEntry(name=f[0], gid=_lenient_int(f[2]), members=members))
    return out


def read_file_in_root(root: Path, path: str, *, limit: int = _MAX_FILE) -> bytes | None:
    """Read regular file ``path`` as seen with ``root`` as ``/``; ``None`` if it is missing,
    not a regular file, behind a symlink loop, or unreadable.

    Every component is opened with ``O_PATH|O_NOFOLLOW`` relative to the previous one;
    symlinks are read and resolved by hand within ``root``; the final file is reopened through
    ``/proc/self/fd`` so what is read is exactly the inode that was checked.
    """
    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    stack = [root_fd]
    try:
        pending: deque[str] = deque(p for p in path.split("/") if p)
        links = 0
        while pending:
            name = pending.popleft()
            if name == ".":
                continue
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                os.close(fd)
                links += 1
                if links > _MAX_SYMLINKS:
                    return None
                target = os.readlink(name, dir_fd=stack[-1])
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                pending.extendleft(reversed([p for p in target.split("/") if p]))
                continue
            stack.append(fd)
            if pending and not stat.S_ISDIR(mode):
                return None
        if len(stack) == 1 or not stat.S_ISREG(os.fstat(stack[-1]).st_mode):
            return None
        rfd = os.open(f"/proc/self/fd/{stack[-1]}", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        with os.fdopen(rfd, "rb") as f:
            return f.read(limit)
    except OSError:
        return None
    finally:
        for fd in stack:
            os.close(fd)
