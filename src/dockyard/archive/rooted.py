"""Files under a root directory fd, reached as if the root were ``/``: path resolution, the
path stat, tar of a resource and safe extraction — the file side of ``docker cp``.

`Root` wraps a directory descriptor. Nothing here ever opens a path string or follows a
symlink in the kernel: `Root.resolve` expands symlinks itself (absolute targets restart at
the root, ``..`` stops there, missing components are kept lexically — moby's
``FollowSymlinkInScope``), and every access then walks the canonical components with
``O_NOFOLLOW`` directory fds. A symlink swapped in between (a running container racing us)
makes the access fail, never escape. Lookups through the fds cross mount points, so a root
whose tree has volumes mounted in it sees them.

- `stat_path`: moby's ``ResolvePath`` + ``StatPath``: everything but the last element is
  resolved, the last is ``lstat``-ed (``/.`` and a trailing ``/`` mean the directory itself).
- `write_archive`: the tar ``GET /containers/{id}/archive`` sends: a directory's entries
  under its requested base name (``dir/…``, ``./…`` for ``dir/.``, ``/…`` for ``/``), a file,
  link or device as one entry. Symlinks are archived, not followed.
- `extract`: moby's ``Unpack`` for a hostile tar. Names are cleaned; one whose ``..`` leaves
  the destination is refused (``"../x" is outside of "/dest"``), a leading ``/`` is dropped;
  a symlink whose target lexically leaves the destination is refused (``invalid symlink``),
  as is a hardlink whose target does (``invalid hardlink``). Parents of entries are resolved
  like any path in the root (``follow_symlinks``: symlinks — also ones this tar created —
  are followed *inside the root*, as dockerd's chrooted untar does) or must be real
  directories (not ``follow_symlinks``: the CLI extracting into a local directory).

Errors: `NotFound` (a path that does not exist), `SystemError` for everything dockerd
answers with 500 (a path through a non-directory, a refused entry or overwrite, a broken
tar, I/O), in docker's words; the callers add the container's name where dockerd does.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from dataclasses import dataclass, replace
from typing import BinaryIO

from dockyard.archive._fs import quote, remove_entry
from dockyard.archive.apply import _CorruptHeader, _StrictTarInfo
from dockyard.archive.compression import open_decompressed
from dockyard.archive.copy import (
    PathStat,
    go_base,
    go_clean,
    go_dir,
    go_file_mode,
    go_time,
    preserve_trailing_dot_or_separator,
    rebase_name,
)
from dockyard.archive.create import _add, _Node, _walk
from dockyard.errors import DockyardError, NotFound, SystemError

__all__ = [
    "ExtractOptions",
    "Resource",
    "Root",
    "absolute",
    "extract",
    "stat_path",
    "write_archive",
    "write_entry",
]

_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 255
_SCHILY_XATTR = "SCHILY.xattr."
_SKIPPED_XATTRS = ("trusted.overlay.", "user.overlay.", "security.selinux")
_XATTR_UNSUPPORTED = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EINVAL, errno.E2BIG}

Parts = tuple[str, ...]


def _display(parts: Parts) -> str:
    return "/" + "/".join(parts)


class Root:
    """A directory descriptor treated as ``/``. The caller owns ``fd``."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def resolve(self, path: str, *, follow_last: bool = True) -> Parts:
        """The canonical components of ``path`` (relative to the root; a leading ``/`` or not
        is the same). Symlinks are expanded inside the root, the last one only with
        ``follow_last``; components that do not exist are kept as written.

        Raises ``NotADirectoryError`` when an existing non-directory has components below
        it, ``OSError(ELOOP)`` after 255 links.
        """
        todo = [p for p in reversed(path.split("/")) if p not in ("", ".")]
        done: list[str] = []
        fds: list[int] = []  # fds[i]: directory done[: i + 1], for as long as it exists
        links = 0
        try:
            while todo:
                part = todo.pop()
                if part == "..":
                    if done:
                        done.pop()
                        if len(fds) > len(done):
                            fd = fds.pop()
                            if fd >= 0:
                                os.close(fd)
                    continue
                if len(fds) < len(done):  # below a missing directory: lexical from here on
                    done.append(part)
                    continue
                parent = fds[-1] if fds else self.fd
                if parent < 0:  # below an existing non-directory
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
                try:
                    st = os.lstat(part, dir_fd=parent)
                except FileNotFoundError:
                    done.append(part)
                    continue
                if stat.S_ISLNK(st.st_mode) and (todo or follow_last):
                    links += 1
                    if links > _MAX_LINKS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                    target = os.readlink(part, dir_fd=parent)
                    if target.startswith("/"):
                        while fds:
                            fd = fds.pop()
                            if fd >= 0:
                                os.close(fd)
                        done.clear()
                    todo.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
                    continue
                done.append(part)
                if stat.S_ISDIR(st.st_mode):
                    fds.append(os.open(part, _DIR_FLAGS, dir_fd=parent))
                else:
                    fds.append(-1)  # a non-directory: only ".." may follow it
            return tuple(done)
        finally:
            for fd in fds:
                if fd >= 0:
                    os.close(fd)

    def open_dir(self, parts: Parts, *, create: bool = False, mode: int = 0o755) -> int:
        """A new fd of directory ``parts``, walked without following anything; missing
        directories are made (``mode``) with ``create``. Raises ``FileNotFoundError``,
        ``OSError(ELOOP/ENOTDIR)`` for a symlink or file on the way."""
        fd = os.dup(self.fd)
        try:
            for part in parts:
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, 0o700, dir_fd=fd)
                        made = True
                    except FileExistsError:
                        made = False
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                    if made:
                        os.fchmod(child, mode)  # mkdir's mode goes through the umask
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def lstat(self, parts: Parts) -> os.stat_result:
        if not parts:
            return os.fstat(self.fd)
        fd = self.open_dir(parts[:-1])
        try:
            return os.lstat(parts[-1], dir_fd=fd)
        finally:
            os.close(fd)


