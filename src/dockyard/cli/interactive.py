"""``exec`` and ``attach``: hijacked streams to a running container.

``exec``: ``GET /containers/{name}/json`` first (so a missing container fails before an
exec is created), ``POST /containers/{name}/exec``, ``POST /exec/{id}/start`` hijacked
(``{"Detach":false,"Tty":…}``), then ``GET /exec/{id}/json`` for the exit code.
``attach``: wait (not-running), inspect (must be running), hijacked attach, exit with the
container's status.
"""

from __future__ import annotations

from typing import Any

import click

from dockyard.client import Client, StreamError
from dockyard.errors import DockyardError, InvalidArgument

from .common import DockerCommand, StatusError, describe_error, get_client, require_args
from .streaming import (
    DetachRequested,
    SignalProxy,
    binary_stdio,
    is_terminal,
    parse_detach_keys,
    pump,
    raw_terminal,
    resize_tty,
    tty_size,
)

__all__ = ["attach", "exec_"]

_EXEC_CTX = {"help_option_names": ["-h", "--help"], "allow_interspersed_args": False}
_CTX = {"help_option_names": ["-h", "--help"]}


def _env_list(env: tuple[str, ...], env_files: tuple[str, ...]) -> list[str] | None:
    from .createopts import env_value, parse_env_file

    out: list[str] = []
    for path in env_files:
        out.extend(parse_env_file(path))
    out.extend(env_value(e) for e in env)
    return out or None


@click.command(
    "exec",
    cls=DockerCommand,
    usage="exec [OPTIONS] CONTAINER COMMAND [ARG...]",
    context_settings=_EXEC_CTX,
    short_help="Execute a command in a running container",
)
@click.option("-d", "--detach", is_flag=True, help="Detached mode: run command in the background")
@click.option("--detach-keys", default=None, help="Override the key sequence for detaching")
@click.option("-e", "--env", multiple=True, help="Set environment variables")
@click.option("--env-file", multiple=True, help="Read in a file of environment variables")
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open even if not attached")
@click.option("--privileged", is_flag=True, help="Give extended privileges to the command")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option(
    "-u", "--user", default="", help='Username or UID (format: "<name|uid>[:<group|gid>]")'
)
@click.option("-w", "--workdir", default="", help="Working directory inside the container")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def exec_(
    ctx: click.Context,
    detach: bool,
    detach_keys: str | None,
    env: tuple[str, ...],
    env_file: tuple[str, ...],
    interactive: bool,
    privileged: bool,
    tty: bool,
    user: str,
    workdir: str,
    args: tuple[str, ...],
) -> None:
    """Execute a command in a running container."""
    require_args(ctx, args, minimum=2)
    name, command = args[0], list(args[1:])
    try:
        env_list = _env_list(env, env_file)
    except InvalidArgument as exc:
        raise StatusError(1, exc.message) from exc
    client = get_client(ctx)
    client.container_inspect(name)
    attach_stdin = interactive and not detach
    if not detach and attach_stdin and tty and not is_terminal(0):
        raise StatusError(1, "the input device is not a TTY")
    console: list[int] | None = list(tty_size(1)) if tty else None
    config: dict[str, Any] = {
        "User": user,
        "Privileged": privileged,
        "Tty": tty,
    }
    if console is not None and not _older(client, "1.42"):
        config["ConsoleSize"] = console
    config.update(
        {
            "AttachStdin": attach_stdin,
            "AttachStderr": not detach,
            "AttachStdout": not detach,
            "Detach": detach,
            "DetachKeys": detach_keys or "",
            "Env": env_list,
            "WorkingDir": workdir,
            "Cmd": command,
        }
    )
    created = client.exec_create(name, config)
    exec_id = str(created.get("Id") or "")
    if not exec_id:
        raise StatusError(1, "exec ID empty")
    if detach:
        client.exec_start_detached(exec_id, tty=tty, console_size=console)
        return
    conn = client.exec_start(exec_id, tty=tty, console_size=console)
    stdin_f, stdout_f, stderr_f = binary_stdio()
    try:
        keys = parse_detach_keys(detach_keys)
    except ValueError:
        keys = parse_detach_keys(None)
    try:
        resizer: SignalProxy | None = None
        if tty and is_terminal(0):
            resizer = SignalProxy(client, "", forward=False).start()
            resizer.watch_resize(exec_id, is_exec=True)
        try:
            with raw_terminal(0, enabled=attach_stdin and tty) as restore:
                pump(
                    conn,
                    stdin=stdin_f if attach_stdin else None,
                    stdout=stdout_f,
                    stderr=stdout_f if tty else stderr_f,
                    tty=tty,
                    detach_keys=keys,
                    on_output_end=restore,
                )
        except DetachRequested:
            raise StatusError(1, "read escape sequence") from None
        except StreamError as exc:
            raise StatusError(1, str(exc)) from exc
        finally:
            if resizer is not None:
                resizer.stop()
    finally:
        conn.close()
    info = client.exec_inspect(exec_id)
    code = int(info.get("ExitCode") or 0)
    if code:
        raise StatusError(code)


