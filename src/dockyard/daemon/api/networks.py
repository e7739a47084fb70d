"""``/networks/*``: list, inspect, create, remove, connect, disconnect, prune."""

from __future__ import annotations

from aiohttp import web

from dockyard import errors
from dockyard.containers.filters import parse_filters
from dockyard.containers.service import ContainerService
from dockyard.daemon.app import SERVICES_KEY, json_body, json_response
from dockyard.networks import NetworkService

__all__ = ["add_routes"]


def _networks(request: web.Request) -> NetworkService:
    service: NetworkService = request.app[SERVICES_KEY].networks
    return service


def _containers(request: web.Request) -> ContainerService:
    service: ContainerService = request.app[SERVICES_KEY].containers
    return service


async def list_networks(request: web.Request) -> web.Response:
    filters = parse_filters(request.query.get("filters"))
    return json_response(_networks(request).list_networks(filters))


async def inspect(request: web.Request) -> web.Response:
    return json_response(_networks(request).inspect(request.match_info["id"]))


async def create(request: web.Request) -> web.Response:
    body = await json_body(request, allow_empty=False)
    if not isinstance(body, dict):
        raise errors.InvalidArgument("invalid JSON: the request body must be an object")
    return json_response(await _networks(request).create(body), status=201)


async def remove(request: web.Request) -> web.Response:
    await _networks(request).remove(request.match_info["id"])
    return web.Response(status=204)


async def connect(request: web.Request) -> web.Response:
    body = await json_body(request, allow_empty=False)
    if not isinstance(body, dict) or not body.get("Container"):
        raise errors.InvalidArgument("container is required")
    network = _networks(request).get(request.match_info["id"])
    await _containers(request).network_connect(
        str(body["Container"]), network["Id"], body.get("EndpointConfig") or {}
    )
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    body = await json_body(request, allow_empty=False)
    if not isinstance(body, dict) or not body.get("Container"):
        raise errors.InvalidArgument("container is required")
    network = _networks(request).get(request.match_info["id"])
    await _containers(request).network_disconnect(
        str(body["Container"]), network["Id"], bool(body.get("Force"))
    )
    return web.Response(status=200)


async def prune(request: web.Request) -> web.Response:
    filters = parse_filters(request.query.get("filters"))
    return json_response(await _networks(request).prune(filters))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/networks", list_networks)
    r.add_get("/networks/", list_networks)
    r.add_post("/networks/create", create)
    r.add_post("/networks/prune", prune)
    r.add_get("/networks/{id}", inspect)
    r.add_delete("/networks/{id}", remove)
    r.add_post("/networks/{id}/connect", connect)
    r.add_post("/networks/{id}/disconnect", disconnect)
