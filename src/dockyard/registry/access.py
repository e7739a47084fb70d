"""The authorization hook: what each request asks for, and who decides.

Every route computes the list of ``Access`` it needs and awaits
``authorizer.authorize(request, access)`` before it touches storage:

=====================================================  =========================================
request                                                access
=====================================================  =========================================
``GET /v2/``                                           ``[]`` (authenticate only)
``GET /v2/_catalog``                                   ``registry:catalog:*``
``GET/HEAD`` manifests, blobs, tags list, referrers    ``repository:<name>:pull``
``PUT`` manifests, every upload request                ``repository:<name>:push,pull``
``POST`` upload with ``mount=&from=<other>``           the above + ``repository:<other>:pull``
``DELETE`` manifests, tags, blobs                      ``repository:<name>:delete``
=====================================================  =========================================

An ``Authorizer`` refuses by raising ``RegistryError(UNAUTHORIZED or DENIED, headers=
{"WWW-Authenticate": ...})``; returning means granted. ``routes()`` adds endpoints the scheme
needs (a token endpoint, say) to the application. ``build_authorizer`` picks one from the
configuration: the ``auth`` section is handed, as a dict, to ``dockyard.registry.auth.build``
(imported only then); without one every request is allowed.

Mounting without ``from`` asks the authorizer once per candidate source repository with
``repository:<source>:pull``; a refusal there is not an error, the mount just does not happen.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

__all__ = ["Access", "AllowAll", "Authorizer", "build_authorizer"]


@dataclass(frozen=True)
class Access:
    """One requested permission, as in a token scope ``<type>:<name>:<actions>``."""

    type: str  # "repository" or "registry"
    name: str  # repository name, or "catalog"
    actions: frozenset[str]  # {"pull"}, {"push", "pull"}, {"delete"}, {"*"}

    @classmethod
    def repository(cls, name: str, *actions: str) -> Access:
        return cls("repository", name, frozenset(actions))

    def scope(self) -> str:
        """The token-scope spelling: ``repository:library/nginx:pull,push``."""
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


@runtime_checkable
class Authorizer(Protocol):
    async def authorize(self, request: web.Request, access: list[Access]) -> None:
        """Return to grant; raise ``RegistryError(UNAUTHORIZED/DENIED, headers=...)`` to
        refuse."""
        ...

    def routes(self) -> list[web.RouteDef]:
        """Extra routes, e.g. the token endpoint."""
        ...


class AllowAll:
    """No auth configured: everything is allowed."""

    async def authorize(self, request: web.Request, access: list[Access]) -> None:
        return None

    def routes(self) -> list[web.RouteDef]:
        return []


def build_authorizer(config: Mapping[str, Any]) -> Authorizer:
    """``AllowAll`` unless the configuration has a non-empty ``auth`` section, which goes to
    ``dockyard.registry.auth.build(auth_config)``."""
    auth_config = config.get("auth")
    if not auth_config:
        return AllowAll()
    if not isinstance(auth_config, Mapping):
        raise ValueError("auth: expected a mapping")
    try:
        module = importlib.import_module("dockyard.registry.auth")
    except ModuleNotFoundError as exc:
        if exc.name not in ("dockyard.registry.auth",):
            raise
        raise ValueError(
            "auth is configured but this build has no dockyard.registry.auth"
        ) from None
    authorizer: Authorizer = module.build(dict(auth_config))
    return authorizer
