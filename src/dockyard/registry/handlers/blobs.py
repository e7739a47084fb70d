"""``GET``/``HEAD``/``DELETE /v2/<name>/blobs/<digest>``.

GET honours one ``Range`` (RFC 9110 §14): ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` answer
206 with ``Content-Range``; a range that starts past the end answers 416 with
``Content-Range: bytes */<size>``; several ranges, or a header we cannot parse, are ignored
(the full blob, 200), as the RFC allows. ``If-None-Match`` on the digest ETag answers 304.
DELETE unlinks the blob from the repository; its data stays until garbage collection.
"""

from __future__ import annotations

import re

from aiohttp import web

from dockyard.registry import errcode
from dockyard.registry.access import Access
from dockyard.registry.errcode import RegistryError
from dockyard.registry.handlers.base import (
    authorize,
    parse_digest,
    repository,
    repository_name,
    require_deletes,
)

__all__ = ["delete_blob", "get_blob", "parse_range"]

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 1 << 20


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range to serve, ``None`` for the whole blob; raises
    ``RANGE_NOT_SATISFIABLE`` for a range that selects nothing."""
    if not header:
        return None
    m = _RANGE_RE.match(header.strip().replace(" ", ""))
    if m is None:
        return None  # unparseable or several ranges: serve everything
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(size - suffix, 0), size - 1
    start = int(first)
    if last != "" and int(last) < start:
        return None  # syntactically invalid: ignore
    if start >= size:
        raise _unsatisfiable(size)
    end = int(last) if last != "" else size - 1
    return start, min(end, size - 1)


def _unsatisfiable(size: int) -> RegistryError:
    return RegistryError(
        errcode.RANGE_NOT_SATISFIABLE,
        detail={"size": size},
        headers={"Content-Range": f"bytes */{size}"},
    )


async def get_blob(request: web.Request) -> web.StreamResponse:
    name = repository_name(request)
    digest = parse_digest(request.match_info["digest"])
    await authorize(request, [Access.repository(name, "pull")])
    repo = repository(request, name)
    size = await repo.layers.stat(digest)  # BlobUnknown → 404
    etag = f'"{digest}"'
    headers = {
        "Docker-Content-Digest": digest,
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
        "Content-Type": "application/octet-stream",
    }
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers=headers)
    span = parse_range(request.headers.get("Range"), size)
    status = 200
    start, end = 0, size - 1
    if span is not None:
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = end - start + 1
    if request.method == "HEAD":
        await resp.prepare(request)
        await resp.write_eof()
        return resp
    reader = await repo.layers.open(digest, start)
    try:
        await resp.prepare(request)
        remaining = end - start + 1
        while remaining > 0:
            chunk = await reader.read(min(_CHUNK, remaining))
            if not chunk:
                break
            await resp.write(chunk)
            remaining -= len(chunk)
    finally:
        await reader.close()
    await resp.write_eof()
    return resp


async def delete_blob(request: web.Request) -> web.Response:
    name = repository_name(request)
    digest = parse_digest(request.match_info["digest"])
    await authorize(request, [Access.repository(name, "delete")])
    require_deletes(request)
    await repository(request, name).layers.unlink(digest)  # BlobUnknown → 404
    return web.Response(status=202, headers={"Docker-Content-Digest": digest})
