"""``POST /build`` (the legacy builder's JSON-lines stream), ``POST /commit``,
``GET /images/{name}/history``, ``GET /containers/{id}/export`` and ``docker import``
(``POST /images/create?fromSrc=``: the body, or a URL the daemon downloads).

The build context is received whole (as dockerd does) and unpacked into a private
directory; the Dockerfile is parsed before the response starts, so a syntax error is a
plain 400 (``dockerfile parse error line N: …``). Step failures arrive in the stream as
``errorDetail`` (with the RUN's exit code as ``code``), under HTTP 200.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from dockyard import errors
from dockyard.daemon.app import SERVICES_KEY, json_body, json_response
from dockyard.daemon.services import Services
from dockyard.daemon.streams import JsonStream
from dockyard.distribution import AuthConfig
from dockyard.distribution.platforms import parse_platform
from dockyard.oci.descriptor import Platform
from dockyard.reference import Reference, parse

if TYPE_CHECKING:
    from dockyard.build.executor import BuildOptions, Emit, Pull

__all__ = ["add_routes"]

log = logging.getLogger(__name__)


def _services(request: web.Request) -> Services:
    services: Services = request.app[SERVICES_KEY]
    return services


def _bool(request: web.Request, key: str, default: bool = False) -> bool:
    value = request.query.get(key)
    if value is None or value == "":
        return default
    return value in ("1", "true", "True", "yes")


def _json_param(request: web.Request, key: str) -> Any:
    raw = request.query.get(key)
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise errors.InvalidArgument(f"invalid {key} parameter: {exc}") from None


def _options(request: web.Request) -> BuildOptions:
    from dockyard.build.executor import BuildOptions

    q = request.query
    build_args = _json_param(request, "buildargs")
    labels = _json_param(request, "labels")
    cache_from = _json_param(request, "cachefrom") or []
    if not isinstance(build_args, dict) or not isinstance(labels, dict):
        raise errors.InvalidArgument("buildargs and labels must be JSON objects")
    return BuildOptions(
        dockerfile=q.get("dockerfile") or "Dockerfile",
        tags=[t for t in q.getall("t", []) if t],
        build_args={str(k): (None if v is None else str(v)) for k, v in build_args.items()},
        target=q.get("target", ""),
        no_cache=_bool(request, "nocache"),
        pull=_bool(request, "pull"),
        rm=_bool(request, "rm", True),
        force_rm=_bool(request, "forcerm"),
        labels={str(k): str(v) for k, v in labels.items()},
        quiet=_bool(request, "q"),
        network_mode=q.get("networkmode") or "default",
        platform=q.get("platform", ""),
        cache_from=list(cache_from) if isinstance(cache_from, list) else [],
        run_host_config=_run_host_config(request),
    )


def _int_param(request: web.Request, key: str) -> int:
    text = request.query.get(key, "") or "0"
    try:
        return int(text)
    except ValueError:
        raise errors.InvalidArgument(f"invalid {key} parameter: {text}") from None


def _run_host_config(request: web.Request) -> dict[str, Any]:
    """The legacy builder's RUN-container settings from ``/build``'s query (dockerd's
    ``newImageBuildOptions``); ``isolation`` other than the default and ``squash`` are
    refused as dockerd refuses them on Linux without experimental features."""
    q = request.query
    isolation = q.get("isolation", "")
    if isolation not in ("", "default"):
        raise errors.InvalidArgument(f"Unsupported isolation: {isolation!r}")
    if _bool(request, "squash"):
        raise errors.InvalidArgument("squash is only supported with experimental mode")
    ulimits = _json_param(request, "ulimits") or []
    if not isinstance(ulimits, list):
        raise errors.InvalidArgument("ulimits must be a JSON list")
    hc: dict[str, Any] = {
        "ExtraHosts": [h for v in q.getall("extrahosts", []) for h in v.split(",") if h] or None,
        "SecurityOpt": [o for o in q.getall("securityopt", []) if o] or None,
        "CgroupParent": q.get("cgroupparent", ""),
        "CpusetCpus": q.get("cpusetcpus", ""),
        "CpusetMems": q.get("cpusetmems", ""),
        "CpuShares": _int_param(request, "cpushares"),
        "CpuQuota": _int_param(request, "cpuquota"),
        "CpuPeriod": _int_param(request, "cpuperiod"),
        "Memory": _int_param(request, "memory"),
        "MemorySwap": _int_param(request, "memswap"),
        "ShmSize": _int_param(request, "shmsize"),
        "Ulimits": ulimits or None,
    }
    return {k: v for k, v in hc.items() if v}


def _work_dir(s: Services) -> str:
    path = s.config.data_root / "tmp"
    path.mkdir(exist_ok=True)
    return str(path)


def _registry_auth(request: web.Request, ref: Reference) -> AuthConfig:
    """The credentials for ``ref``'s registry from ``X-Registry-Config`` (base64url JSON map
    of registry → auth config, as the docker CLI sends it for builds)."""
    raw = request.headers.get("X-Registry-Config", "")
    if not raw:
        return AuthConfig()
    try:
        configs = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, json.JSONDecodeError):
        return AuthConfig()
    if not isinstance(configs, dict):
        return AuthConfig()
    keys = (
        ["https://index.docker.io/v1/", "docker.io", "index.docker.io"]
        if ref.domain == "docker.io"
        else [ref.domain, f"https://{ref.domain}", f"http://{ref.domain}"]
    )
    for key in keys:
        if key in configs:
            return AuthConfig.from_json(configs[key])
    return AuthConfig()


def _puller(s: Services, request: web.Request, platform: str | None) -> Pull:
    async def pull(name: str, emit: Emit) -> None:
        ref = parse(name)
        job = await s.registries.resolve_pull(ref, _registry_auth(request, ref), platform or None)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def report(message: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, message)

        async def forward() -> None:
            while (message := await queue.get()) is not None:
                await emit(message)

        forwarder = asyncio.ensure_future(forward())
        try:
            await job.run(report)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)
            await forwarder

    return pull


async def build(request: web.Request) -> web.StreamResponse:
    from dockyard.build.context import extract_context
    from dockyard.build.executor import Builder, BuildError, prepare

    s = _services(request)
    options = _options(request)
    for tag in options.tags:
        parse(tag)  # InvalidArgument for a malformed -t, before anything runs
    work = _work_dir(s)
    ctx = tempfile.mkdtemp(dir=work, prefix="build-")
    try:
        fd, spool = tempfile.mkstemp(dir=work, prefix="ctx-")
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in request.content.iter_chunked(1 << 20):
                    f.write(chunk)

            def unpack() -> None:
                with open(spool, "rb") as src:
                    extract_context(src, Path(ctx))

            await asyncio.to_thread(unpack)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(spool)
        plan = prepare(Path(ctx), options)
        builder = Builder(
            s.images,
            s.containers,
            s.snapshots,
            s.db,
            work_dir=Path(work),
            pull=_puller(s, request, options.platform),
        )
        stream = JsonStream(request)
        held: list[dict[str, Any]] = []

        async def emit(message: dict[str, Any]) -> None:
            if options.quiet and "aux" not in message:
                held.append(message)
                return
            await stream.send(message)

        try:
            image_id = await builder.run(plan, emit)
            if options.quiet:
                await stream.send({"stream": image_id + "\n"})
        except BuildError as exc:
            if options.quiet:
                for message in held:
                    await stream.send(message)
            await stream.error(exc.message, exc.code)
        except errors.DockyardError as exc:
            await stream.error(exc.message)
        return await stream.finish()
    finally:
        shutil.rmtree(ctx, ignore_errors=True)


async def commit(request: web.Request) -> web.Response:
    from dockyard.build.commit import commit_container

    s = _services(request)
    q = request.query
    container = q.get("container", "")
    if not container:
        raise errors.InvalidArgument("container is required")
    record = s.containers.get(container)
    body = await json_body(request)
    tags: list[str] = []
    repo = q.get("repo", "")
    if repo:
        tags.append(f"{repo}:{q.get('tag') or 'latest'}")
    image = await asyncio.to_thread(
        commit_container,
        s.images,
        s.snapshots,
        record,
        overrides=body if isinstance(body, dict) else {},
        changes=[c for c in q.getall("changes", []) if c],
        tags=tags,
        author=q.get("author", ""),
        comment=q.get("comment", ""),
    )
    s.containers.emit(
        record,
        "commit",
        comment=q.get("comment", ""),
        imageID=image.id,
        imageRef=tags[0] if tags else "",
    )
    return json_response({"Id": image.id}, status=201)


async def history(request: web.Request) -> web.Response:
    s = _services(request)
    name = request.match_info["name"]
    return json_response(await asyncio.to_thread(s.images.history, name))


async def export(request: web.Request) -> web.StreamResponse:
    from dockyard.build.commit import export_rootfs

    s = _services(request)
    record = s.containers.get(request.match_info["id"])
    work = Path(_work_dir(s))
    fd, tmp = tempfile.mkstemp(dir=work, prefix="export-")
    try:
        with os.fdopen(fd, "wb") as out:
            await asyncio.to_thread(
                export_rootfs, s.snapshots, record, s.containers.bundle(record), out, work
            )
        response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
        await response.prepare(request)
        with open(tmp, "rb") as f:
            while chunk := f.read(1 << 20):
                await response.write(chunk)
        await response.write_eof()
        s.containers.emit(record, "export")
        return response
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _import_platform(request: web.Request) -> Platform | None:
    """``platform`` as containerd parses it; only this engine's OS can be imported (moby
    ``image.CheckOS``)."""
    text = request.query.get("platform", "")
    if not text:
        return None
    platform = parse_platform(text)
    if platform.os != "linux":
        raise errors.InvalidArgument("operating system is not supported")
    return platform


async def import_image(request: web.Request) -> web.StreamResponse:
    """``POST /images/create?fromSrc=…`` (``docker import``): with ``-`` the body is a rootfs
    tarball; otherwise ``fromSrc`` is a URL (``http://`` prepended when it has no scheme)
    the daemon downloads, streaming ``Downloading from <url>`` and the transfer's progress
    before the image ID, as dockerd does. A refused GET is the request's error status."""
    from dockyard.build.commit import import_rootfs
    from dockyard.build.remote import open_remote

    s = _services(request)
    q = request.query
    src = q.get("fromSrc", "")
    repo = q.get("repo", "")
    tag: str | None = None
    if repo:
        ref = parse(repo)
        if q.get("tag"):
            ref = ref.with_tag(q["tag"])
        tag = ref.familiar()
    platform = _import_platform(request)
    message = q.get("message") or f"Imported from {src}"
    changes = [c for c in q.getall("changes", []) if c]
    work = Path(_work_dir(s))

    def work_import(path: str) -> str:
        with open(path, "rb") as source:
            image_id = import_rootfs(
                s.images,
                source,
                work,
                tag=tag,
                changes=changes,
                message=message,
                platform=platform,
            ).id
        s.images.emit(image_id, image_id, "import")
        return image_id

    if src == "-":
        fd, tmp = tempfile.mkstemp(dir=work, prefix="import-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.content.iter_chunked(1 << 20):
                    out.write(chunk)
            image_id = await asyncio.to_thread(work_import, tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        stream = JsonStream(request)
        await stream.send({"status": image_id})
        return await stream.finish()

    url = src if "://" in src else "http://" + src
    with tempfile.TemporaryDirectory(dir=work, prefix="import-") as where:
        async with open_remote(url) as remote:
            # from here on errors go in the stream, as dockerd's once it has written
            stream = JsonStream(request)
            await stream.send({"status": f"Downloading from {url}"})
            try:
                got = await remote.save(Path(where), progress=stream.send, action="Importing")
            except errors.DockyardError as exc:
                await stream.error(exc.message)
                return await stream.finish()
        try:
            image_id = await asyncio.to_thread(work_import, str(got.path))
        except errors.DockyardError as exc:
            await stream.error(exc.message)
            return await stream.finish()
        except Exception as exc:
            log.error("import from %s failed", url, exc_info=exc)
            await stream.error(str(exc) or type(exc).__name__)
            return await stream.finish()
    await stream.send({"status": image_id})
    return await stream.finish()


async def prune_cache(request: web.Request) -> web.Response:
    """``POST /build/prune``: drop the build cache's entries (their images stay as images).

    ``all`` changes nothing: every entry is a shared record whose data the images hold, and
    ``builder prune`` is how a user drops the cache, so both forms drop what the filters
    (BuildKit's keys, ``until``) and ``keep-storage`` select."""
    from dockyard.build.cache import BuildCache, select_prunable
    from dockyard.containers.filters import parse_filters, parse_time

    filters = parse_filters(request.query.get("filters"))
    until_values = filters.get("until") or []
    until = parse_time(until_values[0]) if until_values else None
    keep = request.query.get("keep-storage") or "0"
    try:
        keep_storage = int(keep)
    except ValueError:
        raise errors.InvalidArgument(f"invalid keep-storage value: {keep}") from None
    cache = BuildCache(_services(request).db)
    keys = select_prunable(cache.entries(), filters, until=until, keep_storage=keep_storage)
    cache.forget_all(keys)
    return json_response({"CachesDeleted": keys or None, "SpaceReclaimed": 0})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/build/prune", prune_cache)
    r.add_post("/build", build)
    r.add_post("/commit", commit)
    r.add_get("/images/{name:.+}/history", history)
    r.add_get("/containers/{id}/export", export)
