"""``/containers/{id}/exec`` and ``/exec/{id}/*``: create, start (hijacked), resize, inspect."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from dockyard import errors
from dockyard.containers.service import ContainerService
from dockyard.daemon.app import (
    API_VERSION,
    SERVICES_KEY,
    experimental,
    json_body,
    json_response,
)
from dockyard.daemon.relay import relay_attach
from dockyard.daemon.streams import frame, hijack
from dockyard.runtime import OCIRuntimeError

__all__ = ["add_routes"]

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


def _containers(request: web.Request) -> ContainerService:
    service: ContainerService = request.app[SERVICES_KEY].containers
    return service


async def create(request: web.Request) -> web.Response:
    body = await json_body(request, allow_empty=False)
    exec_id = _containers(request).exec_create(request.match_info["id"], body)
    return json_response({"Id": exec_id}, status=201)


def _console_size(body: dict[str, object]) -> tuple[int, int]:
    size = body.get("ConsoleSize")
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size):
        return int(size[0]), int(size[1])
    return 0, 0


async def start(request: web.Request) -> web.StreamResponse:
    service = _containers(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise errors.InvalidArgument("invalid JSON body")
    rec = service.exec_get(request.match_info["id"])
    tty = bool(body.get("Tty", rec.config.get("Tty")))
    height, width = _console_size(body)
    if not height:
        height, width = _console_size(rec.config)
    if body.get("Detach"):
        await service.exec_start(rec.id, tty=tty, height=height, width=width)
        service.spawn(_finish_detached(service, rec.id))
        return web.Response(status=200)
    # Check state before the upgrade so errors are plain HTTP errors.
    service.get(rec.container_id)
    if rec.running or rec.exit_code is not None:
        raise errors.Conflict(f"Error: Exec command {rec.id} has already run")
    conn = await hijack(
        request,
        RAW if tty else MULTIPLEXED,
        {
            "Api-Version": API_VERSION,
            "Docker-Experimental": experimental(request),
            "Ostype": "linux",
        },
    )
    try:
        try:
            await service.exec_start(rec.id, tty=tty, height=height, width=width)
        except (OCIRuntimeError, errors.DockyardError) as exc:
            message = f"OCI runtime exec failed: {exc.message.strip()}: unknown\r\n".encode()
            conn.write(message if tty else frame(1, message))
            return web.Response()
        assert rec.process is not None
        relay = asyncio.ensure_future(
            relay_attach(
                conn,
                rec.process.stream,
                tty=tty,
                stdin=bool(rec.config.get("AttachStdin")),
                stdout=bool(rec.config.get("AttachStdout", True)),
                stderr=bool(rec.config.get("AttachStderr", True)),
            )
        )
        await service.exec_finish(rec)
        # The exit code is recorded; let the last output drain, then close the stream.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(relay), 2)
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await relay
    finally:
        conn.close()
    return web.Response()


async def _finish_detached(service: ContainerService, exec_id: str) -> None:
    rec = service.exec_get(exec_id)
    rec_proc = rec.process
    if rec_proc is None:
        return
    rec_proc.stream.close()
    with contextlib.suppress(Exception):
        await service.exec_finish(rec)


async def resize(request: web.Request) -> web.Response:
    try:
        height = int(request.query.get("h", "0"))
        width = int(request.query.get("w", "0"))
    except ValueError:
        raise errors.InvalidArgument("invalid resize dimensions") from None
    _containers(request).exec_resize(request.match_info["id"], height, width)
    return web.Response(status=200)


async def inspect(request: web.Request) -> web.Response:
    return json_response(_containers(request).exec_get(request.match_info["id"]).inspect())


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/containers/{id}/exec", create)
    r.add_post("/exec/{id}/start", start)
    r.add_post("/exec/{id}/resize", resize)
    r.add_get("/exec/{id}/json", inspect)
