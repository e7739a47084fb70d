"""Image commands: images, pull, load, save, tag, rmi (push is in ``registry``)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

import click

from dockyard.client import iter_json_messages
from dockyard.errors import DockyardError

from .common import (
    DockerCommand,
    StatusError,
    describe_error,
    get_client,
    get_state,
    image_argument,
    require_args,
)
from .formatting import IMAGE_HEADERS, Formatter, image_rows
from .gofmt import TemplateError
from .progress import JSONMessageError, display_messages
from .streaming import is_terminal, tty_size

__all__ = ["image_format", "images", "import_", "load", "pull", "rmi", "save", "tag"]

_CTX = {"help_option_names": ["-h", "--help"]}

DEFAULT_IMAGE_FORMAT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
DIGEST_IMAGE_FORMAT = (
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
)
RAW_IMAGE_FORMAT = (
    "repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\n"
    "created_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n"
)
RAW_IMAGE_DIGEST_FORMAT = (
    "repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\n"
    "created_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n"
)


def image_format(fmt: str, *, quiet: bool, digests: bool) -> str:
    """docker's ``NewImageFormat``."""
    if fmt == "table":
        if quiet:
            return "{{.ID}}"
        return DIGEST_IMAGE_FORMAT if digests else DEFAULT_IMAGE_FORMAT
    if fmt == "raw":
        if quiet:
            return "image_id: {{.ID}}"
        return RAW_IMAGE_DIGEST_FORMAT if digests else RAW_IMAGE_FORMAT
    if fmt.startswith("table") and digests and "{{.Digest}}" not in fmt:
        return fmt + "\t{{.Digest}}"
    return fmt


def _filters(ctx: click.Context, values: tuple[str, ...]) -> dict[str, list[str]]:
    from .containers import _filters as parse

    return parse(ctx, values)


@click.command(
    cls=DockerCommand,
    usage="images [OPTIONS] [REPOSITORY[:TAG]]",
    context_settings=_CTX,
    short_help="List images",
)
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Show all images (default hides intermediate images)"
)
@click.option("--digests", is_flag=True, help="Show digests")
@click.option(
    "-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided"
)
@click.option("--format", "fmt", default="", help="Format output using a custom template")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.argument("args", nargs=-1)
@click.pass_context
def images(
    ctx: click.Context,
    all_: bool,
    digests: bool,
    filters: tuple[str, ...],
    fmt: str,
    no_trunc: bool,
    quiet: bool,
    args: tuple[str, ...],
) -> None:
    """List images."""
    if len(args) > 1:
        from .common import usage_error

        usage_error(ctx, "requires at most 1 argument")
    filter_map = _filters(ctx, filters)
    if args:
        filter_map.setdefault("reference", []).append(args[0])
    client = get_client(ctx)
    summaries = client.images_list(all=all_, filters=filter_map or None)
    final = image_format(fmt or "table", quiet=quiet, digests=digests)
    try:
        formatter = Formatter(final, IMAGE_HEADERS)
        rows = image_rows(summaries, digests=digests, trunc=not no_trunc, now=time.time())
        output = formatter.render(rows)
    except TemplateError as exc:
        raise StatusError(1, str(exc)) from exc
    sys.stdout.write(output)
    sys.stdout.flush()


def _render_progress(stream: Any, out: Any, fd: int) -> None:
    display_messages(
        iter_json_messages(stream.read),
        out,
        is_terminal=is_terminal(fd),
        width=tty_size(fd)[1] or 80,
    )


def _status_from(exc: JSONMessageError) -> StatusError:
    return StatusError(exc.code or 1, exc.message)


@click.command(
    cls=DockerCommand,
    usage="pull [OPTIONS] NAME[:TAG|@DIGEST]",
    context_settings=_CTX,
    short_help="Download an image from a registry",
)
@click.option("-a", "--all-tags", is_flag=True, help="Download all tagged images in the repository")
@click.option("--platform", default=None, help="Set platform if server is multi-platform capable")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.argument("args", nargs=-1)
@click.pass_context
def pull(
    ctx: click.Context, all_tags: bool, platform: str | None, quiet: bool, args: tuple[str, ...]
) -> None:
    """Download an image from a registry."""

    require_args(ctx, args, exact=1)
    ref = image_argument(args[0], all_tags=all_tags, quiet=quiet)
    tag = None if all_tags else (ref.digest or ref.tag)
    from .registry import registry_auth

    header = registry_auth(get_state(ctx), ref.domain)
    client = get_client(ctx)
    with client.image_create(ref.name, tag=tag, platform=platform, registry_auth=header) as stream:
        try:
            if quiet:
                with open(os.devnull, "w") as sink:
                    display_messages(iter_json_messages(stream.read), sink, is_terminal=False)
            else:
                _render_progress(stream, sys.stdout, 1)
        except JSONMessageError as exc:
            raise _status_from(exc) from exc
    click.echo(str(ref) if not all_tags else ref.name)


