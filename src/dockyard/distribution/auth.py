"""Registry authentication, the pure part: challenges, credentials, token requests and replies.

The flow (distribution's ``registry/client/auth``, what dockerd does):

1. ``GET /v2/``: 200 means no auth; 401 carries ``WWW-Authenticate`` challenges.
2. ``Basic realm=…``: send ``Authorization: Basic base64(user:pass)`` on every request.
3. ``Bearer realm=R,service=S``: get a token from ``R?service=S&scope=repository:P:pull``
   (HTTP basic auth with the user's credentials, none for anonymous pulls), or, with an
   identity (refresh) token, ``POST R`` the OAuth2 form ``grant_type=refresh_token``; then send
   ``Authorization: Bearer <token>``. A later 401 whose challenge names more scope
   (``error="insufficient_scope"``) gets a new token for the union of scopes.

I/O lives in ``client.py``; everything here is a pure function of its inputs.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument

__all__ = [
    "CLIENT_ID",
    "AuthConfig",
    "Challenge",
    "Token",
    "basic_header",
    "oauth_form",
    "parse_challenges",
    "parse_token_response",
    "repository_scope",
    "token_query",
]

CLIENT_ID = "docker"
_MIN_TOKEN_LIFETIME = 60.0


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: scheme (lower case) and its parameters."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scopes(self) -> list[str]:
        """Scopes the server asked for (space separated in one ``scope`` parameter)."""
        return [s for s in self.params.get("scope", "").split(" ") if s]


_SEPARATORS = " \t,="


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    """A quoted-string starting at ``text[pos] == '"'``; returns (value, position after)."""
    out: list[str] = []
    pos += 1
    while pos < len(text):
        ch = text[pos]
        if ch == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
            continue
        if ch == '"':
            return "".join(out), pos + 1
        out.append(ch)
        pos += 1
    return "".join(out), pos  # unterminated: take the rest, as Go's parser does


def _skip(text: str, pos: int, chars: str) -> int:
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` header values (RFC 7235; several per header allowed).

    ``Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`` →
    ``[Challenge("bearer", {"realm": …, "service": "reg", "scope": …})]``. Parameter names
    are lower-cased; unknown schemes are kept (the caller picks what it supports).
    """
    out: list[Challenge] = []
    for header in values:
        current: dict[str, str] | None = None
        pos = 0
        while pos < len(header):
            pos = _skip(header, pos, " \t,")
            start = pos
            while pos < len(header) and header[pos] not in _SEPARATORS:
                pos += 1
            token = header[start:pos]
            if not token:
                pos += 1  # a stray '='
                continue
            after = _skip(header, pos, " \t")
            if after < len(header) and header[after] == "=" and current is not None:
                pos = _skip(header, after + 1, " \t")
                if pos < len(header) and header[pos] == '"':
                    value, pos = _read_quoted(header, pos)
                else:
                    start = pos
                    while pos < len(header) and header[pos] not in " \t,":
                        pos += 1
                    value = header[start:pos]
                current[token.lower()] = value
            elif after < len(header) and header[after] == "=":
                pos = after + 1  # a parameter before any scheme: ignore it
                if pos < len(header) and header[pos] == '"':
                    _, pos = _read_quoted(header, pos)
            else:
                current = {}
                out.append(Challenge(token.lower(), current))
                pos = after
    return out


