"""``cp`` (and ``container cp``): copy files and directories between a container and the
local filesystem, as the docker CLI 28 does (``cli/command/container/cp.go``).

``CONTAINER:PATH`` names a path in a container; anything else, and any argument starting
with ``/`` or with ``.`` before its first ``:``, is local. ``-`` is a tar stream on stdout
(from a container) or stdin (to a container directory).

What lands where follows docker's table (``dockyard.archive.copy.prepare_archive_copy``):
a file copied onto a file replaces it, into a directory keeps its name; a directory copied
to a new path becomes that path, into an existing directory goes inside it, and with a
trailing ``/.`` only its contents are copied. From a container the tar is extracted locally
without following any symlink below the destination directory and without changing
ownership (the local user's); to a container the daemon does the extracting.

Errors print as the docker CLI prints them and exit 1: daemon answers with ``Error response
from daemon:`` (``Could not find the file /x in container c``), local ones as Go words them
(``lstat /tmp/nope: no such file or directory``, ``cannot copy directory``, ``no such
directory``, ``invalid output path: directory "/x" does not exist``).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import sys
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

import click

from dockyard.archive.copy import (
    MODE_DEVICE,
    MODE_IRREGULAR,
    CopyInfo,
    PathStat,
    get_rebase_name,
    go_base,
    go_clean,
    prepare_archive_copy,
    preserve_trailing_dot_or_separator,
    split_path_dir_entry,
)
from dockyard.archive.rooted import ExtractOptions, Root, extract, write_entry
from dockyard.client import Client, StreamResponse
from dockyard.errors import DockyardError

from .common import DockerCommand, StatusError, get_client, require_args
from .formatting import human_size

__all__ = ["cp", "split_cp_arg"]

_CTX = {"help_option_names": ["-h", "--help"]}
_CHUNK = 1 << 20
_MAX_DEST_LINKS = 10
USAGE = (
    "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n"
    "\tdockyard cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH"
)


class _CopyCommand(DockerCommand):
    """pflag's ``-q=false`` / ``--quiet=false``: an explicit "not quiet" (progress shown)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out = []
        for arg in args:
            name, sep, value = arg.partition("=")
            if sep and name in ("-q", "--quiet") and value.lower() in ("false", "0", "f"):
                arg = "--no-quiet"
            out.append(arg)
        return super().parse_args(ctx, out)


@click.command(
    cls=_CopyCommand,
    usage=USAGE,
    context_settings=_CTX,
    negatable=("quiet",),
    short_help="Copy files/folders between a container and the local filesystem",
)
@click.option(
    "-a", "--archive", "archive", is_flag=True, help="Archive mode (copy all uid/gid information)"
)
@click.option(
    "-L", "--follow-link", "follow_link", is_flag=True, help="Always follow symbol link in SRC_PATH"
)
@click.option(
    "-q",
    "--quiet/--no-quiet",
    "quiet",
    default=None,
    help="Suppress progress output during copy. Progress output is automatically suppressed "
    "if no terminal is attached",
)
@click.argument("args", nargs=-1)
@click.pass_context
def cp(
    ctx: click.Context,
    archive: bool,
    follow_link: bool,
    quiet: bool | None,
    args: tuple[str, ...],
) -> None:
    """Copy files/folders between a container and the local filesystem

    \b
    Use '-' as the source to read a tar archive from stdin
    and extract it to a directory destination in a container.
    Use '-' as the destination to stream a tar archive of a
    container source to stdout."""
    require_args(ctx, args, exact=2)
    source, destination = args
    if source == "":
        raise StatusError(1, "source can not be empty")
    if destination == "":
        raise StatusError(1, "destination can not be empty")
    if quiet is None:
        quiet = not sys.stdout.isatty()
    src_container, src_path = split_cp_arg(source)
    dst_container, dst_path = split_cp_arg(destination)
    if src_container and dst_container:
        raise StatusError(1, "copying between containers is not supported")
    if not src_container and not dst_container:
        raise StatusError(1, "must specify at least one container source")
    client = get_client(ctx)
    if src_container:
        _from_container(client, src_container, src_path, dst_path, follow_link, quiet)
    else:
        _to_container(client, dst_container, src_path, dst_path, follow_link, archive, quiet)


def split_cp_arg(arg: str) -> tuple[str, str]:
    """``CONTAINER:PATH`` → (container, path); a local path → ("", path). A ``/``-rooted
    argument, or one whose part before ``:`` starts with ``.``, is local (``./a:b``)."""
    if arg.startswith("/"):
        return "", arg
    container, sep, path = arg.partition(":")
    if not sep or container.startswith("."):
        return "", arg
    return container, path


# ---- local paths ------------------------------------------------------------------------


def _go_error(op: str, path: str, exc: OSError) -> StatusError:
    """An OS error in Go's words: ``lstat /x: no such file or directory``."""
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return StatusError(1, f"{op} {path}: {text[:1].lower()}{text[1:]}")


