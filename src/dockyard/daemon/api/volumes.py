"""``/volumes/*``: create, list, inspect, remove, prune (the ``local`` driver)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dockyard import errors
from dockyard.containers.filters import parse_filters
from dockyard.daemon.app import SERVICES_KEY, json_body, json_response
from dockyard.volumes import VolumeService

__all__ = ["add_routes"]


def _volumes(request: web.Request) -> VolumeService:
    service: VolumeService = request.app[SERVICES_KEY].volumes
    return service


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errors.InvalidArgument(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field "
            f"CreateOptions.{key} of type string"
        )
    return value


async def create(request: web.Request) -> web.Response:
    body = await json_body(request, allow_empty=False)
    if not isinstance(body, dict):
        raise errors.InvalidArgument("invalid JSON: the request body must be an object")
    if body.get("ClusterVolumeSpec"):
        raise errors.Unavailable(
            'This node is not a swarm manager. Use "docker swarm init" or "docker swarm '
            'join" to connect this node to swarm and try again.'
        )
    volume = _volumes(request).create(
        _string(body, "Name"),
        _string(body, "Driver"),
        body.get("DriverOpts"),
        body.get("Labels"),
    )
    return json_response(volume.to_api(), status=201)


async def list_volumes(request: web.Request) -> web.Response:
    filters = parse_filters(request.query.get("filters"))
    volumes = _volumes(request).list_volumes(filters)
    return json_response({"Volumes": [v.to_api() for v in volumes], "Warnings": None})


async def inspect(request: web.Request) -> web.Response:
    return json_response(_volumes(request).get(request.match_info["name"]).to_api())


async def remove(request: web.Request) -> web.Response:
    force = request.query.get("force", "").lower() in ("1", "true", "yes")
    _volumes(request).remove(request.match_info["name"], force=force)
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    filters = parse_filters(request.query.get("filters"))
    deleted, reclaimed = _volumes(request).prune(filters)
    return json_response({"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/volumes", list_volumes)
    app.router.add_post("/volumes/create", create)
    app.router.add_post("/volumes/prune", prune)
    app.router.add_get("/volumes/{name}", inspect)
    app.router.add_delete("/volumes/{name}", remove)
