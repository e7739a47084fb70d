"""The registry's error codes, registered once with their HTTP status, and the one writer.

Every error a client sees has the OCI envelope::

    {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": ...}]}

Handlers raise ``RegistryError(code, message, detail, headers=...)`` and never choose a status:
the code's registration does. A few situations share a wire code with another status (the spec
allows only its fourteen codes in a 4xx body, but prescribes 413 and 416 for some of them);
each is registered under its own name here, with the wire code it reports:

=========================  =====================  ======  =====================================
name                       wire code              status  raised when
=========================  =====================  ======  =====================================
BLOB_UNKNOWN               BLOB_UNKNOWN           404     blob not in the repository
BLOB_UPLOAD_INVALID        BLOB_UPLOAD_INVALID    400     malformed upload request
BLOB_UPLOAD_UNKNOWN        BLOB_UPLOAD_UNKNOWN    404     no such upload session
DIGEST_INVALID             DIGEST_INVALID         400     malformed digest, or content mismatch
MANIFEST_BLOB_UNKNOWN      MANIFEST_BLOB_UNKNOWN  400     manifest names blobs/manifests we lack
MANIFEST_INVALID           MANIFEST_INVALID       400     manifest or tag we will not store
MANIFEST_UNKNOWN           MANIFEST_UNKNOWN       404     no such manifest or tag
NAME_INVALID               NAME_INVALID           400     repository name outside the grammar
NAME_UNKNOWN               NAME_UNKNOWN           404     repository has no manifests
SIZE_INVALID               SIZE_INVALID           400     declared length differs from content
UNAUTHORIZED               UNAUTHORIZED           401     authentication required (auth hook)
DENIED                     DENIED                 403     access refused (auth hook)
UNSUPPORTED                UNSUPPORTED            405     method not allowed, deletes disabled,
                                                          read-only mode
TOOMANYREQUESTS            TOOMANYREQUESTS        429     rate limit exceeded
UPLOAD_RANGE_INVALID       BLOB_UPLOAD_INVALID    416     chunk out of order
RANGE_NOT_SATISFIABLE      SIZE_INVALID           416     blob Range outside the blob
MANIFEST_TOO_LARGE         MANIFEST_INVALID       413     manifest over the size limit
PAGINATION_INVALID         UNSUPPORTED            400     ``n`` is not a non-negative integer
UNKNOWN                    UNKNOWN                500     a bug or a storage failure (5xx
                                                          bodies are not bound to the list)
=========================  =====================  ======  =====================================

``from_exception`` is the one mapping from the typed storage errors to these codes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from dockyard.registry.schema import ManifestInvalid
from dockyard.registry.storage import errors as storage_errors

__all__ = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DENIED",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_TOO_LARGE",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "PAGINATION_INVALID",
    "RANGE_NOT_SATISFIABLE",
    "SIZE_INVALID",
    "TOOMANYREQUESTS",
    "UNAUTHORIZED",
    "UNKNOWN",
    "UNSUPPORTED",
    "UPLOAD_RANGE_INVALID",
    "ErrorCode",
    "RegistryError",
    "error_response",
    "from_exception",
    "registered",
]


@dataclass(frozen=True)
class ErrorCode:
    name: str
    value: str  # the wire code
    message: str  # the default message
    status: int
    description: str


_REGISTRY: dict[str, ErrorCode] = {}


def _register(
    name: str, message: str, status: int, description: str, *, value: str | None = None
) -> ErrorCode:
    if name in _REGISTRY:
        raise RuntimeError(f"error code {name} registered twice")
    code = ErrorCode(name, value or name, message, status, description)
    if any(c.value == code.value and c.status == status for c in _REGISTRY.values()):
        raise RuntimeError(f"{code.value} with status {status} registered twice")
    _REGISTRY[name] = code
    return code


def registered() -> list[ErrorCode]:
    """Every registered code, in registration order."""
    return list(_REGISTRY.values())


BLOB_UNKNOWN = _register(
    "BLOB_UNKNOWN",
    "blob unknown to registry",
    404,
    "The blob is not in the repository (or not in the registry at all).",
)
BLOB_UPLOAD_INVALID = _register(
    "BLOB_UPLOAD_INVALID",
    "blob upload invalid",
    400,
    "The upload request is malformed, e.g. an unparseable Content-Range.",
)
BLOB_UPLOAD_UNKNOWN = _register(
    "BLOB_UPLOAD_UNKNOWN",
    "blob upload unknown to registry",
    404,
    "No upload session with this id exists in the repository.",
)
DIGEST_INVALID = _register(
    "DIGEST_INVALID",
    "provided digest did not match uploaded content",
    400,
    "The digest is malformed or uses an unsupported algorithm, or the content does not hash to it.",
)
MANIFEST_BLOB_UNKNOWN = _register(
    "MANIFEST_BLOB_UNKNOWN",
    "manifest references a manifest or blob unknown to registry",
    400,
    "A blob or child manifest the manifest names is not in the repository; one error per "
    "missing digest. 400 as in distribution (the request is at fault, not the URL).",
)
MANIFEST_INVALID = _register(
    "MANIFEST_INVALID",
    "manifest invalid",
    400,
    "The manifest (or its tag) failed validation.",
)
MANIFEST_UNKNOWN = _register(
    "MANIFEST_UNKNOWN",
    "manifest unknown to registry",
    404,
    "No manifest with this tag or digest is in the repository.",
)
NAME_INVALID = _register(
    "NAME_INVALID",
    "invalid repository name",
    400,
    "The repository name does not match the spec's grammar.",
)
NAME_UNKNOWN = _register(
    "NAME_UNKNOWN",
    "repository name not known to registry",
    404,
    "Nothing was ever pushed to the repository.",
)
SIZE_INVALID = _register(
    "SIZE_INVALID",
    "provided length did not match content length",
    400,
    "A declared length (Content-Range, descriptor size) differs from the content.",
)
UNAUTHORIZED = _register(
    "UNAUTHORIZED",
    "authentication required",
    401,
    "The request needs credentials; WWW-Authenticate says how to get them.",
)
DENIED = _register(
    "DENIED",
    "requested access to the resource is denied",
    403,
    "The credentials are valid but do not grant the access asked for.",
)
UNSUPPORTED = _register(
    "UNSUPPORTED",
    "the operation is unsupported",
    405,
    "The method is not allowed here, deletion is disabled, or the registry is read-only.",
)
TOOMANYREQUESTS = _register(
    "TOOMANYREQUESTS",
    "too many requests",
    429,
    "The client exceeded its request rate; Retry-After says when to come back.",
)
UPLOAD_RANGE_INVALID = _register(
    "UPLOAD_RANGE_INVALID",
    "requested range not satisfiable: chunk out of order",
    416,
    "A chunk does not start where the upload ends; Range tells where it does.",
    value="BLOB_UPLOAD_INVALID",
)
RANGE_NOT_SATISFIABLE = _register(
    "RANGE_NOT_SATISFIABLE",
    "requested range not satisfiable",
    416,
    "The Range of a blob GET lies outside the blob; Content-Range gives its size.",
    value="SIZE_INVALID",
)
MANIFEST_TOO_LARGE = _register(
    "MANIFEST_TOO_LARGE",
    "manifest too large",
    413,
    "The manifest is larger than the registry accepts.",
    value="MANIFEST_INVALID",
)
PAGINATION_INVALID = _register(
    "PAGINATION_INVALID",
    "invalid pagination parameter",
    400,
    "The n parameter of a listing is not a non-negative integer.",
    value="UNSUPPORTED",
)
UNKNOWN = _register(
    "UNKNOWN",
    "unknown error",
    500,
    "The registry failed; the log has the cause.",
)


class RegistryError(Exception):
    """One or more OCI errors; the first one's code decides the status.

    ``headers`` are sent with the error response (``WWW-Authenticate``, ``Range``,
    ``Retry-After`` ...). ``also`` carries further errors of the same response, e.g. one
    ``MANIFEST_BLOB_UNKNOWN`` per missing blob.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        detail: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        also: Sequence[RegistryError] = (),
    ) -> None:
        super().__init__(message or code.message)
        self.code = code
        self.message = message or code.message
        self.detail = detail
        self.headers = dict(headers or {})
        self.also = list(also)

    @property
    def status(self) -> int:
        return self.code.status

    def entries(self) -> list[dict[str, Any]]:
        out = []
        for err in [self, *self.also]:
            entry: dict[str, Any] = {"code": err.code.value, "message": err.message}
            if err.detail is not None:
                entry["detail"] = err.detail
            out.append(entry)
        return out


