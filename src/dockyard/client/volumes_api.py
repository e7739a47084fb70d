"""The ``/volumes`` endpoints, as functions over a ``Client`` (one per endpoint).

Kept beside ``api.py`` rather than in it so the volume commands stay independent of the
other command groups; the bodies are the ones the docker CLI sends (``{"Driver":"local",
"Name":"v1"}``, ``DriverOpts``/``Labels`` only when set).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from .api import Client
from .wire import encode_filters

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .api import Filters
    from .wire import QueryValue

__all__ = [
    "volume_create",
    "volume_inspect",
    "volume_list",
    "volume_remove",
    "volumes_prune",
]


def _path(name: str) -> str:
    return "/volumes/" + quote(name, safe="$&+,/:;=@")


def volume_create(
    client: Client,
    name: str = "",
    *,
    driver: str = "local",
    driver_opts: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"Driver": driver}
    if driver_opts:
        body["DriverOpts"] = dict(driver_opts)
    if labels:
        body["Labels"] = dict(labels)
    body["Name"] = name
    return dict(client.request("POST", "/volumes/create", json_body=body).json() or {})


def volume_list(client: Client, *, filters: Filters | None = None) -> dict[str, Any]:
    query: dict[str, QueryValue] = {"filters": encode_filters(filters) if filters else None}
    return dict(client.request("GET", "/volumes", query=query).json() or {})


def volume_inspect(client: Client, name: str) -> dict[str, Any]:
    return dict(client.request("GET", _path(name)).json() or {})


def volume_remove(client: Client, name: str, *, force: bool = False) -> None:
    client.request("DELETE", _path(name), query={"force": force})


def volumes_prune(client: Client, *, filters: Filters | None = None) -> dict[str, Any]:
    query: dict[str, QueryValue] = {"filters": encode_filters(filters) if filters else None}
    return dict(client.request("POST", "/volumes/prune", query=query).json() or {})
