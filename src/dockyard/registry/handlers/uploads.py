"""Blob uploads: ``POST /v2/<name>/blobs/uploads/`` and the session URL
``/v2/<name>/blobs/uploads/<uuid>`` (``PATCH``, ``PUT``, ``GET``, ``DELETE``).

POST starts a session (202), pushes a whole blob with ``?digest=`` (201), or mounts one with
``?mount=<digest>[&from=<repo>]`` (201; 202 and a fresh session when it cannot). With
``from`` the blob must be in that repository, and the client needs pull on it. Without
``from`` (OCI 1.1 lets the registry look for it) the blob is mounted from the first repository
that has it *and* that the client may pull from -- the authorizer is asked for each candidate,
so a digest alone never leaks content across repositories.

PATCH appends; with ``Content-Range: <start>-<end>`` the chunk must begin where the session
ends (416 with the session's ``Range`` otherwise) and its body must be ``end-start+1`` bytes
long (SIZE_INVALID). PUT ``?digest=`` appends an optional last chunk, verifies and publishes.
"""

from __future__ import annotations

import contextlib
import re

from aiohttp import web

from dockyard.registry import errcode, grammar
from dockyard.registry.access import Access
from dockyard.registry.errcode import RegistryError
from dockyard.registry.handlers.base import (
    authorize,
    blob_location,
    body_chunks,
    parse_digest,
    repository,
    repository_name,
    require_writable,
    state,
    upload_headers,
)
from dockyard.registry.storage import Repository
from dockyard.registry.storage.errors import UploadOffsetMismatch

__all__ = [
    "cancel_upload",
    "finish_upload",
    "parse_content_range",
    "patch_upload",
    "start_upload",
    "upload_status",
]

_CONTENT_RANGE_RE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")


def parse_content_range(header: str | None) -> tuple[int, int] | None:
    """``(start, end)`` inclusive, ``None`` without a header; BLOB_UPLOAD_INVALID when the
    header is malformed, 416 when it is backwards."""
    if header is None or header.strip() == "":
        return None
    m = _CONTENT_RANGE_RE.match(header.strip())
    if m is None:
        raise RegistryError(
            errcode.BLOB_UPLOAD_INVALID,
            f"malformed Content-Range {header!r}: expected <start>-<end>",
        )
    start, end = int(m.group(1)), int(m.group(2))
    if end < start:
        raise RegistryError(errcode.UPLOAD_RANGE_INVALID, f"Content-Range {header!r} is backwards")
    return start, end


def _created(name: str, digest: str) -> web.Response:
    return web.Response(
        status=201,
        headers={"Location": blob_location(name, digest), "Docker-Content-Digest": digest},
    )


def _check_declared_length(request: web.Request, span: tuple[int, int] | None) -> None:
    if span is None or request.content_length is None:
        return
    expected = span[1] - span[0] + 1
    if request.content_length != expected:
        raise RegistryError(
            errcode.SIZE_INVALID,
            f"Content-Range covers {expected} bytes but Content-Length is {request.content_length}",
            detail={"range": expected, "length": request.content_length},
        )


async def _mount(request: web.Request, repo: Repository, digest: str, source: str | None) -> bool:
    registry = state(request).registry
    if source is not None:
        if await registry.repository(source).layers.exists(digest):
            await repo.layers.link(digest)
            return True
        return False
    if await repo.layers.exists(digest):
        return True
    async for candidate in registry.repositories_linking(digest):
        try:
            await authorize(request, [Access.repository(candidate, "pull")])
        except RegistryError:
            continue
        if await registry.blobs.exists(digest):
            await repo.layers.link(digest)
            return True
    return False


async def start_upload(request: web.Request) -> web.Response:
    name = repository_name(request)
    query = request.query
    mount, source = query.get("mount"), query.get("from") or None
    access = [Access.repository(name, "push", "pull")]
    if mount is not None and source is not None:
        if not grammar.is_name(source):
            raise RegistryError(errcode.NAME_INVALID, detail={"name": source})
        access.append(Access.repository(source, "pull"))
    await authorize(request, access)
    require_writable(request)
    repo = repository(request, name)

    if mount is not None:
        digest = parse_digest(mount, "mount")
        if await _mount(request, repo, digest, source):
            return _created(name, digest)

    if query.get("digest") is not None:
        digest = parse_digest(query.get("digest"))
        session = await repo.uploads.create(digest.partition(":")[0])
        try:
            await repo.uploads.finish(session.id, digest, body_chunks(request))
        except BaseException:
            with contextlib.suppress(Exception):
                await repo.uploads.cancel(session.id)
            raise
        return _created(name, digest)

    algorithm = query.get("digest-algorithm") or "sha256"
    if algorithm not in grammar.DIGEST_ALGORITHMS:
        raise RegistryError(
            errcode.DIGEST_INVALID,
            f"unsupported digest algorithm {algorithm!r}",
            detail={"digest-algorithm": algorithm},
        )
    session = await repo.uploads.create(algorithm)
    return web.Response(status=202, headers=upload_headers(name, session.id, 0))


async def patch_upload(request: web.Request) -> web.Response:
    name = repository_name(request)
    upload_id = request.match_info["uuid"]
    await authorize(request, [Access.repository(name, "push", "pull")])
    require_writable(request)
    repo = repository(request, name)
    span = parse_content_range(request.headers.get("Content-Range"))
    _check_declared_length(request, span)
    try:
        size = await repo.uploads.append(
            upload_id, body_chunks(request), start=span[0] if span else None
        )
    except UploadOffsetMismatch as exc:
        raise RegistryError(
            errcode.UPLOAD_RANGE_INVALID,
            str(exc),
            detail={"size": exc.size, "start": exc.start},
            headers=upload_headers(name, upload_id, exc.size),
        ) from None
    if span is not None and size - span[0] != span[1] - span[0] + 1:
        raise RegistryError(
            errcode.SIZE_INVALID,
            f"chunk declared {span[1] - span[0] + 1} bytes, received {size - span[0]}",
            headers=upload_headers(name, upload_id, size),
        )
    return web.Response(status=202, headers=upload_headers(name, upload_id, size))


async def finish_upload(request: web.Request) -> web.Response:
    name = repository_name(request)
    upload_id = request.match_info["uuid"]
    await authorize(request, [Access.repository(name, "push", "pull")])
    require_writable(request)
    repo = repository(request, name)
    digest = parse_digest(request.query.get("digest"))
    span = parse_content_range(request.headers.get("Content-Range"))
    _check_declared_length(request, span)
    body = body_chunks(request) if request.body_exists else None
    try:
        await repo.uploads.finish(
            upload_id, digest, body, start=span[0] if span and body is not None else None
        )
    except UploadOffsetMismatch as exc:
        raise RegistryError(
            errcode.UPLOAD_RANGE_INVALID,
            str(exc),
            detail={"size": exc.size, "start": exc.start},
            headers=upload_headers(name, upload_id, exc.size),
        ) from None
    return _created(name, digest)


async def upload_status(request: web.Request) -> web.Response:
    name = repository_name(request)
    upload_id = request.match_info["uuid"]
    await authorize(request, [Access.repository(name, "push", "pull")])
    status = await repository(request, name).uploads.status(upload_id)
    return web.Response(status=204, headers=upload_headers(name, upload_id, status.size))


async def cancel_upload(request: web.Request) -> web.Response:
    name = repository_name(request)
    upload_id = request.match_info["uuid"]
    await authorize(request, [Access.repository(name, "push", "pull")])
    require_writable(request)
    await repository(request, name).uploads.cancel(upload_id)
    return web.Response(status=204)
