"""pause, unpause, rename, top, changes and stats, as functions over a ``Client``.

Kept beside ``api.py`` like the volume calls; each sends what the docker CLI sends:
``POST …/rename?name=NEW``, ``GET …/top`` with ``ps_args`` only when ps options were given
(joined with spaces), ``GET …/stats?stream=0`` for ``--no-stream`` (``stream=1`` otherwise;
the daemon primes the CPU reading itself).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .api import Client, StreamResponse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .wire import QueryValue

__all__ = [
    "container_changes",
    "container_pause",
    "container_rename",
    "container_stats",
    "container_top",
    "container_unpause",
    "container_update",
]


def _path(name: str, verb: str) -> str:
    return f"/containers/{quote(name, safe='$&+,/:;=@')}/{verb}"


def container_pause(client: Client, name: str) -> None:
    client.request("POST", _path(name, "pause"))


def container_unpause(client: Client, name: str) -> None:
    client.request("POST", _path(name, "unpause"))


def container_update(client: Client, name: str, config: dict[str, Any]) -> list[str]:
    """``POST …/update`` with an UpdateConfig; the daemon's warnings."""
    answer = client.request("POST", _path(name, "update"), json_body=config).json()
    warnings = answer.get("Warnings") if isinstance(answer, dict) else None
    return [str(w) for w in warnings or []]


def container_rename(client: Client, name: str, new_name: str) -> None:
    client.request("POST", _path(name, "rename"), query={"name": new_name})


def container_top(client: Client, name: str, ps_args: Sequence[str] = ()) -> dict[str, Any]:
    query: dict[str, QueryValue] = {"ps_args": " ".join(ps_args) if ps_args else None}
    return dict(client.request("GET", _path(name, "top"), query=query).json() or {})


def container_changes(client: Client, name: str) -> list[dict[str, Any]]:
    return list(client.request("GET", _path(name, "changes")).json() or [])


def container_stats(
    client: Client, name: str, *, stream: bool, one_shot: bool = False
) -> StreamResponse:
    """The stats response on its own connection: one JSON object per line."""
    query: dict[str, QueryValue] = {"stream": "1" if stream else "0", "one-shot": one_shot or None}
    return client.stream("GET", _path(name, "stats"), query=query)
