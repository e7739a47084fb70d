"""``dockyard build``, ``commit``, ``history`` and ``export``."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from dockyard.units import human_duration

from .buildflow import BUILD_FLAGS, BUILD_USAGE, build_command
from .common import DockerCommand, StatusError, click_flags, get_client, get_state, require_args
from .formatting import Formatter, _Context, human_size
from .gofmt import TemplateError

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


HISTORY_HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}
DEFAULT_HISTORY_FORMAT = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"


class HistoryContext(_Context):
    """One ``GET /images/{name}/history`` entry as docker's ``historyContext`` shows it."""

    go_type = "*formatter.historyContext"
    fields = ("Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size")

    def __init__(self, row: dict[str, Any], *, human: bool, trunc: bool, now: float) -> None:
        super().__init__()
        self.row, self.human, self.trunc, self.now = row, human, trunc, now

    def f_ID(self) -> str:
        image_id = str(self.row.get("Id") or "")
        if not self.trunc or image_id == "<missing>":
            return image_id
        return image_id.removeprefix("sha256:")[:12]

    def f_CreatedAt(self) -> str:
        stamp = datetime.fromtimestamp(int(self.row.get("Created") or 0)).astimezone()
        text = stamp.isoformat(timespec="seconds")
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def f_CreatedSince(self) -> str:
        if not self.human:
            return self.f_CreatedAt()
        return human_duration(self.now - int(self.row.get("Created") or 0)) + " ago"

    def f_CreatedBy(self) -> str:
        created_by = str(self.row.get("CreatedBy") or "").replace("\t", " ")
        if self.trunc and len(created_by) > 45:
            return created_by[:44] + "…"
        return created_by

    def f_Size(self) -> str:
        size = int(self.row.get("Size") or 0)
        return human_size(size, 3) if self.human else str(size)

    def f_Comment(self) -> str:
        return str(self.row.get("Comment") or "")


@click.command(
    cls=DockerCommand,
    usage="history [OPTIONS] IMAGE",
    context_settings=_CTX,
    short_help="Show the history of an image",
    negatable=("human",),
)
@click.option("--format", "fmt", default="", help="Format output using a custom template")
@click.option(
    "-H", "--human/--no-human", default=True, help="Print sizes and dates in human readable format"
)
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.argument("args", nargs=-1)
@click.pass_context
def history(
    ctx: click.Context,
    fmt: str,
    human: bool,
    no_trunc: bool,
    quiet: bool,
    args: tuple[str, ...],
) -> None:
    """Show the history of an image."""
    import time

    from dockyard.client.build_api import history as api_history

    require_args(ctx, args, exact=1)
    rows = api_history(get_client(ctx), args[0])
    if fmt in ("", "table"):
        fmt = "{{.ID}}" if quiet else DEFAULT_HISTORY_FORMAT
    now = time.time()
    try:
        headers = HISTORY_HEADERS if human else {**HISTORY_HEADERS, "CreatedSince": "CREATED AT"}
        output = Formatter(fmt, headers).render(
            HistoryContext(row, human=human, trunc=not no_trunc, now=now) for row in rows
        )
    except TemplateError as exc:
        raise StatusError(1, str(exc)) from exc
    click.echo(output, nl=False)


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
