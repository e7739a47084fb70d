"""Authentication and authorization for dockyard-registry: htpasswd Basic auth and bearer tokens.

The registry asks one question of an authorizer, on every route: may this request have these
accesses (``repository:<name>:pull`` …)? :func:`build` makes the authorizer from the ``auth``
section of the registry config, which follows CNCF distribution's where the two overlap::

    auth:
      readonly_anonymous: false     # true: pulls need no credentials, push/delete still do
      htpasswd:                     # Basic auth (distribution's "htpasswd")
        realm: dockyard-registry
        path: /etc/dockyard-registry/htpasswd      # bcrypt entries (htpasswd -B)
        acl: [...]                  # optional; default: every signed-in user may do anything

    auth:
      token:                        # Bearer tokens (distribution's "token")
        realm: https://registry.example/token      # optional: default <this server>/token
        service: dockyard-registry  # the tokens' audience
        issuer: dockyard-token      # the tokens' issuer
        rootcertbundle: /etc/dockyard-registry/token.crt   # certificates of trusted signers
        jwks: /etc/dockyard-registry/jwks.json             # and/or a JWK set of trusted keys
        # the built-in token server, served at realm's path (default /token):
        key: /etc/dockyard-registry/token.key    # PEM RSA or EC private key; its public half is trusted
        users: /etc/dockyard-registry/htpasswd   # who can sign in
        acl:                                     # what they get (see scope.py)
          - {account: "admin", type: "*", name: "*", actions: ["*"]}
          - {account: "*", name: "${account}/*", actions: [pull, push, delete]}
          - {account: "", name: "public/*", actions: [pull]}
        expiration: 300             # access token lifetime, seconds
        refresh_expiration: 604800  # refresh token lifetime, seconds

Errors: :func:`build` raises :class:`dockyard.errors.InvalidArgument` for a bad section, naming the
key; an authorizer raises the registry's ``RegistryError`` (UNAUTHORIZED 401, DENIED 403).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dockyard.errors import InvalidArgument
from dockyard.registry.auth import jwt
from dockyard.registry.auth.basic import BasicAuthorizer
from dockyard.registry.auth.htpasswd import Htpasswd
from dockyard.registry.auth.scope import ACL, EVERYONE_SIGNED_IN, Rule, Scope
from dockyard.registry.auth.token import TokenAuthorizer, TokenServer, TokenSettings

__all__ = [
    "ACL",
    "BasicAuthorizer",
    "Htpasswd",
    "Rule",
    "Scope",
    "TokenAuthorizer",
    "TokenServer",
    "TokenSettings",
    "build",
]

_TOP_KEYS = {"readonly_anonymous", "htpasswd", "token"}
_HTPASSWD_KEYS = {"realm", "path", "acl"}
_TOKEN_KEYS = {
    "realm",
    "service",
    "issuer",
    "rootcertbundle",
    "jwks",
    "key",
    "users",
    "acl",
    "expiration",
    "refresh_expiration",
}


def _section(raw: object, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidArgument(f"{where} must be a mapping")
    unknown = set(raw) - allowed
    if unknown:
        raise InvalidArgument(f"{where}: unknown keys {sorted(unknown)}")
    return raw


def _string(section: Mapping[str, Any], key: str, where: str, *, required: bool) -> str | None:
    value = section.get(key)
    if value is None or value == "":
        if required:
            raise InvalidArgument(f"{where}.{key} is required")
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"{where}.{key} must be a string")
    return value


def _seconds(section: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 60:
        raise InvalidArgument(f"{where}.{key} must be a whole number of seconds, at least 60")
    return value


def _acl(section: Mapping[str, Any], where: str) -> ACL:
    if "acl" not in section:
        return EVERYONE_SIGNED_IN
    return ACL.parse(section["acl"], where=f"{where}.acl")


def _load_jwks(path: Path, trust: jwt.TrustStore) -> None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        keys = [jwt.jwk_public_key(k) for k in doc["keys"]]
    except (OSError, ValueError, KeyError, TypeError, jwt.InvalidToken) as exc:
        raise InvalidArgument(f"cannot load JWK set {path}: {exc}") from exc
    for raw, key in zip(doc["keys"], keys, strict=True):
        trust.add_key(key)
        if isinstance(raw.get("kid"), str):
            trust.keys[raw["kid"]] = key


def _build_htpasswd(raw: object, readonly_anonymous: bool) -> BasicAuthorizer:
    where = "auth.htpasswd"
    section = _section(raw, where, _HTPASSWD_KEYS)
    path = _string(section, "path", where, required=True)
    realm = _string(section, "realm", where, required=False) or "dockyard-registry"
    assert path is not None
    return BasicAuthorizer(
        Htpasswd(Path(path)),
        realm,
        _acl(section, where),
        readonly_anonymous=readonly_anonymous,
    )


def _build_token(raw: object, readonly_anonymous: bool) -> TokenAuthorizer:
    where = "auth.token"
    section = _section(raw, where, _TOKEN_KEYS)
    service = _string(section, "service", where, required=True)
    issuer = _string(section, "issuer", where, required=True)
    assert service is not None and issuer is not None
    realm = _string(section, "realm", where, required=False)
    trust = jwt.TrustStore()
    bundle = _string(section, "rootcertbundle", where, required=False)
    if bundle is not None:
        trust.add_certificates(jwt.load_certificates(Path(bundle)))
    jwks = _string(section, "jwks", where, required=False)
    if jwks is not None:
        _load_jwks(Path(jwks), trust)
    key_path = _string(section, "key", where, required=False)
    signing_key = jwt.load_signing_key(Path(key_path)) if key_path is not None else None
    if signing_key is not None:
        trust.add_key(signing_key.public)
    if not trust.keys:
        raise InvalidArgument(f"{where} needs a key, a rootcertbundle or a jwks to trust tokens")
    users_path = _string(section, "users", where, required=False)
    if signing_key is None and ("users" in section or "acl" in section):
        raise InvalidArgument(f"{where}: users and acl belong to the token server, which needs key")
    path = "/token"
    if realm is not None:
        path = urlsplit(realm).path or "/token"
    return TokenAuthorizer(
        TokenSettings(
            service=service,
            issuer=issuer,
            trust=trust,
            realm=realm,
            path=path,
            signing_key=signing_key,
            users=Htpasswd(Path(users_path)) if users_path is not None else None,
            acl=_acl(section, where),
            expiration=_seconds(section, "expiration", where, 300),
            refresh_expiration=_seconds(section, "refresh_expiration", where, 7 * 24 * 3600),
            readonly_anonymous=readonly_anonymous,
        )
    )


def build(auth_config: Mapping[str, Any]) -> BasicAuthorizer | TokenAuthorizer:
    """The authorizer the ``auth`` section describes. Raises InvalidArgument."""
    section = _section(auth_config, "auth", _TOP_KEYS)
    readonly = section.get("readonly_anonymous", False)
    if not isinstance(readonly, bool):
        raise InvalidArgument("auth.readonly_anonymous must be true or false")
    methods = [m for m in ("htpasswd", "token") if m in section]
    if len(methods) != 1:
        raise InvalidArgument("auth needs exactly one of htpasswd or token")
    if methods[0] == "htpasswd":
        return _build_htpasswd(section["htpasswd"], readonly)
    return _build_token(section["token"], readonly)
