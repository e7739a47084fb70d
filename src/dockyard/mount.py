"""The one module that calls mount(2) and umount(2).

Everything else describes mounts as data (``Mount``: the containerd "lingua franca")
and hands them here. Options follow mount(8)/containerd: flag words (``ro``, ``rbind``,
``nosuid`` …) become mount flags, propagation words (``rprivate`` …) a second call, and
everything else (``lowerdir=…``) the filesystem's data string.

An overlay option string longer than a page (many layers) is passed with paths relative
to their common parent, by running ``mount(8)`` with that directory as its working
directory: a child process, so the daemon's own cwd never changes under other threads.

Errors: ``InvalidArgument`` for a malformed mount, ``Conflict`` for a busy target,
``SystemError`` for any other failure of the kernel call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import Conflict, InvalidArgument, SystemError

__all__ = [
    "Mount",
    "bind_mount",
    "is_mounted",
    "mount_all",
    "private_mount_namespace",
    "unmount",
    "unmount_all",
]

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 0x2
CLONE_NEWNS = 0x00020000

# word -> (clear?, flag)
_FLAGS: dict[str, tuple[bool, int]] = {
    "async": (True, MS_SYNCHRONOUS),
    "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND),
    "defaults": (False, 0),
    "dev": (True, MS_NODEV),
    "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC),
    "mand": (False, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME),
    "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC),
    "nomand": (True, MS_MANDLOCK),
    "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "nosuid": (False, MS_NOSUID),
    "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME),
    "remount": (False, MS_REMOUNT),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "strictatime": (False, MS_STRICTATIME),
    "suid": (True, MS_NOSUID),
    "sync": (False, MS_SYNCHRONOUS),
}
_PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_PATH_OPTIONS = ("lowerdir=", "upperdir=", "workdir=")


@dataclass(frozen=True)
class Mount:
    """One mount: filesystem type, source and options, as in ``mount -t TYPE -o OPTS SRC``."""

    type: str
    source: str
    options: tuple[str, ...] = ()


class _Libc:
    def __init__(self) -> None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.mount = lib.mount
        self.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        ]
        self.mount.restype = ctypes.c_int
        self.umount2 = lib.umount2
        self.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self.umount2.restype = ctypes.c_int
        self.unshare = lib.unshare
        self.unshare.argtypes = [ctypes.c_int]
        self.unshare.restype = ctypes.c_int


_libc: _Libc | None = None


def _lib() -> _Libc:
    global _libc  # a lazily loaded, immutable handle on libc; not configuration
    if _libc is None:
        _libc = _Libc()
    return _libc


def _b(value: str | Path | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _sys_mount(source: str | None, target: Path, fstype: str | None, flags: int, data: str) -> None:
    rc = _lib().mount(_b(source), _b(target), _b(fstype), flags, data.encode() if data else None)
    if rc != 0:
        err = ctypes.get_errno()
        raise _error(err, f"mount {fstype or ''} {source or ''} on {target}")


def _error(err: int, what: str) -> Exception:
    message = f"{what}: {os.strerror(err)}"
    if err == errno.EBUSY:
        return Conflict(message)
    return SystemError(message)


def _parse(options: Sequence[str]) -> tuple[int, int, list[str]]:
    flags = 0
    propagation = 0
    data: list[str] = []
    for option in options:
        if option in _FLAGS:
            clear, flag = _FLAGS[option]
            flags = flags & ~flag if clear else flags | flag
        elif option in _PROPAGATION:
            propagation |= _PROPAGATION[option]
        else:
            data.append(option)
    return flags, propagation, data


def _relative_data(data: list[str]) -> tuple[str, str]:
    """Rewrite path options relative to their common parent; return (data, that parent)."""
    paths: list[str] = []
    for option in data:
        for prefix in _PATH_OPTIONS:
            if option.startswith(prefix):
                paths.extend(option[len(prefix) :].split(":"))
    if not paths:
        raise InvalidArgument("mount options exceed the page size")
    common = os.path.commonpath(paths)
    out: list[str] = []
    for option in data:
        for prefix in _PATH_OPTIONS:
            if option.startswith(prefix):
                rel = [os.path.relpath(p, common) for p in option[len(prefix) :].split(":")]
                option = prefix + ":".join(rel)
                break
        out.append(option)
    return ",".join(out), common


def _mount_one(m: Mount, target: Path) -> None:
    flags, propagation, data = _parse(m.options)
    data_str = ",".join(data)
    if flags & MS_BIND:
        _sys_mount(m.source, target, None, flags & (MS_BIND | MS_REC), "")
        try:
            rest = flags & ~(MS_BIND | MS_REC)
            if rest:
                _sys_mount(None, target, None, MS_REMOUNT | MS_BIND | rest, "")
        except BaseException:
            unmount(target)
            raise
    elif len(data_str) >= _PAGE_SIZE:
        rel, cwd = _relative_data(data)
        if len(rel) + 64 >= _PAGE_SIZE:
            raise InvalidArgument(f"mount options for {target} are too long ({len(rel)} bytes)")
        words = [o for o in m.options if o in _FLAGS or o in _PROPAGATION]
        opts = ",".join([*words, rel])
        argv = ["mount", "-t", m.type, "-o", opts, m.source, str(target.absolute())]
        propagation = 0  # mount(8) applied it
        try:
            subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=60)
        except subprocess.CalledProcessError as exc:
            stderr = exc.stderr.decode(errors="replace").strip()
            raise SystemError(f"mount {m.type} on {target}: {stderr}") from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SystemError(f"mount {m.type} on {target}: {exc}") from None
    else:
        _sys_mount(m.source, target, m.type, flags, data_str)
    if propagation:
        try:
            _sys_mount(None, target, None, propagation, "")
        except BaseException:
            unmount(target)
            raise


def mount_all(mounts: Sequence[Mount], target: Path) -> None:
    """Mount each of ``mounts`` on ``target`` in order; on failure undo the ones made."""
    done = 0
    try:
        for m in mounts:
            _mount_one(m, target)
            done += 1
    except BaseException:
        for _ in range(done):
            unmount(target, detach=True)
        raise


def unmount(target: Path, *, detach: bool = False) -> None:
    """Unmount the top mount on ``target``; a target that is not mounted (EINVAL) or
    does not exist (ENOENT) is not an error."""
    rc = _lib().umount2(_b(target), MNT_DETACH if detach else 0)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return
        raise _error(err, f"unmount {target}")


def unmount_all(target: Path, *, detach: bool = False) -> None:
    """Unmount every mount stacked on ``target``."""
    for _ in range(256):
        if not is_mounted(target):
            return
        unmount(target, detach=detach)
    raise SystemError(f"unmount {target}: still mounted")


def private_mount_namespace() -> None:
    """Give the calling *thread* a mount namespace of its own, every mount in it a slave of
    the one it copies: what the thread mounts afterwards propagates nowhere (not to the
    host, not into containers) and is gone when the thread exits, whatever happens.

    The kernel adds CLONE_FS, so the thread also gets its own root, cwd and umask; other
    threads keep theirs. File descriptors stay shared: a directory opened here can be read
    from any thread, and lookups through it cross the mounts made here while the thread
    lives. Needs CAP_SYS_ADMIN; raises ``SystemError``.
    """
    if _lib().unshare(CLONE_NEWNS) != 0:
        raise _error(ctypes.get_errno(), "unshare mount namespace")
    _sys_mount(None, Path("/"), None, MS_REC | MS_SLAVE, "")


def bind_mount(
    source: str, target: Path, *, recursive: bool = True, readonly: bool = False
) -> None:
    """Bind ``source`` on ``target`` (``rbind`` unless ``recursive`` is false).

    ``target`` may be ``/proc/self/fd/N`` for a descriptor of the mount point, which pins it
    against symlink swaps; the read-only remount (the kernel refuses it through such a path)
    then goes to the path the kernel reports for the descriptor.
    """
    _sys_mount(source, target, None, MS_BIND | (MS_REC if recursive else 0), "")
    if not readonly:
        return
    real = Path(os.readlink(target)) if str(target).startswith("/proc/self/fd/") else target
    try:
        _sys_mount(None, real, None, MS_REMOUNT | MS_BIND | MS_RDONLY, "")
    except BaseException:
        unmount(real, detach=True)
        raise


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def is_mounted(target: Path) -> bool:
    """True when something is mounted exactly on ``target`` (per ``/proc/self/mountinfo``)."""
    wanted = os.path.realpath(target)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split(" ")
            if len(fields) > 4 and _unescape(fields[4]) == wanted:
                return True
    return False