@dataclass(frozen=True)
class AuthConfig:
    """Credentials for one registry, as the docker CLI sends them (``X-Registry-Auth``,
    ``POST /auth``). Empty means anonymous."""

    username: str = ""
    password: str = ""
    server_address: str = ""
    identity_token: str = ""
    registry_token: str = ""

    @property
    def has_credentials(self) -> bool:
        return bool(self.username or self.password or self.identity_token)

    @classmethod
    def from_json(cls, obj: Any) -> AuthConfig:
        """From the auth-config JSON (keys in any case; ``auth`` = base64 "user:pass")."""
        if obj is None:
            return cls()
        if not isinstance(obj, dict):
            raise InvalidArgument("invalid auth configuration: expected a JSON object")
        lowered = {str(k).lower(): v for k, v in obj.items()}

        def text(key: str) -> str:
            value = lowered.get(key)
            return value if isinstance(value, str) else ""

        username, password = text("username"), text("password")
        encoded = text("auth")
        if encoded and not username and not password:
            try:
                decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidArgument("invalid auth configuration: bad 'auth' field") from None
            username, _, password = decoded.partition(":")
        return cls(
            username=username,
            password=password,
            server_address=text("serveraddress"),
            identity_token=text("identitytoken"),
            registry_token=text("registrytoken"),
        )

    @classmethod
    def from_header(cls, value: str | None) -> AuthConfig:
        """Decode ``X-Registry-Auth``: base64url JSON (padding optional; standard base64 and
        empty headers accepted, as dockerd does)."""
        if value is None or not value.strip():
            return cls()
        raw = value.strip()
        try:
            data = base64.urlsafe_b64decode(
                raw.replace("+", "-").replace("/", "_") + "=" * (-len(raw) % 4)
            )
            obj = json.loads(data) if data.strip() else {}
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise InvalidArgument("invalid X-Registry-Auth header: not base64 JSON") from None
        return cls.from_json(obj)


def basic_header(username: str, password: str) -> str:
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def repository_scope(path: str, actions: Iterable[str]) -> str:
    """``repository:library/busybox:pull,push``."""
    return f"repository:{path}:{','.join(actions)}"


def token_query(
    challenge: Challenge, scopes: Iterable[str], auth: AuthConfig, *, offline: bool
) -> list[tuple[str, str]]:
    """Query parameters of a token ``GET`` (distribution's fetchTokenWithBasicAuth)."""
    params: list[tuple[str, str]] = []
    if challenge.service:
        params.append(("service", challenge.service))
    for scope in scopes:
        params.append(("scope", scope))
    if auth.username:
        params.append(("account", auth.username))
    if offline:
        params.append(("offline_token", "true"))
        params.append(("client_id", CLIENT_ID))
    return params


def oauth_form(
    challenge: Challenge, scopes: Iterable[str], auth: AuthConfig, *, offline: bool
) -> dict[str, str]:
    """The OAuth2 form of a token ``POST`` (fetchTokenWithOAuth): a refresh-token grant
    when there is an identity token, else a password grant."""
    form = {"client_id": CLIENT_ID, "scope": " ".join(scopes)}
    if challenge.service:
        form["service"] = challenge.service
    if auth.identity_token:
        form["grant_type"] = "refresh_token"
        form["refresh_token"] = auth.identity_token
    else:
        form["grant_type"] = "password"
        form["username"] = auth.username
        form["password"] = auth.password
        if offline:
            form["access_type"] = "offline"
    return form


@dataclass(frozen=True)
class Token:
    """A bearer token and when to stop using it (``time.monotonic()`` seconds)."""

    token: str
    expires_at: float
    refresh_token: str = ""

    def valid(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) < self.expires_at


def parse_token_response(body: bytes, now: float | None = None) -> Token:
    """``{"token"|"access_token": …, "expires_in": N, "refresh_token": …}``; at least 60 s.
    ``InvalidArgument`` when there is no token."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("invalid token response: not JSON") from None
    if not isinstance(obj, dict):
        raise InvalidArgument("invalid token response: expected a JSON object")
    token = obj.get("access_token") or obj.get("token")
    if not isinstance(token, str) or not token:
        raise InvalidArgument("invalid token response: no token")
    lifetime = obj.get("expires_in")
    seconds = (
        float(lifetime)
        if isinstance(lifetime, int | float) and not isinstance(lifetime, bool)
        else 0.0
    )
    seconds = max(seconds, _MIN_TOKEN_LIFETIME)
    refresh = obj.get("refresh_token")
    start = now if now is not None else time.monotonic()
    # renew a little early, as clients do, so a token never expires in flight
    return Token(token, start + seconds * 0.9, refresh if isinstance(refresh, str) else "")
