"""Container commands: run, create, start, stop, kill, restart, rm, ps, logs, wait, prune.

Each sends what the docker CLI 28 sends (see ``docker-cli-wire.md``) and prints what it
prints, with its exit codes: run/create usage and create errors exit 125 (run prefixes
``dockyard:``), start errors at run exit 127/126/125 by message, ``run`` exits with the
container's status, multi-container verbs print each name and exit 1 if any failed.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import click

from dockyard.client import Client, StreamError
from dockyard.errors import DockyardError, InvalidArgument, NotFound

from .common import (
    DockerCommand,
    StatusError,
    click_flags,
    describe_error,
    flag_error,
    get_client,
    get_state,
    require_args,
)
from .flagspec import INT, Flag
from .formatting import (
    CONTAINER_HEADERS,
    ContainerContext,
    Formatter,
    human_size,
    template_uses,
)
from .gofmt import TemplateError
from .runflow import (
    CREATE_FLAGS,
    CREATE_USAGE,
    RUN_FLAGS,
    RUN_USAGE,
    attach_and_start,
    create_command,
    run_command,
    write_err,
)
from .streaming import (
    SignalProxy,
    binary_stdio,
    parse_detach_keys,
)

__all__ = [
    "create",
    "kill",
    "logs",
    "parse_timestamp",
    "prune",
    "ps",
    "restart",
    "rm",
    "run",
    "start",
    "stop",
    "wait",
]

_CTX = {"help_option_names": ["-h", "--help"]}
_RUN_CTX = {"help_option_names": ["--help"], "allow_interspersed_args": False}

DEFAULT_PS_FORMAT = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
)
RAW_PS_FORMAT = (
    "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\n"
    "state: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\n"
    "labels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n"
)

# --------------------------------------------------------------------------- run/create
# The flags and the flow live in ``runflow`` (click-free, for ``main``'s fast path); these
# are the click commands for everything the fast path hands over (help, usage errors).


@click.command(
    cls=DockerCommand,
    usage=CREATE_USAGE,
    context_settings=_RUN_CTX,
    short_help="Create a new container",
)
@click_flags(CREATE_FLAGS, args="args")
@click.pass_context
def create(ctx: click.Context, /, **opts: Any) -> None:
    """Create a new container."""
    require_args(ctx, opts["args"], minimum=1)
    create_command(get_state(ctx), ctx.command_path, opts)


@click.command(
    cls=DockerCommand,
    usage=RUN_USAGE,
    negatable=("sig-proxy",),
    context_settings=_RUN_CTX,
    short_help="Create and run a new container from an image",
)
@click_flags(RUN_FLAGS, args="args")
@click.pass_context
def run(ctx: click.Context, /, **opts: Any) -> None:
    """Create and run a new container from an image."""
    require_args(ctx, opts["args"], minimum=1)
    code = run_command(get_state(ctx), ctx.command_path, opts)
    if code:
        raise StatusError(code)


# --------------------------------------------------------------------------- start


@click.command(
    cls=DockerCommand,
    usage="start [OPTIONS] CONTAINER [CONTAINER...]",
    context_settings=_CTX,
    short_help="Start one or more stopped containers",
)
@click.option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR and forward signals")
@click.option("-i", "--interactive", is_flag=True, help="Attach container's STDIN")
@click.option("--detach-keys", default=None, help="Override the key sequence for detaching")
@click.argument("containers", nargs=-1)
@click.pass_context
def start(
    ctx: click.Context,
    attach: bool,
    interactive: bool,
    detach_keys: str | None,
    containers: tuple[str, ...],
) -> None:
    """Start one or more stopped containers."""
    require_args(ctx, containers, minimum=1)
    client = get_client(ctx)
    if attach or interactive:
        if len(containers) > 1:
            raise StatusError(1, "you cannot start and attach multiple containers at once")
        _start_attached(client, containers[0], interactive, detach_keys)
        return
    failed: list[str] = []
    for name in containers:
        try:
            client.container_start(name)
        except DockyardError as exc:
            write_err(describe_error(exc))
            failed.append(name)
            continue
        click.echo(name)
    if failed:
        raise StatusError(1, f"Error: failed to start containers: {', '.join(failed)}")


def _start_attached(client: Client, name: str, interactive: bool, detach_keys: str | None) -> None:
    """``start -a``/``-i``: inspect, attach, wait, start, stream, exit with the status."""
    info = client.container_inspect(name)
    cid = str(info["Id"])
    config = info.get("Config") or {}
    tty = bool(config.get("Tty"))
    use_stdin = interactive and bool(config.get("OpenStdin"))
    auto_remove = bool((info.get("HostConfig") or {}).get("AutoRemove"))
    try:
        keys = parse_detach_keys(detach_keys)
    except ValueError:
        keys = parse_detach_keys(None)

    def start_failed(exc: DockyardError) -> int:
        raise exc

    code = attach_and_start(
        client,
        cid,
        stdin=use_stdin,
        tty=tty,
        auto_remove=auto_remove,
        proxy=None if tty else SignalProxy(client, cid, forward=True).start(),
        detach_keys=keys,
        on_start_error=start_failed,
    )
    if code:
        raise StatusError(code)


# --------------------------------------------------------------------------- stop/kill/rm


def _parallel(
    client: Client, names: Sequence[str], op: Callable[[Client, str], None]
) -> list[BaseException | None]:
    """Run ``op`` for each name (up to 50 at once, like docker), results in order."""
    results: list[BaseException | None] = [None] * len(names)
    if len(names) == 1:
        try:
            op(client, names[0])
        except DockyardError as exc:
            results[0] = exc
        return results
    sem = threading.Semaphore(50)

    def work(i: int, name: str) -> None:
        with sem:
            worker = client.clone()
            try:
                op(worker, name)
            except DockyardError as exc:
                results[i] = exc
            finally:
                worker.close()

    threads = [threading.Thread(target=work, args=(i, n), daemon=True) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)
    return results


def _report(names: Sequence[str], results: Sequence[BaseException | None]) -> None:
    errors: list[str] = []
    for name, error in zip(names, results, strict=True):
        if error is None:
            click.echo(name)
        else:
            errors.append(describe_error(error))
    if errors:
        raise StatusError(1, "\n".join(errors))


# stop and restart: docker's flags (``--time`` is the deprecated spelling of ``--timeout``).
_STOP_FLAGS = (
    Flag("-s", "--signal", dest="sig", help="Signal to send to the container"),
    Flag(
        "-t",
        "--timeout",
        dest="timeout",
        kind=INT,
        help="Seconds to wait before killing the container",
    ),
    Flag("--time", dest="old_time", kind=INT, hidden=True),
)


def _timeout_option(ctx: click.Context, timeout: int | None, old_time: int | None) -> int | None:
    if old_time is not None:
        click.echo("Flag --time has been deprecated, use --timeout instead")
        if timeout is not None:
            raise StatusError(1, "conflicting options: cannot specify both --timeout and --time")
        return old_time
    return timeout


@click.command(
    cls=DockerCommand,
    usage="stop [OPTIONS] CONTAINER [CONTAINER...]",
    context_settings=_CTX,
    short_help="Stop one or more running containers",
)
@click_flags(_STOP_FLAGS, args="containers")
@click.pass_context
def stop(
    ctx: click.Context,
    sig: str | None,
    timeout: int | None,
    old_time: int | None,
    containers: tuple[str, ...],
) -> None:
    """Stop one or more running containers."""
    require_args(ctx, containers, minimum=1)
    t = _timeout_option(ctx, timeout, old_time)
    client = get_client(ctx)

    def op(c: Client, name: str) -> None:
        c.container_stop(name, timeout=t, signal=sig)

    results = _parallel(client, containers, op)
    _report(containers, results)


@click.command(
    cls=DockerCommand,
    usage="restart [OPTIONS] CONTAINER [CONTAINER...]",
    context_settings=_CTX,
    short_help="Restart one or more containers",
)
@click_flags(_STOP_FLAGS, args="containers")
@click.pass_context
def restart(
    ctx: click.Context,
    sig: str | None,
    timeout: int | None,
    old_time: int | None,
    containers: tuple[str, ...],
) -> None:
    """Restart one or more containers."""
    require_args(ctx, containers, minimum=1)
    t = _timeout_option(ctx, timeout, old_time)
    client = get_client(ctx)
    errors: list[str] = []
    for name in containers:
        try:
            client.container_restart(name, timeout=t, signal=sig)
        except DockyardError as exc:
            errors.append(describe_error(exc))
            continue
        click.echo(name)
    if errors:
        raise StatusError(1, "\n".join(errors))


@click.command(
    cls=DockerCommand,
    usage="kill [OPTIONS] CONTAINER [CONTAINER...]",
    context_settings=_CTX,
    short_help="Kill one or more running containers",
)
@click.option("-s", "--signal", "sig", default=None, help="Signal to send to the container")
@click.argument("containers", nargs=-1)
@click.pass_context
def kill(ctx: click.Context, sig: str | None, containers: tuple[str, ...]) -> None:
    """Kill one or more running containers."""
    require_args(ctx, containers, minimum=1)
    client = get_client(ctx)
    results = _parallel(client, containers, lambda c, n: c.container_kill(n, signal=sig or None))
    _report(containers, results)


@click.command(
    cls=DockerCommand,
    usage="rm [OPTIONS] CONTAINER [CONTAINER...]",
    context_settings=_CTX,
    short_help="Remove one or more containers",
)
@click.option(
    "-f", "--force", is_flag=True, help="Force the removal of a running container (uses SIGKILL)"
)
@click.option("-l", "--link", is_flag=True, help="Remove the specified link")
@click.option(
    "-v", "--volumes", is_flag=True, help="Remove anonymous volumes associated with the container"
)
@click.argument("containers", nargs=-1)
@click.pass_context
def rm(
    ctx: click.Context, force: bool, link: bool, volumes: bool, containers: tuple[str, ...]
) -> None:
    """Remove one or more containers."""
    require_args(ctx, containers, minimum=1)
    client = get_client(ctx)

    def op(c: Client, name: str) -> None:
        name = name.strip("/")
        if not name:
            raise InvalidArgument("container name cannot be empty")
        c.container_remove(name, force=force, volumes=volumes, link=link)

    results = _parallel(client, containers, op)
    errors: list[str] = []
    for name, error in zip(containers, results, strict=True):
        if error is None:
            click.echo(name)
        elif force and isinstance(error, NotFound):
            write_err(describe_error(error))
        else:
            errors.append(describe_error(error))
    if errors:
        raise StatusError(1, "\n".join(errors))


# --------------------------------------------------------------------------- wait


@click.command(
    cls=DockerCommand,
    usage="wait CONTAINER [CONTAINER...]",
    context_settings=_CTX,
    short_help="Block until one or more containers stop, then print their exit codes",
)
@click.argument("containers", nargs=-1)
@click.pass_context
def wait(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Block until one or more containers stop, then print their exit codes."""
    require_args(ctx, containers, minimum=1)
    client = get_client(ctx)
    errors: list[str] = []
    for name in containers:
        try:
            waiter = client.container_wait(name)
            result = waiter.result()
        except DockyardError as exc:
            errors.append(describe_error(exc))
            continue
        error = result.get("Error")
        if error:
            message = error.get("Message", "") if isinstance(error, dict) else str(error)
            errors.append(message)
            continue
        click.echo(str(int(result.get("StatusCode") or 0)))
    if errors:
        raise StatusError(1, "\n".join(errors))


