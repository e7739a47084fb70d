"""Metadata store (SQLite)."""

from dockyard.store.db import MIGRATIONS, Database

__all__ = ["MIGRATIONS", "Database"]