# ---- stat ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """A path looked up for ``docker cp``: where it is and what the API says of it."""

    abs_path: str  # the requested path, absolute and cleaned, trailing "/" or "/." kept
    parts: Parts  # canonical location (its last element not followed if a symlink)
    stat: PathStat
    is_dir: bool


def absolute(path: str) -> str:
    """``filepath.Join("/", path)`` keeping a trailing ``/`` or ``/.``."""
    return preserve_trailing_dot_or_separator(go_clean("/" + path), path)


def stat_path(root: Root, path: str) -> Resource:
    """moby ``ResolvePath`` + ``StatPath`` for ``path`` inside ``root``.

    Raises `NotFound` when it does not exist, `SystemError` (dockerd's 500) when a
    non-directory is in the way or the path asserts a directory (``file/``) that is not one.
    """
    abs_path = absolute(path)
    cut = abs_path.rfind("/") + 1
    dir_part, base = abs_path[:cut], abs_path[cut:]
    try:
        parts = root.resolve(dir_part, follow_last=True)
        if base not in ("", "."):
            parts = (*parts, base)
        st = root.lstat(parts)
        if base in ("", ".") and not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        link_target = ""
        if stat.S_ISLNK(st.st_mode):
            link_target = _display(root.resolve(abs_path, follow_last=True))
    except FileNotFoundError:
        raise NotFound(f"lstat {abs_path}: no such file or directory") from None
    except NotADirectoryError:
        raise SystemError(f"lstat {abs_path}: not a directory") from None
    except OSError as exc:
        raise SystemError(f"lstat {abs_path}: {exc.strerror or exc}") from None
    info = PathStat(
        name=go_base(abs_path),
        size=st.st_size,
        mode=go_file_mode(st.st_mode),
        mtime=go_time(st.st_mtime_ns),
        link_target=link_target,
    )
    return Resource(abs_path, parts, info, stat.S_ISDIR(st.st_mode))


# ---- tar of a resource --------------------------------------------------------------------


def write_archive(root: Root, resource: Resource, out: BinaryIO) -> None:
    """Write the tar of ``resource`` (from `stat_path`) to ``out``: entries named after the
    requested base name, as dockerd's ``TarResourceRebase`` names them. Entries that vanish
    meanwhile are skipped; ``SystemError`` when reading fails."""
    name = go_base(resource.abs_path)
    parent = root.open_dir(resource.parts[:-1]) if resource.parts else os.dup(root.fd)
    try:
        entry = resource.parts[-1] if resource.parts else "."
        write_entry(parent, entry, name, out)
    except FileNotFoundError as exc:
        raise NotFound(f"lstat {resource.abs_path}: no such file or directory") from exc
    finally:
        os.close(parent)


