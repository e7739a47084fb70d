"""The OCI Distribution client over aiohttp: one endpoint, one set of credentials.

``RegistryClient`` pings ``/v2/``, answers auth challenges (see ``auth.py``), retries with
backoff on connection failures and 5xx/429 answers, and turns aiohttp's exceptions into
``RegistryUnreachable`` (no answer) or ``RegistryError`` (an error answer) at this boundary.
``Repository`` is the small ``/v2/<name>/…`` API on top: manifests, blobs (streamed, with
``Range`` to resume), uploads, cross-repository mounts.

Authorization headers are sent to the endpoint's origin only; aiohttp drops them when a
blob redirect leaves it (to object storage, say).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from dockyard.distribution.auth import (
    AuthConfig,
    Challenge,
    Token,
    basic_header,
    oauth_form,
    parse_challenges,
    parse_token_response,
    token_query,
)
from dockyard.distribution.endpoints import Endpoint
from dockyard.distribution.errors import (
    RegistryError,
    RegistryUnreachable,
    describe_connection_error,
    parse_error_body,
)
from dockyard.errors import InvalidArgument
from dockyard.oci import mediatypes
from dockyard.oci.digest import sha256_digest, validate_digest

__all__ = [
    "MANIFEST_ACCEPT",
    "SCHEMA1_MESSAGE",
    "FetchedManifest",
    "RegistryClient",
    "Repository",
    "RetryPolicy",
]

MAX_MANIFEST_SIZE = 4 << 20
MAX_CONFIG_SIZE = 8 << 20
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_SCHEMA1_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
MANIFEST_ACCEPT = ", ".join(
    [
        mediatypes.OCI_INDEX,
        mediatypes.DOCKER_MANIFEST_LIST,
        mediatypes.OCI_MANIFEST,
        mediatypes.DOCKER_MANIFEST,
        # asked for only so that an old image is recognised and refused clearly
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/json",
    ]
)
SCHEMA1_MESSAGE = (
    "[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1"
    " support has been removed. Suggest the author of {ref} to upgrade the image to the OCI"
    " Format or Docker Image manifest v2, schema 2. More information at"
    " https://docs.docker.com/go/deprecated-image-specs/"
)

# the aiohttp failures that mean "no (complete) answer": retried, then RegistryUnreachable
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    asyncio.TimeoutError,
    ConnectionError,
)

Body = bytes | Callable[[], Any] | None
"""A request body: bytes, or a factory of a fresh (async-iterable) body per attempt."""


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per request (the first included) and exponential backoff with jitter."""

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 4.0

    def delay(self, attempt: int) -> float:
        base: float = min(self.max_delay, self.base_delay * float(2**attempt))
        return base * (0.75 + random.random() / 2)


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest or index as served: exact bytes, media type and digest of the bytes."""

    data: bytes
    media_type: str
    digest: str

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def is_index(self) -> bool:
        return mediatypes.is_index(self.media_type)


def manifest_media_type(data: bytes, content_type: str) -> str:
    """The type of a served manifest: its ``mediaType`` field, else the Content-Type, else
    (OCI allows omitting both) sniffed from ``manifests``/``config``. Schema 1 is reported
    as such (the caller refuses it)."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("invalid manifest: not JSON") from None
    if not isinstance(obj, dict):
        raise InvalidArgument("invalid manifest: expected a JSON object")
    if obj.get("schemaVersion") == 1:
        return "application/vnd.docker.distribution.manifest.v1+json"
    declared = obj.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    ctype = content_type.split(";", 1)[0].strip()
    if mediatypes.is_index(ctype) or mediatypes.is_manifest(ctype) or ctype in _SCHEMA1_TYPES:
        return ctype
    if "manifests" in obj:
        return mediatypes.OCI_INDEX
    return mediatypes.OCI_MANIFEST


def is_schema1(media_type: str) -> bool:
    return media_type in _SCHEMA1_TYPES


