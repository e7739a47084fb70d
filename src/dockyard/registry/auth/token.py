"""Bearer-token auth the way Docker Hub does it, and the token server that goes with it.

The dance (Docker's token authentication spec)::

    client                         registry                              token server
      │ GET /v2/foo/manifests/x ──▶ │
      │ ◀── 401  WWW-Authenticate: Bearer realm="https://host/token",
      │          service="registry",scope="repository:foo:pull"
      │ GET /token?service=registry&scope=repository:foo:pull  (Basic credentials, optional) ──▶ │
      │ ◀── 200 {"token": JWT, "access_token": JWT, "expires_in": 300, "issued_at": ...} ────── │
      │ GET /v2/foo/manifests/x  Authorization: Bearer JWT ──▶ │  checks signature, iss, aud,
      │ ◀── 200                                                 │  exp/nbf and the access claim

:class:`TokenAuthorizer` is the registry side: on every route it verifies the JWT (signature by a
trusted key, ``iss`` = issuer, ``aud`` = service, ``exp``/``nbf`` with 60 s leeway as distribution)
and that its ``access`` claim covers what the route needs. Missing or invalid token: 401 with the
challenge (``error="invalid_token"`` for a bad one); a valid token without enough access: 401 with
``error="insufficient_scope"`` (401 rather than RFC 6750's 403 because that is what distribution
sends and what makes docker, podman and skopeo fetch a new token).

:class:`TokenServer` is the built-in token endpoint (enabled by a signing ``key``): ``GET`` with
optional Basic credentials (and ``offline_token=true`` for a refresh token), and ``POST`` with an
OAuth2 form (``grant_type=password`` or ``refresh_token``) as ``docker login`` sends. It grants the
intersection of what was asked and what the ACL allows; asking for more than allowed is not an
error, the token just says less (Docker Hub does the same). Errors use OAuth2's body
(``{"error": ..., "error_description": ...}``): 400 ``invalid_request``/``invalid_scope``/
``unsupported_grant_type``, 401 ``invalid_grant`` for wrong credentials or refresh tokens.

Refresh tokens are JWTs from the same key whose audience is ``<service>#refresh``, so they can
never pass as access tokens; a refresh is refused once the user is gone from the htpasswd file.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from dockyard.errors import InvalidArgument
from dockyard.registry.auth import jwt
from dockyard.registry.auth._common import (
    all_pull_only,
    basic_credentials,
    bearer_token,
    quote,
    refuse,
    scopes_of,
)
from dockyard.registry.auth.htpasswd import Htpasswd
from dockyard.registry.auth.scope import ACL, ANONYMOUS_PULL, Scope, covers, merge, parse_scopes

if TYPE_CHECKING:
    from dockyard.registry.access import Access

__all__ = ["LEEWAY_SECONDS", "TokenAuthorizer", "TokenServer", "TokenSettings"]

log = logging.getLogger(__name__)

LEEWAY_SECONDS = 60
_REFRESH_SUFFIX = "#refresh"


@dataclass(frozen=True)
class TokenSettings:
    """Parsed ``auth.token`` config; ``realm=None`` means this server's own ``path``."""

    service: str
    issuer: str
    trust: jwt.TrustStore
    realm: str | None = None
    path: str = "/token"
    signing_key: jwt.SigningKey | None = None
    users: Htpasswd | None = None
    acl: ACL = field(default_factory=lambda: ACL(()))
    expiration: int = 300
    refresh_expiration: int = 7 * 24 * 3600
    readonly_anonymous: bool = False

    def realm_for(self, request: web.Request) -> str:
        return self.realm or f"{request.scheme}://{request.host}{self.path}"


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise jwt.InvalidToken(f"claim {name} is not a number")
    return float(value)


def check_claims(claims: dict[str, Any], *, issuer: str, audience: str, now: float) -> None:
    """The registered claims distribution checks. Raises jwt.InvalidToken."""
    if claims.get("iss") != issuer:
        raise jwt.InvalidToken(f"token from untrusted issuer {claims.get('iss')!r}")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences:
        raise jwt.InvalidToken(f"token intended for another audience: {aud!r}")
    exp = _number(claims, "exp")
    if exp is None or now > exp + LEEWAY_SECONDS:
        raise jwt.InvalidToken("token expired")
    nbf = _number(claims, "nbf")
    if nbf is not None and now < nbf - LEEWAY_SECONDS:
        raise jwt.InvalidToken("token not valid yet")