def _resolve_local(path: str) -> str:
    """``filepath.Abs`` keeping a trailing ``/`` or ``/.``."""
    joined = path if path.startswith("/") else os.path.join(os.getcwd(), path)
    return preserve_trailing_dot_or_separator(go_clean(joined), path)


def _eval_symlinks(path: str) -> str:
    """Go's ``filepath.EvalSymlinks``: every link resolved, the path must exist."""
    try:
        return go_clean(os.path.realpath(path, strict=True))
    except OSError as exc:
        raise _go_error("lstat", str(exc.filename or path), exc) from None


def _validate_output_path(path: str) -> None:
    """docker's ``ValidateOutputPath`` for the local destination."""
    parent = os.path.dirname(go_clean(path)) or "."
    if parent != "." and not os.path.exists(parent):
        raise StatusError(1, f'invalid output path: directory "{parent}" does not exist')
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _go_error("stat", path, exc) from None
    if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
        return
    reason = _file_mode_problem(st.st_mode)
    if reason:
        raise StatusError(
            1, f'invalid output path: "{path}" must be a directory or a regular file: {reason}'
        )


def _file_mode_problem(st_mode: int) -> str:
    """docker's ``ValidateOutputPathFileMode`` on a local ``st_mode``."""
    return "got a device" if stat.S_ISBLK(st_mode) or stat.S_ISCHR(st_mode) else ""


def _api_mode_problem(info: PathStat) -> str:
    """docker's ``ValidateOutputPathFileMode`` on a container path's Go file mode."""
    if info.mode & MODE_DEVICE:
        return "got a device"
    if info.mode & MODE_IRREGULAR:
        return "got an irregular file"
    return ""


def _destination_info(path: str) -> CopyInfo:
    """moby ``CopyInfoDestinationPath``: the local destination, symlinks at its end followed;
    it may be missing, but then its parent must be a directory."""
    original = path
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _go_error("lstat", path, exc) from None
    links = 0
    while st is not None and stat.S_ISLNK(st.st_mode):
        links += 1
        if links > _MAX_DEST_LINKS:
            raise StatusError(1, f"too many symlinks in {original}")
        target = os.readlink(path)
        if not target.startswith("/"):
            parent, _ = split_path_dir_entry(path)
            target = go_clean(f"{parent}/{target}")
        path = target
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
    if st is not None:
        return CopyInfo(path, exists=True, is_dir=stat.S_ISDIR(st.st_mode))
    parent, _ = split_path_dir_entry(path)
    try:
        parent_st = os.stat(parent)
    except OSError as exc:
        raise _go_error("stat", parent, exc) from None
    if not stat.S_ISDIR(parent_st.st_mode):
        raise StatusError(1, "not a directory")
    return CopyInfo(path)


def _source_info(path: str, follow_link: bool) -> CopyInfo:
    """moby ``CopyInfoSourcePath``: the local source, with the links before its last element
    resolved (all of them with ``-L``)."""
    if follow_link:
        resolved, rebase = get_rebase_name(path, _eval_symlinks(path))
    else:
        cut = path.rfind("/") + 1
        resolved = _eval_symlinks(path[:cut] or ".").rstrip("/") + "/" + path[cut:]
        rebase = ""
        if path.endswith("/") and go_base(path) != go_base(resolved):
            rebase = go_base(path)
    try:
        st = os.lstat(resolved)
    except OSError as exc:
        raise _go_error("lstat", resolved, exc) from None
    return CopyInfo(resolved, exists=True, is_dir=stat.S_ISDIR(st.st_mode), rebase_name=rebase)


# ---- from a container -------------------------------------------------------------------


class _Counter(io.RawIOBase):
    """The download as a file, counting its bytes (docker's "copied" size)."""

    def __init__(self, stream: StreamResponse) -> None:
        super().__init__()
        self._stream = stream
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        self.total += len(data)
        return len(data)


def _from_container(
    client: Client, container: str, src: str, dst: str, follow_link: bool, quiet: bool
) -> None:
    from dockyard.client.archive_api import copy_from_container, stat_path

    if dst != "-":
        dst = _resolve_local(dst)
    _validate_output_path(dst)
    rebase = ""
    if follow_link:
        try:
            info: PathStat | None = stat_path(client, container, src)
        except DockyardError:
            info = None
        if info is not None and info.is_symlink:
            target = info.link_target
            if not target.startswith("/"):
                parent, _ = split_path_dir_entry(src)
                target = go_clean(f"{parent}/{target}")
            src, rebase = get_rebase_name(src, target)
    stream, info = copy_from_container(client, container, src)
    with stream:
        if dst == "-":
            out = sys.stdout.buffer
            while data := stream.read(_CHUNK):
                out.write(data)
            out.flush()
            return
        src_info = CopyInfo(src, exists=True, is_dir=info.is_dir, rebase_name=rebase)
        renames: list[tuple[str, str]] = []
        if rebase:
            renames.append((split_path_dir_entry(src)[1], rebase))
        counter = _Counter(stream)
        error: StatusError | DockyardError | None = None
        try:
            _copy_to_local(io.BufferedReader(counter, _CHUNK), src_info, dst, renames)
        except (StatusError, DockyardError) as exc:
            error = exc
        if not quiet:
            _summary(counter.total, dst)
        if error is not None:
            raise error


