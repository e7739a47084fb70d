"""``image prune`` and ``system prune``: docker CLI 28's prompts, requests and output.

``system prune`` runs the prunes in docker's order (containers, networks, volumes with
``--volumes``, images, build cache), each with the same ``--filter`` values, prints each
one's report followed by a blank line, then the total. A prompt is answered only by ``y``
(any case); anything else cancels quietly with exit 0, as docker does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import click

from dockyard.client import Client
from dockyard.errors import InvalidArgument

from .common import DockerCommand, StatusError, flag_error, get_client, require_args
from .formatting import human_size

__all__ = ["builder_prune", "image_prune", "system_prune"]

_CTX = {"help_option_names": ["-h", "--help"]}

DANGLING_WARNING = (
    "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
)
ALL_IMAGES_WARNING = (
    "WARNING! This will remove all images without at least one container associated to "
    "them.\nAre you sure you want to continue?"
)

BUILD_CACHE_WARNING = (
    "WARNING! This will remove all dangling build cache. Are you sure you want to continue?"
)
ALL_BUILD_CACHE_WARNING = (
    "WARNING! This will remove all build cache. Are you sure you want to continue?"
)

# One prune step: its report text ("" when nothing went) and the bytes it reclaimed.
Report = tuple[str, int]


def _filters(ctx: click.Context, values: Sequence[str]) -> dict[str, list[str]]:
    from dockyard.client.wire import parse_filter_args

    try:
        return parse_filter_args(values)
    except ValueError as exc:
        bad = next((v for v in values if "=" not in v), "")
        raise flag_error(ctx, f'invalid argument "{bad}" for "--filter" flag: {exc}') from exc


def confirm(message: str) -> bool:
    """docker's ``PromptForConfirmation``: the message and `` [y/N] `` on stdout, one line
    from stdin, true only for ``y``/``Y``."""
    sys.stdout.write(message + " [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() == "y"


def _listing(title: str, items: Sequence[str]) -> str:
    return "".join([f"{title}:\n", *(f"{item}\n" for item in items)])


# --------------------------------------------------------------------------- the prune steps


def prune_containers(client: Client, filters: dict[str, list[str]]) -> Report:
    report = client.containers_prune(filters=filters or None)
    deleted = report.get("ContainersDeleted") or []
    if not deleted:
        return "", 0
    return _listing("Deleted Containers", deleted), int(report.get("SpaceReclaimed") or 0)


def prune_networks(client: Client, filters: dict[str, list[str]]) -> Report:
    from dockyard.client.networks_api import network_prune

    report = network_prune(client, filters or None)
    deleted = report.get("NetworksDeleted") or []
    return (_listing("Deleted Networks", deleted) if deleted else ""), 0


def prune_volumes(client: Client, filters: dict[str, list[str]]) -> Report:
    from dockyard.client.volumes_api import volumes_prune

    report = volumes_prune(client, filters=filters or None)
    deleted = report.get("VolumesDeleted") or []
    if not deleted:
        return "", 0
    return _listing("Deleted Volumes", deleted), int(report.get("SpaceReclaimed") or 0)


def prune_images(client: Client, filters: dict[str, list[str]], *, all: bool) -> Report:
    from dockyard.client.prune_api import images_prune

    wanted = {key: list(values) for key, values in filters.items()}
    wanted.setdefault("dangling", []).append("false" if all else "true")
    report = images_prune(client, filters=wanted)
    deleted = report.get("ImagesDeleted") or []
    if not deleted:
        return "", 0
    lines = ["Deleted Images:\n"]
    for item in deleted:
        if item.get("Untagged"):
            lines.append(f"untagged: {item['Untagged']}\n")
        else:
            lines.append(f"deleted: {item.get('Deleted', '')}\n")
    return "".join(lines), int(report.get("SpaceReclaimed") or 0)


def prune_build_cache(
    client: Client, filters: dict[str, list[str]], *, all: bool, keep_storage: int = 0
) -> Report:
    from dockyard.client.prune_api import build_cache_prune

    report = build_cache_prune(client, all=all, filters=filters or None, keep_storage=keep_storage)
    deleted = report.get("CachesDeleted") or []
    text = _listing("Deleted build cache objects", deleted) if deleted else ""
    return text, int(report.get("SpaceReclaimed") or 0)


def _print_reports(steps: Sequence[Callable[[], Report]]) -> None:
    total = 0
    for step in steps:
        text, reclaimed = step()
        total += reclaimed
        if text:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
    sys.stdout.write(f"Total reclaimed space: {human_size(total)}\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- image prune


@click.command(
    cls=DockerCommand,
    usage="prune [OPTIONS]",
    context_settings=_CTX,
    short_help="Remove unused images",
)
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Remove all unused images, not just dangling ones"
)
@click.option(
    "--filter", "filters", multiple=True, help='Provide filter values (e.g. "until=<timestamp>")'
)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.argument("args", nargs=-1)
@click.pass_context
def image_prune(
    ctx: click.Context, all_: bool, filters: tuple[str, ...], force: bool, args: tuple[str, ...]
) -> None:
    """Remove unused images."""
    require_args(ctx, args, none=True)
    wanted = _filters(ctx, filters)
    if not force and not confirm(ALL_IMAGES_WARNING if all_ else DANGLING_WARNING):
        return
    client = get_client(ctx)
    _print_reports([lambda: prune_images(client, wanted, all=all_)])


# --------------------------------------------------------------------------- system prune


def system_warning(*, all: bool, volumes: bool, filters: dict[str, list[str]]) -> str:
    """docker's confirmation text for ``system prune`` (without the `` [y/N] ``)."""
    warnings = ["all stopped containers", "all networks not used by at least one container"]
    if volumes:
        warnings.append("all anonymous volumes not used by at least one container")
    if all:
        warnings.append("all images without at least one container associated to them")
        warnings.append("all build cache")
    else:
        warnings.append("all dangling images")
        warnings.append("unused build cache")
    text = "WARNING! This will remove:\n" + "".join(f"  - {w}\n" for w in warnings)
    shown = sorted(
        f"{name}={value}"
        for name in ("label", "label!", "until")
        for value in filters.get(name, [])
    )
    if shown:
        text += "\n  Items to be pruned will be filtered with:\n"
        text += "".join(f"  - {f}\n" for f in shown)
    return text + "\nAre you sure you want to continue?"