class RegistryClient:
    """Requests to one endpoint with one identity. Not shared between operations: it keeps
    the scopes and tokens of the pull or push it serves."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        endpoint: Endpoint,
        auth: AuthConfig,
        *,
        scopes: tuple[str, ...] = (),
        retry: RetryPolicy = RetryPolicy(),
        offline_token: bool = False,
    ) -> None:
        self.http = http
        self.endpoint = endpoint
        self.auth = auth
        self.retry = retry
        self._offline = offline_token
        self._ssl: bool = endpoint.tls_verify
        self._scopes: list[str] = list(scopes)
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], Token] = {}
        self._origin = URL(endpoint.url).origin()
        self.refresh_token = ""
        self.pinged = False

    # -- plumbing ------------------------------------------------------------------------

    def url(self, path: str) -> URL:
        return URL(self.endpoint.url + path, encoded=False)

    def add_scope(self, scope: str) -> None:
        if scope not in self._scopes:
            self._scopes.append(scope)

    async def _sleep(self, attempt: int, response: aiohttp.ClientResponse | None = None) -> None:
        delay = self.retry.delay(attempt)
        if response is not None and response.status == 429:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(float(response.headers.get("Retry-After", "0")), 10.0))
        await asyncio.sleep(delay)

    async def _send(
        self,
        method: str,
        url: URL,
        *,
        headers: Mapping[str, str] | None = None,
        data: Body = None,
        authorize: bool = True,
        retry: bool = True,
        allow_redirects: bool = True,
    ) -> aiohttp.ClientResponse:
        """One logical request: auth header, retries, one re-authentication on 401.
        Returns the response (caller releases it); raises ``RegistryUnreachable``."""
        attempt = 0
        reauthed = False
        while True:
            hdrs = dict(headers or {})
            if authorize and URL(url).origin() == self._origin:
                header = await self._authorization(method, url)
                if header:
                    hdrs["Authorization"] = header
            body = data() if callable(data) else data
            try:
                response = await self.http.request(
                    method,
                    url,
                    headers=hdrs,
                    data=body,
                    ssl=self._ssl,
                    allow_redirects=allow_redirects,
                )
            except CONNECTION_ERRORS as exc:
                if retry and attempt + 1 < self.retry.attempts:
                    await self._sleep(attempt)
                    attempt += 1
                    continue
                raise RegistryUnreachable(
                    method,
                    str(url),
                    describe_connection_error(exc, url.host_port_subcomponent or ""),
                ) from exc
            if (
                response.status == 401
                and authorize
                and not reauthed
                and self._adopt_challenge(response)
            ):
                response.release()
                reauthed = True
                continue
            if response.status in _RETRY_STATUSES and retry and attempt + 1 < self.retry.attempts:
                await self._sleep(attempt, response)
                response.release()
                attempt += 1
                continue
            return response

    def _adopt_challenge(self, response: aiohttp.ClientResponse) -> bool:
        """A 401 after auth: take the new challenge (and any scope it names); True when a
        retry with fresh credentials may succeed."""
        challenges = parse_challenges(response.headers.getall("WWW-Authenticate", []))
        chosen = _choose(challenges)
        if chosen is None:
            return False
        changed = self._challenge is None or chosen.scheme != self._challenge.scheme
        self._challenge = chosen
        for scope in chosen.scopes:
            if scope not in self._scopes:
                self._scopes.append(scope)
                changed = True
        if chosen.scheme == "bearer":
            self._tokens.clear()
            return True
        return changed and self.auth.has_credentials

    async def _authorization(self, method: str, url: URL) -> str | None:
        if self.auth.registry_token:
            return f"Bearer {self.auth.registry_token}"
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            if not self.auth.username and not self.auth.password:
                raise RegistryError(
                    401, "", f'{method.capitalize()} "{url}": no basic auth credentials'
                )
            return basic_header(self.auth.username, self.auth.password)
        if challenge.scheme == "bearer":
            return f"Bearer {await self._token(method, url, challenge)}"
        return None

    async def _token(self, method: str, url: URL, challenge: Challenge) -> str:
        key = tuple(self._scopes)
        cached = self._tokens.get(key)
        if cached is not None and cached.valid():
            return cached.token
        if not challenge.realm:
            raise RegistryError(401, "", f'{method.capitalize()} "{url}": no realm in challenge')
        realm = URL(challenge.realm)
        headers: dict[str, str] = {}
        attempt = 0
        while True:
            try:
                if self.auth.identity_token:
                    form = oauth_form(challenge, key, self.auth, offline=self._offline)
                    response = await self.http.post(realm, data=form, ssl=self._ssl)
                else:
                    query = token_query(challenge, key, self.auth, offline=self._offline)
                    if self.auth.username or self.auth.password:
                        headers["Authorization"] = basic_header(
                            self.auth.username, self.auth.password
                        )
                    response = await self.http.get(
                        realm.update_query(query), headers=headers, ssl=self._ssl
                    )
                async with response:
                    body = await response.read()
                    status = response.status
            except CONNECTION_ERRORS as exc:
                if attempt + 1 < self.retry.attempts:
                    await self._sleep(attempt)
                    attempt += 1
                    continue
                raise RegistryUnreachable(
                    "GET",
                    str(realm),
                    describe_connection_error(exc, realm.host_port_subcomponent or ""),
                ) from exc
            if status in _RETRY_STATUSES and attempt + 1 < self.retry.attempts:
                await self._sleep(attempt)
                attempt += 1
                continue
            break
        if status != 200:
            err = parse_error_body(status, body)
            if status == 401 and not err.code:
                err = RegistryError(401, "UNAUTHORIZED", "authentication required")
            # Go's url.Error around the request that needed the token, as dockerd prints it
            raise RegistryError(
                err.status, "", f'{method.capitalize()} "{url}": {err}', err.detail
            ) from None
        try:
            token = parse_token_response(body)
        except InvalidArgument as exc:
            raise RegistryError(502, "", f'{method.capitalize()} "{url}": {exc.message}') from None
        if token.refresh_token:
            self.refresh_token = token.refresh_token
        self._tokens[key] = token
        return token.token

    # -- ping ------------------------------------------------------------------------------

    async def ping(self) -> None:
        """``GET /v2/``: learn how to authenticate. ``RegistryUnreachable`` if the endpoint
        does not answer; ``RegistryError`` if it answers but is not a v2 registry."""
        response = await self._send("GET", self.url("/v2/"), authorize=False)
        async with response:
            await response.read()
            if response.status == 401:
                self._challenge = _choose(
                    parse_challenges(response.headers.getall("WWW-Authenticate", []))
                )
            elif response.status != 200:
                raise parse_error_body(response.status, b"")
        self.pinged = True

    async def check_login(self) -> int:
        """``GET /v2/`` with credentials (after ``ping``); the status code."""
        response = await self._send("GET", self.url("/v2/"), retry=True)
        async with response:
            await response.read()
            return response.status

    @property
    def challenge(self) -> Challenge | None:
        return self._challenge

    # -- generic requests ------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: URL,
        *,
        headers: Mapping[str, str] | None = None,
        data: Body = None,
        retry: bool = True,
    ) -> aiohttp.ClientResponse:
        return await self._send(method, url, headers=headers, data=data, retry=retry)


def _choose(challenges: list[Challenge]) -> Challenge | None:
    """Bearer over basic, as distribution's client prefers."""
    for scheme in ("bearer", "basic"):
        for c in challenges:
            if c.scheme == scheme:
                return c
    return None


