"""``docker cp`` path semantics, shared by the CLI and the daemon: pure functions, no I/O.

The rules are moby's ``pkg/archive/copy.go`` and the Engine API's path stat:

- Paths are cleaned as Go's ``filepath.Clean`` does, but a trailing ``/`` or ``/.`` is
  meaningful and kept (`preserve_trailing_dot_or_separator`): ``dir/`` asserts a directory,
  ``dir/.`` means "the contents of dir".
- `split_path_dir_entry` gives the (directory, base) a tar of the path is named after:
  ``/a/b`` → (``/a``, ``b``); ``/a/b/.`` → (``/a/b``, ``.``); ``/`` → (``/``, ``/``).
- `prepare_archive_copy` decides, from what is known of the source and the destination,
  which directory the archive is extracted into and whether its first path element must be
  renamed (docker's table: file → file, file → dir, dir → new dir, dir/. → existing dir …).
  It raises `CopyError` ``cannot copy directory`` or ``no such directory``.
- `PathStat` is ``X-Docker-Container-Path-Stat``: base64 of the JSON
  ``{"name","size","mode","mtime","linkTarget"}``, ``mode`` in Go ``os.FileMode`` bits
  (`go_file_mode` converts from ``st_mode``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import stat
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument

__all__ = [
    "MODE_DEVICE",
    "MODE_DIR",
    "MODE_IRREGULAR",
    "MODE_SYMLINK",
    "STAT_HEADER",
    "CopyError",
    "CopyInfo",
    "PathStat",
    "asserts_directory",
    "get_rebase_name",
    "go_base",
    "go_clean",
    "go_dir",
    "go_file_mode",
    "go_time",
    "has_trailing_separator",
    "prepare_archive_copy",
    "preserve_trailing_dot_or_separator",
    "rebase_name",
    "specifies_current_dir",
    "split_path_dir_entry",
]

# Go os.FileMode type bits (io/fs): the permission bits are the low nine.
MODE_DIR = 1 << 31
MODE_APPEND = 1 << 30
MODE_EXCLUSIVE = 1 << 29
MODE_TEMPORARY = 1 << 28
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20
MODE_IRREGULAR = 1 << 19
STAT_HEADER = "X-Docker-Container-Path-Stat"


class CopyError(InvalidArgument):
    """A copy that docker's rules refuse (``cannot copy directory``, ``no such directory``)."""


# ---- Go's path functions (slash-separated, Linux) ----------------------------------------


def go_clean(path: str) -> str:
    """Go's ``path.Clean``: ``""`` → ``.``, ``//a/./b/..`` → ``/a``, ``../x`` stays."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    cleaned = "/".join(out)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def go_base(path: str) -> str:
    """Go's ``filepath.Base``: the last element, trailing slashes ignored; ``/`` for ``/``."""
    if path == "":
        return "."
    stripped = path.rstrip("/")
    if stripped == "":
        return "/"
    return stripped.rsplit("/", 1)[-1]


def go_dir(path: str) -> str:
    """Go's ``filepath.Dir``: everything but the last element, cleaned."""
    head = path[: path.rfind("/") + 1]
    return go_clean(head)


def has_trailing_separator(path: str) -> bool:
    return path.endswith("/")


def specifies_current_dir(path: str) -> bool:
    return go_base(path) == "."


def asserts_directory(path: str) -> bool:
    """The path ends with ``/`` or ``/.``: it must be (or become) a directory."""
    return has_trailing_separator(path) or specifies_current_dir(path)


def preserve_trailing_dot_or_separator(cleaned: str, original: str) -> str:
    """``cleaned`` with the trailing ``/.`` or ``/`` that ``original`` had (and cleaning lost)."""
    if not specifies_current_dir(cleaned) and specifies_current_dir(original):
        if not has_trailing_separator(cleaned):
            cleaned += "/"
        cleaned += "."
    if not has_trailing_separator(cleaned) and has_trailing_separator(original):
        cleaned += "/"
    return cleaned


def split_path_dir_entry(path: str) -> tuple[str, str]:
    """(directory, base) of ``path`` after cleaning, keeping a trailing ``.``."""
    cleaned = go_clean(path)
    if specifies_current_dir(path):
        cleaned += "/."
    return go_dir(cleaned), go_base(cleaned)