@click.command(
    cls=DockerCommand,
    usage="prune [OPTIONS]",
    context_settings=_CTX,
    short_help="Remove unused data",
)
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Remove all unused images not just dangling ones"
)
@click.option(
    "--filter", "filters", multiple=True, help='Provide filter values (e.g. "label=<key>=<value>")'
)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option("--volumes", is_flag=True, help="Prune anonymous volumes")
@click.argument("args", nargs=-1)
@click.pass_context
def system_prune(
    ctx: click.Context,
    all_: bool,
    filters: tuple[str, ...],
    force: bool,
    volumes: bool,
    args: tuple[str, ...],
) -> None:
    """Remove unused data."""
    require_args(ctx, args, none=True)
    wanted = _filters(ctx, filters)
    if volumes and "until" in wanted:
        raise StatusError(1, 'ERROR: The "until" filter is not supported with "--volumes"')
    if not force and not confirm(system_warning(all=all_, volumes=volumes, filters=wanted)):
        return
    client = get_client(ctx)
    steps: list[Callable[[], Report]] = [
        lambda: prune_containers(client, wanted),
        lambda: prune_networks(client, wanted),
    ]
    if volumes:
        steps.append(lambda: prune_volumes(client, wanted))
    steps.append(lambda: prune_images(client, wanted, all=all_))
    steps.append(lambda: prune_build_cache(client, wanted, all=all_))
    _print_reports(steps)


# --------------------------------------------------------------------------- builder prune


@click.command(
    cls=DockerCommand,
    usage="prune",
    context_settings=_CTX,
    short_help="Remove build cache",
)
@click.option(
    "-a",
    "--all",
    "all_",
    is_flag=True,
    help="Remove all unused build cache, not just dangling ones",
)
@click.option("--filter", "filters", multiple=True, help='Provide filter values (e.g. "until=24h")')
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.option(
    "--keep-storage", default="0", metavar="bytes", help="Amount of disk space to keep for cache"
)
@click.argument("args", nargs=-1)
@click.pass_context
def builder_prune(
    ctx: click.Context,
    all_: bool,
    filters: tuple[str, ...],
    force: bool,
    keep_storage: str,
    args: tuple[str, ...],
) -> None:
    """Remove build cache (docker CLI 28's legacy ``builder prune``)."""
    require_args(ctx, args, none=True)
    wanted = _filters(ctx, filters)
    from .createopts import parse_bytes

    try:
        keep = parse_bytes(keep_storage)
    except InvalidArgument as exc:
        raise flag_error(
            ctx, f'invalid argument "{keep_storage}" for "--keep-storage" flag: {exc.message}'
        ) from exc
    if not force and not confirm(ALL_BUILD_CACHE_WARNING if all_ else BUILD_CACHE_WARNING):
        return
    client = get_client(ctx)
    text, reclaimed = prune_build_cache(client, wanted, all=all_, keep_storage=keep)
    if text:
        sys.stdout.write(text + "\n")
    sys.stdout.write(f"Total reclaimed space: {human_size(reclaimed)}\n")
    sys.stdout.flush()
