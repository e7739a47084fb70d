"""``GET /v2/`` (the version check) and ``GET /v2/_catalog`` (paginated repository list)."""

from __future__ import annotations

from aiohttp import web

from dockyard.registry.access import Access
from dockyard.registry.handlers.base import authorize, paginate, state

__all__ = ["catalog", "version_check"]


async def version_check(request: web.Request) -> web.Response:
    """200 ``{}``: this is an OCI distribution registry (and the credentials work)."""
    await authorize(request, [])
    return web.json_response({})


async def catalog(request: web.Request) -> web.Response:
    await authorize(request, [Access("registry", "catalog", frozenset({"*"}))])
    names = await state(request).registry.repositories()
    page, headers = paginate(request, names, "/v2/_catalog")
    return web.json_response({"repositories": page}, headers=headers)
