"""Errors raised by the registry's storage: drivers below, blob/manifest/upload stores above.

    DockyardError (dockyard.errors)
    ├── NotFound
    │   ├── PathNotFound          driver: nothing at that path
    │   ├── BlobUnknown           no such blob in the repository (or at all)
    │   ├── ManifestUnknown       no such manifest revision or tag in the repository
    │   ├── UploadUnknown         no such upload session in the repository
    │   └── RepositoryUnknown     the repository has no manifests store
    ├── InvalidArgument
    │   ├── InvalidPath           driver: a path outside the driver's grammar
    │   ├── InvalidOffset         driver: read offset past the end
    │   ├── DigestMismatch        uploaded bytes do not hash to the digest the client named
    │   ├── SizeMismatch          a length the client declared differs from what it sent/stored
    │   └── ManifestBlobUnknown   a manifest names blobs or child manifests the repository lacks
    └── Conflict
        └── UploadOffsetMismatch  a chunk does not start where the upload ends

The HTTP layer maps these to the OCI error codes in one function (``errcode.from_exception``);
storage never knows about status codes.
"""

from __future__ import annotations

from collections.abc import Sequence

from dockyard.errors import Conflict, InvalidArgument, NotFound

__all__ = [
    "BlobUnknown",
    "DigestMismatch",
    "InvalidOffset",
    "InvalidPath",
    "ManifestBlobUnknown",
    "ManifestUnknown",
    "PathNotFound",
    "RepositoryUnknown",
    "SizeMismatch",
    "UploadOffsetMismatch",
    "UploadUnknown",
]


class PathNotFound(NotFound):
    def __init__(self, path: str) -> None:
        super().__init__(f"path not found: {path}")
        self.path = path


class InvalidPath(InvalidArgument):
    def __init__(self, path: str) -> None:
        super().__init__(f"invalid storage path: {path!r}")
        self.path = path


class InvalidOffset(InvalidArgument):
    def __init__(self, path: str, offset: int) -> None:
        super().__init__(f"invalid offset {offset} for {path}")
        self.path = path
        self.offset = offset


class BlobUnknown(NotFound):
    def __init__(self, digest: str) -> None:
        super().__init__(f"blob unknown to registry: {digest}")
        self.digest = digest


class ManifestUnknown(NotFound):
    def __init__(self, reference: str) -> None:
        super().__init__(f"manifest unknown: {reference}")
        self.reference = reference


class UploadUnknown(NotFound):
    def __init__(self, upload_id: str) -> None:
        super().__init__(f"blob upload unknown: {upload_id}")
        self.upload_id = upload_id


class RepositoryUnknown(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"repository name not known to registry: {name}")
        self.name = name


class DigestMismatch(InvalidArgument):
    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"digest mismatch: expected {expected}, content hashes to {actual}")
        self.expected = expected
        self.actual = actual


class SizeMismatch(InvalidArgument):
    def __init__(self, what: str, expected: int, actual: int) -> None:
        super().__init__(f"size mismatch for {what}: declared {expected}, actual {actual}")
        self.what = what
        self.expected = expected
        self.actual = actual


class ManifestBlobUnknown(InvalidArgument):
    """``missing`` lists every absent digest, so the client learns all of them at once."""

    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__("manifest references unknown blobs: " + ", ".join(missing))
        self.missing = tuple(missing)


class UploadOffsetMismatch(Conflict):
    """``size`` is how many bytes the upload holds; the next chunk must start there."""

    def __init__(self, upload_id: str, size: int, start: int) -> None:
        super().__init__(
            f"upload {upload_id} holds {size} bytes; a chunk at {start} is out of order"
        )
        self.upload_id = upload_id
        self.size = size
        self.start = start
