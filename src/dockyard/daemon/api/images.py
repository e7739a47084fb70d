"""``/images/*``: list, inspect, load, save, tag, delete (pulling arrives with the registry client)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
from typing import Any

from aiohttp import web

from dockyard import errors
from dockyard.containers.filters import parse_filters
from dockyard.daemon.app import SERVICES_KEY, json_response
from dockyard.daemon.services import Services
from dockyard.daemon.streams import JsonStream

__all__ = ["add_routes"]


def _services(request: web.Request) -> Services:
    services: Services = request.app[SERVICES_KEY]
    return services


def _bool(request: web.Request, key: str) -> bool:
    return request.query.get(key, "") in ("1", "true", "True", "yes")


async def list_images(request: web.Request) -> web.Response:
    s = _services(request)
    filters = parse_filters(request.query.get("filters"))
    images = s.images.list(all=_bool(request, "all"), filters=filters)
    return json_response(images)


async def inspect_image(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    s = _services(request)
    try:
        return json_response(s.images.inspect(name))
    except errors.NotFound as exc:
        raise errors.NotFound(f"no such image: {name}: {exc.message}") from None


async def load_images(request: web.Request) -> web.StreamResponse:
    """Receive the whole upload first (like dockerd), then load it in a worker thread."""
    s = _services(request)
    quiet = _bool(request, "quiet")
    tmp_dir = s.config.data_root / "tmp"
    tmp_dir.mkdir(exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="load-")
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.content.iter_chunked(1 << 20):
                f.write(chunk)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def progress(message: dict[str, Any]) -> None:
            if not quiet:
                loop.call_soon_threadsafe(queue.put_nowait, message)

        result: dict[str, Any] = {}

        def work() -> None:
            try:
                with open(tmp_name, "rb") as src:
                    result["loaded"] = s.images.load(src, progress=progress)
            except BaseException as exc:  # delivered to the event loop below
                result["error"] = exc
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=work, name="image-load", daemon=True).start()
        stream = JsonStream(request)
        first = await queue.get()
        if first is None and "error" in result:
            err = result["error"]
            if isinstance(err, errors.DockyardError):
                raise err
            raise errors.InvalidArgument(f"failed to load image: {err}")
        message = first
        while message is not None:
            await stream.send(message)
            message = await queue.get()
        if "error" in result:
            err = result["error"]
            await stream.error(err.message if isinstance(err, errors.DockyardError) else str(err))
        else:
            for line in result.get("loaded", []):
                await stream.send({"stream": line.rstrip("\n") + "\n"})
        return await stream.finish()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


async def _save(request: web.Request, names: list[str]) -> web.StreamResponse:
    s = _services(request)
    for name in names:
        s.images.resolve(name)  # 404 before any byte is sent
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=16)

    class _Writer:
        def write(self, data: bytes) -> int:
            asyncio.run_coroutine_threadsafe(queue.put(bytes(data)), loop).result()
            return len(data)

        def flush(self) -> None:
            pass

    def work() -> None:
        try:
            s.images.save(names, _Writer())  # type: ignore[arg-type]
        finally:
            asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

    thread = threading.Thread(target=work, name="image-save", daemon=True)
    thread.start()
    while True:
        chunk = await queue.get()
        if chunk is None:
            break
        await response.write(chunk)
    await response.write_eof()
    return response


async def save_images(request: web.Request) -> web.StreamResponse:
    names = request.query.getall("names", [])
    if not names:
        raise errors.InvalidArgument("no images given to save")
    return await _save(request, names)


async def save_image(request: web.Request) -> web.StreamResponse:
    return await _save(request, [request.match_info["name"]])


async def tag_image(request: web.Request) -> web.Response:
    s = _services(request)
    repo = request.query.get("repo", "")
    tag = request.query.get("tag") or None
    if not repo:
        raise errors.InvalidArgument("repository name must have at least one component")
    s.images.tag(request.match_info["name"], repo, tag)
    return web.Response(status=201)


async def delete_image(request: web.Request) -> web.Response:
    s = _services(request)
    name = request.match_info["name"]
    items = s.images.delete(
        name,
        force=_bool(request, "force"),
        prune=not _bool(request, "noprune"),
        users=s.containers.users_of_image,
        running=s.containers.running_users_of_image,
    )
    return json_response(items)


async def prune_images(request: web.Request) -> web.Response:
    """``POST /images/prune``; the build cache's parent links stand for moby's image parents."""
    from dockyard.build.cache import BuildCache

    s = _services(request)
    filters = parse_filters(request.query.get("filters"))
    parents = {str(e["image_id"]): str(e["parent"]) for e in BuildCache(s.db).entries()}
    # Deleting layers takes time: a worker thread, with the containers' images read here.
    users: dict[str, list[str]] = {}
    running: dict[str, list[str]] = {}
    for row in s.containers.list_all(all=True, limit=0, size=False, filters={}):
        users.setdefault(row["ImageID"], []).append(row["Id"])
        if row["State"] in ("running", "paused", "restarting"):
            running.setdefault(row["ImageID"], []).append(row["Id"])
    report = await asyncio.to_thread(
        s.images.prune,
        filters,
        users=lambda image_id: users.get(image_id, []),
        running=lambda image_id: running.get(image_id, []),
        parents=parents,
    )
    return json_response(report)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/images/json", list_images)
    r.add_post("/images/prune", prune_images)
    r.add_post("/images/load", load_images)
    r.add_get("/images/get", save_images)
    r.add_get("/images/{name:.+}/json", inspect_image)
    r.add_get("/images/{name:.+}/get", save_image)
    r.add_post("/images/{name:.+}/tag", tag_image)
    r.add_delete("/images/{name:.+}", delete_image)
