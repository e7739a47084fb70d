"""``/containers/{id}/``: pause, unpause, rename, top, changes, stats.

The views (top, changes, stats) go through ``containers.ops.ContainerOps``, made per request
from the daemon's services: it holds no state, and building it costs nothing.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from dockyard.containers.ops import ContainerOps
from dockyard.containers.service import ContainerService
from dockyard.daemon.app import SERVICES_KEY, json_response

__all__ = ["add_routes"]


def _containers(request: web.Request) -> ContainerService:
    service: ContainerService = request.app[SERVICES_KEY].containers
    return service


def _ops(request: web.Request) -> ContainerOps:
    services = request.app[SERVICES_KEY]
    return ContainerOps(services.containers, services.runtime, services.snapshots)


def _bool(request: web.Request, key: str, default: bool) -> bool:
    """moby's ``BoolValueOrDefault``: absent or empty → default; "0/no/false/none" → false."""
    value = request.query.get(key, "")
    if value == "":
        return default
    return value.strip().lower() not in ("0", "no", "false", "none")


async def pause(request: web.Request) -> web.Response:
    await _containers(request).pause(request.match_info["id"])
    return web.Response(status=204)


async def unpause(request: web.Request) -> web.Response:
    await _containers(request).unpause(request.match_info["id"])
    return web.Response(status=204)


async def rename(request: web.Request) -> web.Response:
    await _containers(request).rename(request.match_info["id"], request.query.get("name", ""))
    return web.Response(status=204)


async def top(request: web.Request) -> web.Response:
    result = await _ops(request).top(request.match_info["id"], request.query.get("ps_args", ""))
    return json_response(result)


async def changes(request: web.Request) -> web.Response:
    return json_response(await _ops(request).changes(request.match_info["id"]))


async def stats(request: web.Request) -> web.StreamResponse:
    """One JSON object per line; with ``stream`` (the default) one per second until the
    client goes away or the container is removed."""
    stream = _bool(request, "stream", True)
    frames = _ops(request).stats(
        request.match_info["id"], stream=stream, one_shot=_bool(request, "one-shot", False)
    )
    if not stream:
        body = [frame async for frame in frames]
        return json_response(body[0] if body else None)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async for frame in frames:
            await response.write(json.dumps(frame).encode() + b"\n")
    except (ConnectionResetError, asyncio.CancelledError):
        await frames.aclose()
        raise
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/containers/{id}/pause", pause)
    r.add_post("/containers/{id}/unpause", unpause)
    r.add_post("/containers/{id}/rename", rename)
    r.add_get("/containers/{id}/top", top)
    r.add_get("/containers/{id}/changes", changes)
    r.add_get("/containers/{id}/stats", stats)
