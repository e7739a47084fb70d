"""Volumes: the ``local`` driver, volume metadata and references, and copy-up of image data."""

from dockyard.volumes.copyup import copy_up, is_empty_dir
from dockyard.volumes.local import (
    ANONYMOUS_LABEL,
    DEFAULT_DRIVER,
    Volume,
    VolumeService,
    validate_name,
)

__all__ = [
    "ANONYMOUS_LABEL",
    "DEFAULT_DRIVER",
    "Volume",
    "VolumeService",
    "copy_up",
    "is_empty_dir",
    "validate_name",
]
