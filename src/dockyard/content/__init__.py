"""Content-addressed blob store: verified ingest, atomic commit, start-up cleanup."""

from dockyard.content.roles import Deleter, Ingester, Provider
from dockyard.content.store import ContentStore

__all__ = ["ContentStore", "Deleter", "Ingester", "Provider"]
