"""Engine API calls for build, commit, history and export (kept apart from ``api.py``)."""

from __future__ import annotations

import base64

from dockyard.client.api import Client, StreamResponse, _quote_path

TYPE_CHECKING = False  # not typing's: ``dockyard build`` imports this at start-up
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

    from dockyard.client.api import JSONDict
    from dockyard.client.wire import QueryValue

__all__ = ["build", "commit", "export", "history"]


def build(
    client: Client, context: Iterable[bytes], query: Mapping[str, QueryValue]
) -> StreamResponse:
    """``POST /build`` with a tar context (chunked); the answer is the JSON-lines stream."""
    return client.stream(
        "POST",
        "/build",
        query=query,
        body=context,
        headers={
            "Content-Type": "application/x-tar",
            "X-Registry-Config": base64.urlsafe_b64encode(b"{}").decode(),
        },
    )


def commit(
    client: Client,
    container: str,
    *,
    repo: str = "",
    tag: str = "",
    author: str = "",
    comment: str = "",
    changes: Sequence[str] = (),
    pause: bool = True,
) -> JSONDict:
    query: dict[str, QueryValue] = {
        "container": container,
        "repo": repo or None,
        "tag": tag or None,
        "author": author or None,
        "comment": comment or None,
        "changes": list(changes) or None,
        "pause": "1" if pause else "0",
    }
    resp = client.request("POST", "/commit", query=query, json_body={})
    out: Any = resp.json()
    return dict(out)


def history(client: Client, name: str) -> list[JSONDict]:
    resp = client.request("GET", f"/images/{_quote_path(name)}/history")
    out: Any = resp.json()
    return [dict(x) for x in out]


def export(client: Client, container: str) -> StreamResponse:
    return client.stream("GET", f"/containers/{_quote_path(container)}/export")
