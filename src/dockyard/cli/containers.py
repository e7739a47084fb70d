"""Container commands: run, create, start, stop, kill, restart, rm, ps, logs, wait, prune.

Each sends what the docker CLI 28 sends (see ``docker-cli-wire.md``) and prints what it
prints, with its exit codes: run/create usage and create errors exit 125 (run prefixes
``dockyard:``), start errors at run exit 127/126/125 by message, ``run`` exits with the
container's status, multi-container verbs print each name and exit 1 if any failed.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from dockyard.client import Client, HijackedStream, StreamError, WaitHandle
from dockyard.errors import DockyardError, InvalidArgument, NotFound

from .common import (
    PROG,
    DockerCommand,
    StatusError,
    describe_error,
    flag_error,
    get_client,
    require_args,
)
from .formatting import (
    CONTAINER_HEADERS,
    ContainerContext,
    Formatter,
    human_size,
    template_uses,
)
from .gofmt import TemplateError
from .progress import JSONMessageError
from .streaming import (
    DetachRequested,
    SignalProxy,
    binary_stdio,
    is_terminal,
    parse_detach_keys,
    pump,
    raw_terminal,
    tty_size,
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

# --------------------------------------------------------------------------- pull helper


def pull_for_create(client: Client, image: str, *, quiet: bool, platform: str | None) -> None:
    """Pull ``image`` the way ``create``/``run`` do: progress to stderr, with the stored
    credentials for its registry.

    Raises the client's errors, or ``JSONMessageError`` for an error inside the stream.
    """
    from dockyard.client import iter_json_messages
    from dockyard.reference import parse

    from .progress import display_messages
    from .registry import registry_auth_for_current

    ref = parse(image)
    tag = ref.digest or ref.tag
    header = registry_auth_for_current(ref.domain)
    with client.image_create(ref.name, tag=tag, platform=platform, registry_auth=header) as stream:
        messages = iter_json_messages(stream.read)
        if quiet:
            sink = open(os.devnull, "w")  # noqa: SIM115 - closed below
            try:
                display_messages(messages, sink, is_terminal=False)
            finally:
                sink.close()
        else:
            display_messages(
                messages,
                sys.stderr,
                is_terminal=is_terminal(2),
                width=tty_size(2)[1] or 80,
            )


def _familiar_with_tag(image: str) -> str:
    from dockyard.reference import parse

    try:
        return parse(image).familiar()
    except DockyardError:
        return image


def create_container(
    client: Client,
    body: dict[str, Any],
    *,
    name: str | None,
    pull: str,
    quiet: bool,
    platform: str | None,
) -> str:
    """Create (pulling first for ``--pull always``, or on a 404 with ``missing``); print
    the daemon's warnings; return the new ID."""
    image = str(body["Image"])
    if pull == "always":
        pull_for_create(client, image, quiet=quiet, platform=platform)
    try:
        response = client.container_create(body, name=name, platform=platform)
    except NotFound:
        if pull not in ("missing", ""):
            raise
        if not quiet:
            sys.stderr.write(f"Unable to find image '{_familiar_with_tag(image)}' locally\n")
            sys.stderr.flush()
        pull_for_create(client, image, quiet=quiet, platform=platform)
        response = client.container_create(body, name=name, platform=platform)
    for warning in response.get("Warnings") or []:
        sys.stderr.write(f"WARNING: {warning}\n")
    sys.stderr.flush()
    return str(response["Id"])


def _validate_pull(value: str) -> str | None:
    if value in ("always", "missing", "never", ""):
        return None
    return f'invalid pull option: \'{value}\': must be one of "always", "missing" or "never"'


def _run_error(ctx: click.Context, message: str) -> str:
    return f"{PROG}: {message}\n\nRun '{ctx.command_path} --help' for more information"