def error_response(exc: RegistryError, *, head: bool = False) -> web.Response:
    """The one writer of error responses (HEAD responses carry no body)."""
    body = json.dumps({"errors": exc.entries()}).encode() + b"\n"
    headers = dict(exc.headers)
    if head:
        headers.setdefault("Content-Type", "application/json")
        return web.Response(status=exc.status, headers=headers)
    return web.Response(
        status=exc.status, body=body, headers=headers, content_type="application/json"
    )


def from_exception(exc: BaseException) -> RegistryError | None:
    """Typed storage/format errors → the error a client sees; ``None`` for anything else."""
    if isinstance(exc, RegistryError):
        return exc
    if isinstance(exc, storage_errors.BlobUnknown):
        return RegistryError(BLOB_UNKNOWN, detail={"digest": exc.digest})
    if isinstance(exc, storage_errors.ManifestUnknown):
        return RegistryError(MANIFEST_UNKNOWN, detail={"reference": exc.reference})
    if isinstance(exc, storage_errors.UploadUnknown):
        return RegistryError(BLOB_UPLOAD_UNKNOWN, detail={"uuid": exc.upload_id})
    if isinstance(exc, storage_errors.RepositoryUnknown):
        return RegistryError(NAME_UNKNOWN, detail={"name": exc.name})
    if isinstance(exc, storage_errors.DigestMismatch):
        return RegistryError(
            DIGEST_INVALID, detail={"expected": exc.expected, "actual": exc.actual}
        )
    if isinstance(exc, storage_errors.SizeMismatch):
        return RegistryError(
            SIZE_INVALID,
            str(exc),
            detail={"what": exc.what, "declared": exc.expected, "actual": exc.actual},
        )
    if isinstance(exc, storage_errors.ManifestBlobUnknown):
        errs = [RegistryError(MANIFEST_BLOB_UNKNOWN, detail={"digest": d}) for d in exc.missing]
        first, rest = errs[0], errs[1:]
        first.also = rest
        return first
    if isinstance(exc, ManifestInvalid):
        return RegistryError(MANIFEST_INVALID, str(exc), detail=exc.detail)
    return None
