"""``dockyard build``, ``commit``, ``history`` and ``export``."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from .common import DockerCommand, StatusError, get_client, require_args

__all__ = ["build", "commit", "export", "history"]

_CTX = {"help_option_names": ["-h", "--help"]}


def human_size(n: float) -> str:
    """go-units HumanSize: decimal units, 4 significant digits ("3.072kB")."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000
        i += 1
    return f"{n:.4g}{units[i]}"


def _context_tar(root: Path, dockerfile: str, out: Any) -> None:
    """Tar the context directory, leaving out what .dockerignore excludes (the Dockerfile
    and .dockerignore are always sent, as the docker CLI does)."""
    from dockyard.build.dockerignore import Matcher

    ignore = root / ".dockerignore"
    matcher = Matcher.from_text(ignore.read_text() if ignore.is_file() else "")
    keep = {".dockerignore", os.path.normpath(dockerfile)}
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(rel: str) -> None:
            full = root / rel
            info = tar.gettarinfo(str(full), arcname=rel)
            info.uname = info.gname = ""
            info.uid = info.gid = 0
            if info.isreg():
                with open(full, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)

        for dirpath, dirnames, filenames in os.walk(root):
            base = os.path.relpath(dirpath, root)
            base = "" if base == "." else base
            dirnames.sort()
            for name in list(dirnames):
                rel = f"{base}/{name}" if base else name
                if matcher.excluded(rel):
                    if not matcher.may_contain_included(rel):
                        dirnames.remove(name)
                    continue
                if os.path.islink(root / rel):
                    dirnames.remove(name)
                add(rel)
            for name in sorted(filenames):
                rel = f"{base}/{name}" if base else name
                if matcher.excluded(rel) and rel not in keep:
                    continue
                add(rel)


def _chunks(f: Any) -> Any:
    while chunk := f.read(1 << 16):
        yield chunk


@click.command(
    cls=DockerCommand,
    usage="build [OPTIONS] PATH | URL | -",
    context_settings=_CTX,
    short_help="Build an image from a Dockerfile",
)
@click.option("-t", "--tag", "tags", multiple=True, help="Name and optionally a tag (name:tag)")
@click.option("-f", "--file", "dockerfile", default="", help="Name of the Dockerfile")
@click.option("--build-arg", "build_args", multiple=True, help="Set build-time variables")
@click.option("--target", default="", help="Set the target build stage to build")
@click.option("--no-cache", is_flag=True, help="Do not use cache when building the image")
@click.option("--pull", is_flag=True, help="Always attempt to pull a newer version of the image")
@click.option("--label", "labels", multiple=True, help="Set metadata for an image")
@click.option("-q", "--quiet", is_flag=True, help="Suppress the build output and print image ID")
@click.option("--iidfile", default="", help="Write the image ID to the file")
@click.option("--network", default="", help="Networking mode for the RUN instructions")
@click.option("--platform", default="", help="Set platform if server is multi-platform capable")
@click.option("--rm/--no-rm", default=True, help="Remove intermediate containers")
@click.option("--force-rm", is_flag=True, help="Always remove intermediate containers")
@click.argument("args", nargs=-1)
@click.pass_context
def build(
    ctx: click.Context,
    tags: tuple[str, ...],
    dockerfile: str,
    build_args: tuple[str, ...],
    target: str,
    no_cache: bool,
    pull: bool,
    labels: tuple[str, ...],
    quiet: bool,
    iidfile: str,
    network: str,
    platform: str,
    rm: bool,
    force_rm: bool,
    args: tuple[str, ...],
) -> None:
    """Build an image from a Dockerfile."""
    from dockyard.client.build_api import build as api_build

    require_args(ctx, args, exact=1)
    path = args[0]
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
            if (len(data) >= 262 and data[257:262] == b"ustar") or data[:2] == b"\x1f\x8b":
                spool.write(data)
            else:  # a Dockerfile on stdin, no context
                with tarfile.open(fileobj=spool, mode="w") as tar:
                    info = tarfile.TarInfo("Dockerfile")
                    info.size = len(data)
                    info.mode = 0o644
                    tar.addfile(info, io.BytesIO(data))
        else:
            root = Path(path)
            if not root.is_dir():
                raise StatusError(1, f'unable to prepare context: path "{path}" not found')
            name = dockerfile or "Dockerfile"
            if os.path.isabs(name):
                name = os.path.relpath(name, root)
            dockerfile = name
            _context_tar(root, name, spool)
        size = spool.tell()
        spool.seek(0)
        if not quiet:
            click.echo(f"Sending build context to Docker daemon  {human_size(size)}\n")
        build_args_map: dict[str, str | None] = {}
        for item in build_args:
            key, sep, value = item.partition("=")
            build_args_map[key] = value if sep else os.environ.get(key)
        label_map = dict(item.partition("=")[::2] for item in labels)
        query: dict[str, Any] = {
            "t": list(tags) or None,
            "dockerfile": dockerfile or None,
            "buildargs": json.dumps(build_args_map) if build_args_map else None,
            "target": target or None,
            "nocache": "1" if no_cache else None,
            "pull": "1" if pull else None,
            "labels": json.dumps(label_map) if label_map else None,
            "q": "1" if quiet else None,
            "networkmode": network or None,
            "platform": platform or None,
            "rm": "1" if rm else "0",
            "forcerm": "1" if force_rm else None,
            "version": "1",
        }
        client = get_client(ctx)
        image_id = ""
        with api_build(client, _chunks(spool), query) as stream:
            from dockyard.client import iter_json_messages

            from .progress import JSONMessageError, display_messages

            def on_aux(message: Mapping[str, Any]) -> None:
                nonlocal image_id
                aux = message.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = str(aux["ID"])

            # Like docker: steps as text, and pulls of base images as progress lines.
            out = io.StringIO() if quiet else sys.stdout
            try:
                display_messages(
                    iter_json_messages(stream.read),
                    out,
                    is_terminal=not quiet and sys.stdout.isatty(),
                    aux=on_aux,
                )
            except JSONMessageError as exc:
                raise StatusError(exc.code or 1, exc.message or "build failed") from None
        if quiet and image_id:
            click.echo(image_id)
        if iidfile and image_id:
            Path(iidfile).write_text(image_id)
    finally:
        spool.close()


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
