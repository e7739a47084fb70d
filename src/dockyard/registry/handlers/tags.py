"""``GET /v2/<name>/tags/list`` with ``n``/``last`` pagination and a ``Link`` header."""

from __future__ import annotations

from aiohttp import web

from dockyard.registry.access import Access
from dockyard.registry.handlers.base import authorize, paginate, repository, repository_name

__all__ = ["list_tags"]


async def list_tags(request: web.Request) -> web.Response:
    name = repository_name(request)
    await authorize(request, [Access.repository(name, "pull")])
    tags = await repository(request, name).list_tags()  # RepositoryUnknown → NAME_UNKNOWN
    # without n every tag comes back, as every registry does and clients expect
    page, headers = paginate(request, tags, f"/v2/{name}/tags/list", default_page=None)
    return web.json_response({"name": name, "tags": page}, headers=headers)
