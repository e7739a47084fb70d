"""What every handler shares: the app's state, request parsing, and the common headers.

Handlers follow one shape: parse the path (``NAME_INVALID``/``DIGEST_INVALID`` for malformed
input, which reveals nothing), ``await authorize(...)``, refuse writes in read-only mode, then
call storage. They raise ``RegistryError`` or let typed storage errors through; the error
middleware writes every error response.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from dockyard.registry import errcode, grammar
from dockyard.registry.access import Access, Authorizer
from dockyard.registry.config import RegistryConfig
from dockyard.registry.errcode import RegistryError
from dockyard.registry.storage import Registry, Repository

__all__ = [
    "API_VERSION_HEADER",
    "STATE_KEY",
    "AppState",
    "authorize",
    "blob_location",
    "body_chunks",
    "manifest_location",
    "paginate",
    "parse_digest",
    "parse_reference",
    "repository",
    "repository_name",
    "require_deletes",
    "require_writable",
    "state",
    "upload_headers",
    "upload_location",
]

API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")
_BUFFER = 1 << 20  # coalesce request bodies into ~1 MiB writes
MAX_PAGE = 1000  # listing entries per page when the client asks for more or says nothing


@dataclass(frozen=True)
class AppState:
    config: RegistryConfig
    registry: Registry
    authorizer: Authorizer


STATE_KEY: web.AppKey[AppState] = web.AppKey("dockyard_registry", AppState)


def state(request: web.Request) -> AppState:
    return request.app[STATE_KEY]


async def authorize(request: web.Request, access: list[Access]) -> None:
    await state(request).authorizer.authorize(request, access)


def repository_name(request: web.Request, key: str = "name") -> str:
    name = request.match_info[key]
    if not grammar.is_name(name):
        raise RegistryError(errcode.NAME_INVALID, detail={"name": name})
    return name


def repository(request: web.Request, name: str) -> Repository:
    return state(request).registry.repository(name)


def parse_digest(value: str | None, what: str = "digest") -> str:
    if value is None or value == "":
        raise RegistryError(errcode.DIGEST_INVALID, f"{what} parameter missing")
    if not grammar.is_digest(value):
        raise RegistryError(
            errcode.DIGEST_INVALID,
            f"invalid or unsupported {what} {value!r} (sha256 and sha512 are supported)",
            detail={what: value},
        )
    return value


def parse_reference(value: str) -> tuple[str | None, str | None]:
    """``(tag, None)`` or ``(None, digest)``; a ``:`` makes it a digest."""
    if ":" in value:
        return None, parse_digest(value)
    if not grammar.is_tag(value):
        raise RegistryError(errcode.MANIFEST_INVALID, f"invalid tag {value!r}", {"tag": value})
    return value, None


def require_writable(request: web.Request) -> None:
    if state(request).config.readonly:
        raise RegistryError(errcode.UNSUPPORTED, "the registry is in read-only mode")


def require_deletes(request: web.Request) -> None:
    require_writable(request)
    if not state(request).config.delete_enabled:
        raise RegistryError(errcode.UNSUPPORTED, "deletion is disabled on this registry")


def blob_location(name: str, digest: str) -> str:
    return f"/v2/{name}/blobs/{digest}"


def manifest_location(name: str, digest: str) -> str:
    return f"/v2/{name}/manifests/{digest}"


def upload_location(name: str, upload_id: str) -> str:
    return f"/v2/{name}/blobs/uploads/{upload_id}"


def upload_headers(name: str, upload_id: str, size: int) -> dict[str, str]:
    """Location, Range (``0-<last byte>``; ``0-0`` when empty, as distribution sends) and
    the session id."""
    return {
        "Location": upload_location(name, upload_id),
        "Range": f"0-{max(size - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
    }


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The request body in ~1 MiB pieces (fewer, larger driver writes). When the body breaks
    off (the client went away) what did arrive is still handed on before the error, so an
    upload session keeps every byte received and the client can resume after them."""
    buf = bytearray()
    while True:
        try:
            chunk = await request.content.readany()
        except Exception:
            if buf:
                yield bytes(buf)
            raise
        if not chunk:
            break
        buf += chunk
        if len(buf) >= _BUFFER:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)


def paginate(
    request: web.Request,
    items: list[str],
    path: str,
    *,
    default_page: int | None = MAX_PAGE,
) -> tuple[list[str], dict[str, str]]:
    """Apply ``last`` (exclusive, ASCII order) and ``n`` to a sorted list; returns the page and
    a ``Link`` header when more remain. ``n=0`` is an empty page without ``Link``; ``n`` above
    ``MAX_PAGE`` is capped (with ``Link``, as the spec allows); without ``n`` a page holds
    ``default_page`` entries (``None``: all of them)."""
    last = request.query.get("last")
    raw_n = request.query.get("n")
    size: int | None = default_page
    if raw_n is not None and raw_n != "":
        if not raw_n.isdigit():
            raise RegistryError(errcode.PAGINATION_INVALID, f"invalid n {raw_n!r}", {"n": raw_n})
        size = min(int(raw_n), MAX_PAGE)
        if size == 0:
            return [], {}
    if last:
        items = [i for i in items if i > last]
    if size is None:
        return items, {}
    page = items[:size]
    headers: dict[str, str] = {}
    if len(items) > size and page:
        query = urlencode({"n": size, "last": page[-1]})
        headers["Link"] = f'<{path}?{query}>; rel="next"'
    return page, headers
