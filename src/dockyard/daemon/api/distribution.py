"""Registry endpoints: ``POST /images/create`` (pull), ``POST /images/{name}/push``, ``POST /auth``,
``GET /distribution/{name}/json``.

Pull errors found before any progress was written (no such manifest, access denied, bad
credentials, registry down) are plain HTTP errors; after the first progress line they are an
``errorDetail`` line in the stream, as dockerd does (the docker CLI shows both the same way).
Push always streams ("The push refers to repository […]" first).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from dockyard import errors
from dockyard.daemon.app import SERVICES_KEY, json_body, json_response
from dockyard.daemon.services import Services
from dockyard.daemon.streams import JsonStream
from dockyard.distribution import AuthConfig
from dockyard.reference import Reference, is_digest, parse

__all__ = ["add_routes"]

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]


def _services(request: web.Request) -> Services:
    services: Services = request.app[SERVICES_KEY]
    return services


def _auth(request: web.Request) -> AuthConfig:
    return AuthConfig.from_header(request.headers.get("X-Registry-Auth"))


def pull_reference(from_image: str, tag: str) -> Reference:
    """moby's postImagesCreate: ``fromImage`` (normalised name, maybe with a tag or digest)
    plus ``tag`` (a tag, or a digest); neither gives ``latest``."""
    ref = parse(from_image, default_tag=False)
    if tag:
        if is_digest(tag):
            ref = Reference(ref.domain, ref.path, None, tag)
        else:
            ref = parse(f"{ref.name}:{tag}", default_tag=False)
    return ref.with_default_tag()


async def _stream_job(
    request: web.Request,
    run: Callable[[Progress], Awaitable[None]],
) -> web.StreamResponse:
    """Run ``run(report)`` while writing what it reports; its error ends the stream as an
    ``errorDetail`` line. ``report`` may be called from any thread. A client that goes away
    cancels the job (which cleans up after itself)."""
    stream = JsonStream(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def report(message: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, message)

    async def work() -> None:
        try:
            await run(report)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    task = asyncio.ensure_future(work())
    try:
        while True:
            item = await queue.get()
            if item is None:
                break
            await stream.send(item)
    except BaseException:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    await asyncio.gather(task, return_exceptions=True)
    exc = task.exception() if not task.cancelled() else None
    if exc is not None:
        if isinstance(exc, errors.DockyardError):
            text = exc.message
        else:
            log.error("registry operation failed", exc_info=exc)
            text = str(exc) or type(exc).__name__
        await stream.error(text)
    return await stream.finish()


async def create_image(request: web.Request) -> web.StreamResponse:
    """``docker pull``, or ``docker import`` when ``fromSrc`` is given."""
    if request.query.get("fromSrc"):
        from dockyard.daemon.api.build import import_image

        return await import_image(request)
    from_image = request.query.get("fromImage", "")
    if not from_image:
        raise errors.InvalidArgument("fromImage or fromSrc must be given")
    ref = pull_reference(from_image, request.query.get("tag", ""))
    s = _services(request)
    job = await s.registries.resolve_pull(
        ref, _auth(request), request.query.get("platform") or None
    )

    async def run(report: Progress) -> None:
        await job.run(report)
        s.images.emit(ref.familiar(), ref.familiar_name, "pull")

    return await _stream_job(request, run)


async def push_image(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    tag = request.query.get("tag", "")
    ref = parse(name, default_tag=False)
    if ref.digest is not None:
        raise errors.InvalidArgument("cannot push a digest reference")
    if tag:
        ref = parse(f"{ref.name}:{tag}", default_tag=False)
    s = _services(request)
    auth = _auth(request)

    async def run(report: Progress) -> None:
        await s.registries.push(ref, auth, report)
        s.images.emit(ref.familiar(), ref.familiar_name, "push")

    return await _stream_job(request, run)


async def login(request: web.Request) -> web.Response:
    body = await json_body(request)
    auth = AuthConfig.from_json(body)
    status, token = await _services(request).registries.login(auth)
    return json_response({"IdentityToken": token, "Status": status})


async def distribution_inspect(request: web.Request) -> web.Response:
    ref = parse(request.match_info["name"])
    info = await _services(request).registries.inspect(ref, _auth(request))
    return json_response(info)


async def _close(app: web.Application) -> None:
    services: Services = app[SERVICES_KEY]
    await services.registries.close()


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/images/create", create_image)
    r.add_post("/images/{name:.+}/push", push_image)
    r.add_post("/auth", login)
    r.add_get("/distribution/{name:.+}/json", distribution_inspect)
    app.on_cleanup.append(_close)
