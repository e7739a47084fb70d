"""The prune endpoints not in ``api.py``: ``/images/prune`` and ``/build/prune``.

Queries as the docker CLI 28 sends them: ``filters`` always for images (the CLI adds
``dangling``), ``all=1`` on the build cache only when asked.
"""

from __future__ import annotations

from typing import Any

from .api import Client
from .wire import encode_filters

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .api import Filters
    from .wire import QueryValue

__all__ = ["build_cache_prune", "images_prune"]


def images_prune(client: Client, *, filters: Filters | None = None) -> dict[str, Any]:
    query: dict[str, QueryValue] = {"filters": encode_filters(filters) if filters else None}
    return dict(client.request("POST", "/images/prune", query=query).json() or {})


def build_cache_prune(
    client: Client, *, all: bool = False, filters: Filters | None = None, keep_storage: int = 0
) -> dict[str, Any]:
    query: dict[str, QueryValue] = {
        "all": all,
        "keep-storage": str(keep_storage) if keep_storage else None,
        "filters": encode_filters(filters) if filters else None,
    }
    return dict(client.request("POST", "/build/prune", query=query).json() or {})
