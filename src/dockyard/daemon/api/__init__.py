"""Engine API handlers, one module per resource."""

from collections.abc import Callable

from aiohttp import web

from dockyard.daemon.api import (
    archive,
    build,
    container_ops,
    containers,
    distribution,
    events,
    exec,
    images,
    networks,
    system,
    volumes,
)

ROUTES: list[Callable[[web.Application], None]] = [
    system.add_routes,
    build.add_routes,
    images.add_routes,
    containers.add_routes,
    container_ops.add_routes,
    exec.add_routes,
    events.add_routes,
    distribution.add_routes,
    networks.add_routes,
    volumes.add_routes,
    archive.add_routes,
]

__all__ = ["ROUTES"]
