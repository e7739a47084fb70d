"""The two spellings of "deleted" and "opaque": OCI tar entries and overlayfs inodes.

OCI layers (and Docker's, from AUFS days) mark a deletion with an empty file
`.wh.NAME` and an opaque directory with the entry `DIR/.wh..wh..opq`.
overlayfs marks a deletion with a 0:0 character device and an opaque
directory with the xattr `trusted.overlay.opaque=y`.  `apply` converts tar to
overlay, `create` converts overlay back to tar; both use these names.
"""

from __future__ import annotations

__all__ = [
    "OPAQUE_MARKER",
    "OPAQUE_VALUE",
    "OPAQUE_XATTR",
    "WHITEOUT_META_PREFIX",
    "WHITEOUT_PREFIX",
    "is_overlay_xattr",
]

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."  # AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs)
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
OPAQUE_VALUE = b"y"

# overlayfs keeps its state (opaque, redirect, origin, metacopy ...) in these
# namespaces; "user." is used when mounted with userxattr (rootless).
_OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")


def is_overlay_xattr(name: str) -> bool:
    """True for xattrs that overlayfs interprets: never read from or written to a tar."""
    return name.startswith(_OVERLAY_XATTR_PREFIXES)
