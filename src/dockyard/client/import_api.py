"""Engine API call for ``docker import`` (kept apart from ``api.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import BinaryIO

from dockyard.client.api import Client, StreamResponse, _iter_upload

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.client.wire import QueryValue

__all__ = ["image_import"]


def image_import(
    client: Client,
    source: BinaryIO | Iterable[bytes] | None,
    *,
    source_name: str = "-",
    repo: str = "",
    tag: str = "",
    message: str = "",
    changes: Sequence[str] = (),
    platform: str = "",
) -> StreamResponse:
    """``POST /images/create?fromSrc=…``: a rootfs tarball as a one-layer image.

    With ``source_name`` ``-`` the tarball (any compression) is ``source``, uploaded
    chunked; otherwise ``source_name`` is a URL the daemon fetches and ``source`` is None.
    ``repo`` may carry the tag (``name:tag``), as the docker CLI sends it; ``changes`` are
    Dockerfile instructions (one ``changes`` parameter each). The answer is JSON progress
    whose ``status`` is the new image ID.
    """
    query: dict[str, QueryValue] = {
        "fromSrc": source_name,
        "repo": repo or None,
        "tag": tag or None,
        "message": message or None,
        "platform": platform.lower() or None,
        "changes": list(changes) or None,
    }
    body = _iter_upload(source) if source is not None else None
    headers = {"Content-Type": "text/plain"} if body is not None else None
    return client.stream("POST", "/images/create", query=query, body=body, headers=headers)