@click.command(
    cls=DockerCommand,
    usage="load [OPTIONS]",
    context_settings=_CTX,
    short_help="Load an image from a tar archive or STDIN",
)
@click.option(
    "-i", "--input", "input_", default="", help="Read from tar archive file, instead of STDIN"
)
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output")
@click.argument("args", nargs=-1)
@click.pass_context
def load(ctx: click.Context, input_: str, quiet: bool, args: tuple[str, ...]) -> None:
    """Load an image from a tar archive or STDIN."""
    require_args(ctx, args, none=True)
    if input_:
        try:
            source: Any = open(input_, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise StatusError(1, f"open {input_}: {(exc.strerror or str(exc)).lower()}") from exc
    else:
        if is_terminal(0):
            raise StatusError(1, "requested load from stdin, but stdin is empty")
        source = sys.stdin.buffer
    if not is_terminal(1):
        quiet = True
    client = get_client(ctx)
    try:
        with client.image_load(source, quiet=quiet) as stream:
            if "json" in stream.content_type:
                try:
                    _render_progress(stream, sys.stdout, 1)
                except JSONMessageError as exc:
                    raise _status_from(exc) from exc
            else:
                out = sys.stdout.buffer
                while True:
                    data = stream.read()
                    if not data:
                        break
                    out.write(data)
                out.flush()
    finally:
        if input_:
            source.close()


@click.command(
    cls=DockerCommand,
    usage="save [OPTIONS] IMAGE [IMAGE...]",
    context_settings=_CTX,
    short_help="Save one or more images to a tar archive (streamed to STDOUT by default)",
)
@click.option("-o", "--output", default="", help="Write to a file, instead of STDOUT")
@click.option("--platform", default=None, hidden=True)
@click.argument("args", nargs=-1)
@click.pass_context
def save(ctx: click.Context, output: str, platform: str | None, args: tuple[str, ...]) -> None:
    """Save one or more images to a tar archive (streamed to STDOUT by default)."""
    require_args(ctx, args, minimum=1)
    if not output and is_terminal(1):
        raise StatusError(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect")
    client = get_client(ctx)
    with client.image_save(list(args)) as stream:
        if not output:
            out = sys.stdout.buffer
            while True:
                data = stream.read()
                if not data:
                    break
                out.write(data)
            out.flush()
            return
        directory = os.path.dirname(os.path.abspath(output))
        fd, tmp = tempfile.mkstemp(prefix=".docker_temp_", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                while True:
                    data = stream.read()
                    if not data:
                        break
                    fh.write(data)
            os.replace(tmp, output)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


@click.command(
    cls=DockerCommand,
    usage="tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
    context_settings=_CTX,
    short_help="Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
)
@click.argument("args", nargs=-1)
@click.pass_context
def tag(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    from dockyard.reference import parse

    require_args(ctx, args, exact=2)
    source, target = args
    try:
        ref = parse(target, default_tag=False)
    except DockyardError as exc:
        raise StatusError(
            1, f'Error parsing reference: "{target}" is not a valid repository/tag: {exc}'
        ) from exc
    if ref.digest is not None:
        raise StatusError(1, "refusing to create a tag with a digest reference")
    client = get_client(ctx)
    client.image_tag(source, ref.name, ref.tag or "latest")


@click.command(
    cls=DockerCommand,
    usage="rmi [OPTIONS] IMAGE [IMAGE...]",
    context_settings=_CTX,
    short_help="Remove one or more images",
)
@click.option("-f", "--force", is_flag=True, help="Force removal of the image")
@click.option("--no-prune", is_flag=True, help="Do not delete untagged parents")
@click.argument("args", nargs=-1)
@click.pass_context
def rmi(ctx: click.Context, force: bool, no_prune: bool, args: tuple[str, ...]) -> None:
    """Remove one or more images."""
    require_args(ctx, args, minimum=1)
    client = get_client(ctx)
    errors: list[str] = []
    for name in args:
        try:
            deleted = client.image_remove(name, force=force, noprune=no_prune)
        except DockyardError as exc:
            errors.append(describe_error(exc))
            continue
        for item in deleted:
            if item.get("Deleted"):
                click.echo(f"Deleted: {item['Deleted']}")
            else:
                click.echo(f"Untagged: {item.get('Untagged', '')}")
    if errors:
        raise StatusError(1, "\n".join(errors))


@click.command(
    "import",
    cls=DockerCommand,
    usage="import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
    context_settings=_CTX,
    short_help="Import the contents from a tarball to create a filesystem image",
)
@click.option(
    "-c",
    "--change",
    "changes",
    multiple=True,
    help="Apply Dockerfile instruction to the created image",
)
@click.option("-m", "--message", default="", help="Set commit message for imported image")
@click.option("--platform", default="", help="Set platform if server is multi-platform capable")
@click.argument("args", nargs=-1)
@click.pass_context
def import_(
    ctx: click.Context,
    changes: tuple[str, ...],
    message: str,
    platform: str,
    args: tuple[str, ...],
) -> None:
    """Import the contents from a tarball to create a filesystem image."""
    from dockyard.client.import_api import image_import
    from dockyard.reference import parse

    require_args(ctx, args, minimum=1)  # docker ignores arguments past the second
    source_arg = args[0]
    repo = args[1] if len(args) > 1 else ""
    source: Any = None
    source_name = "-"
    opened = False
    if source_arg == "-":
        source = sys.stdin.buffer
    elif source_arg.startswith(("http://", "https://")):
        source_name = source_arg  # fetched by the daemon
    else:
        try:
            source = open(source_arg, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise StatusError(
                1, f"open {source_arg}: {(exc.strerror or str(exc)).lower()}"
            ) from exc
        opened = True
    try:
        if repo:  # checked after opening the file, as docker does
            try:
                parse(repo, default_tag=False)
            except DockyardError as exc:
                raise StatusError(1, str(exc)) from exc
        with image_import(
            get_client(ctx),
            source,
            source_name=source_name,
            repo=repo,
            message=message,
            changes=changes,
            platform=platform,
        ) as stream:
            try:
                _render_progress(stream, sys.stdout, 1)
            except JSONMessageError as exc:
                raise _status_from(exc) from exc
    finally:
        if opened:
            source.close()
