"""Registry storage: the driver interface and its two drivers, the path mapper, and the blob,
upload and repository stores built on them (see each module's docstring; ``paths`` draws the
layout)."""

from __future__ import annotations

from dockyard.registry.config import RegistryConfig
from dockyard.registry.storage.blobstore import BlobStore, LinkedBlobStore, digest_of
from dockyard.registry.storage.driver import FileInfo, FileReader, FileWriter, StorageDriver
from dockyard.registry.storage.filesystem import FilesystemDriver
from dockyard.registry.storage.inmemory import InMemoryDriver
from dockyard.registry.storage.repository import Referrer, Registry, Repository
from dockyard.registry.storage.uploads import UploadSessions, UploadStatus, UploadStore

__all__ = [
    "BlobStore",
    "FileInfo",
    "FileReader",
    "FileWriter",
    "FilesystemDriver",
    "InMemoryDriver",
    "LinkedBlobStore",
    "Referrer",
    "Registry",
    "Repository",
    "StorageDriver",
    "UploadSessions",
    "UploadStatus",
    "UploadStore",
    "build_driver",
    "digest_of",
]


def build_driver(config: RegistryConfig) -> StorageDriver:
    """The driver the configuration names (``storage.filesystem`` or ``storage.inmemory``)."""
    if config.storage == "inmemory":
        return InMemoryDriver()
    return FilesystemDriver(config.root)