def _start_exit_code(message: str) -> int:
    if (
        "executable file not found" in message
        or "no such file or directory" in message
        or "system cannot find the file specified" in message
    ):
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, JSONMessageError):
        return exc.message
    return describe_error(exc)


# --------------------------------------------------------------------------- run/create


def _container_options(run_command: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The flags ``run`` and ``create`` share (docker's names, short forms and help)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        o = click.option
        options = [
            click.argument("args", nargs=-1, type=click.UNPROCESSED),
            o("--add-host", multiple=True, help="Add a custom host-to-IP mapping (host:ip)"),
            o("--cap-add", multiple=True, help="Add Linux capabilities"),
            o("--cap-drop", multiple=True, help="Drop Linux capabilities"),
            o("--cpus", default="", help="Number of CPUs"),
            o("--dns", multiple=True, help="Set custom DNS servers"),
            o("--dns-option", multiple=True, help="Set DNS options"),
            o("--dns-search", multiple=True, help="Set custom DNS search domains"),
            o("--entrypoint", default=None, help="Overwrite the default ENTRYPOINT of the image"),
            o("-e", "--env", multiple=True, help="Set environment variables"),
            o("--env-file", multiple=True, help="Read in a file of environment variables"),
            o("--expose", multiple=True, help="Expose a port or a range of ports"),
            o("-h", "--hostname", default="", help="Container host name"),
            o("--init", is_flag=True, help="Run an init inside the container"),
            o("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached"),
            o("-l", "--label", multiple=True, help="Set meta data on a container"),
            o("--log-driver", default="", help="Logging driver for the container"),
            o("--log-opt", multiple=True, help="Log driver options"),
            o("-m", "--memory", default="", help="Memory limit"),
            o("--mount", multiple=True, help="Attach a filesystem mount to the container"),
            o("--name", default=None, help="Assign a name to the container"),
            o(
                "--network",
                "--net",
                "network",
                default="default",
                help="Connect a container to a network",
            ),
            o("--network-alias", multiple=True, help="Add network-scoped alias for the container"),
            o("--ip", default="", help="IPv4 address (e.g., 172.30.100.104)"),
            o("--platform", default=None, help="Set platform if server is multi-platform capable"),
            o("--privileged", is_flag=True, help="Give extended privileges to this container"),
            o("-p", "--publish", multiple=True, help="Publish a container's port(s) to the host"),
            o(
                "-P",
                "--publish-all",
                is_flag=True,
                help="Publish all exposed ports to random ports",
            ),
            o(
                "--pull",
                default="missing",
                help='Pull image before running ("always", "missing", "never")',
            ),
            o("-q", "--quiet", is_flag=True, help="Suppress the pull output"),
            o(
                "--read-only",
                is_flag=True,
                help="Mount the container's root filesystem as read only",
            ),
            o("--restart", default="no", help="Restart policy to apply when a container exits"),
            o(
                "--rm",
                "auto_remove",
                is_flag=True,
                help="Automatically remove the container and its associated anonymous volumes "
                "when it exits",
            ),
            o("--shm-size", default="", help="Size of /dev/shm"),
            o("--stop-signal", default="", help="Signal to stop the container"),
            o(
                "--stop-timeout",
                type=int,
                default=None,
                help="Timeout (in seconds) to stop a container",
            ),
            o("--sysctl", multiple=True, help="Sysctl options"),
            o("--tmpfs", multiple=True, help="Mount a tmpfs directory"),
            o("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY"),
            o("--ulimit", multiple=True, help="Ulimit options"),
            o(
                "-u",
                "--user",
                default="",
                help='Username or UID (format: "<name|uid>[:<group|gid>]")',
            ),
            o("-v", "--volume", multiple=True, help="Bind mount a volume"),
            o(
                "--volumes-from",
                multiple=True,
                help="Mount volumes from the specified container(s)",
            ),
            o("-w", "--workdir", default="", help="Working directory inside the container"),
        ]
        if run_command:
            options += [
                o(
                    "-d",
                    "--detach",
                    is_flag=True,
                    help="Run container in background and print container ID",
                ),
                o(
                    "--detach-keys",
                    default=None,
                    help="Override the key sequence for detaching a container",
                ),
                o(
                    "--sig-proxy/--no-sig-proxy",
                    default=True,
                    help="Proxy received signals to the process",
                ),
            ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _body_from_options(
    ctx: click.Context, opts: Mapping[str, Any], *, detach: bool
) -> tuple[str, dict[str, Any]]:
    args: tuple[str, ...] = opts["args"]
    require_args(ctx, args, minimum=1)
    image, command = args[0], args[1:]
    problem = _validate_pull(opts["pull"])
    if problem:
        raise StatusError(125, _run_error(ctx, problem))
    from .createopts import CreateOptions, build_create_body

    spec = CreateOptions(
        image=image,
        command=command,
        interactive=bool(opts["interactive"]),
        tty=bool(opts["tty"]),
        detach=detach,
        auto_remove=bool(opts["auto_remove"]),
        env=opts["env"],
        env_files=opts["env_file"],
        workdir=opts["workdir"],
        user=opts["user"],
        entrypoint=opts["entrypoint"],
        hostname=opts["hostname"],
        labels=opts["label"],
        network=opts["network"],
        network_aliases=opts["network_alias"],
        ip=opts["ip"],
        restart=opts["restart"],
        console_size=tty_size(1),
        publish=opts["publish"],
        publish_all=bool(opts["publish_all"]),
        expose=opts["expose"],
        volumes=opts["volume"],
        mounts=opts["mount"],
        volumes_from=opts["volumes_from"],
        privileged=bool(opts["privileged"]),
        cap_add=opts["cap_add"],
        cap_drop=opts["cap_drop"],
        memory=opts["memory"],
        cpus=opts["cpus"],
        add_hosts=opts["add_host"],
        tmpfs=opts["tmpfs"],
        init=bool(opts["init"]),
        stop_signal=opts["stop_signal"],
        stop_timeout=opts["stop_timeout"],
        read_only=bool(opts["read_only"]),
        dns=opts["dns"],
        dns_search=opts["dns_search"],
        dns_options=opts["dns_option"],
        shm_size=opts["shm_size"],
        ulimits=opts["ulimit"],
        sysctls=opts["sysctl"],
        log_driver=opts["log_driver"],
        log_opts=opts["log_opt"],
    )
    try:
        body = build_create_body(spec)
    except InvalidArgument as exc:
        raise StatusError(125, _run_error(ctx, exc.message)) from exc
    return image, body


@click.command(
    cls=DockerCommand,
    usage="create [OPTIONS] IMAGE [COMMAND] [ARG...]",
    context_settings=_RUN_CTX,
    short_help="Create a new container",
)
@_container_options(run_command=False)
@click.pass_context
def create(ctx: click.Context, /, **opts: Any) -> None:
    """Create a new container."""
    _, body = _body_from_options(ctx, opts, detach=False)
    client = get_client(ctx)
    try:
        cid = create_container(
            client,
            body,
            name=opts["name"],
            pull=opts["pull"],
            quiet=opts["quiet"],
            platform=opts["platform"],
        )
    except (DockyardError, JSONMessageError) as exc:
        raise StatusError(1, _error_text(exc)) from exc
    click.echo(cid)


@click.command(
    cls=DockerCommand,
    usage="run [OPTIONS] IMAGE [COMMAND] [ARG...]",
    negatable=("sig-proxy",),
    context_settings=_RUN_CTX,
    short_help="Create and run a new container from an image",
)
@_container_options(run_command=True)
@click.pass_context
def run(ctx: click.Context, /, **opts: Any) -> None:
    """Create and run a new container from an image."""
    detach = bool(opts["detach"])
    _, body = _body_from_options(ctx, opts, detach=detach)
    interactive, tty = bool(opts["interactive"]), bool(opts["tty"])
    if not detach and interactive and tty and not is_terminal(0):
        raise StatusError(1, "the input device is not a TTY")
    client = get_client(ctx)
    try:
        cid = create_container(
            client,
            body,
            name=opts["name"],
            pull=opts["pull"],
            quiet=opts["quiet"],
            platform=opts["platform"],
        )
    except (DockyardError, JSONMessageError) as exc:
        text = _error_text(exc)
        raise StatusError(_start_exit_code(text), _run_error(ctx, text)) from exc
    try:
        detach_keys = parse_detach_keys(opts["detach_keys"])
    except ValueError:
        detach_keys = parse_detach_keys(None)
    code = _run_started(
        ctx,
        client,
        cid,
        detach=detach,
        interactive=interactive,
        tty=tty,
        auto_remove=bool(opts["auto_remove"]),
        sig_proxy=bool(opts["sig_proxy"]),
        detach_keys=detach_keys,
    )
    if code:
        raise StatusError(code)


def _run_started(
    ctx: click.Context,
    client: Client,
    cid: str,
    *,
    detach: bool,
    interactive: bool,
    tty: bool,
    auto_remove: bool,
    sig_proxy: bool,
    detach_keys: bytes,
) -> int:
    """Attach, wait, start, stream; return the exit status (the ``run`` flow of §2).

    The attach comes before start so no output is lost; the wait is sent before start and
    answers its headers at once; output is streamed from a thread while start is sent.
    """
    proxy = SignalProxy(client, cid, forward=True).start() if sig_proxy else None
    conn: HijackedStream | None = None
    waiter: WaitHandle | None = None
    output: _OutputThread | None = None
    try:
        if detach:
            click.echo(cid)  # docker prints the ID before the start answers
        else:
            conn = client.container_attach(cid, stdin=interactive, stdout=True, stderr=True)
        waiter = client.container_wait(cid, condition="removed" if auto_remove else "next-exit")
        if conn is not None:
            stdin_f, stdout_f, stderr_f = binary_stdio()
            output = _OutputThread(
                conn,
                stdin=stdin_f if interactive else None,
                stdout=stdout_f,
                stderr=stdout_f if tty else stderr_f,
                tty=tty,
                detach_keys=detach_keys,
                raw=interactive and tty,
            )
            output.start()
        try:
            client.container_start(cid)
        except DockyardError as exc:
            text = describe_error(exc)
            if output is not None:
                output.cancel()
            _write_err(_run_error(ctx, text))
            if auto_remove:
                with contextlib.suppress(DockyardError):
                    waiter.result()
            return _start_exit_code(text)
        if output is None:
            return 0
        if tty and is_terminal(1):
            if proxy is None:
                proxy = SignalProxy(client, cid, forward=False).start()
            proxy.watch_resize(cid, is_exec=False)
        error = output.join()
        if isinstance(error, DetachRequested):
            return 0
        if isinstance(error, (StreamError, OSError)):
            raise StatusError(1, str(error)) from error
        if error is not None:
            raise error
        return _wait_status(waiter)
    finally:
        if waiter is not None:
            waiter.close()
        if conn is not None:
            conn.close()
        if proxy is not None:
            proxy.stop()


def _wait_status(waiter: WaitHandle) -> int:
    try:
        result = waiter.result()
    except DockyardError as exc:
        _log_error(f"error waiting for container: {describe_error(exc)}")
        return 125
    error = result.get("Error")
    if error:
        message = error.get("Message", "") if isinstance(error, dict) else str(error)
        _log_error(f"Error waiting for container: {message}")
        return 125
    return int(result.get("StatusCode") or 0)


def _log_error(message: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    escaped = message.replace("\\", "\\\\").replace('"', '\\"')
    _write_err(f'time="{stamp}" level=error msg="{escaped}"')


def _write_err(message: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class _OutputThread:
    """Runs ``pump`` on a thread so start can be sent while output already streams.

    The terminal goes raw before start (``-it``) and is restored as soon as output ends.
    """

    def __init__(
        self,
        conn: Any,
        *,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        tty: bool,
        detach_keys: bytes,
        raw: bool,
    ) -> None:
        self.conn = conn
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.tty = tty
        self.detach_keys = detach_keys
        self.raw = raw
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dockyard-output", daemon=True)
        self._raw_ctx: Any = None
        self._restore: Callable[[], None] = lambda: None

    def start(self) -> None:
        if self.raw:
            self._raw_ctx = raw_terminal(0, True)
            self._restore = self._raw_ctx.__enter__()
        self._thread.start()

    def _run(self) -> None:
        try:
            pump(
                self.conn,
                stdin=self.stdin,
                stdout=self.stdout,
                stderr=self.stderr,
                tty=self.tty,
                detach_keys=self.detach_keys,
                on_output_end=self._restore,
            )
        except BaseException as exc:  # handed to the main thread
            self.error = exc
        finally:
            self._restore()
            self._done.set()

    def cancel(self) -> None:
        self.conn.close()
        self._done.wait(5)
        self._finish()

    def join(self) -> BaseException | None:
        # Wait in small steps so signal handlers keep running on the main thread.
        while not self._done.wait(0.2):
            pass
        self._finish()
        return self.error

    def _finish(self) -> None:
        self._restore()
        if self._raw_ctx is not None:
            ctx, self._raw_ctx = self._raw_ctx, None
            ctx.__exit__(None, None, None)


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
            _write_err(describe_error(exc))
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
    proxy = None if tty else SignalProxy(client, cid, forward=True).start()
    conn: HijackedStream | None = None
    waiter: WaitHandle | None = None
    try:
        conn = client.container_attach(cid, stdin=use_stdin, stdout=True, stderr=True)
        waiter = client.container_wait(cid, condition="removed" if auto_remove else "next-exit")
        stdin_f, stdout_f, stderr_f = binary_stdio()
        out = _OutputThread(
            conn,
            stdin=stdin_f if use_stdin else None,
            stdout=stdout_f,
            stderr=stderr_f,
            tty=tty,
            detach_keys=keys,
            raw=use_stdin and tty,
        )
        out.start()
        try:
            client.container_start(cid)
        except DockyardError:
            out.cancel()
            if auto_remove:
                with contextlib.suppress(DockyardError):
                    waiter.result()
            raise
        if tty and is_terminal(1):
            if proxy is None:
                proxy = SignalProxy(client, cid, forward=False).start()
            proxy.watch_resize(cid, is_exec=False)
        error = out.join()
        if isinstance(error, DetachRequested):
            return
        if isinstance(error, (StreamError, OSError)):
            raise StatusError(1, str(error)) from error
        if error is not None:
            raise error
        code = _wait_status(waiter)
        if code:
            raise StatusError(code)
    finally:
        if waiter is not None:
            waiter.close()
        if conn is not None:
            conn.close()
        if proxy is not None:
            proxy.stop()


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
@click.option("-s", "--signal", "sig", default=None, help="Signal to send to the container")
@click.option(
    "-t", "--timeout", type=int, default=None, help="Seconds to wait before killing the container"
)
@click.option("--time", "old_time", type=int, default=None, hidden=True)
@click.argument("containers", nargs=-1)
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
@click.option("-s", "--signal", "sig", default=None, help="Signal to send to the container")
@click.option(
    "-t", "--timeout", type=int, default=None, help="Seconds to wait before killing the container"
)
@click.option("--time", "old_time", type=int, default=None, hidden=True)
@click.argument("containers", nargs=-1)
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
            _write_err(describe_error(error))
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
        _write_err("WARNING: Ignoring custom format, because both --format and --quiet are set.")
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
    from dockyard.client import StreamError, demux
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
