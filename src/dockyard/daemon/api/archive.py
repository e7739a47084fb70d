"""``/containers/{id}/archive``: ``HEAD`` (path stat), ``GET`` (a tar of a path), ``PUT``
(extract a tar into a directory) — the endpoints of ``docker cp``.

Each request opens a `ContainerView` of the container (see ``containers.archive``) under the
container's lock and runs its file work in the view's thread. Tar bytes cross between that
thread and the event loop through a pipe, read and written with asyncio's pipe transports,
so a slow client or a slow disk never holds a worker of the default executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

from aiohttp import web

from dockyard import errors
from dockyard.archive.copy import STAT_HEADER
from dockyard.archive.rooted import Root
from dockyard.containers.archive import ContainerView, archive, check_path, extract, stat
from dockyard.containers.service import ContainerService
from dockyard.daemon.app import SERVICES_KEY

__all__ = ["add_routes"]

_CHUNK = 1 << 20
_FALSE = {"", "0", "no", "false", "none"}
_T = TypeVar("_T")


def _containers(request: web.Request) -> ContainerService:
    service: ContainerService = request.app[SERVICES_KEY].containers
    return service


def _bool_value(request: web.Request, key: str) -> bool:
    """dockerd's ``httputils.BoolValue``."""
    return request.query.get(key, "").strip().lower() not in _FALSE


@contextlib.asynccontextmanager
async def _view(
    request: web.Request, name: str
) -> AsyncGenerator[tuple[ContainerView, Root], None]:
    async with _containers(request).filesystem(name) as spec:
        view = ContainerView(spec)
        root = await asyncio.to_thread(view.start)
        try:
            yield view, root
        finally:
            await asyncio.shield(asyncio.to_thread(view.close))


def _log_event(request: web.Request, name: str, action: str) -> None:
    """dockerd's ``archive-path`` / ``extract-to-dir`` container events."""
    containers = _containers(request)
    with contextlib.suppress(errors.NotFound):
        containers.emit(containers.get(name), action)


async def _run(view: ContainerView, fn: Callable[[], _T]) -> _T:
    return await asyncio.wrap_future(view.submit(fn))


async def head_archive(request: web.Request) -> web.Response:
    name = request.match_info["id"]
    path = check_path(request.query.get("path"))
    async with _view(request, name) as (view, root):
        resource = await _run(view, lambda: stat(root, path, name))
    return web.Response(status=200, headers={STAT_HEADER: resource.stat.to_header()})


async def get_archive(request: web.Request) -> web.StreamResponse:
    name = request.match_info["id"]
    path = check_path(request.query.get("path"))
    loop = asyncio.get_running_loop()
    async with _view(request, name) as (view, root):
        resource = await _run(view, lambda: stat(root, path, name))
        read_fd, write_fd = os.pipe()
        out = os.fdopen(write_fd, "wb", buffering=_CHUNK)
        pipe = os.fdopen(read_fd, "rb", buffering=0)
        reader = asyncio.StreamReader(limit=_CHUNK)
        try:
            transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), pipe
            )
        except BaseException:
            out.close()
            pipe.close()
            raise
        job = view.submit(lambda: archive(root, resource, out))
        response = web.StreamResponse(
            headers={STAT_HEADER: resource.stat.to_header(), "Content-Type": "application/x-tar"}
        )
        failed = False
        try:
            await response.prepare(request)
            while chunk := await reader.read(_CHUNK):
                await response.write(chunk)
        finally:
            transport.close()  # a writer still busy gets EPIPE and stops
            try:
                await asyncio.wrap_future(job)
            except Exception:
                failed = True
        if failed and request.transport is not None:
            request.transport.close()  # a cut stream, not a short tar that looks complete
            return response
        await response.write_eof()
        _log_event(request, name, "archive-path")
        return response


async def put_archive(request: web.Request) -> web.Response:
    name = request.match_info["id"]
    path = check_path(request.query.get("path"))
    no_overwrite = _bool_value(request, "noOverwriteDirNonDir")
    copy_uid_gid = _bool_value(request, "copyUIDGID")
    loop = asyncio.get_running_loop()
    async with _view(request, name) as (view, root):
        read_fd, write_fd = os.pipe()
        source = os.fdopen(read_fd, "rb", buffering=_CHUNK)

        def work() -> None:
            try:
                extract(
                    view,
                    root,
                    path,
                    source,
                    name=name,
                    no_overwrite_dir_non_dir=no_overwrite,
                    copy_uid_gid=copy_uid_gid,
                )
            finally:
                source.close()  # the uploader sees EPIPE if the tar ended (or failed) early

        pipe = os.fdopen(write_fd, "wb", buffering=0)
        try:
            transport, protocol = await loop.connect_write_pipe(
                lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), pipe
            )
        except BaseException:
            pipe.close()
            source.close()
            raise
        job = view.submit(work)  # after the pipe has its writer: the job can always end
        writer = asyncio.StreamWriter(transport, protocol, None, loop)
        try:
            async for chunk in request.content.iter_chunked(_CHUNK):
                if transport.is_closing():
                    continue  # refused or done early: read the rest, so the client hears why
                writer.write(chunk)
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    await writer.drain()
        finally:
            transport.close()  # end of the upload: EOF for the extraction
        await asyncio.wrap_future(job)
    _log_event(request, name, "extract-to-dir")
    return web.Response(status=200)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_route("HEAD", "/containers/{id}/archive", head_archive)
    r.add_get("/containers/{id}/archive", get_archive, allow_head=False)
    r.add_put("/containers/{id}/archive", put_archive)
