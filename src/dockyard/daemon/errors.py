"""The one table from engine errors to HTTP: status codes and Docker's ``{"message": …}`` body."""

from __future__ import annotations

import json

from aiohttp import web

from dockyard import errors

__all__ = ["STATUS", "error_response", "status_for"]

STATUS: list[tuple[type[errors.DockyardError], int]] = [
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.InvalidArgument, 400),
    (errors.Forbidden, 403),
    (errors.Unauthorized, 401),
    (errors.NotModified, 304),
    (errors.Unavailable, 503),
    (errors.Unsupported, 501),
    (errors.SystemError, 500),
]


def status_for(exc: errors.DockyardError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(status: int, message: str) -> web.Response:
    """A Docker error body; the docker CLI only decodes it when Content-Type is exactly JSON."""
    if status == 304:
        return web.Response(status=304)
    body = json.dumps({"message": message}).encode() + b"\n"
    return web.Response(status=status, body=body, content_type="application/json")
