"""Engine API calls for ``docker cp``: ``/containers/{id}/archive`` (kept apart from ``api.py``).

As the docker CLI sends them: ``path`` as given (slashes kept), ``noOverwriteDirNonDir=true``
on every upload (an existing directory is never replaced by a file nor the reverse),
``copyUIDGID=true`` for ``-a``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dockyard.archive.copy import STAT_HEADER, PathStat
from dockyard.client.api import Client, StreamResponse, _quote_path
from dockyard.errors import InvalidArgument

__all__ = ["copy_from_container", "copy_to_container", "stat_path"]


def _url(container: str) -> str:
    return f"/containers/{_quote_path(container)}/archive"


def _stat_of(headers: Mapping[str, str]) -> PathStat:
    value = headers.get(STAT_HEADER.lower())
    if value is None:
        raise InvalidArgument(f"the daemon sent no {STAT_HEADER} header")
    return PathStat.from_header(value)


def stat_path(client: Client, container: str, path: str) -> PathStat:
    """``HEAD``: what ``path`` is in the container (typed errors from the status)."""
    resp = client.request("HEAD", _url(container), query={"path": path})
    return _stat_of(resp.headers)


def copy_from_container(
    client: Client, container: str, path: str
) -> tuple[StreamResponse, PathStat]:
    """``GET``: a tar of ``path`` (read it from the stream, then close it) and its stat."""
    stream = client.stream("GET", _url(container), query={"path": path})
    try:
        return stream, _stat_of(stream.headers)
    except BaseException:
        stream.close()
        raise


def copy_to_container(
    client: Client,
    container: str,
    path: str,
    content: Iterable[bytes],
    *,
    copy_uid_gid: bool = False,
    allow_overwrite_dir_with_file: bool = False,
) -> None:
    """``PUT``: extract the tar ``content`` (sent chunked) into directory ``path``."""
    query = {
        "path": path,
        "noOverwriteDirNonDir": None if allow_overwrite_dir_with_file else "true",
        "copyUIDGID": "true" if copy_uid_gid else None,
    }
    with client.stream(
        "PUT",
        _url(container),
        query=query,
        body=content,
        headers={"Content-Type": "application/x-tar"},
    ) as resp:
        resp.read_all()