# --------------------------------------------------------------------------- ps


def _filters(
    ctx: click.Context, values: Sequence[str], label: str = "-f, --filter"
) -> dict[str, list[str]]:
    from dockyard.client.wire import parse_filter_args

    try:
        return parse_filter_args(values)
    except ValueError as exc:
        raise flag_error(
            ctx, f'invalid argument "{_bad_filter(values)}" for "{label}" flag: {exc}'
        ) from exc


def _bad_filter(values: Sequence[str]) -> str:
    for value in values:
        if "=" not in value:
            return value
    return ""


def container_format(fmt: str, *, quiet: bool, size: bool) -> str:
    """docker's ``NewContainerFormat``."""
    if fmt in ("table", ""):
        if quiet:
            return "{{.ID}}"
        return DEFAULT_PS_FORMAT + ("\t{{.Size}}" if size else "")
    if fmt == "raw":
        if quiet:
            return "container_id: {{.ID}}"
        return RAW_PS_FORMAT + ("size: {{.Size}}\n" if size else "")
    return "{{.ID}}" if quiet else fmt


def format_uses_size(fmt: str) -> bool:
    """Whether the ``--format`` template reads ``.Size`` (then docker asks for sizes).

    Raises ``StatusError`` for a template that does not parse or execute, as docker does.
    """
    try:
        return template_uses(fmt, "Size", ContainerContext({}, trunc=True))
    except TemplateError as exc:
        raise StatusError(1, str(exc)) from exc


