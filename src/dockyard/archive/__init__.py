"""Image layer tarballs: safe apply into overlayfs lower dirs, and creation from upper dirs.

- `open_decompressed` / `compress_gzip`: sniffed streaming decompression
  (gzip via isal, zstd, xz, bzip2) and reproducible gzip.
- `apply_layer`: unpack one layer into an empty directory, converting OCI
  whiteouts to overlayfs ones and refusing anything that would write outside
  the directory.  Returns the diff_id computed in the same pass.
- `write_layer_from_diff` / `write_tree`: an overlay upper dir as an OCI
  layer tar (whiteouts converted back), or any tree as a plain tar.

Layer 2: imports only `dockyard.errors` (and may use `dockyard.oci`).
"""

from dockyard.archive.apply import LayerApplyResult, apply_layer
from dockyard.archive.compression import compress_gzip, open_decompressed
from dockyard.archive.create import write_layer_from_diff, write_tree

__all__ = [
    "LayerApplyResult",
    "apply_layer",
    "compress_gzip",
    "open_decompressed",
    "write_layer_from_diff",
    "write_tree",
]
