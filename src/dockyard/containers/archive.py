"""``docker cp`` inside the daemon: a container's files as its processes see them, for the
archive endpoints (``HEAD``/``GET``/``PUT /containers/{id}/archive``).

A `ContainerView` is one thread with a mount namespace of its own (moby's
``openContainerFS``): in it the container's rootfs is mounted on a scratch directory — the
running container's merged overlay bound there, or a stopped container's snapshot mounted
afresh — and its volumes and binds on their destinations, resolved inside that rootfs. The
mounts exist only in that thread's namespace: nothing is seen by the host or the container,
and everything is gone when the thread ends, also if the daemon dies. Jobs (`submit`) run
in that thread one at a time, on the view's root directory fd (`dockyard.archive.rooted`):
every path is resolved as if the rootfs were ``/``, so neither ``..``, absolute names nor
symlinks — in the image, planted by the running container, or created by the tar being
extracted — reach anything outside the container's own tree. Read-only volumes and binds,
and the rootfs of a ``--read-only`` container, are mounted read-only in the view, so the
kernel refuses writes to them whatever path an entry takes.

`stat`, `archive` and `extract` add dockerd's rules and words: ``Could not find the file
PATH in container NAME`` (404), ``extraction point is not a directory`` (400), ``mounted
volume is marked read-only`` / ``container rootfs is marked read-only`` (403, as the API
reference documents), ``bad parameter: pathcannot be empty`` (dockerd's own typo, 400).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import queue
import stat as _stat
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from dockyard import errors
from dockyard.archive.rooted import (
    ExtractOptions,
    Resource,
    Root,
    absolute,
    stat_path,
    write_archive,
)
from dockyard.archive.rooted import extract as extract_tar
from dockyard.containers.mounts import ViewMount
from dockyard.containers.record import ContainerRecord
from dockyard.containers.users import resolve_user
from dockyard.mount import Mount, bind_mount, mount_all, private_mount_namespace

__all__ = [
    "ContainerView",
    "FilesystemSpec",
    "archive",
    "check_path",
    "extract",
    "filesystem_spec",
    "stat",
]

_T = TypeVar("_T")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class FilesystemSpec:
    """What a view of one container is made of (from ``ContainerService.filesystem``)."""

    container_id: str
    rootfs: tuple[Mount, ...]  # mounted in order on the view's root
    mounts: tuple[ViewMount, ...] = ()  # parents before children
    readonly_rootfs: bool = False
    user: str = ""  # Config.User, for copyUIDGID
    scratch: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))


_NETWORK_FILES = ("hostname", "hosts", "resolv.conf")


def filesystem_spec(
    record: ContainerRecord,
    bundle: Path,
    *,
    live_rootfs: Path | None,
    snapshot: tuple[Mount, ...],
    mounts: list[ViewMount],
) -> FilesystemSpec:
    """The view of a container: its running rootfs bound (``live_rootfs``) or its snapshot
    mounted, its volumes and binds, and the ``/etc`` files the daemon writes for it (dockerd
    shows those too), writable unless the rootfs is read-only."""
    readonly = bool(record.host_config.get("ReadonlyRootfs"))
    rootfs = (Mount("bind", str(live_rootfs), ("bind",)),) if live_rootfs else snapshot
    etc = [
        ViewMount(f"/etc/{name}", not readonly, source=str(bundle / name), is_dir=False)
        for name in _NETWORK_FILES
        if (bundle / name).is_file()
    ]
    taken = {vm.destination for vm in mounts}
    return FilesystemSpec(
        container_id=record.id,
        rootfs=rootfs,
        mounts=tuple(
            sorted(
                [*(vm for vm in etc if vm.destination not in taken), *mounts],
                key=lambda vm: len(vm.destination.strip("/").split("/")),
            )
        ),
        readonly_rootfs=readonly,
        user=str(record.config.get("User") or ""),
        scratch=bundle,
    )


@dataclass
class _Job:
    fn: Callable[[], Any]
    future: concurrent.futures.Future[Any]


class ContainerView:
    """The container's filesystem in a private mount namespace; see the module doc.

    Lifecycle: `start` (blocks until mounted; raises what mounting raised), any number of
    `submit`, then `close` (waits for the jobs, ends the thread: the namespace and its
    mounts go with it). Not reusable.
    """

    def __init__(self, spec: FilesystemSpec) -> None:
        self.spec = spec
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._ready: concurrent.futures.Future[Root] = concurrent.futures.Future()
        self._target = Path(tempfile.mkdtemp(dir=spec.scratch, prefix=".cp-"))
        self._thread = threading.Thread(
            target=self._run, name=f"cp-{spec.container_id[:12]}", daemon=True
        )
        self.mount_points: list[tuple[tuple[str, ...], bool]] = []  # canonical dest, rw
        self.root: Root | None = None

    def start(self) -> Root:
        self._thread.start()
        try:
            self.root = self._ready.result()
        except BaseException:
            self.close()
            raise
        return self.root

    def submit(self, fn: Callable[[], _T]) -> concurrent.futures.Future[_T]:
        """Run ``fn`` in the view's thread (after the jobs before it)."""
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        self._jobs.put(_Job(fn, future))
        return future

    def close(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        with contextlib.suppress(OSError):
            self._target.rmdir()

    # ---- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        root_fd = -1
        try:
            private_mount_namespace()
            root_fd = self._assemble()
        except BaseException as exc:
            self._ready.set_exception(_as_engine_error(exc))
            if root_fd >= 0:
                os.close(root_fd)
            return
        self._ready.set_result(Root(root_fd))
        try:
            while (job := self._jobs.get()) is not None:
                if not job.future.set_running_or_notify_cancel():
                    continue
                try:
                    job.future.set_result(job.fn())
                except BaseException as exc:
                    job.future.set_exception(exc)
        finally:
            os.close(root_fd)

    def _assemble(self) -> int:
        """Mount the rootfs, then each volume and bind on its destination resolved in it."""
        spec = self.spec
        target = self._target
        mount_all(spec.rootfs, target)
        fd = os.open(target, _DIR_FLAGS)
        root = Root(fd)
        try:
            for vm in spec.mounts:
                parts = root.resolve(vm.destination, follow_last=True)
                if not parts:
                    continue  # resolves to the root: never mounted there (as at start)
                is_dir = vm.fresh is not None or vm.is_dir
                point = _mount_point(root, parts, is_dir=is_dir)
                try:
                    where = Path(f"/proc/self/fd/{point}")
                    if vm.fresh is not None:
                        options = vm.fresh.options + (() if vm.rw else ("ro",))
                        mount_all([Mount(vm.fresh.type, vm.fresh.source, options)], where)
                    else:
                        bind_mount(vm.source, where, recursive=vm.recursive, readonly=not vm.rw)
                finally:
                    os.close(point)
                self.mount_points.append((parts, vm.rw))
            if spec.readonly_rootfs:  # a read-only copy of the whole tree on top
                bind_mount(str(target), target, recursive=True, readonly=True)
                os.close(fd)
                fd = os.open(target, _DIR_FLAGS)  # the read-only mount now on top
        except BaseException:
            os.close(fd)
            raise
        return fd


def _mount_point(root: Root, parts: tuple[str, ...], *, is_dir: bool) -> int:
    """An O_PATH fd of the mount point ``parts`` (made if missing, as dockerd makes it)."""
    parent = root.open_dir(parts[:-1], create=True)
    try:
        name = parts[-1]
        try:
            st = os.lstat(name, dir_fd=parent)
        except FileNotFoundError:
            if is_dir:
                os.mkdir(name, 0o755, dir_fd=parent)
            else:
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755, dir_fd=parent))
            st = os.lstat(name, dir_fd=parent)
        if _stat.S_ISDIR(st.st_mode) != is_dir or _stat.S_ISLNK(st.st_mode):
            raise errors.SystemError(
                f"cannot mount on /{'/'.join(parts)}: it is not a {'directory' if is_dir else 'file'}"
            )
        fd = os.open(name, _PATH_FLAGS, dir_fd=parent)
        mode = os.fstat(fd).st_mode
        if not (_stat.S_ISDIR(mode) if is_dir else _stat.S_ISREG(mode)):  # swapped meanwhile
            os.close(fd)
            raise errors.SystemError(f"cannot mount on /{'/'.join(parts)}: it changed")
        return fd
    finally:
        os.close(parent)