def _older(client: Client, version: str) -> bool:
    from dockyard.client import version_less

    return version_less(client.api_version, version)


@click.command(
    cls=DockerCommand,
    usage="attach [OPTIONS] CONTAINER",
    negatable=("sig-proxy",),
    context_settings=_CTX,
    short_help="Attach local standard input, output, and error streams to a running container",
)
@click.option("--detach-keys", default=None, help="Override the key sequence for detaching")
@click.option("--no-stdin", is_flag=True, help="Do not attach STDIN")
@click.option(
    "--sig-proxy/--no-sig-proxy", default=True, help="Proxy all received signals to the process"
)
@click.argument("args", nargs=-1)
@click.pass_context
def attach(
    ctx: click.Context,
    detach_keys: str | None,
    no_stdin: bool,
    sig_proxy: bool,
    args: tuple[str, ...],
) -> None:
    """Attach local standard input, output, and error streams to a running container."""
    require_args(ctx, args, exact=1)
    name = args[0]
    client = get_client(ctx)
    waiter = client.container_wait(name)
    try:
        info = _check_running(client, name)
        config = info.get("Config") or {}
        tty = bool(config.get("Tty"))
        if not no_stdin and tty and not is_terminal(0):
            raise StatusError(1, "the input device is not a TTY")
        use_stdin = not no_stdin and bool(config.get("OpenStdin"))
        proxy = SignalProxy(client, name, forward=True).start() if sig_proxy and not tty else None
        try:
            conn = client.container_attach(
                name, stdin=use_stdin, stdout=True, stderr=True, detach_keys=detach_keys
            )
            try:
                _check_running(client, name)
                resizer: SignalProxy | None = None
                if tty and is_terminal(1):
                    rows, cols = tty_size(1)
                    resize_tty(client, name, is_exec=False, size=(rows + 1, cols + 1))
                    resizer = SignalProxy(client, name, forward=False).start()
                    resizer.watch_resize(name, is_exec=False)
                stdin_f, stdout_f, stderr_f = binary_stdio()
                try:
                    keys = parse_detach_keys(detach_keys)
                except ValueError:
                    keys = parse_detach_keys(None)
                try:
                    with raw_terminal(0, enabled=use_stdin and tty) as restore:
                        pump(
                            conn,
                            stdin=stdin_f if use_stdin else None,
                            stdout=stdout_f,
                            stderr=stderr_f,
                            tty=tty,
                            detach_keys=keys,
                            on_output_end=restore,
                        )
                except DetachRequested:
                    raise StatusError(1, "read escape sequence") from None
                except StreamError as exc:
                    raise StatusError(1, str(exc)) from exc
                finally:
                    if resizer is not None:
                        resizer.stop()
            finally:
                conn.close()
        finally:
            if proxy is not None:
                proxy.stop()
        try:
            result = waiter.result()
        except DockyardError as exc:
            raise StatusError(1, describe_error(exc)) from exc
        error = result.get("Error")
        if error:
            message = error.get("Message", "") if isinstance(error, dict) else str(error)
            raise StatusError(1, message)
        code = int(result.get("StatusCode") or 0)
        if code:
            raise StatusError(code)
    finally:
        waiter.close()


def _check_running(client: Client, name: str) -> dict[str, Any]:
    info = client.container_inspect(name)
    state = info.get("State") or {}
    if not state.get("Running"):
        raise StatusError(1, "You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise StatusError(1, "You cannot attach to a paused container, unpause it first")
    if state.get("Restarting"):
        raise StatusError(
            1, "You cannot attach to a restarting container, wait until it is running"
        )
    return info
