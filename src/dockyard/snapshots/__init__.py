"""Snapshotters: layered filesystem trees described as mount lists (never mounted here)."""

from dockyard.snapshots.overlay import (
    EXTRACT_PREFIX,
    Kind,
    OverlaySnapshotter,
    SnapshotInfo,
    disk_usage,
)

__all__ = ["EXTRACT_PREFIX", "Kind", "OverlaySnapshotter", "SnapshotInfo", "disk_usage"]