class _GoTarFile(tarfile.TarFile):
    """A tar writer that ends like Go's ``archive/tar``: two zero blocks, no padding to a
    10 KiB record (the sizes ``docker cp`` reports are those of Go-written tars)."""

    def close(self) -> None:
        if self.closed:  # type: ignore[has-type]
            return
        self.closed = True
        try:
            if self.mode in ("a", "w", "x"):
                self.fileobj.write(tarfile.NUL * (tarfile.BLOCKSIZE * 2))
                self.offset += tarfile.BLOCKSIZE * 2
        finally:
            if not self._extfileobj:  # type: ignore[attr-defined]
                self.fileobj.close()


def write_entry(parent_fd: int, entry: str, name: str, out: BinaryIO) -> None:
    """Tar ``entry`` of directory ``parent_fd`` (``.``: the directory itself) as ``name``:
    a directory with everything below it as ``name/…`` (``/…`` when ``name`` is ``/``)."""
    st = os.lstat(entry, dir_fd=parent_fd) if entry != "." else os.fstat(parent_fd)
    prefix = "" if name == "/" else name
    try:
        with _GoTarFile.open(
            fileobj=out,
            mode="w|",
            format=tarfile.PAX_FORMAT,
            bufsize=_CHUNK,
            encoding="utf-8",
            errors="surrogateescape",
        ) as tar:
            links: dict[tuple[int, int], str] = {}
            if not stat.S_ISDIR(st.st_mode):
                _add(tar, _Node(parent_fd, entry, name, st, False), links, whiteouts=False)
                return
            fd = os.open(entry, _DIR_FLAGS, dir_fd=parent_fd) if entry != "." else os.dup(parent_fd)
            try:
                root_node = _Node(parent_fd, entry, prefix or "/", st, False)
                if entry == ".":
                    # _add opens nothing for a directory: only its stat and xattrs are used
                    root_node = _Node(fd, ".", prefix or "/", st, False)
                _add(tar, root_node, links, whiteouts=False)
                for node in _walk(fd, whiteouts=False, exclude=None):
                    _add(tar, replace(node, rel=f"{prefix}/{node.rel}"), links, whiteouts=False)
                    tar.members.clear()  # type: ignore[attr-defined]  # bound memory: hardlinks use `links`
            finally:
                os.close(fd)
    except DockyardError:
        raise
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            raise
        raise SystemError(f"archiving {name}: {exc.strerror or exc}") from exc


# ---- extraction ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractOptions:
    """How `extract` treats what it writes.

    ``no_overwrite_dir_non_dir``: an existing directory may not be replaced by a
    non-directory nor the reverse. ``chown``: every entry gets these ids (``docker cp -a``
    with a container user). ``lchown``: entries get the tar's ids (False: the extracting
    user's, as the docker CLI extracts locally). ``follow_symlinks``: see the module doc.
    ``renames``: applied in order to every name (and hardlink target) before anything else.
    """

    no_overwrite_dir_non_dir: bool = False
    chown: tuple[int, int] | None = None
    lchown: bool = True
    follow_symlinks: bool = True
    renames: tuple[tuple[str, str], ...] = ()  # (old, new) first elements, as `rebase_name`


def _inside(path: str, dest: str) -> bool:
    return dest == "/" or path == dest or path.startswith(dest + "/")


def _join(*paths: str) -> str:
    return go_clean("/".join(p for p in paths if p))


def extract(
    root: Root, dest: Parts, stream: BinaryIO, options: ExtractOptions, *, shown: str = ""
) -> None:
    """Unpack the tar (any compression) in ``stream`` into directory ``dest`` of ``root``.

    ``dest`` are canonical components (from `Root.resolve`); ``shown`` is how the
    destination is named in errors (default: ``/dest``). Reads ``stream`` up to the end of
    the archive. On error what was extracted so far stays.
    """
    extractor = _Extractor(root, dest, shown or _display(dest), options)
    try:
        buffered = open_decompressed(stream)
        if not buffered.peek(1):  # type: ignore[attr-defined]
            return  # an empty body is an empty archive, as for Go's archive/tar
        with _open_tar(buffered) as tar:
            while (member := _next(tar)) is not None:
                extractor.entry(tar, member)
                tar.members.clear()  # type: ignore[attr-defined]
        extractor.finish()
    finally:
        extractor.close()


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
    except (tarfile.TarError, _CorruptHeader) as exc:
        raise _tar_error(exc) from None


def _next(tar: tarfile.TarFile) -> tarfile.TarInfo | None:
    try:
        return tar.next()
    except (tarfile.TarError, _CorruptHeader) as exc:
        raise _tar_error(exc) from None