def access_claim(claims: dict[str, Any]) -> list[Scope]:
    raw = claims.get("access") or []
    if not isinstance(raw, list):
        raise jwt.InvalidToken("access claim is not a list")
    scopes = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise jwt.InvalidToken("access claim entry is not an object")
        rtype, name, actions = entry.get("type"), entry.get("name"), entry.get("actions") or []
        if not isinstance(rtype, str) or not isinstance(name, str) or not isinstance(actions, list):
            raise jwt.InvalidToken("malformed access claim entry")
        scopes.append(Scope(rtype, name, frozenset(str(a) for a in actions)))
    return merge(scopes)


class TokenAuthorizer:
    """The ``Authorizer`` for ``auth: {token: {...}}``; serves the token endpoint if it has a key."""

    def __init__(self, settings: TokenSettings) -> None:
        self.settings = settings
        self.server = TokenServer(settings) if settings.signing_key is not None else None

    def routes(self) -> list[web.RouteDef]:
        return self.server.routes() if self.server is not None else []

    def _challenge(self, request: web.Request, scopes: Sequence[Scope], error: str | None) -> str:
        s = self.settings
        parts = [f"Bearer realm={quote(s.realm_for(request))}", f"service={quote(s.service)}"]
        if scopes:
            parts.append(f"scope={quote(' '.join(str(x) for x in scopes))}")
        if error:
            parts.append(f"error={quote(error)}")
        return ",".join(parts)

    async def authorize(self, request: web.Request, access: list[Access]) -> None:
        scopes = scopes_of(access)
        anonymous_ok = self.settings.readonly_anonymous and all_pull_only(scopes)
        raw = bearer_token(request)
        if raw is None:
            if anonymous_ok:
                return
            raise refuse(
                "UNAUTHORIZED",
                "authentication required",
                self._challenge(request, scopes, None),
                scopes,
            )
        try:
            claims = jwt.verify(raw, self.settings.trust)
            check_claims(
                claims,
                issuer=self.settings.issuer,
                audience=self.settings.service,
                now=time.time(),
            )
            granted = access_claim(claims)
        except jwt.InvalidToken as exc:
            log.info("refused bearer token: %s", exc)
            raise refuse(
                "UNAUTHORIZED",
                f"invalid token: {exc}",
                self._challenge(request, scopes, "invalid_token"),
                scopes,
            ) from None
        if anonymous_ok or all(covers(granted, s) for s in scopes):
            return
        raise refuse(
            "UNAUTHORIZED",
            "insufficient scope: the token does not grant this access",
            self._challenge(request, scopes, "insufficient_scope"),
            scopes,
        )


class _TokenError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def response(self, realm: str) -> web.Response:
        headers = {"Cache-Control": "no-store"}
        if self.status == 401:
            headers["WWW-Authenticate"] = f"Basic realm={quote(realm)}"
        return web.json_response(
            {"error": self.error, "error_description": self.description},
            status=self.status,
            headers=headers,
        )


