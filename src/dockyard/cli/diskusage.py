"""``dockyard system df``: the docker CLI's disk-usage summary of ``GET /system/df``.

The four rows and their arithmetic follow the docker CLI's ``formatter/disk_usage.go``:
images are active when a container uses them and reclaimable except for the bytes in-use
images do not share; containers are active when running, paused or restarting; volumes when
referenced; build cache when in use (shared records are counted under images).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from .common import DockerCommand, StatusError, get_client, require_args
from .formatting import Formatter, _Context, human_size
from .gofmt import TemplateError

__all__ = ["df", "summary_rows"]

DEFAULT_FORMAT = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
HEADERS = {
    "Type": "TYPE",
    "TotalCount": "TOTAL",
    "Active": "ACTIVE",
    "Size": "SIZE",
    "Reclaimable": "RECLAIMABLE",
}


class UsageRow(_Context):
    """One row of the summary as ``--format`` templates see it."""

    go_type = "*formatter.diskUsageContext"
    fields = ("Type", "TotalCount", "Active", "Size", "Reclaimable")

    def __init__(self, kind: str, total: int, active: int, size: str, reclaimable: str) -> None:
        super().__init__()
        self.values = {
            "Type": kind,
            "TotalCount": str(total),
            "Active": str(active),
            "Size": size,
            "Reclaimable": reclaimable,
        }

    def f_Type(self) -> str:
        return self.values["Type"]

    def f_TotalCount(self) -> str:
        return self.values["TotalCount"]

    def f_Active(self) -> str:
        return self.values["Active"]

    def f_Size(self) -> str:
        return self.values["Size"]

    def f_Reclaimable(self) -> str:
        return self.values["Reclaimable"]


def _with_percent(reclaimable: int, total: int) -> str:
    if total > 0:
        return f"{human_size(reclaimable)} ({reclaimable * 100 // total}%)"
    return human_size(reclaimable)


def _int(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, (int, float)) else default


def summary_rows(du: Mapping[str, Any]) -> list[UsageRow]:
    """The four rows (Images, Containers, Local Volumes, Build Cache) from a df answer."""
    images: Sequence[Mapping[str, Any]] = du.get("Images") or []
    containers: Sequence[Mapping[str, Any]] = du.get("Containers") or []
    volumes: Sequence[Mapping[str, Any]] = du.get("Volumes") or []
    cache: Sequence[Mapping[str, Any]] = du.get("BuildCache") or []

    layers = _int(du.get("LayersSize"))
    used = 0
    for image in images:
        if _int(image.get("Containers")) != 0:
            size, shared = _int(image.get("Size"), -1), _int(image.get("SharedSize"), -1)
            if size != -1 and shared != -1:
                used += size - shared
    image_row = UsageRow(
        "Images",
        len(images),
        sum(1 for i in images if _int(i.get("Containers")) > 0),
        human_size(layers),
        _with_percent(layers - used, layers),
    )

    def active(c: Mapping[str, Any]) -> bool:
        state = str(c.get("State") or "")
        return any(word in state for word in ("running", "paused", "restarting"))

    rw_total = sum(_int(c.get("SizeRw")) for c in containers)
    rw_idle = sum(_int(c.get("SizeRw")) for c in containers if not active(c))
    container_row = UsageRow(
        "Containers",
        len(containers),
        sum(1 for c in containers if active(c)),
        human_size(rw_total),
        _with_percent(rw_idle, rw_total),
    )

    vol_total = vol_free = 0
    for v in volumes:
        usage = v.get("UsageData") or {}
        size = _int(usage.get("Size"), -1)
        if size != -1:
            vol_total += size
            if _int(usage.get("RefCount")) == 0:
                vol_free += size
    volume_row = UsageRow(
        "Local Volumes",
        len(volumes),
        sum(1 for v in volumes if _int((v.get("UsageData") or {}).get("RefCount")) > 0),
        human_size(vol_total),
        _with_percent(vol_free, vol_total),
    )

    cache_size = sum(_int(b.get("Size")) for b in cache if not b.get("Shared"))
    in_use = sum(_int(b.get("Size")) for b in cache if b.get("InUse") and not b.get("Shared"))
    cache_row = UsageRow(
        "Build Cache",
        len(cache),
        sum(1 for b in cache if b.get("InUse")),
        human_size(cache_size),
        human_size(cache_size - in_use),
    )
    return [image_row, container_row, volume_row, cache_row]


IMAGE_TABLE = (
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}"
    "\t{{.UniqueSize}}\t{{.Containers}}"
)
CONTAINER_TABLE = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}"
    "\t{{.Status}}\t{{.Names}}"
)
VOLUME_TABLE = "table {{.Name}}\t{{.Links}}\t{{.Size}}"
CACHE_TABLE = (
    "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}"
    "\t{{.UsageCount}}\t{{.Shared}}"
)
CACHE_HEADERS = {
    "ID": "CACHE ID",
    "CacheType": "CACHE TYPE",
    "Size": "SIZE",
    "CreatedSince": "CREATED",
    "LastUsedSince": "LAST USED",
    "UsageCount": "USAGE",
    "Shared": "SHARED",
    "InUse": "IN USE",
    "Description": "DESCRIPTION",
}


class CacheContext(_Context):
    """One build cache record as docker's ``buildCacheContext`` shows it."""

    go_type = "*formatter.buildCacheContext"
    fields = (
        "CacheType",
        "CreatedAt",
        "CreatedSince",
        "Description",
        "ID",
        "InUse",
        "LastUsedAt",
        "LastUsedSince",
        "Shared",
        "Size",
        "UsageCount",
    )

    def __init__(self, record: Mapping[str, Any], now: float) -> None:
        super().__init__()
        self.r, self.now = record, now

    def f_ID(self) -> str:
        ident = str(self.r.get("ID") or "")[:12]
        return ident + "*" if self.r.get("InUse") else ident

    def f_CacheType(self) -> str:
        return str(self.r.get("Type") or "")

    def f_Description(self) -> str:
        return str(self.r.get("Description") or "")

    def f_Size(self) -> str:
        return human_size(_int(self.r.get("Size")), 3)

    def f_CreatedAt(self) -> str:
        return str(self.r.get("CreatedAt") or "")

    def f_CreatedSince(self) -> str:
        return _ago(str(self.r.get("CreatedAt") or ""), self.now)

    def f_LastUsedAt(self) -> str:
        return str(self.r.get("LastUsedAt") or "")

    def f_LastUsedSince(self) -> str:
        return _ago(str(self.r.get("LastUsedAt") or ""), self.now)

    def f_UsageCount(self) -> str:
        return str(_int(self.r.get("UsageCount")))

    def f_InUse(self) -> str:
        return "true" if self.r.get("InUse") else "false"

    def f_Shared(self) -> str:
        return "true" if self.r.get("Shared") else "false"


