"""Remote files over HTTP(S) for ``ADD <url>`` and ``docker import <url>``, as dockerd fetches them.

`open_remote` sends the GET (redirects followed, at most 10, as Go's client does) and turns
an error answer into an engine error with dockerd's wording (``remotecontext.
GetWithStatusError``): ``failed to GET <url> with status 404 Not Found: <body>``, the error
class following the status (404 `NotFound`, 400 `InvalidArgument`, 401 `Unauthorized`, 403
`Forbidden`, else `SystemError`). A request that gets no answer reads like Go's ``url.Error``
(``Get "<url>": dial tcp …: connect: connection refused``). Only http and https are fetched.

`RemoteFile.save` streams the body to a file in a directory the caller owns, never holding
it in memory, the way the legacy builder's ``downloadSource`` does: the file is named after
the URL path's last element (else the ``Content-Disposition`` filename, else
``__unnamed__`` with `Downloaded.filename` empty), created with mode 0600, its mtime the
``Last-Modified`` header's time (the Unix epoch without one). Progress goes out as Docker's
JSON progress messages (``Downloading``/``Importing``, no id), the last followed by an empty
message, as moby's progress reader with ``newLines`` writes it.
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
from aiohttp.multipart import parse_content_disposition
from yarl import URL

from dockyard import errors
from dockyard.distribution.errors import describe_connection_error
from dockyard.distribution.progress import progress_bar

__all__ = [
    "DEFAULT_TIMEOUT",
    "UNNAMED",
    "Downloaded",
    "Progress",
    "RemoteFile",
    "download",
    "filename_for",
    "is_url",
    "open_remote",
]

UNNAMED = "__unnamed__"
"""The file name used when neither the URL nor the answer names the file (as moby)."""

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
"""No limit on the whole transfer (files may be large); 30 s to connect, 5 min of silence."""

MAX_REDIRECTS = 10
_CHUNK = 1 << 16
_ERROR_BODY_LIMIT = 64 << 10
_PROGRESS_INTERVAL = 0.1

Progress = Callable[[dict[str, Any]], Awaitable[None]]
"""Receives one JSON progress message (awaited in the downloading task)."""


def is_url(source: str) -> bool:
    """moby ``urlutil.IsURL``: what ``ADD`` downloads instead of reading from the context."""
    return source.startswith(("http://", "https://"))


@dataclass(frozen=True)
class Downloaded:
    path: Path
    """The saved file: ``<directory>/<filename or __unnamed__>``."""
    filename: str
    """The name from the URL or ``Content-Disposition``; "" when neither gave one."""
    size: int


def _base(path: str) -> str:
    """Go ``filepath.Base`` for a name that does not end in ``/``; "" for a name that
    cannot be a file's (``.``, ``..``, or holding a NUL byte)."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if name in ("", ".", "..") or "\0" in name:
        return ""
    return name


def filename_for(url: str, content_disposition: str | None = None) -> str:
    """moby ``getFilenameForDownload``: the URL path's last element unless the path is
    empty or ends in ``/``, else ``Content-Disposition``'s ``filename``; else ""."""
    path = unquote(urlsplit(url).path)
    if path and not path.endswith("/"):
        name = _base(path)
        if name:
            return name
    if content_disposition:
        with contextlib.suppress(ValueError, TypeError):
            _kind, params = parse_content_disposition(content_disposition)
            value = params.get("filename") or ""
            if value and not value.endswith("/"):
                return _base(value)
    return ""


def _mtime(last_modified: str | None) -> float:
    """``Last-Modified`` as seconds since the epoch; 0 (moby's zero time, which ``Chtimes``
    turns into the epoch) when missing or unparsable."""
    if not last_modified:
        return 0.0
    try:
        return email.utils.parsedate_to_datetime(last_modified).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0.0