def get_rebase_name(path: str, resolved: str) -> tuple[str, str]:
    """moby ``GetRebaseName``: ``resolved`` with ``path``'s trailing ``/.`` or ``/`` kept, and
    the name the archive's first element must take ("" when it already has it)."""
    if specifies_current_dir(path) and not specifies_current_dir(resolved):
        resolved += "/."
    if has_trailing_separator(path) and not has_trailing_separator(resolved):
        resolved += "/"
    rebase = go_base(path) if go_base(path) != go_base(resolved) else ""
    return resolved, rebase


# ---- the copy table ---------------------------------------------------------------------


@dataclass(frozen=True)
class CopyInfo:
    """What is known of one side of a copy: the path, whether it exists and is a directory,
    and the name the archive's first element must be renamed to (``-L`` on a link)."""

    path: str
    exists: bool = False
    is_dir: bool = False
    rebase_name: str = ""


def prepare_archive_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, tuple[str, str] | None]:
    """Where to extract an archive of ``src`` so it lands as docker lands it at ``dst``.

    Returns the directory to extract into and, when the archive's entries must be renamed,
    the ``(old, new)`` first path element (see `rebase_name`). Raises `CopyError`.
    """
    dst_dir, dst_base = split_path_dir_entry(dst.path)
    _, src_base = split_path_dir_entry(src.path)
    if src.rebase_name:
        src_base = src.rebase_name
    if dst.exists and dst.is_dir:
        return dst.path, None  # extract into the directory as it is
    if dst.exists and src.is_dir:
        raise CopyError("cannot copy directory")
    if dst.exists or src.is_dir:
        return dst_dir, (src_base, dst_base)
    if asserts_directory(dst.path):
        raise CopyError("no such directory")
    return dst_dir, (src_base, dst_base)


def rebase_name(name: str, old: str, new: str) -> str:
    """moby ``RebaseArchiveEntries`` for one tar name: the first ``old`` becomes ``new``
    (an ``old`` of ``/`` — the root — inserts ``new`` in front)."""
    if old == "/":
        old = ""
    return name.replace(old, new, 1)


# ---- stat -------------------------------------------------------------------------------


def go_file_mode(st_mode: int) -> int:
    """``st_mode`` as Go's ``os.FileMode`` (what ``os.Lstat(...).Mode()`` gives)."""
    mode = st_mode & 0o777
    kind = stat.S_IFMT(st_mode)
    if kind == stat.S_IFBLK:
        mode |= MODE_DEVICE
    elif kind == stat.S_IFCHR:
        mode |= MODE_DEVICE | MODE_CHAR_DEVICE
    elif kind == stat.S_IFDIR:
        mode |= MODE_DIR
    elif kind == stat.S_IFIFO:
        mode |= MODE_NAMED_PIPE
    elif kind == stat.S_IFLNK:
        mode |= MODE_SYMLINK
    elif kind == stat.S_IFSOCK:
        mode |= MODE_SOCKET
    if st_mode & stat.S_ISGID:
        mode |= MODE_SETGID
    if st_mode & stat.S_ISUID:
        mode |= MODE_SETUID
    if st_mode & stat.S_ISVTX:
        mode |= MODE_STICKY
    return mode


def go_time(ns: int) -> str:
    """A time as Go's JSON writes it (RFC 3339, nanoseconds without trailing zeros, the
    local offset, ``Z`` when it is zero)."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    local = dt.datetime.fromtimestamp(seconds, dt.UTC).astimezone()
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    offset = local.utcoffset() or dt.timedelta(0)
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class PathStat:
    """moby's ``container.PathStat``: the ``X-Docker-Container-Path-Stat`` header."""

    name: str
    size: int
    mode: int  # Go os.FileMode bits
    mtime: str
    link_target: str = ""

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & MODE_DIR)

    @property
    def is_symlink(self) -> bool:
        return bool(self.mode & MODE_SYMLINK)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "mode": self.mode,
            "mtime": self.mtime,
            "linkTarget": self.link_target,
        }

    def to_header(self) -> str:
        body = json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False)
        return base64.b64encode(body.encode()).decode()

    @classmethod
    def from_header(cls, value: str) -> PathStat:
        """Decode the header; ``InvalidArgument`` when it is not base64 of the JSON object."""
        try:
            data = json.loads(base64.b64decode(value.encode(), validate=False))
            return cls(
                name=str(data.get("name", "")),
                size=int(data.get("size", 0)),
                mode=int(data.get("mode", 0)),
                mtime=str(data.get("mtime", "")),
                link_target=str(data.get("linkTarget", "")),
            )
        except (binascii.Error, ValueError, TypeError, AttributeError) as exc:
            raise InvalidArgument(f"unable to decode container path stat header: {exc}") from None
