"""HTTP Basic authentication against an htpasswd file, as CNCF distribution's ``htpasswd`` auth.

Refusals:

- no credentials, or wrong ones: 401 UNAUTHORIZED with ``WWW-Authenticate: Basic realm="…"``;
- right credentials, but the ACL does not allow the action: 403 DENIED.

Without an ACL every signed-in user may do everything (distribution's behaviour). With
``readonly_anonymous``, requests that only pull go through without credentials; the version
check ``GET /v2/`` still answers 401 to anonymous callers, because that is how clients learn the
realm before they push.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockyard.registry.auth._common import (
    all_pull_only,
    basic_credentials,
    quote,
    refuse,
    scopes_of,
)
from dockyard.registry.auth.htpasswd import Htpasswd
from dockyard.registry.auth.scope import ACL

if TYPE_CHECKING:
    from aiohttp import web

    from dockyard.registry.access import Access

__all__ = ["BasicAuthorizer"]


class BasicAuthorizer:
    """The ``Authorizer`` for ``auth: {htpasswd: {realm, path, acl?}}``."""

    def __init__(
        self, users: Htpasswd, realm: str, acl: ACL, *, readonly_anonymous: bool = False
    ) -> None:
        self.users = users
        self.realm = realm
        self.acl = acl
        self.readonly_anonymous = readonly_anonymous

    def routes(self) -> list[web.RouteDef]:
        return []

    async def authorize(self, request: web.Request, access: list[Access]) -> None:
        scopes = scopes_of(access)
        anonymous_ok = self.readonly_anonymous and all_pull_only(scopes)
        challenge = f"Basic realm={quote(self.realm)}"
        credentials = basic_credentials(request)
        if credentials is None:
            if anonymous_ok:
                return
            raise refuse("UNAUTHORIZED", "authentication required", challenge, scopes)
        user, password = credentials
        if not await self.users.check(user, password):
            raise refuse("UNAUTHORIZED", "invalid username or password", challenge, scopes)
        if anonymous_ok or all(self.acl.permits(user, s) for s in scopes):
            return
        raise refuse("DENIED", "requested access to the resource is denied", None, scopes)
