"""Engine API calls for ``/networks`` (one function per endpoint, over a ``Client``)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from dockyard.client.api import Client

__all__ = [
    "network_connect",
    "network_create",
    "network_disconnect",
    "network_inspect",
    "network_list",
    "network_prune",
    "network_remove",
]


def _p(name: str) -> str:
    return quote(name, safe="")


def network_list(client: Client, filters: dict[str, list[str]] | None = None) -> list[Any]:
    query = {"filters": json.dumps(filters)} if filters else None
    return list(client.request("GET", "/networks", query=query).json() or [])


def network_inspect(client: Client, name: str) -> dict[str, Any]:
    data = client.request("GET", f"/networks/{_p(name)}").json()
    assert isinstance(data, dict)
    return data


def network_create(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    data = client.request("POST", "/networks/create", json_body=body).json()
    assert isinstance(data, dict)
    return data


def network_remove(client: Client, name: str) -> None:
    client.request("DELETE", f"/networks/{_p(name)}")


def network_connect(
    client: Client, network: str, container: str, endpoint: dict[str, Any] | None = None
) -> None:
    body = {"Container": container, "EndpointConfig": endpoint or {}}
    client.request("POST", f"/networks/{_p(network)}/connect", json_body=body)


def network_disconnect(client: Client, network: str, container: str, force: bool) -> None:
    body = {"Container": container, "Force": force}
    client.request("POST", f"/networks/{_p(network)}/disconnect", json_body=body)


def network_prune(client: Client, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
    query = {"filters": json.dumps(filters)} if filters else None
    data = client.request("POST", "/networks/prune", query=query).json()
    assert isinstance(data, dict)
    return data
