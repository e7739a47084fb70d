"""Local images: records, names, unpack into snapshots, load/save, list/inspect/tag/delete."""

from dockyard.images.service import Image, ImageService, Progress

__all__ = ["Image", "ImageService", "Progress"]
