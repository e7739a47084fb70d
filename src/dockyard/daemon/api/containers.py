"""``/containers/*``: create, list, inspect, start, stop, kill, restart, wait, attach, logs, rm, prune."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from aiohttp import web

from dockyard import errors
from dockyard.containers.filters import parse_filters, parse_time
from dockyard.containers.service import ContainerService
from dockyard.daemon.app import SERVICES_KEY, json_body, json_response
from dockyard.daemon.relay import relay_attach
from dockyard.daemon.streams import frame, hijack
from dockyard.logs import format_timestamp

__all__ = ["add_routes"]

log = logging.getLogger(__name__)

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"


def _containers(request: web.Request) -> ContainerService:
    service: ContainerService = request.app[SERVICES_KEY].containers
    return service


def _bool(request: web.Request, key: str, default: bool = False) -> bool:
    value = request.query.get(key)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes")


def _int(request: web.Request, key: str, default: int | None = None) -> int | None:
    value = request.query.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise errors.InvalidArgument(f"invalid value for {key}: {value}") from None


async def create(request: web.Request) -> web.Response:
    body = await json_body(request, allow_empty=False)
    if not isinstance(body, dict):
        raise errors.InvalidArgument("invalid JSON: the request body must be an object")
    cid, warnings = _containers(request).create(body, request.query.get("name") or None)
    return json_response({"Id": cid, "Warnings": warnings}, status=201)


async def list_containers(request: web.Request) -> web.Response:
    return json_response(
        _containers(request).list_all(
            all=_bool(request, "all"),
            limit=_int(request, "limit", -1) or -1,
            size=_bool(request, "size"),
            filters=parse_filters(request.query.get("filters")),
        )
    )


async def inspect(request: web.Request) -> web.Response:
    return json_response(
        _containers(request).inspect(request.match_info["id"], size=_bool(request, "size"))
    )


async def start(request: web.Request) -> web.Response:
    await _containers(request).start(request.match_info["id"])
    return web.Response(status=204)


async def stop(request: web.Request) -> web.Response:
    await _containers(request).stop(
        request.match_info["id"], _int(request, "t"), request.query.get("signal") or None
    )
    return web.Response(status=204)


async def kill(request: web.Request) -> web.Response:
    await _containers(request).kill(request.match_info["id"], request.query.get("signal") or None)
    return web.Response(status=204)


async def restart(request: web.Request) -> web.Response:
    await _containers(request).restart(
        request.match_info["id"], _int(request, "t"), request.query.get("signal") or None
    )
    return web.Response(status=204)


async def update(request: web.Request) -> web.Response:
    body = await json_body(request, allow_empty=True)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise errors.InvalidArgument("invalid JSON: the request body must be an object")
    warnings = await _containers(request).update(request.match_info["id"], body)
    return json_response({"Warnings": warnings})


async def wait(request: web.Request) -> web.StreamResponse:
    """Headers go out at once (the docker CLI waits for them before it sends start)."""
    service = _containers(request)
    fut = service.wait_future(request.match_info["id"], request.query.get("condition", ""))
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        code = await fut
    except asyncio.CancelledError:
        fut.cancel()
        raise
    with contextlib.suppress(ConnectionResetError):
        await response.write(json.dumps({"Error": None, "StatusCode": code}).encode() + b"\n")
        await response.write_eof()
    return response


async def attach(request: web.Request) -> web.StreamResponse:
    service = _containers(request)
    record = service.get(request.match_info["id"])
    tty = bool(record.config.get("Tty"))
    want_stdin = _bool(request, "stdin")
    want_stdout = _bool(request, "stdout")
    want_stderr = _bool(request, "stderr")
    conn = await hijack(request, RAW if tty else MULTIPLEXED)
    try:
        log_type = (record.host_config.get("LogConfig") or {}).get("Type")
        if _bool(request, "logs") and log_type != "none":
            async for entry in service.logs(
                record.id,
                stdout=want_stdout,
                stderr=want_stderr,
                follow=False,
                tail=-1,
                since_ns=0,
                until_ns=0,
            ):
                conn.write(entry.data if tty else frame(entry.stream, entry.data))
        if _bool(request, "stream", default=not _bool(request, "logs")):
            stream_task = asyncio.ensure_future(service.attach_stream(record.id))
            while not stream_task.done():
                await asyncio.wait({stream_task}, timeout=0.5)
                if conn.closing:
                    stream_task.cancel()
                    break
            stream = (
                stream_task.result() if stream_task.done() and not stream_task.cancelled() else None
            )
            if stream is not None:
                await relay_attach(
                    conn,
                    stream,
                    tty=tty,
                    stdin=want_stdin and bool(record.config.get("OpenStdin")),
                    stdout=want_stdout,
                    stderr=want_stderr,
                    close_stdin_on_eof=bool(record.config.get("StdinOnce")),
                )
    finally:
        conn.close()
    return web.Response()


async def resize(request: web.Request) -> web.Response:
    height = _int(request, "h", 0) or 0
    width = _int(request, "w", 0) or 0
    _containers(request).resize(request.match_info["id"], height, width)
    return web.Response(status=200)


def _time_param(request: web.Request, key: str) -> int:
    value = request.query.get(key)
    if not value or value == "0":
        return 0
    return int(parse_time(value) * 1e9)


async def logs(request: web.Request) -> web.StreamResponse:
    service = _containers(request)
    record = service.get(request.match_info["id"])
    stdout = _bool(request, "stdout")
    stderr = _bool(request, "stderr")
    if not (stdout or stderr):
        raise errors.InvalidArgument("You must choose at least one stream")
    tail_text = request.query.get("tail", "all")
    try:
        tail = -1 if tail_text in ("", "all") else int(tail_text)
    except ValueError:
        tail = -1
    service.check_logs_readable(record)
    tty = bool(record.config.get("Tty"))
    timestamps = _bool(request, "timestamps")
    response = web.StreamResponse(status=200, headers={"Content-Type": RAW if tty else MULTIPLEXED})
    response.enable_chunked_encoding()
    entries = service.logs(
        record.id,
        stdout=stdout,
        stderr=stderr,
        follow=_bool(request, "follow"),
        tail=tail,
        since_ns=_time_param(request, "since"),
        until_ns=_time_param(request, "until"),
    )
    await response.prepare(request)
    try:
        async for entry in entries:
            data = entry.data
            if timestamps:
                data = format_timestamp(entry.time_ns).encode() + b" " + data
            await response.write(data if tty else frame(entry.stream, data))
    except (ConnectionResetError, asyncio.CancelledError):
        await entries.aclose()
        raise
    await response.write_eof()
    return response


async def remove(request: web.Request) -> web.Response:
    await _containers(request).remove(
        request.match_info["id"], force=_bool(request, "force"), volumes=_bool(request, "v")
    )
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    return json_response(
        await _containers(request).prune(parse_filters(request.query.get("filters")))
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/containers/create", create)
    r.add_get("/containers/json", list_containers)
    r.add_post("/containers/prune", prune)
    r.add_get("/containers/{id}/json", inspect)
    r.add_post("/containers/{id}/start", start)
    r.add_post("/containers/{id}/stop", stop)
    r.add_post("/containers/{id}/kill", kill)
    r.add_post("/containers/{id}/restart", restart)
    r.add_post("/containers/{id}/wait", wait)
    r.add_post("/containers/{id}/update", update)
    r.add_post("/containers/{id}/attach", attach)
    r.add_post("/containers/{id}/resize", resize)
    r.add_get("/containers/{id}/logs", logs)
    r.add_delete("/containers/{id}", remove)
