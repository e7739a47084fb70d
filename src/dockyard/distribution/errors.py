"""What registries answer, and how it becomes an engine error with Docker's wording.

    Exception
    ├── RegistryError        the registry answered with an error status (OCI error body parsed)
    └── RegistryUnreachable  no HTTP answer at all: refused, reset, TLS failure, timeout

Both stay inside ``distribution``: every public entry point turns them into ``dockyard.errors``
with ``translate_pull_error`` / ``translate_error`` (moby ``distribution/errors.go``), so
callers only ever see ``NotFound``, ``Unauthorized`` … with the message the docker CLI prints.
"""

from __future__ import annotations

import errno
import json
import socket
from dataclasses import dataclass
from typing import Any

from dockyard import errors
from dockyard.reference import Reference

__all__ = [
    "RegistryError",
    "RegistryUnreachable",
    "describe_connection_error",
    "parse_error_body",
    "translate_error",
    "translate_pull_error",
]

_HTTP_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# distribution's registered messages for codes a body may leave without one
_DEFAULT_MESSAGES = {
    "UNAUTHORIZED": "authentication required",
    "DENIED": "requested access to the resource is denied",
    "MANIFEST_UNKNOWN": "manifest unknown",
    "NAME_UNKNOWN": "repository name not known to registry",
    "BLOB_UNKNOWN": "blob unknown to registry",
    "TOOMANYREQUESTS": "too many requests",
}


def http_reason(status: int) -> str:
    return _HTTP_REASONS.get(status, "")


@dataclass(eq=False)
class RegistryError(Exception):
    """An error response. ``code`` is the first OCI error code ('' when the body had none)."""

    status: int
    code: str
    message: str
    detail: Any = None

    def __str__(self) -> str:
        # errcode.Error.Error(): "<code lowercased, underscores as spaces>: <message>"
        if self.code:
            return f"{self.code.lower().replace('_', ' ')}: {self.message}"
        return self.message


@dataclass(eq=False)
class RegistryUnreachable(Exception):
    """No usable HTTP answer (Go's ``url.Error``): ``Get "http://…/v2/": <reason>``."""

    method: str
    url: str
    reason: str

    def __str__(self) -> str:
        return f'{self.method.capitalize()} "{self.url}": {self.reason}'


def parse_error_body(status: int, body: bytes) -> RegistryError:
    """The first error of an OCI error body; token servers' ``{"details": …}`` too.

    A body that is not an error document gives a generic error for the status, as
    distribution's client does (401 → UNAUTHORIZED "authentication required").
    """
    obj: Any = None
    try:
        obj = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        obj = None
    if isinstance(obj, dict):
        errs = obj.get("errors")
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            first = errs[0]
            code = str(first.get("code") or "").upper()
            message = first.get("message")
            if not isinstance(message, str) or not message:
                message = _DEFAULT_MESSAGES.get(code, code.lower().replace("_", " "))
            return RegistryError(status, code, message, first.get("detail"))
        details = obj.get("details")
        if isinstance(details, str) and details and status == 401:
            return RegistryError(status, "UNAUTHORIZED", details)
    if status == 401:
        return RegistryError(status, "UNAUTHORIZED", _DEFAULT_MESSAGES["UNAUTHORIZED"])
    if status == 403:
        return RegistryError(status, "DENIED", _DEFAULT_MESSAGES["DENIED"])
    if status == 429:
        return RegistryError(status, "TOOMANYREQUESTS", _DEFAULT_MESSAGES["TOOMANYREQUESTS"])
    text = body[:200].decode("utf-8", "replace").strip()
    reason = f"{status} {http_reason(status)}".strip()
    message = f"received unexpected HTTP status: {reason}"
    if text:
        message += f" ({text})"
    return RegistryError(status, "", message)


def describe_connection_error(exc: BaseException, host: str) -> str:
    """Go's wording for dial failures, so messages read like Docker's."""
    os_error: BaseException = getattr(exc, "os_error", None) or exc
    while not isinstance(os_error, OSError) and os_error.__cause__ is not None:
        os_error = os_error.__cause__
    if isinstance(os_error, socket.gaierror):
        return f"dial tcp: lookup {host.rsplit(':', 1)[0]}: no such host"
    number = getattr(exc, "errno", None) or getattr(os_error, "errno", None)
    if number == errno.ECONNREFUSED:
        return f"dial tcp {host}: connect: connection refused"
    if number == errno.ECONNRESET:
        return f"read tcp {host}: read: connection reset by peer"
    if isinstance(exc, TimeoutError):
        return f"dial tcp {host}: i/o timeout"
    text = str(exc) or type(exc).__name__
    return text


def _not_found_text(err: RegistryError, ref: Reference) -> str | None:
    if err.code == "DENIED" or err.code == "NAME_UNKNOWN":
        # moby says "repository X not found" for NAME_UNKNOWN; we give Docker Hub's
        # well-known hint for both, keeping the registry's own cause after the colon.
        return (
            f"pull access denied for {ref.familiar_name}, repository does not exist or may"
            f" require 'docker login': {err}"
        )
    if err.code == "MANIFEST_UNKNOWN":
        return f"manifest for {ref.familiar()} not found: {err}"
    return None


def translate_pull_error(exc: BaseException, ref: Reference) -> errors.DockyardError:
    """moby's translatePullError: missing repositories and manifests are 404s."""
    if isinstance(exc, errors.DockyardError):
        return exc
    if isinstance(exc, RegistryError):
        text = _not_found_text(exc, ref)
        if text is not None:
            return errors.NotFound(text)
    return translate_error(exc)


def translate_error(exc: BaseException) -> errors.DockyardError:
    """Any registry failure as an engine error (status class from the registry's answer)."""
    if isinstance(exc, errors.DockyardError):
        return exc
    if isinstance(exc, RegistryUnreachable):
        return errors.Unavailable(str(exc))
    if isinstance(exc, RegistryError):
        text = str(exc)
        if exc.status == 401 or exc.code == "UNAUTHORIZED":
            return errors.Unauthorized(text)
        if exc.code == "DENIED" or exc.status == 403:
            return errors.Forbidden(text)
        if exc.status == 404:
            return errors.NotFound(text)
        if exc.status == 429 or exc.status >= 500:
            return errors.Unavailable(text)
        if exc.status == 400:
            return errors.InvalidArgument(text)
        return errors.SystemError(text)
    return errors.SystemError(str(exc) or type(exc).__name__)
