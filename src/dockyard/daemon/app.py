"""The Engine API application: version prefixes, Docker's headers, and the one error mapping."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from dockyard import __version__, errors
from dockyard.daemon import memory
from dockyard.daemon.errors import error_response, status_for

__all__ = ["API_VERSION", "MIN_API_VERSION", "create_app", "json_body", "json_response"]

API_VERSION = "1.44"
MIN_API_VERSION = "1.24"
_VERSION_PREFIX = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")
SERVICES_KEY: web.AppKey[Any] = web.AppKey("services", object)

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Endpoints that allocate a lot once: give the memory back when they are done.
_HEAVY = ("/images/load", "/images/create", "/build", "/push")


def _version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor)


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON with exactly ``Content-Type: application/json`` (the docker CLI compares it verbatim)."""
    return web.Response(
        status=status, body=json.dumps(data).encode() + b"\n", content_type="application/json"
    )


async def json_body(request: web.Request, *, allow_empty: bool = True) -> Any:
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise errors.InvalidArgument("invalid JSON: the request body is empty")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise errors.InvalidArgument(f"invalid JSON: {exc}") from None


@web.middleware
async def _api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    match = _VERSION_PREFIX.match(request.path)
    if match:
        version = (int(match.group(1)), int(match.group(2)))
        if version > _version_tuple(API_VERSION):
            return error_response(
                400,
                f"client version {match.group(1)}.{match.group(2)} is too new. "
                f"Maximum supported API version is {API_VERSION}",
            )
        if version < _version_tuple(MIN_API_VERSION):
            return web.Response(
                status=400,
                text=f"client version {match.group(1)}.{match.group(2)} is too old. Minimum supported "
                f"API version is {MIN_API_VERSION}, please upgrade your client to a newer version",
            )
        rel = match.group(3)
        if request.query_string:
            rel += "?" + request.query_string
        request = request.clone(rel_url=rel)
        match_info = await request.app.router.resolve(request)
        match_info.add_app(request.app)
        match_info.freeze()
        request._match_info = match_info
        handler = match_info.handler
    try:
        response = await handler(request)
        if request.method == "POST" and request.path.rstrip("/").endswith(_HEAVY):
            memory.release()
        return response
    except errors.DockyardError as exc:
        return error_response(status_for(exc), exc.message)
    except web.HTTPNotFound:
        return error_response(404, "page not found")
    except web.HTTPMethodNotAllowed:
        return error_response(405, "method not allowed")
    except (ConnectionResetError, BrokenPipeError):
        raise
    except web.HTTPException:
        raise
    except Exception as exc:
        log.exception("handler failed: %s %s", request.method, request.path)
        return error_response(500, f"internal error: {exc}")


def experimental(request: web.Request) -> str:
    """``Docker-Experimental``: daemon.json's ``experimental`` as dockerd spells it."""
    config = getattr(request.app[SERVICES_KEY], "config", None)
    return "true" if getattr(config, "experimental", False) else "false"


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Api-Version"] = API_VERSION
    response.headers["Docker-Experimental"] = experimental(request)
    response.headers["Ostype"] = "linux"
    response.headers["Server"] = f"Dockyard/{__version__} (linux)"


def create_app(services: Any, routes: list[Callable[[web.Application], None]]) -> web.Application:
    app = web.Application(middlewares=[_api_middleware], client_max_size=0)
    app[SERVICES_KEY] = services
    app.on_response_prepare.append(_add_headers)
    for add in routes:
        add(app)
    return app
