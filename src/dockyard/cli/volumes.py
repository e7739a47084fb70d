"""Volume commands: ``volume create/inspect/ls/prune/rm``, with the docker CLI's flags and output."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from dockyard.errors import DockyardError

from .common import DockerCommand, StatusError, describe_error, get_client, require_args
from .formatting import Formatter, _Context, human_size
from .gofmt import TemplateError

__all__ = ["VOLUME_HEADERS", "VolumeContext", "create", "inspect", "ls", "prune", "rm"]

_CTX = {"help_option_names": ["-h", "--help"]}

DEFAULT_VOLUME_FORMAT = "table {{.Driver}}\t{{.Name}}"
RAW_VOLUME_FORMAT = "name: {{.Name}}\ndriver: {{.Driver}}\n"

VOLUME_HEADERS: dict[str, str] = {
    "Name": "VOLUME NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS",
    "Links": "LINKS",
    "Size": "SIZE",
    "Group": "GROUP",
    "Availability": "AVAILABILITY",
    "Status": "STATUS",
}

_PRUNE_WARNING = (
    "WARNING! This will remove anonymous local volumes not used by at least one container.\n"
    "Are you sure you want to continue? [y/N] "
)
_PRUNE_ALL_WARNING = (
    "WARNING! This will remove all local volumes not used by at least one container.\n"
    "Are you sure you want to continue? [y/N] "
)


class VolumeContext(_Context):
    """One ``GET /volumes`` entry as ``volume ls`` templates see it."""

    go_type = "*formatter.volumeContext"

    fields = (
        "Availability",
        "Driver",
        "Group",
        "Labels",
        "Links",
        "Mountpoint",
        "Name",
        "Scope",
        "Size",
        "Status",
    )

    def __init__(self, volume: Mapping[str, Any]) -> None:
        super().__init__()
        self.v = volume

    def f_Name(self) -> str:
        return str(self.v.get("Name") or "")

    def f_Driver(self) -> str:
        return str(self.v.get("Driver") or "")

    def f_Scope(self) -> str:
        return str(self.v.get("Scope") or "")

    def f_Mountpoint(self) -> str:
        return str(self.v.get("Mountpoint") or "")

    def f_Labels(self) -> str:
        labels = self.v.get("Labels") or {}
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    def m_Label(self, name: str) -> str:
        labels = self.v.get("Labels") or {}
        return str(labels.get(name, ""))

    def f_Links(self) -> str:
        usage = self.v.get("UsageData")
        if not usage:
            return "N/A"
        return str(usage.get("RefCount", -1))

    def f_Size(self) -> str:
        usage = self.v.get("UsageData")
        if not usage or int(usage.get("Size", -1)) == -1:
            return "N/A"
        return human_size(int(usage["Size"]))

    def f_Group(self) -> str:
        return "N/A"

    def f_Availability(self) -> str:
        return "N/A"

    def f_Status(self) -> str:
        return "N/A"


def volume_format(fmt: str, *, quiet: bool) -> str:
    """docker's ``NewVolumeFormat``: ``table``/``raw`` with their quiet forms; others as given."""
    if fmt in ("", "table"):
        return "{{.Name}}" if quiet else DEFAULT_VOLUME_FORMAT
    if fmt == "raw":
        return "name: {{.Name}}" if quiet else RAW_VOLUME_FORMAT
    return fmt