@click.command(
    cls=DockerCommand,
    usage="ps [OPTIONS]",
    context_settings=_CTX,
    short_help="List containers",
)
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running)"
)
@click.option(
    "-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided"
)
@click.option("--format", "fmt", default="", help="Format output using a custom template")
@click.option(
    "-n",
    "--last",
    type=int,
    default=-1,
    help="Show n last created containers (includes all states)",
)
@click.option(
    "-l", "--latest", is_flag=True, help="Show the latest created container (includes all states)"
)
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only display container IDs")
@click.option("-s", "--size", is_flag=True, default=None, help="Display total file sizes")
@click.argument("args", nargs=-1)
@click.pass_context
def ps(
    ctx: click.Context,
    all_: bool,
    filters: tuple[str, ...],
    fmt: str,
    last: int,
    latest: bool,
    no_trunc: bool,
    quiet: bool,
    size: bool | None,
    args: tuple[str, ...],
) -> None:
    """List containers."""
    require_args(ctx, args, none=True)
    if fmt and quiet:
        write_err("WARNING: Ignoring custom format, because both --format and --quiet are set.")
    filter_map = _filters(ctx, filters)
    want_size = bool(size)
    if fmt:
        uses_size = format_uses_size(fmt)
        if not quiet and not want_size and size is None and uses_size:
            want_size = True
    limit = last
    if latest and last == -1:
        limit = 1
    client = get_client(ctx)
    containers = client.containers_list(
        all=all_, limit=limit if limit > 0 else None, size=want_size, filters=filter_map or None
    )
    final = container_format(fmt, quiet=quiet, size=want_size)
    try:
        formatter = Formatter(final, CONTAINER_HEADERS)
        now = time.time()
        output = formatter.render(
            ContainerContext(c, trunc=not no_trunc, now=now) for c in containers
        )
    except TemplateError as exc:
        raise StatusError(1, str(exc)) from exc
    sys.stdout.write(output)
    sys.stdout.flush()