def _as_engine_error(exc: BaseException) -> BaseException:
    if isinstance(exc, errors.DockyardError) or not isinstance(exc, OSError):
        return exc
    return errors.SystemError(f"mounting the container's filesystem: {exc.strerror or exc}")


# ---- the endpoints' operations (run in the view's thread) -----------------------------------


def check_path(path: str | None) -> str:
    """dockerd's ``ArchiveFormValues``: the ``path`` parameter must be given."""
    if not path:
        raise errors.InvalidArgument("bad parameter: pathcannot be empty")
    if "\x00" in path:
        raise errors.InvalidArgument(f"invalid path {path!r}: it contains a NUL byte")
    return path


def _not_found(path: str, name: str) -> errors.NotFound:
    return errors.NotFound(f"Could not find the file {path} in container {name}")


def stat(root: Root, path: str, name: str) -> Resource:
    """``HEAD``: the path's stat. ``name`` is the container as the client named it."""
    try:
        return stat_path(root, path)
    except errors.NotFound:
        raise _not_found(path, name) from None


def archive(root: Root, resource: Resource, out: BinaryIO) -> None:
    """``GET``: the tar of a path `stat` found; ``out`` is closed at the end."""
    try:
        write_archive(root, resource, out)
    finally:
        with contextlib.suppress(OSError):
            out.close()