def _copy_to_local(
    content: BinaryIO, src_info: CopyInfo, dst: str, renames: list[tuple[str, str]]
) -> None:
    """moby ``CopyTo``: extract into the destination's directory, renamed as the table says."""
    dst_info = _destination_info(dst)
    dst_dir, rename = prepare_archive_copy(src_info, dst_info)
    if rename is not None:
        renames.append(rename)
    try:
        fd = os.open(dst_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise _go_error("open", dst_dir, exc) from None
    try:
        options = ExtractOptions(
            no_overwrite_dir_non_dir=True,
            lchown=False,
            follow_symlinks=False,
            renames=tuple(renames),
        )
        extract(Root(fd), (), content, options, shown=go_clean(dst_dir))
    finally:
        os.close(fd)


def _summary(size: int, where: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"Successfully copied {human_size(size, 3)} to {where}\n")
    sys.stderr.flush()


# ---- to a container ---------------------------------------------------------------------


def _to_container(
    client: Client,
    container: str,
    src: str,
    dst: str,
    follow_link: bool,
    archive: bool,
    quiet: bool,
) -> None:
    from dockyard.client.archive_api import copy_to_container, stat_path

    if src != "-":
        src = _resolve_local(src)
    dst_info = CopyInfo(dst)
    info: PathStat | None
    try:
        info = stat_path(client, container, dst)
    except DockyardError:
        info = None
    if info is not None and info.is_symlink:
        target = info.link_target
        if not target.startswith("/"):
            parent, _ = split_path_dir_entry(dst)
            target = go_clean(f"{parent}/{target}")
        dst_info = CopyInfo(target)
        try:
            info = stat_path(client, container, target)
        except DockyardError:
            info = None
    if info is not None:
        problem = _api_mode_problem(info)
        if problem:
            raise StatusError(
                1,
                f'destination "{container}:{dst}" must be a directory or a regular file: {problem}',
            )
        dst_info = CopyInfo(dst_info.path, exists=True, is_dir=info.is_dir)

    sent = 0
    if src == "-":
        if not dst_info.is_dir:
            raise StatusError(1, f'destination "{container}:{dst}" must be a directory')
        copy_to_container(client, container, dst_info.path, _read_stdin(), copy_uid_gid=archive)
    else:
        src_info = _source_info(src, follow_link)
        dst_dir, rename = prepare_archive_copy(src_info, dst_info)
        directory, base = split_path_dir_entry(src_info.path)
        name = rename[1] if rename is not None else (src_info.rebase_name or base)
        with _LocalTar(directory, base, name) as tar:
            copy_to_container(client, container, dst_dir, tar, copy_uid_gid=archive)
            sent = tar.total
    if not quiet:
        _summary(sent, f"{container}:{dst_info.path}")


def _read_stdin() -> Iterator[bytes]:
    fd = sys.stdin.fileno()
    while True:
        data = os.read(fd, _CHUNK)
        if not data:
            return
        yield data


class _LocalTar:
    """docker's ``TarResource`` of a local path, streamed: a thread writes the tar into a
    pipe, iterating gives its bytes. An error while archiving ends the upload and is raised
    on exit."""

    def __init__(self, directory: str, base: str, name: str) -> None:
        self._directory = directory
        self._entry = "." if base in (".", "/") else base
        self._name = name
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._read_fd = -1
        self.total = 0

    def __enter__(self) -> _LocalTar:
        try:
            dir_fd = os.open(self._directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise _go_error("open", self._directory, exc) from None
        read_fd, write_fd = os.pipe()
        self._read_fd = read_fd

        def produce() -> None:
            try:
                with os.fdopen(write_fd, "wb", buffering=_CHUNK) as out:
                    write_entry(dir_fd, self._entry, self._name, out)
            except BrokenPipeError:
                pass
            except BaseException as exc:
                self._error = exc
            finally:
                os.close(dir_fd)

        self._thread = threading.Thread(target=produce, name="cp-tar", daemon=True)
        self._thread.start()
        return self

    def __iter__(self) -> Iterator[bytes]:
        while data := os.read(self._read_fd, _CHUNK):
            self.total += len(data)
            yield data

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            os.close(self._read_fd)
        if self._thread is not None:
            self._thread.join()
        if self._error is not None and exc[0] is None:
            error = self._error
            if isinstance(error, OSError) and error.errno != errno.EPIPE:
                raise _go_error("read", self._directory, error) from None
            raise error
