"""``Registries``: the engine's registry client — resolve and pull, push, log in, inspect.

One instance per daemon (built in the composition root from ``registry-mirrors`` and
``insecure-registries``). It owns one aiohttp session (connection pool), a small worker
pool for blocking store work, and what concurrent pulls share; ``close()`` releases them.

Endpoint fallback (moby ``distribution/pull.go``): a mirror that fails in any way before the
manifest is in hand gives way to the next endpoint; an HTTPS attempt at an insecure registry
gives way to plain HTTP only when it got no HTTP answer at all.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
from typing import Any

import aiohttp

from dockyard import __version__
from dockyard.content.store import ContentStore
from dockyard.distribution.auth import AuthConfig, repository_scope
from dockyard.distribution.client import (
    FetchedManifest,
    RegistryClient,
    Repository,
    RetryPolicy,
)
from dockyard.distribution.context import Context
from dockyard.distribution.endpoints import Endpoint, EndpointConfig, normalize_server_address
from dockyard.distribution.errors import (
    RegistryError,
    RegistryUnreachable,
    http_reason,
    translate_error,
    translate_pull_error,
)
from dockyard.distribution.metadata import BlobMetadata
from dockyard.distribution.platforms import DEFAULT_PLATFORM, parse_platform
from dockyard.distribution.progress import Progress, message
from dockyard.distribution.pull import PullJob
from dockyard.distribution.push import PushJob
from dockyard.errors import DockyardError, InvalidArgument, Unauthorized
from dockyard.images.service import ImageService
from dockyard.oci.descriptor import Platform
from dockyard.oci.image import validate_config
from dockyard.oci.manifest import parse_index, parse_manifest
from dockyard.reference import Reference

__all__ = ["Registries"]

log = logging.getLogger(__name__)


class Registries:
    """Pull, push, login and manifest inspection against OCI registries."""

    def __init__(
        self,
        images: ImageService,
        content: ContentStore,
        metadata: BlobMetadata,
        *,
        endpoints: EndpointConfig | None = None,
        retry: RetryPolicy | None = None,
        platform: Platform = DEFAULT_PLATFORM,
        workers: int = 16,
        max_downloads: int = 3,
        max_uploads: int = 5,
        max_unpacks: int = 2,
    ) -> None:
        self.endpoints = endpoints or EndpointConfig()
        self.platform = platform
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="distribution"
        )
        self._ctx = Context(
            images=images,
            content=content,
            metadata=metadata,
            executor=self._executor,
            retry=retry or RetryPolicy(),
            max_downloads=max_downloads,
            max_uploads=max_uploads,
            max_unpacks=max_unpacks,
        )
        self._http: aiohttp.ClientSession | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, limit_per_host=16),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=120),
                headers={"User-Agent": f"dockyard/{__version__} (linux)"},
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None and not self._http.closed:
            await self._http.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _client(
        self,
        endpoint: Endpoint,
        auth: AuthConfig,
        scopes: tuple[str, ...],
        *,
        offline: bool = False,
    ) -> RegistryClient:
        return RegistryClient(
            self._session(),
            endpoint,
            auth,
            scopes=scopes,
            retry=self._ctx.retry,
            offline_token=offline,
        )

    @staticmethod
    def _falls_back(endpoint: Endpoint, exc: BaseException) -> bool:
        if endpoint.mirror:
            return isinstance(exc, RegistryError | RegistryUnreachable | InvalidArgument)
        # https → http for an insecure registry: only when HTTPS got no answer at all
        return not endpoint.tls_verify and isinstance(exc, RegistryUnreachable)

    async def _resolve(
        self, ref: Reference, auth: AuthConfig
    ) -> tuple[Repository, FetchedManifest]:
        """Find the endpoint that serves ``ref`` and fetch its top manifest (or index)."""
        reference = ref.digest or ref.tag or "latest"
        endpoints = self.endpoints.endpoints(ref.domain)
        scopes = (repository_scope(ref.path, ["pull"]),)
        for i, endpoint in enumerate(endpoints):
            repo = Repository(self._client(endpoint, auth, scopes), ref.path)
            try:
                await repo.client.ping()
                return repo, await repo.get_manifest(reference)
            except (RegistryError, RegistryUnreachable, InvalidArgument) as exc:
                if i + 1 < len(endpoints) and self._falls_back(endpoint, exc):
                    log.info("%s: %s; trying the next endpoint", endpoint.url, exc)
                    continue
                raise translate_pull_error(exc, ref) from exc
        raise InvalidArgument(f"no endpoint serves {ref.domain}")  # pragma: no cover

    # -- pull --------------------------------------------------------------------------------

    async def resolve_pull(
        self, ref: Reference, auth: AuthConfig, platform: str | None = None
    ) -> PullJob:
        """Everything before the progress stream starts: endpoint, auth, top manifest.

        Raises Docker's pre-stream errors: ``NotFound`` ("manifest for X not found: …",
        "pull access denied for X, repository does not exist or may require 'docker
        login': …"), ``Unauthorized``, ``Unavailable`` (registry unreachable),
        ``InvalidArgument`` (bad platform)."""
        wanted = parse_platform(platform) if platform else self.platform
        ref = ref.with_default_tag()
        repo, top = await self._resolve(ref, auth)
        return PullJob(self._ctx, repo, ref, top, wanted, explicit_platform=bool(platform))

    async def pull(
        self,
        ref: Reference,
        auth: AuthConfig,
        report: Progress,
        platform: str | None = None,
    ) -> str:
        """``resolve_pull`` then run it; returns the image ID."""
        job = await self.resolve_pull(ref, auth, platform)
        return (await job.run(report)).image_id

    # -- push --------------------------------------------------------------------------------

    async def push(self, ref: Reference, auth: AuthConfig, report: Progress) -> None:
        """Push ``ref``'s tag (every tag of its repository when it has none). Progress and
        errors as dockerd: the first message names the repository, then everything,
        errors included, belongs to the stream."""
        report(message(f"The push refers to repository [{ref.name}]"))
        endpoints = self.endpoints.endpoints(ref.domain, mirrors=False)
        scopes = (repository_scope(ref.path, ["pull", "push"]),)
        for i, endpoint in enumerate(endpoints):
            repo = Repository(self._client(endpoint, auth, scopes), ref.path)
            try:
                await repo.client.ping()
            except (RegistryError, RegistryUnreachable) as exc:
                if i + 1 < len(endpoints) and self._falls_back(endpoint, exc):
                    continue
                raise translate_error(exc) from exc
            await PushJob(self._ctx, repo, ref).run(report)
            return

    # -- login -------------------------------------------------------------------------------

    async def login(self, auth: AuthConfig) -> tuple[str, str]:
        """``POST /auth``: check the credentials against the registry; (status, identity
        token). ``Unauthorized`` with dockerd's wording when they are refused."""
        domain = normalize_server_address(auth.server_address)
        endpoints = self.endpoints.endpoints(domain, mirrors=False)
        for i, endpoint in enumerate(endpoints):
            client = self._client(endpoint, auth, (), offline=True)
            url = f"{endpoint.url}/v2/"
            try:
                await client.ping()
                status = await client.check_login()
            except RegistryUnreachable as exc:
                if i + 1 < len(endpoints) and self._falls_back(endpoint, exc):
                    continue
                raise translate_error(exc) from exc
            except RegistryError as exc:
                raise Unauthorized(str(exc)) from exc
            if status == 200:
                return "Login Succeeded", client.refresh_token
            raise Unauthorized(
                f"login attempt to {url} failed with status: {status} {http_reason(status)}"
            )
        raise InvalidArgument(f"no endpoint serves {domain}")  # pragma: no cover

    # -- inspect -----------------------------------------------------------------------------

    async def inspect(self, ref: Reference, auth: AuthConfig) -> dict[str, Any]:
        """``GET /distribution/{name}/json``: the top descriptor and the platforms it offers."""
        ref = ref.with_default_tag()
        repo, top = await self._resolve(ref, auth)
        try:
            platforms: list[dict[str, Any]] = []
            if top.is_index:
                for entry in parse_index(top.data).manifests:
                    if entry.platform is not None:
                        platforms.append(entry.platform.to_json())
            else:
                manifest = parse_manifest(top.data)
                config = validate_config(
                    json.loads(await repo.fetch_small_blob(manifest.config.digest))
                )
                platform: dict[str, Any] = {
                    "architecture": config.get("architecture") or "",
                    "os": config.get("os") or "",
                }
                if config.get("variant"):
                    platform["variant"] = config["variant"]
                if config.get("os.version"):
                    platform["os.version"] = config["os.version"]
                platforms.append(platform)
        except DockyardError:
            raise
        except Exception as exc:
            raise translate_pull_error(exc, ref) from exc
        return {
            "Descriptor": {"mediaType": top.media_type, "digest": top.digest, "size": top.size},
            "Platforms": platforms,
        }