def _rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(int(ts), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TokenServer:
    """The token endpoint: checks who asks, asks the ACL, signs a JWT."""

    def __init__(self, settings: TokenSettings) -> None:
        if settings.signing_key is None:
            raise InvalidArgument("the token server needs a signing key")
        self.settings = settings
        self.key: jwt.SigningKey = settings.signing_key
        acl = settings.acl
        if settings.readonly_anonymous:
            acl = acl.with_rule(ANONYMOUS_PULL)
        self.acl = acl

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(self.settings.path, self.handle_get),
            web.post(self.settings.path, self.handle_post),
        ]

    # -- who is asking -------------------------------------------------------------------------

    async def _password_user(self, user: str, password: str) -> str:
        users = self.settings.users
        if users is None or not await users.check(user, password):
            raise _TokenError(401, "invalid_grant", "incorrect username or password")
        return user

    def _refresh_user(self, token: str) -> str:
        try:
            claims = jwt.verify(token, self.settings.trust)
            check_claims(
                claims,
                issuer=self.settings.issuer,
                audience=self.settings.service + _REFRESH_SUFFIX,
                now=time.time(),
            )
        except jwt.InvalidToken as exc:
            raise _TokenError(401, "invalid_grant", f"invalid refresh token: {exc}") from None
        user = claims.get("sub")
        users = self.settings.users
        if not isinstance(user, str) or not user or users is None or user not in users:
            raise _TokenError(401, "invalid_grant", "the refresh token's user no longer exists")
        return user

    def _check_service(self, service: str | None) -> None:
        if service and service != self.settings.service:
            raise _TokenError(400, "invalid_request", f"unknown service {service!r}")

    @staticmethod
    def _scopes(values: list[str]) -> list[Scope]:
        try:
            return parse_scopes(values)
        except InvalidArgument as exc:
            raise _TokenError(400, "invalid_scope", exc.message) from None

    # -- what they get -------------------------------------------------------------------------

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.sign(claims, self.key)

    def issue(
        self, user: str | None, requested: Sequence[Scope], now: float
    ) -> tuple[str, list[Scope]]:
        """A signed access token for what the ACL grants ``user`` (None: anonymous) of ``requested``."""
        granted = self.acl.grant(user, requested)
        claims = {
            "iss": self.settings.issuer,
            "sub": user or "",
            "aud": self.settings.service,
            "exp": int(now) + self.settings.expiration,
            "nbf": int(now),
            "iat": int(now),
            "jti": jwt.b64url_encode(os.urandom(16)),
            "access": [s.claim() for s in granted],
        }
        return self._sign(claims), granted

    def refresh_token(self, user: str, now: float) -> str:
        return self._sign(
            {
                "iss": self.settings.issuer,
                "sub": user,
                "aud": self.settings.service + _REFRESH_SUFFIX,
                "exp": int(now) + self.settings.refresh_expiration,
                "nbf": int(now),
                "iat": int(now),
                "jti": jwt.b64url_encode(os.urandom(16)),
            }
        )

    def _reply(self, body: dict[str, Any]) -> web.Response:
        return web.json_response(
            body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}, dumps=json.dumps
        )

    # -- handlers ------------------------------------------------------------------------------

    async def handle_get(self, request: web.Request) -> web.Response:
        try:
            self._check_service(request.query.get("service"))
            scopes = self._scopes(request.query.getall("scope", []))
            user: str | None = None
            if request.headers.get("Authorization"):
                credentials = basic_credentials(request)
                if credentials is None:
                    raise _TokenError(401, "invalid_request", "want Basic credentials or none")
                user = await self._password_user(*credentials)
            now = time.time()
            token, granted = self.issue(user, scopes, now)
        except _TokenError as exc:
            return exc.response(self.settings.realm_for(request))
        log.info("token for %s: %s", user or "anonymous", " ".join(str(s) for s in granted))
        body: dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": self.settings.expiration,
            "issued_at": _rfc3339(now),
        }
        if user is not None and request.query.get("offline_token") == "true":
            body["refresh_token"] = self.refresh_token(user, now)
        return self._reply(body)

    async def handle_post(self, request: web.Request) -> web.Response:
        form = await request.post()

        def form_field(name: str) -> str:
            value = form.get(name)
            return value if isinstance(value, str) else ""

        try:
            self._check_service(form_field("service"))
            scopes = self._scopes([form_field("scope")])
            grant_type = form_field("grant_type")
            refresh = ""
            if grant_type == "password":
                user = await self._password_user(form_field("username"), form_field("password"))
            elif grant_type == "refresh_token":
                refresh = form_field("refresh_token")
                user = self._refresh_user(refresh)
            else:
                raise _TokenError(
                    400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported"
                )
            now = time.time()
            token, granted = self.issue(user, scopes, now)
        except _TokenError as exc:
            return exc.response(self.settings.realm_for(request))
        log.info("token for %s: %s", user, " ".join(str(s) for s in granted))
        body: dict[str, Any] = {
            "access_token": token,
            "token": token,
            "scope": " ".join(str(s) for s in granted),
            "expires_in": self.settings.expiration,
            "issued_at": _rfc3339(now),
        }
        if form_field("access_type") == "offline":
            body["refresh_token"] = refresh or self.refresh_token(user, now)
        return self._reply(body)