def check_url(url: str) -> URL:
    """The URL to GET; ``InvalidArgument`` (Go's wording) for what Go's client refuses."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise errors.InvalidArgument(f'parse "{url}": {exc}') from None
    if parsed.scheme not in ("http", "https"):
        raise errors.InvalidArgument(f'Get "{url}": unsupported protocol scheme "{parsed.scheme}"')
    if not parsed.host:
        raise errors.InvalidArgument(f'Get "{url}": http: no Host in request URL')
    return parsed


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _status_error(status: int, message: str) -> errors.DockyardError:
    kind: type[errors.DockyardError] = {
        400: errors.InvalidArgument,
        401: errors.Unauthorized,
        403: errors.Forbidden,
        404: errors.NotFound,
    }.get(status, errors.SystemError)
    return kind(message)


def _request_error(url: str, parsed: URL, exc: BaseException) -> errors.DockyardError:
    """No (usable) answer, worded like Go's ``url.Error``."""
    if isinstance(exc, aiohttp.TooManyRedirects):
        reason = f"stopped after {MAX_REDIRECTS} redirects"
    elif isinstance(exc, aiohttp.InvalidURL):
        reason = f"invalid redirect URL {exc}"
    elif isinstance(exc, aiohttp.ConnectionTimeoutError):
        reason = f"dial tcp {parsed.host}:{parsed.port}: i/o timeout"
    elif isinstance(exc, TimeoutError):
        reason = "net/http: timeout awaiting response headers"
    elif isinstance(exc, OSError):
        reason = describe_connection_error(exc, f"{parsed.host}:{parsed.port}")
    else:
        reason = str(exc) or type(exc).__name__
    return errors.SystemError(f'Get "{url}": {reason}')


class RemoteFile:
    """An answered GET whose body has not been read yet."""

    def __init__(self, url: str, response: aiohttp.ClientResponse) -> None:
        self.url = url
        self._response = response

    @property
    def length(self) -> int:
        """``Content-Length``; -1 when unknown (Go's ``ContentLength``)."""
        length = self._response.content_length
        return -1 if length is None else length

    @property
    def filename(self) -> str:
        return filename_for(self.url, self._response.headers.get("Content-Disposition"))

    async def save(
        self, directory: Path, *, progress: Progress | None = None, action: str = "Downloading"
    ) -> Downloaded:
        """Stream the body into ``directory`` (private to the caller, and without a file of
        that name); the partial file is removed if the transfer fails."""
        filename = self.filename
        target = directory / (filename or UNNAMED)
        size = 0
        total = self.length
        last = time.monotonic()
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise errors.SystemError(f"failed to download {self.url}: {exc}") from None
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in self._response.content.iter_chunked(_CHUNK):
                    out.write(chunk)
                    size += len(chunk)
                    now = time.monotonic()
                    if progress is not None and (now - last >= _PROGRESS_INTERVAL or size == total):
                        last = now
                        await progress(_progress(action, size, total))
            os.chmod(target, 0o600)
            mtime = _mtime(self._response.headers.get("Last-Modified"))
            os.utime(target, (mtime, mtime))
        except BaseException as exc:
            with contextlib.suppress(OSError):
                target.unlink()
            if isinstance(exc, aiohttp.ClientError | TimeoutError | OSError):
                reason = str(exc) or type(exc).__name__
                if isinstance(exc, TimeoutError):
                    reason = "i/o timeout"
                raise errors.SystemError(f"failed to download {self.url}: {reason}") from None
            raise
        if progress is not None:
            await progress(_progress(action, size, total))
            await progress({})
        return Downloaded(target, filename, size)


def _progress(action: str, current: int, total: int) -> dict[str, Any]:
    """moby ``formatProgress`` without an id: ``progress`` is ``JSONProgress.String()``."""
    detail: dict[str, Any] = {}
    if current:
        detail["current"] = current
    if total:
        detail["total"] = total
    out: dict[str, Any] = {"status": action, "progressDetail": detail}
    bar = progress_bar(current, total)
    if bar:
        out["progress"] = bar
    return out


@contextlib.asynccontextmanager
async def open_remote(
    url: str, *, timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT
) -> AsyncIterator[RemoteFile]:
    """GET ``url``; a `RemoteFile` for a 2xx answer, else the engine error (see module doc)."""
    parsed = check_url(url)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            response = await session.get(parsed, max_redirects=MAX_REDIRECTS)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _request_error(url, parsed, exc) from None
        async with response:
            if not 200 <= response.status < 300:
                reason = response.reason or _phrase(response.status)
                message = f"failed to GET {url} with status {response.status} {reason}".rstrip()
                try:
                    body = await response.content.read(_ERROR_BODY_LIMIT)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise _status_error(
                        response.status, f"{message}: error reading body: {exc}"
                    ) from None
                text = body.decode("utf-8", "replace").strip()
                raise _status_error(response.status, f"{message}: {text}")
            yield RemoteFile(url, response)


async def download(
    url: str,
    directory: Path,
    *,
    progress: Progress | None = None,
    action: str = "Downloading",
    timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
) -> Downloaded:
    """`open_remote` then `RemoteFile.save`: ``url``'s body as a file in ``directory``."""
    async with open_remote(url, timeout=timeout) as remote:
        return await remote.save(directory, progress=progress, action=action)