def _ago(stamp: str, now: float) -> str:
    """``3 minutes ago`` for an RFC 3339 time; "" for none (docker's LastUsedSince)."""
    if not stamp:
        return ""
    from datetime import datetime

    from dockyard.units import human_duration

    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return ""
    return human_duration(now - when) + " ago"


def _cache_order(record: Mapping[str, Any]) -> tuple[bool, float, str]:
    """docker's ``buildCacheSort``: never used first, then by last use; ties by ID."""
    used = str(record.get("LastUsedAt") or "")
    when = 0.0
    if used:
        from datetime import datetime

        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(used.replace("Z", "+00:00")).timestamp()
    return (bool(used), when, str(record.get("ID") or ""))


def verbose_tables(du: Mapping[str, Any]) -> str:
    """``df -v``: docker's four sections, an image row per image (its first tag only)."""
    import time

    from dockyard.errors import DockyardError
    from dockyard.reference import parse

    from .formatting import (
        CONTAINER_HEADERS,
        IMAGE_HEADERS,
        ContainerContext,
        ImageContext,
    )
    from .volumes import VOLUME_HEADERS, VolumeContext

    now = time.time()
    images = []
    for image in du.get("Images") or []:
        repo = tag = "<none>"
        tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
        if tags:
            try:
                ref = parse(tags[0], default_tag=False)
            except DockyardError:
                continue
            if ref.tag is not None:
                repo, tag = ref.familiar_name, ref.tag
        images.append(ImageContext(image, repo, tag, "", True, now))
    containers = [  # docker leaves the virtual size out here
        ContainerContext({**c, "SizeRootFs": 0}, trunc=True, now=now)
        for c in du.get("Containers") or []
    ]
    volumes = [VolumeContext(v) for v in du.get("Volumes") or []]
    cache = [CacheContext(b, now) for b in sorted(du.get("BuildCache") or [], key=_cache_order)]
    builder = _int(du.get("BuilderSize")) or sum(
        _int(b.get("Size")) for b in du.get("BuildCache") or [] if not b.get("Shared")
    )
    return (
        "Images space usage:\n\n"
        + Formatter(IMAGE_TABLE, IMAGE_HEADERS).render(images)
        + "\nContainers space usage:\n\n"
        + Formatter(CONTAINER_TABLE, CONTAINER_HEADERS).render(containers)
        + "\nLocal Volumes space usage:\n\n"
        + Formatter(VOLUME_TABLE, VOLUME_HEADERS).render(volumes)
        + f"\nBuild cache usage: {human_size(builder)}\n\n"
        + Formatter(CACHE_TABLE, CACHE_HEADERS).render(cache)
    )


@click.command(
    cls=DockerCommand,
    usage="df [OPTIONS]",
    context_settings={"help_option_names": ["-h", "--help"]},
    short_help="Show docker disk usage",
)
@click.option("--format", "fmt", default="", help="Format output using a custom template")
@click.option("-v", "--verbose", is_flag=True, help="Show detailed information on space usage")
@click.argument("args", nargs=-1)
@click.pass_context
def df(ctx: click.Context, fmt: str, verbose: bool, args: tuple[str, ...]) -> None:
    """Show docker disk usage."""
    require_args(ctx, args, none=True)
    answer = get_client(ctx).request("GET", "/system/df").json()
    if not isinstance(answer, dict):
        raise StatusError(1, "unexpected answer from the daemon")
    try:
        if verbose and fmt in ("", "table"):
            output = verbose_tables(answer)
        else:
            output = Formatter(fmt or DEFAULT_FORMAT, HEADERS).render(summary_rows(answer))
    except TemplateError as exc:
        raise StatusError(1, str(exc)) from exc
    sys.stdout.write(output)
    sys.stdout.flush()
