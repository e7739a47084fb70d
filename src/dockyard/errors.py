"""Typed errors raised by every layer; transports map them to status codes in one place.

    DockyardError
    ├── NotFound          a named thing does not exist (HTTP 404)
    ├── Conflict          the request clashes with current state (HTTP 409)
    ├── InvalidArgument   the caller sent something malformed or unsupported (HTTP 400)
    ├── Forbidden         allowed in general, refused here (HTTP 403)
    ├── Unauthorized      credentials missing or wrong (HTTP 401)
    ├── NotModified       nothing to do: already in the asked state (HTTP 304)
    ├── Unavailable       a dependency is down or timed out (HTTP 503)
    ├── Unsupported       valid, but this configuration cannot do it (HTTP 501)
    └── SystemError       the engine failed doing what was asked (HTTP 500)

The message is what a user sees; it follows Docker's wording where scripts parse it.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "DockyardError",
    "Forbidden",
    "InvalidArgument",
    "NotFound",
    "NotModified",
    "SystemError",
    "Unauthorized",
    "Unavailable",
    "Unsupported",
]


class DockyardError(Exception):
    """Base of every error the engine raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(DockyardError):
    pass


class Conflict(DockyardError):
    pass


class InvalidArgument(DockyardError):
    pass


class Forbidden(DockyardError):
    pass


class Unauthorized(DockyardError):
    pass


class NotModified(DockyardError):
    pass


class Unavailable(DockyardError):
    pass


class Unsupported(DockyardError):
    pass


class SystemError(DockyardError):
    pass
