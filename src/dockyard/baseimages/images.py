"""The image catalogue and the build of a selection of it into docker-archive files.

Images are built in catalogue order, and an image's base layers come from the same cache, so
`--only nginx` builds (or reuses) the debian layer without writing debian.tar.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.errors import InvalidArgument

from .busybox import DEFAULT_BUSYBOX, busybox_plan
from .cache import LayerCache
from .debian import debian_plan, detect_mirror
from .derived import nginx_plan
from .dockerarchive import ImagePlan, write_docker_archive
from .tarlayer import DEFAULT_EPOCH

__all__ = ["IMAGES", "BuildOptions", "BuiltImage", "build", "select"]


@dataclass(frozen=True)
class BuildOptions:
    out: Path
    cache_dir: Path
    only: tuple[str, ...] = ("busybox", "debian", "nginx")
    mirror: str | None = None  # None: the first Debian URI in the apt sources
    busybox: Path = DEFAULT_BUSYBOX
    epoch: int = DEFAULT_EPOCH
    rebuild: bool = False

    def resolved_mirror(self) -> str:
        return (self.mirror or detect_mirror()).rstrip("/")


@dataclass(frozen=True)
class BuiltImage:
    name: str
    ref: str
    path: Path
    image_id: str
    seconds: float
    cached: bool = field(default=False)


Planner = Callable[[LayerCache, BuildOptions], ImagePlan]

IMAGES: dict[str, tuple[str, Planner]] = {
    "busybox": ("busybox:latest", lambda cache, o: busybox_plan(cache, o.busybox)),
    "debian": ("debian:bookworm-slim", lambda cache, o: debian_plan(cache, o.resolved_mirror())),
    "nginx": ("nginx:latest", lambda cache, o: nginx_plan(cache, o.resolved_mirror())),
}


def select(names: Sequence[str]) -> tuple[str, ...]:
    """Short names or references -> catalogue names, in catalogue order.

    Raises InvalidArgument for a name that is not in the catalogue.
    """
    wanted = set()
    for name in names:
        hits = [short for short, (ref, _) in IMAGES.items() if name in (short, ref)]
        if not hits:
            raise InvalidArgument(f"unknown image {name!r}; known: {', '.join(IMAGES)}")
        wanted.add(hits[0])
    return tuple(short for short in IMAGES if short in wanted)


def build(
    options: BuildOptions, progress: Callable[[str], None] = lambda _: None
) -> list[BuiltImage]:
    """Build every selected image into OUT/<name>.tar; return what was written."""
    try:
        options.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidArgument(f"cannot create output directory {options.out}: {e}") from e
    cache = LayerCache(options.cache_dir, options.epoch, rebuild=options.rebuild)
    built = []
    with cache.locked():
        for name in select(options.only):
            started = time.monotonic()
            progress(f"{name}: building")
            plan = IMAGES[name][1](cache, options)
            path = options.out / f"{name}.tar"
            image_id = write_docker_archive(path, plan, options.epoch)
            seconds = time.monotonic() - started
            cached = all(layer.cached for layer in plan.layers)
            progress(
                f"{name}: {'cached' if cached else 'built'} in {seconds:.1f}s, "
                f"{len(plan.layers)} layer(s), {path.stat().st_size / 1e6:.1f} MB"
            )
            built.append(BuiltImage(name, plan.ref, path, image_id, seconds, cached))
    return built