def extract(
    view: ContainerView,
    root: Root,
    path: str,
    stream: BinaryIO,
    *,
    name: str,
    no_overwrite_dir_non_dir: bool,
    copy_uid_gid: bool,
) -> None:
    """``PUT``: unpack the tar in ``stream`` into directory ``path`` of the container."""
    abs_path = absolute(path)
    try:
        parts = root.resolve(abs_path, follow_last=True)
        st = root.lstat(parts)
    except FileNotFoundError:
        raise _not_found(path, name) from None
    except OSError as exc:
        raise errors.SystemError(f"lstat {abs_path}: {exc.strerror or exc}") from None
    if not _stat.S_ISDIR(st.st_mode):
        raise errors.InvalidArgument("extraction point is not a directory")
    in_volume = _mount_of(view, parts)
    if in_volume is not None and not in_volume:
        raise errors.Forbidden("mounted volume is marked read-only")
    if in_volume is None and view.spec.readonly_rootfs:
        raise errors.Forbidden("container rootfs is marked read-only")
    chown = None
    if copy_uid_gid and view.spec.user:
        uid, gid, _ = resolve_user(Path(f"/proc/self/fd/{root.fd}"), view.spec.user)
        chown = (uid, gid)
    options = ExtractOptions(no_overwrite_dir_non_dir=no_overwrite_dir_non_dir, chown=chown)
    try:
        extract_tar(root, parts, stream, options, shown="/" + "/".join(parts))
    except errors.NotFound:
        raise _not_found(path, name) from None


def _mount_of(view: ContainerView, parts: tuple[str, ...]) -> bool | None:
    """Whether the deepest volume or bind holding ``parts`` is writable; None: in none."""
    best: tuple[int, bool] | None = None
    for dest, rw in view.mount_points:
        if parts[: len(dest)] == dest and (best is None or len(dest) > best[0]):
            best = (len(dest), rw)
    return None if best is None else best[1]
