"""The ``dockyard-registry`` aiohttp application: routes, the error middleware, headers.

``create_app`` is the composition root: it takes a config and optionally a driver and an
authorizer (tests pass an in-memory driver and fakes), and wires ``Registry`` storage, the
authorizer's extra routes and the ``/v2/`` table. Every response carries
``Docker-Distribution-API-Version: registry/2.0``. Every error is written by
``errcode.error_response``: handlers raise, the middleware maps (typed storage errors through
``errcode.from_exception``, unknown methods to UNSUPPORTED, anything else to a logged 500).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from dockyard.registry import errcode
from dockyard.registry.access import Authorizer, build_authorizer
from dockyard.registry.config import RateLimit, RegistryConfig
from dockyard.registry.errcode import RegistryError
from dockyard.registry.handlers import ROUTES
from dockyard.registry.handlers.base import API_VERSION_HEADER, STATE_KEY, AppState
from dockyard.registry.storage import Registry, StorageDriver, build_driver

__all__ = ["create_app"]

log = logging.getLogger("dockyard.registry")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _add_api_version(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]


def _write_error(request: web.Request, err: RegistryError) -> web.Response:
    resp = errcode.error_response(err, head=request.method == "HEAD")
    if request.body_exists and not request.content.is_eof():
        # refused before the body was read (auth, size, range): no keep-alive, so the
        # connection closes once aiohttp has drained what the client already sent
        resp.force_close()
    return resp


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as exc:
        allow = ", ".join(sorted(exc.allowed_methods))
        err = RegistryError(
            errcode.UNSUPPORTED,
            f"method {request.method} is not allowed on {request.path}",
            headers={"Allow": allow},
        )
        return _write_error(request, err)
    except web.HTTPException:
        raise
    except (ConnectionError, HttpProcessingError) as exc:
        # the client went away or sent a broken body: nothing was committed
        log.info("%s %s: request body failed: %s", request.method, request.path, exc)
        err = RegistryError(errcode.BLOB_UPLOAD_INVALID, f"request body failed: {exc}")
        return _write_error(request, err)
    except Exception as exc:
        mapped = errcode.from_exception(exc)
        if mapped is None:
            log.exception("%s %s failed", request.method, request.path)
            mapped = RegistryError(errcode.UNKNOWN, f"internal error: {type(exc).__name__}")
        return _write_error(request, mapped)


class _TokenBuckets:
    """Per-client-address token buckets for ``http.ratelimit``."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """0 when a token was taken; otherwise seconds until one is available."""
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (float(self.limit.burst), now))
        tokens = min(float(self.limit.burst), tokens + (now - stamp) * self.limit.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 65536:
                self._buckets.pop(next(iter(self._buckets)))
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.limit.rate


def _rate_limiter(limit: RateLimit) -> Callable[..., Awaitable[web.StreamResponse]]:
    buckets = _TokenBuckets(limit)

    @web.middleware
    async def _ratelimit(request: web.Request, handler: Handler) -> web.StreamResponse:
        wait = buckets.take(request.remote or "")
        if wait > 0:
            err = RegistryError(
                errcode.TOOMANYREQUESTS,
                detail={"retryAfter": round(wait, 3)},
                headers={"Retry-After": str(max(1, int(wait + 0.999)))},
            )
            return _write_error(request, err)
        return await handler(request)

    return _ratelimit


def create_app(
    config: RegistryConfig,
    *,
    driver: StorageDriver | None = None,
    authorizer: Authorizer | None = None,
) -> web.Application:
    middlewares: list[Callable[..., Awaitable[web.StreamResponse]]] = [_errors]
    if config.ratelimit is not None:
        middlewares.insert(0, _rate_limiter(config.ratelimit))
    # client_max_size bounds only request.read()/post(); bodies here are streamed.
    app = web.Application(middlewares=middlewares)
    if authorizer is None:
        authorizer = build_authorizer(config.raw)
    app[STATE_KEY] = AppState(
        config=config,
        registry=Registry(driver if driver is not None else build_driver(config)),
        authorizer=authorizer,
    )
    app.on_response_prepare.append(_add_api_version)
    app.router.add_routes(authorizer.routes())
    app.router.add_routes(ROUTES)
    return app
