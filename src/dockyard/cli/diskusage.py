"""``dockyard system df``: the docker CLI's disk-usage summary of ``GET /system/df``.

The four rows and their arithmetic follow the docker CLI's ``formatter/disk_usage.go``:
images are active when a container uses them and reclaimable except for the bytes in-use
images do not share; containers are active when running, paused or restarting; volumes when
referenced; build cache when in use (shared records are counted under images).
"""

from __future__ import annotations

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


@click.command(
    cls=DockerCommand,
    usage="df [OPTIONS]",
    context_settings={"help_option_names": ["-h", "--help"]},
    short_help="Show docker disk usage",
)
@click.option("--format", "fmt", default="", help="Format output using a custom template")
@click.argument("args", nargs=-1)
@click.pass_context
def df(ctx: click.Context, fmt: str, args: tuple[str, ...]) -> None:
    """Show docker disk usage."""
    require_args(ctx, args, none=True)
    answer = get_client(ctx).request("GET", "/system/df").json()
    if not isinstance(answer, dict):
        raise StatusError(1, "unexpected answer from the daemon")
    try:
        output = Formatter(fmt or DEFAULT_FORMAT, HEADERS).render(summary_rows(answer))
    except TemplateError as exc:
        raise StatusError(1, str(exc)) from exc
    sys.stdout.write(output)
    sys.stdout.flush()