def _tar_error(exc: Exception) -> SystemError:
    """A broken tar stream in Go's ``archive/tar`` words (dockerd answers them with 500)."""
    text = str(exc)
    if "truncated" in text or "unexpected end" in text or "empty" in text:
        return SystemError("unexpected EOF")
    return SystemError("archive/tar: invalid tar header")


class _Extractor:
    def __init__(self, root: Root, dest: Parts, shown: str, options: ExtractOptions) -> None:
        self.root = root
        self.dest = dest
        self.shown = go_clean(shown)
        self.options = options
        self._is_root = os.geteuid() == 0
        self._dirs: dict[Parts, tuple[int, int]] = {}  # canonical dir -> (mode, mtime ns)
        self._cached: tuple[Parts, Parts, int] | None = None  # (entry parent, canonical, fd)
        self._cached_stale = False

    def close(self) -> None:
        self._drop_cache()

    def _drop_cache(self) -> None:
        if self._cached is not None:
            os.close(self._cached[2])
            self._cached = None

    # -- one entry ---------------------------------------------------------------------

    def entry(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        for old, new in self.options.renames:
            m.name = rebase_name(m.name, old, new)
            if m.islnk():
                m.linkname = rebase_name(m.linkname, old, new)
        name = go_clean(m.name)
        path = _join(self.shown, name)
        try:
            self._entry(tar, m, name, path)
        except DockyardError:
            raise
        except tarfile.TarError as exc:
            raise _tar_error(exc) from None
        except FileNotFoundError as exc:
            raise NotFound(f"{exc.strerror}: {quote(path)}") from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise SystemError(
                    f"cannot extract {quote(path)}: a path component is not a directory"
                ) from None
            raise SystemError(f"extracting {quote(path)}: {exc.strerror or exc}") from None

    def _entry(self, tar: tarfile.TarFile, m: tarfile.TarInfo, name: str, path: str) -> None:
        if name == ".." or name.startswith("../"):
            raise SystemError(f"{quote(name)} is outside of {quote(self.shown)}")
        parts = tuple(p for p in name.split("/") if p not in ("", "."))
        if not parts:
            if m.isdir():
                return  # the destination itself: it exists and stays as it is
            raise SystemError(
                f"cannot overwrite directory {quote(self.shown)} with non-directory {quote(name)}"
            )
        if m.issym():
            target = _join(go_dir(path), m.linkname)
            if not m.linkname or not _inside(target, self.shown):
                raise SystemError(f"invalid symlink {quote(path)} -> {quote(m.linkname)}")
        link_source: tuple[int, str] | None = None
        if m.islnk():
            target = _join(self.shown, m.linkname)
            if not _inside(target, self.shown):
                raise SystemError(f"invalid hardlink {quote(target)} -> {quote(m.linkname)}")
        canonical, pfd = self._parent(parts[:-1])
        base = parts[-1]
        try:
            st = os.lstat(base, dir_fd=pfd)
        except FileNotFoundError:
            st = None
        if st is not None:
            is_dir = stat.S_ISDIR(st.st_mode)
            if self.options.no_overwrite_dir_non_dir and is_dir and not m.isdir():
                raise SystemError(
                    f"cannot overwrite directory {quote(path)} with non-directory {quote(self.shown)}"
                )
            if self.options.no_overwrite_dir_non_dir and not is_dir and m.isdir():
                raise SystemError(
                    f"cannot overwrite non-directory {quote(path)} with directory {quote(self.shown)}"
                )
            if not (is_dir and m.isdir()):
                if is_dir:
                    self._forget((*canonical, base))
                remove_entry(pfd, base)
                self._cached_stale = True
        if m.islnk():
            link_source = self._link_source(m.linkname)
        try:
            self._create(tar, m, pfd, (*canonical, base), st, link_source)
        finally:
            if link_source is not None:
                os.close(link_source[0])
        if m.issym() or m.islnk() or self._cached_stale:
            self._drop_cache()  # a new link or a removal may change how later parents resolve
            self._cached_stale = False

    def _parent(self, rel: Parts) -> tuple[Parts, int]:
        """The canonical parts and an fd of the entry's parent directory (made if missing)."""
        if self._cached is not None and self._cached[0] == rel:
            return self._cached[1], self._cached[2]
        self._drop_cache()
        if self.options.follow_symlinks:
            canonical = self.root.resolve("/".join((*self.dest, *rel)), follow_last=True)
        else:
            canonical = (*self.dest, *rel)
        fd = self.root.open_dir(canonical, create=True)
        self._cached = (rel, canonical, fd)
        return canonical, fd

    def _link_source(self, linkname: str) -> tuple[int, str]:
        rel = tuple(p for p in go_clean(linkname).split("/") if p and p != ".")
        if not rel:
            raise SystemError(f"invalid hardlink {quote(self.shown)} -> {quote(linkname)}")
        if self.options.follow_symlinks:
            parent = self.root.resolve("/".join((*self.dest, *rel[:-1])), follow_last=True)
        else:
            parent = (*self.dest, *rel[:-1])
        return self.root.open_dir(parent), rel[-1]

    def _forget(self, removed: Parts) -> None:
        n = len(removed)
        self._dirs = {p: v for p, v in self._dirs.items() if p[:n] != removed}

    def _create(
        self,
        tar: tarfile.TarFile,
        m: tarfile.TarInfo,
        pfd: int,
        canonical: Parts,
        existing: os.stat_result | None,
        link_source: tuple[int, str] | None,
    ) -> None:
        base = canonical[-1]
        mtime = int(m.mtime * 1_000_000_000)
        if m.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(base, 0o700, dir_fd=pfd)
            fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
            try:
                self._chown(fd, None, m)
                self._set_xattrs(fd, m)
            finally:
                os.close(fd)
            self._dirs[canonical] = (stat.S_IMODE(m.mode), mtime)  # applied last
        elif m.isreg():
            data = tar.extractfile(m)
            assert data is not None  # regular members always have a data stream
            fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)
            try:
                while chunk := data.read(_CHUNK):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
                self._chown(fd, None, m)
                os.fchmod(fd, stat.S_IMODE(m.mode))  # after chown, which clears setuid
                self._set_xattrs(fd, m)
                os.utime(fd, ns=(mtime, mtime))
            finally:
                os.close(fd)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            self._chown(pfd, base, m)
            os.utime(base, ns=(mtime, mtime), dir_fd=pfd, follow_symlinks=False)
        elif m.islnk():
            assert link_source is not None
            sfd, sname = link_source
            os.link(sname, base, src_dir_fd=sfd, dst_dir_fd=pfd, follow_symlinks=False)
            self._chown(pfd, base, m)
        elif m.isfifo() or m.ischr() or m.isblk():
            if m.isfifo():
                os.mkfifo(base, 0o600, dir_fd=pfd)
            else:
                kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
                try:
                    os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
                except PermissionError:
                    return  # no CAP_MKNOD: skipped, as docker does in a user namespace
            self._chown(pfd, base, m)
            os.chmod(base, stat.S_IMODE(m.mode), dir_fd=pfd, follow_symlinks=False)
            os.utime(base, ns=(mtime, mtime), dir_fd=pfd, follow_symlinks=False)
        else:
            raise SystemError(f"unhandled tar header type {ord(m.type[:1] or b'0')}")

    # -- metadata ----------------------------------------------------------------------

    def _ids(self, m: tarfile.TarInfo) -> tuple[int, int] | None:
        if self.options.chown is not None:
            return self.options.chown
        if self.options.lchown:
            return m.uid, m.gid
        return None

    def _chown(self, fd: int, name: str | None, m: tarfile.TarInfo) -> None:
        ids = self._ids(m)
        if ids is None:
            return
        try:
            if name is None:
                os.fchown(fd, *ids)
            else:
                os.chown(name, *ids, dir_fd=fd, follow_symlinks=False)
        except PermissionError:
            if self._is_root:
                raise

    @staticmethod
    def _set_xattrs(fd: int, m: tarfile.TarInfo) -> None:
        for key, value in m.pax_headers.items():
            if not key.startswith(_SCHILY_XATTR):
                continue
            xattr = key[len(_SCHILY_XATTR) :]
            if xattr.startswith(_SKIPPED_XATTRS):
                continue
            try:
                os.setxattr(fd, xattr, value.encode("utf-8", "surrogateescape"))
            except OSError as exc:
                if exc.errno not in _XATTR_UNSUPPORTED:
                    raise

    def finish(self) -> None:
        """Directory modes and mtimes, children before parents (their creation changed them)."""
        self._drop_cache()
        for parts in sorted(self._dirs, reverse=True):
            mode, mtime = self._dirs[parts]
            try:
                fd = self.root.open_dir(parts)
            except OSError:
                continue  # replaced by a later entry
            try:
                os.fchmod(fd, mode)
                os.utime(fd, ns=(mtime, mtime))
            except OSError as exc:
                raise SystemError(f"extracting {quote(_display(parts))}: {exc.strerror}") from None
            finally:
                os.close(fd)
