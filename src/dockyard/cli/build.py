"""``dockyard build``, ``commit``, ``history`` and ``export``."""

from __future__ import annotations

import sys
from typing import Any

import click

from .buildflow import BUILD_FLAGS, BUILD_USAGE, build_command, human_size
from .common import DockerCommand, StatusError, click_flags, get_client, get_state, require_args

__all__ = ["build", "commit", "export", "history"]

_CTX = {"help_option_names": ["-h", "--help"]}


@click.command(
    cls=DockerCommand,
    usage=BUILD_USAGE,
    context_settings=_CTX,
    short_help="Build an image from a Dockerfile",
)
@click_flags(BUILD_FLAGS, args="args")
@click.pass_context
def build(ctx: click.Context, /, **opts: Any) -> None:
    """Build an image from a Dockerfile."""
    require_args(ctx, opts["args"], exact=1)
    build_command(get_state(ctx), opts)


@click.command(
    cls=DockerCommand,
    usage="commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
    context_settings=_CTX,
    short_help="Create a new image from a container's changes",
)
@click.option("-a", "--author", default="", help="Author")
@click.option("-c", "--change", "changes", multiple=True, help="Apply Dockerfile instruction")
@click.option("-m", "--message", default="", help="Commit message")
@click.option("-p", "--pause/--no-pause", default=True, help="Pause container during commit")
@click.argument("args", nargs=-1)
@click.pass_context
def commit(
    ctx: click.Context,
    author: str,
    changes: tuple[str, ...],
    message: str,
    pause: bool,
    args: tuple[str, ...],
) -> None:
    """Create a new image from a container's changes."""
    from dockyard.client.build_api import commit as api_commit

    require_args(ctx, args, minimum=1)
    repo, tag = "", ""
    if len(args) > 1:
        ref = args[1]
        last = ref.rsplit("/", 1)[-1]
        if ":" in last:
            repo, tag = ref.rsplit(":", 1)
        else:
            repo = ref
    out = api_commit(
        get_client(ctx),
        args[0],
        repo=repo,
        tag=tag,
        author=author,
        comment=message,
        changes=changes,
        pause=pause,
    )
    click.echo(out.get("Id", ""))


@click.command(
    cls=DockerCommand,
    usage="history [OPTIONS] IMAGE",
    context_settings=_CTX,
    short_help="Show the history of an image",
)
@click.option(
    "-H", "--human/--no-human", default=True, help="Print sizes and dates in human readable format"
)
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.argument("args", nargs=-1)
@click.pass_context
def history(
    ctx: click.Context, human: bool, no_trunc: bool, quiet: bool, args: tuple[str, ...]
) -> None:
    """Show the history of an image."""
    import time

    from dockyard.client.build_api import history as api_history

    require_args(ctx, args, exact=1)
    rows = api_history(get_client(ctx), args[0])

    def short(image_id: str) -> str:
        if image_id == "<missing>" or no_trunc:
            return image_id
        return image_id.removeprefix("sha256:")[:12]

    if quiet:
        for row in rows:
            click.echo(short(str(row["Id"])))
        return
    lines = [("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")]
    now = time.time()
    for row in rows:
        created_by = str(row.get("CreatedBy") or "")
        if not no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        created = int(row.get("Created") or 0)
        when = _ago(now - created) if human else str(created)
        size = human_size(int(row.get("Size") or 0)) if human else str(row.get("Size") or 0)
        lines.append((short(str(row["Id"])), when, created_by, size, str(row.get("Comment") or "")))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    for line in lines:
        click.echo(
            "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(line[:4])) + "   " + line[4]
        )


def _ago(seconds: float) -> str:
    if seconds < 60:
        return "Less than a minute ago" if seconds >= 1 else "Less than a second ago"
    for size, unit in ((86400 * 365, "year"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            if unit == "hour" and n == 1:
                return "About an hour ago"
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "now"


@click.command(
    cls=DockerCommand,
    usage="export [OPTIONS] CONTAINER",
    context_settings=_CTX,
    short_help="Export a container's filesystem as a tar archive",
)
@click.option("-o", "--output", default="", help="Write to a file, instead of STDOUT")
@click.argument("args", nargs=-1)
@click.pass_context
def export(ctx: click.Context, output: str, args: tuple[str, ...]) -> None:
    """Export a container's filesystem as a tar archive."""
    from dockyard.client.build_api import export as api_export

    require_args(ctx, args, exact=1)
    if not output and sys.stdout.isatty():
        raise StatusError(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect")
    with api_export(get_client(ctx), args[0]) as stream:
        out = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
        try:
            while data := stream.read():
                out.write(data)
            out.flush()
        finally:
            if output:
                out.close()