class Repository:
    """``/v2/<path>/…`` of one repository through a ``RegistryClient``."""

    def __init__(self, client: RegistryClient, path: str) -> None:
        self.client = client
        self.path = path

    def _url(self, kind: str, ref: str) -> URL:
        return self.client.url(f"/v2/{self.path}/{kind}/{ref}")

    async def get_manifest(self, reference: str) -> FetchedManifest:
        """The manifest or index ``reference`` (tag or digest) names; verified against a
        digest reference. ``RegistryError`` for error answers (MANIFEST_UNKNOWN …)."""
        url = self._url("manifests", reference)
        response = await self.client.request("GET", url, headers={"Accept": MANIFEST_ACCEPT})
        if response.status != 200:
            raise await self._error(response)
        async with response:
            data = await _read_limited(response, MAX_MANIFEST_SIZE, "manifest")
            ctype = response.headers.get("Content-Type", "")
        digest = sha256_digest(data)
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(400, "", f"manifest verification failed for digest {reference}")
        return FetchedManifest(data, manifest_media_type(data, ctype), digest)

    async def blob_size(self, digest: str) -> int | None:
        """``HEAD`` a blob: its size, or None when the registry lacks it."""
        response = await self.client.request("HEAD", self._url("blobs", digest))
        async with response:
            if response.status == 404:
                return None
            if response.status != 200:
                raise parse_error_body(response.status, b"")
            return int(response.headers.get("Content-Length", "0") or 0)

    async def fetch_small_blob(self, digest: str, limit: int = MAX_CONFIG_SIZE) -> bytes:
        """A small blob (an image config) read into memory and verified."""
        validate_digest(digest)
        response = await self.client.request("GET", self._url("blobs", digest))
        if response.status != 200:
            raise await self._error(response)
        async with response:
            data = await _read_limited(response, limit, "blob")
        actual = sha256_digest(data)
        if actual != digest:
            raise InvalidArgument(f"digest mismatch: expected {digest}, got {actual}")
        return data

    @contextlib.asynccontextmanager
    async def open_blob(
        self, digest: str, offset: int = 0
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A blob's body from ``offset`` (``Range``): 206 resumes there, 200 starts over
        (the caller skips what it has). Error answers raise ``RegistryError``."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response = await self.client.request("GET", self._url("blobs", digest), headers=headers)
        if response.status not in (200, 206):
            raise await self._error(response)
        try:
            yield response
        finally:
            response.release()

    async def mount_blob(self, digest: str, source: str) -> str | None:
        """Cross-repository mount: None when mounted (201), else the upload session URL the
        registry opened instead (202)."""
        url = self.client.url(f"/v2/{self.path}/blobs/uploads/").update_query(
            {"mount": digest, "from": source}
        )
        response = await self.client.request("POST", url, headers={"Content-Length": "0"})
        async with response:
            body = await response.read()
            if response.status == 201:
                return None
            if response.status == 202:
                return str(response.url.join(URL(response.headers.get("Location", ""))))
            raise parse_error_body(response.status, body)

    async def start_upload(self) -> str:
        url = self.client.url(f"/v2/{self.path}/blobs/uploads/")
        response = await self.client.request("POST", url, headers={"Content-Length": "0"})
        if response.status != 202:
            raise await self._error(response)
        async with response:
            location = response.headers.get("Location", "")
            if not location:
                raise RegistryError(502, "", "registry opened an upload without a Location")
            return str(response.url.join(URL(location)))

    async def finish_upload(
        self, location: str, digest: str, size: int, body: Callable[[], Any]
    ) -> None:
        """Monolithic ``PUT <location>?digest=…`` with the whole blob (not retried here: an
        upload session is single-use; the caller starts a new one)."""
        url = URL(location).update_query({"digest": digest})
        response = await self.client.request(
            "PUT",
            url,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            data=body,
            retry=False,
        )
        if response.status not in (201, 204):
            raise await self._error(response)
        response.release()

    async def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        url = self._url("manifests", reference)
        response = await self.client.request(
            "PUT", url, headers={"Content-Type": media_type}, data=data
        )
        if response.status not in (200, 201):
            raise await self._error(response)
        response.release()
        return sha256_digest(data)

    async def _error(self, response: aiohttp.ClientResponse) -> RegistryError:
        async with response:
            body = await response.read()
        return parse_error_body(response.status, body)


async def _read_limited(response: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise InvalidArgument(f"{what} too large: {length} bytes (limit {limit})")
    chunks: list[bytes] = []
    total = 0
    try:
        async for chunk in response.content.iter_chunked(1 << 16):
            total += len(chunk)
            if total > limit:
                raise InvalidArgument(f"{what} too large: over {limit} bytes")
            chunks.append(chunk)
    except CONNECTION_ERRORS as exc:
        raise RegistryUnreachable(
            response.method,
            str(response.url),
            describe_connection_error(exc, response.url.host or ""),
        ) from exc
    return b"".join(chunks)