# --------------------------------------------------------------------------- logs

_DURATION_RE = re.compile(r"^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def _go_duration_seconds(value: str) -> float | None:
    if value == "0":
        return None
    if not _DURATION_RE.match(value):
        return None
    sign = -1.0 if value.startswith("-") else 1.0
    total = sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(value))
    return sign * total


def parse_timestamp(value: str, now: float | None = None) -> str:
    """docker's ``timetypes.GetTimestamp``: durations (``10m``) are relative to now,
    RFC 3339 dates become ``seconds.nanoseconds``, Unix timestamps pass through.

    Raises ``InvalidArgument`` like docker for anything else.
    """
    current = time.time() if now is None else now
    seconds = _go_duration_seconds(value)
    if seconds is not None:
        return str(int(current - seconds))
    if "-" in value:
        text = value.replace("z", "Z")
        try:
            if "T" in text:
                date, _, clock = text.partition("T")
                zone = ""
                for marker in ("Z", "+"):
                    if marker in clock:
                        idx = clock.index(marker)
                        clock, zone = clock[:idx], clock[idx:]
                        break
                else:
                    if clock.count("-") == 1:
                        idx = clock.index("-")
                        clock, zone = clock[:idx], clock[idx:]
                parts = clock.split(":")
                while len(parts) < 3:
                    parts.append("00")
                clock = ":".join(parts)
                text = f"{date}T{clock}{zone}"
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InvalidArgument(f'parsing time "{value}": {exc}') from exc
        if dt.tzinfo is None:
            dt = dt.astimezone()
        ts = dt.timestamp()
        secs = int(ts // 1)
        nanos = dt.microsecond * 1000
        return f"{secs}.{nanos:09d}"
    if re.match(r"^\d+(\.\d{1,9})?$", value):
        return value
    raise InvalidArgument(f'failed to parse value as time or duration: "{value}"')


@click.command(
    cls=DockerCommand,
    usage="logs [OPTIONS] CONTAINER",
    context_settings=_CTX,
    short_help="Fetch the logs of a container",
)
@click.option("--details", is_flag=True, help="Show extra details provided to logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("--since", default="", help="Show logs since timestamp or relative (e.g. 42m)")
@click.option(
    "-n", "--tail", default="all", help="Number of lines to show from the end of the logs"
)
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("--until", default="", help="Show logs before a timestamp or relative (e.g. 42m)")
@click.argument("args", nargs=-1)
@click.pass_context
def logs(
    ctx: click.Context,
    details: bool,
    follow: bool,
    since: str,
    tail: str,
    timestamps: bool,
    until: str,
    args: tuple[str, ...],
) -> None:
    """Fetch the logs of a container."""
    require_args(ctx, args, exact=1)
    client = get_client(ctx)
    info = client.container_inspect(args[0])
    try:
        since_ts = parse_timestamp(since) if since else None
    except InvalidArgument as exc:
        raise StatusError(1, f'invalid value for "since": {exc.message}') from exc
    try:
        until_ts = parse_timestamp(until) if until else None
    except InvalidArgument as exc:
        raise StatusError(1, f'invalid value for "until": {exc.message}') from exc
    stream = client.container_logs(
        str(info["Id"]),
        stdout=True,
        stderr=True,
        follow=follow,
        since=since_ts,
        until=until_ts,
        timestamps=timestamps,
        tail=tail,
        details=details,
    )
    from dockyard.client import demux
    from dockyard.client.streams import copy_raw

    _, stdout_f, stderr_f = binary_stdio()
    try:
        if (info.get("Config") or {}).get("Tty"):
            copy_raw(stream.read, stdout_f)
        else:
            demux(stream.read, stdout_f, stderr_f)
    except StreamError as exc:
        raise StatusError(1, str(exc)) from exc
    except KeyboardInterrupt:
        raise StatusError(130) from None
    finally:
        stream.close()


# --------------------------------------------------------------------------- prune


@click.command(
    cls=DockerCommand,
    usage="prune [OPTIONS]",
    context_settings=_CTX,
    short_help="Remove all stopped containers",
)
@click.option(
    "--filter", "filters", multiple=True, help='Provide filter values (e.g. "until=<timestamp>")'
)
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation")
@click.argument("args", nargs=-1)
@click.pass_context
def prune(ctx: click.Context, filters: tuple[str, ...], force: bool, args: tuple[str, ...]) -> None:
    """Remove all stopped containers."""
    require_args(ctx, args, none=True)
    filter_map = _filters(ctx, filters, "--filter")
    if not force:
        sys.stdout.write(
            "WARNING! This will remove all stopped containers.\n"
            "Are you sure you want to continue? [y/N] "
        )
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return
    client = get_client(ctx)
    report = client.containers_prune(filters=filter_map or None)
    deleted = report.get("ContainersDeleted") or []
    out: list[str] = []
    if deleted:
        out.append("Deleted Containers:\n")
        out.extend(f"{cid}\n" for cid in deleted)
        out.append("\n")
    out.append(f"Total reclaimed space: {human_size(int(report.get('SpaceReclaimed') or 0))}\n")
    sys.stdout.write("".join(out))
    sys.stdout.flush()
