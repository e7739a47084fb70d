"""What both authorizers share: reading the Authorization header, and refusing a request."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from dockyard.registry.auth.scope import Scope, merge

if TYPE_CHECKING:
    from aiohttp import web

    from dockyard.registry.access import Access

__all__ = [
    "basic_credentials",
    "bearer_token",
    "quote",
    "refuse",
    "scopes_of",
]


def scopes_of(access: Iterable[Access]) -> list[Scope]:
    return merge(Scope(a.type, a.name, frozenset(a.actions)) for a in access)


def all_pull_only(scopes: Sequence[Scope]) -> bool:
    """True for a non-empty list of repository pulls: what anonymous read-only mode lets through."""
    return bool(scopes) and all(s.pull_only for s in scopes)


def _authorization(request: web.Request, scheme: str) -> str | None:
    value = request.headers.get("Authorization", "")
    prefix, _, rest = value.strip().partition(" ")
    if prefix.lower() != scheme or not rest.strip():
        return None
    return rest.strip()


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """``(user, password)`` from a Basic Authorization header; None if absent or unreadable."""
    encoded = _authorization(request, "basic")
    if encoded is None:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        return None
    return user, password


def bearer_token(request: web.Request) -> str | None:
    return _authorization(request, "bearer")


def quote(value: str) -> str:
    """An RFC 7230 quoted-string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _detail(scopes: Sequence[Scope]) -> list[dict[str, str]]:
    # The shape distribution puts in an UNAUTHORIZED error's detail: one entry per action.
    return [
        {"Type": s.type, "Name": s.name, "Action": action}
        for s in scopes
        for action in sorted(s.actions)
    ]


def refuse(
    code: Literal["UNAUTHORIZED", "DENIED"],
    message: str,
    challenge: str | None,
    scopes: Sequence[Scope],
) -> Exception:
    """The registry error for a refusal: 401 with a challenge, or 403; the envelope is the OCI one."""
    from dockyard.registry import errcode

    headers = {"WWW-Authenticate": challenge} if challenge is not None else None
    return errcode.RegistryError(
        errcode.UNAUTHORIZED if code == "UNAUTHORIZED" else errcode.DENIED,
        message,
        _detail(scopes) or None,
        headers=headers,
    )
