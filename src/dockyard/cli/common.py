"""What every command shares: docker-style usage errors, exit codes, the client.

Commands signal their exit status by raising ``StatusError``; ``main`` prints its message
(if any) to stderr and exits with its code. Daemon errors (``dockyard.errors`` raised by the
client) print as ``Error response from daemon: …`` and exit 1 unless a command says
otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.client.dockerconfig import ConfigFile
    from dockyard.reference import Reference

__all__ = [
    "PROG",
    "CLIState",
    "DockerCommand",
    "StatusError",
    "describe_error",
    "get_client",
    "get_state",
    "require_args",
    "usage_error",
]

PROG = "dockyard"


class StatusError(Exception):
    """Exit with ``code``, printing ``message`` to stderr first when there is one."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or "")
        self.code = code
        self.message = message


@dataclass
class CLIState:
    """Global options, shared by every command through ``click.Context.obj``."""

    host: str | None = None
    debug: bool = False
    config_dir: str | None = None
    _client: Any = field(default=None, repr=False)
    _docker_config: Any = field(default=None, repr=False)

    def client(self) -> Client:
        if self._client is None:
            from dockyard.client import Client

            self._client = Client(self.host)
        client: Client = self._client
        return client

    def docker_config(self) -> ConfigFile:
        """The client config (``--config``/``DOCKYARD_CONFIG``/``DOCKER_CONFIG``/``~/.docker``),
        read once; a broken file is reported on stderr and treated as empty, like docker."""
        if self._docker_config is None:
            import sys

            from dockyard.client import dockerconfig

            config = dockerconfig.load(dockerconfig.config_dir(self.config_dir))
            if config.warning:
                sys.stderr.write(f"WARNING: {config.warning}\n")
                sys.stderr.flush()
            self._docker_config = config
        loaded: ConfigFile = self._docker_config
        return loaded


def get_state(ctx: click.Context) -> CLIState:
    state = ctx.find_object(CLIState)
    if state is None:
        state = CLIState()
        ctx.obj = state
    return state


def get_client(ctx: click.Context) -> Client:
    return get_state(ctx).client()


def describe_error(exc: BaseException) -> str:
    """The line docker prints for an error: daemon answers get their prefix."""
    from dockyard.client import is_response_error

    message = getattr(exc, "message", None) or str(exc)
    if is_response_error(exc):
        return f"Error response from daemon: {message}"
    return str(message)


class DockerCommand(click.Command):
    """A click command with docker's usage line and docker's flag-error behaviour.

    ``usage`` is the text after the program name (``rm [OPTIONS] CONTAINER [CONTAINER...]``).
    ``negatable`` lists long flags whose ``--flag=false`` means their ``--no-flag`` twin.
    """

    def __init__(
        self, *args: Any, usage: str = "", negatable: Sequence[str] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.usage = usage
        self.negatable = tuple(negatable)

    def usage_line(self, ctx: click.Context) -> str:
        parent = ctx.parent.command_path if ctx.parent else PROG
        return f"{parent} {self.usage or self.name or ''}".rstrip()

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write(f"Usage:  {self.usage_line(ctx)}\n")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, self._rewrite_bools(args))
        except click.UsageError as exc:
            if exc.ctx is None:
                exc.ctx = ctx
            raise

    def _rewrite_bools(self, args: list[str]) -> list[str]:
        """``--flag=true|false`` for boolean flags, as Go's pflag accepts it."""
        flags: dict[str, bool] = {}
        for param in self.params:
            if isinstance(param, click.Option) and param.is_flag:
                for opt in param.opts:
                    flags[opt] = True
        out: list[str] = []
        interspersed = self.context_settings.get("allow_interspersed_args", True)
        for i, arg in enumerate(args):
            if arg == "--" or (not interspersed and not arg.startswith("-")):
                out.extend(args[i:])
                break
            name, sep, value = arg.partition("=")
            if sep and name.startswith("--") and name in flags:
                low = value.lower()
                if low in ("true", "1", "t"):
                    out.append(name)
                    continue
                if low in ("false", "0", "f"):
                    if name[2:] in self.negatable:
                        out.append("--no-" + name[2:])
                    continue
            out.append(arg)
        return out


def flag_error(ctx: click.Context, message: str) -> StatusError:
    """docker's flag error (exit 125): the message, the usage line, where to get help."""
    command = ctx.command
    usage = command.usage_line(ctx) if isinstance(command, DockerCommand) else ctx.command_path
    return StatusError(
        125,
        f"{message}\n\nUsage:  {usage}\n\nRun '{ctx.command_path} --help' for more information",
    )


def usage_error(ctx: click.Context, message: str, *, see: bool = False, code: int = 1) -> NoReturn:
    """docker's argument-count error: ``dockyard: 'dockyard rm' requires …`` + usage."""
    command = ctx.command
    usage = command.usage_line(ctx) if isinstance(command, DockerCommand) else ctx.command_path
    verb = "See" if see else "Run"
    raise StatusError(
        code,
        f"{PROG}: '{ctx.command_path}' {message}\n\nUsage:  {usage}\n\n"
        f"{verb} '{ctx.command_path} --help' for more information",
    )


def require_args(
    ctx: click.Context,
    args: Sequence[str],
    *,
    exact: int | None = None,
    minimum: int | None = None,
    none: bool = False,
) -> None:
    """Validate the number of positional arguments with docker's messages."""
    if none and args:
        usage_error(ctx, "accepts no arguments")
    if exact is not None and len(args) != exact:
        plural = "argument" if exact == 1 else "arguments"
        usage_error(ctx, f"requires {exact} {plural}")
    if minimum is not None and len(args) < minimum:
        plural = "argument" if minimum == 1 else "arguments"
        usage_error(ctx, f"requires at least {minimum} {plural}", see=True)


def image_argument(text: str, *, all_tags: bool, quiet: bool) -> Reference:
    """The image named on a pull/push command line, with docker's checks and default tag."""
    from dockyard.errors import DockyardError
    from dockyard.reference import parse

    try:
        ref = parse(text, default_tag=False)
    except DockyardError as exc:
        raise StatusError(1, str(exc)) from exc
    if all_tags and (ref.tag is not None or ref.digest is not None):
        raise StatusError(1, "tag can't be used with --all-tags/-a")
    if not all_tags and ref.tag is None and ref.digest is None:
        ref = ref.with_default_tag()
        if not quiet:
            click.echo("Using default tag: latest")
    return ref