def _natural_key(name: str) -> list[tuple[int, int | str]]:
    """``sortorder.NaturalLess``: digit runs compare as numbers."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name) if p]


def _kv_map(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _filters(ctx: click.Context, values: tuple[str, ...], label: str) -> dict[str, list[str]]:
    from .containers import _filters as parse

    return parse(ctx, values, label)


# --------------------------------------------------------------------------- create


@click.command(
    cls=DockerCommand,
    usage="create [OPTIONS] [VOLUME]",
    context_settings=_CTX,
    short_help="Create a volume",
)
@click.option("-d", "--driver", default="local", help="Specify volume driver name")
@click.option("--label", "labels", multiple=True, help="Set metadata for a volume")
@click.option("--name", "name_flag", default="", hidden=True, help="Specify volume name")
@click.option("-o", "--opt", "opts", multiple=True, help="Set driver specific options")
@click.argument("args", nargs=-1)
@click.pass_context
def create(
    ctx: click.Context,
    driver: str,
    labels: tuple[str, ...],
    name_flag: str,
    opts: tuple[str, ...],
    args: tuple[str, ...],
) -> None:
    """Create a volume."""
    if len(args) > 1:
        from .common import usage_error

        usage_error(ctx, "requires at most 1 argument")
    name = name_flag
    if args:
        if name_flag:
            raise StatusError(
                1,
                "conflicting options: cannot specify a volume-name through both --name and as "
                "a positional arg",
            )
        name = args[0]
    from dockyard.client.volumes_api import volume_create

    volume = volume_create(
        get_client(ctx),
        name,
        driver=driver,
        driver_opts=_kv_map(opts),
        labels=_kv_map(labels),
    )
    click.echo(volume.get("Name", ""))


# --------------------------------------------------------------------------- inspect


@click.command(
    cls=DockerCommand,
    usage="inspect [OPTIONS] VOLUME [VOLUME...]",
    context_settings=_CTX,
    short_help="Display detailed information on one or more volumes",
)
@click.option("-f", "--format", "fmt", default="", help="Format output using a custom template")
@click.argument("args", nargs=-1)
@click.pass_context
def inspect(ctx: click.Context, fmt: str, args: tuple[str, ...]) -> None:
    """Display detailed information on one or more volumes."""
    require_args(ctx, args, minimum=1)
    from .system import _run_inspect

    _run_inspect(ctx, args, fmt, "volume", False)


# --------------------------------------------------------------------------- ls


@click.command(
    cls=DockerCommand,
    usage="ls [OPTIONS]",
    context_settings=_CTX,
    short_help="List volumes",
)
@click.option(
    "-f", "--filter", "filters", multiple=True, help='Provide filter values (e.g. "dangling=true")'
)
@click.option("--format", "fmt", default="", help="Format output using a custom template")
@click.option("-q", "--quiet", is_flag=True, help="Only display volume names")
@click.argument("args", nargs=-1)
@click.pass_context
def ls(
    ctx: click.Context, filters: tuple[str, ...], fmt: str, quiet: bool, args: tuple[str, ...]
) -> None:
    """List volumes."""
    require_args(ctx, args, none=True)
    filter_map = _filters(ctx, filters, "-f, --filter")
    from dockyard.client.volumes_api import volume_list

    answer = volume_list(get_client(ctx), filters=filter_map or None)
    volumes = sorted(answer.get("Volumes") or [], key=lambda v: _natural_key(str(v.get("Name"))))
    try:
        formatter = Formatter(volume_format(fmt, quiet=quiet), VOLUME_HEADERS)
        output = formatter.render(VolumeContext(v) for v in volumes)
    except TemplateError as exc:
        raise StatusError(1, str(exc)) from exc
    sys.stdout.write(output)
    for warning in answer.get("Warnings") or []:
        sys.stderr.write(f"{warning}\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- prune


@click.command(
    cls=DockerCommand,
    usage="prune [OPTIONS]",
    context_settings=_CTX,
    short_help="Remove unused local volumes",
)
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Remove all unused volumes, not just anonymous ones"
)
@click.option(
    "--filter", "filters", multiple=True, help='Provide filter values (e.g. "label=<label>")'
)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.argument("args", nargs=-1)
@click.pass_context
def prune(
    ctx: click.Context, all_: bool, filters: tuple[str, ...], force: bool, args: tuple[str, ...]
) -> None:
    """Remove unused local volumes."""
    require_args(ctx, args, none=True)
    filter_map = _filters(ctx, filters, "--filter")
    warning = _PRUNE_WARNING
    if all_:
        if "all" in filter_map:
            raise StatusError(
                1, "conflicting options: cannot specify both --all and --filter all=1"
            )
        filter_map["all"] = ["true"]
        warning = _PRUNE_ALL_WARNING
    if not force:
        sys.stdout.write(warning)
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return
    from dockyard.client.volumes_api import volumes_prune

    report = volumes_prune(get_client(ctx), filters=filter_map or None)
    deleted = report.get("VolumesDeleted") or []
    out: list[str] = []
    reclaimed = 0
    if deleted:
        out.append("Deleted Volumes:\n")
        out.extend(f"{name}\n" for name in deleted)
        out.append("\n")
        reclaimed = int(report.get("SpaceReclaimed") or 0)
    out.append(f"Total reclaimed space: {human_size(reclaimed)}\n")
    sys.stdout.write("".join(out))
    sys.stdout.flush()


# --------------------------------------------------------------------------- rm


@click.command(
    cls=DockerCommand,
    usage="rm [OPTIONS] VOLUME [VOLUME...]",
    context_settings=_CTX,
    short_help="Remove one or more volumes",
)
@click.option("-f", "--force", is_flag=True, help="Force the removal of one or more volumes")
@click.argument("args", nargs=-1)
@click.pass_context
def rm(ctx: click.Context, force: bool, args: tuple[str, ...]) -> None:
    """Remove one or more volumes. You cannot remove a volume that is in use by a container."""
    require_args(ctx, args, minimum=1)
    from dockyard.client.volumes_api import volume_remove

    client = get_client(ctx)
    problems: list[str] = []
    for name in args:
        try:
            volume_remove(client, name, force=force)
        except DockyardError as exc:
            problems.append(describe_error(exc))
            continue
        click.echo(name)
    if problems:
        raise StatusError(1, "\n".join(problems))
