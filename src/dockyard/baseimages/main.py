"""`dockyard-base-images`: build the project's own base images offline.

    dockyard-base-images build [--only busybox,debian,nginx] [--cache-dir DIR] [--mirror URL]
                               [--busybox PATH] [--rebuild] OUT
    dockyard-base-images list

stdout gets one line per image, `<path> <repo:tag> <image id>`, for scripts; progress and
errors go to stderr. Exit status: 0 success, 1 build error, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from dockyard.errors import DockyardError

from .busybox import DEFAULT_BUSYBOX
from .images import IMAGES, BuildOptions, build, select
from .tarlayer import DEFAULT_EPOCH

__all__ = ["main"]

DEFAULT_CACHE = Path("/var/cache/dockyard-base")


def default_cache_dir() -> Path:
    """The system cache when we may write there, else the user's cache directory."""
    probe = DEFAULT_CACHE if DEFAULT_CACHE.exists() else DEFAULT_CACHE.parent
    if os.access(probe, os.W_OK):
        return DEFAULT_CACHE
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "dockyard-base"


def build_epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else DEFAULT_EPOCH


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockyard-base-images",
        description="Build busybox, debian and nginx base images from local Debian packages.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write OUT/<name>.tar docker-archive files")
    b.add_argument("out", metavar="OUT", type=Path, help="output directory")
    b.add_argument(
        "--only",
        action="append",
        metavar="NAMES",
        help=f"comma separated images (default all: {','.join(IMAGES)})",
    )
    b.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help=f"layer and .deb cache (default {DEFAULT_CACHE}, or ~/.cache/dockyard-base)",
    )
    b.add_argument("--mirror", metavar="URL", help="Debian mirror (default: from apt sources)")
    b.add_argument(
        "--busybox",
        type=Path,
        default=DEFAULT_BUSYBOX,
        metavar="PATH",
        help="static busybox binary (default %(default)s, from busybox-static)",
    )
    b.add_argument(
        "--rebuild", action="store_true", help="rebuild layers even if cached (new packages)"
    )
    sub.add_parser("list", help="list the images this tool builds")
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so scratch trees are removed and child namespaces killed.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _build(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _build(args: argparse.Namespace) -> int:
    if args.command == "list":
        for name, (ref, _) in IMAGES.items():
            print(f"{name} {ref}")
        return 0
    try:
        names = [n.strip() for group in args.only or [] for n in group.split(",") if n.strip()]
        options = BuildOptions(
            out=args.out.absolute(),
            cache_dir=(args.cache_dir or default_cache_dir()).absolute(),
            only=select(names) if names else tuple(IMAGES),
            mirror=args.mirror,
            busybox=args.busybox,
            epoch=build_epoch(),
            rebuild=args.rebuild,
        )
        for image in build(options, progress=lambda msg: print(msg, file=sys.stderr)):
            print(f"{image.path} {image.ref} {image.image_id}", flush=True)
    except (DockyardError, OSError) as e:
        print(f"dockyard-base-images: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dockyard-base-images: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
