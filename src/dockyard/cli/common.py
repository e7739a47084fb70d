"""What every command shares: docker-style usage errors, exit codes, the client.

Commands signal their exit status by raising ``StatusError``; ``main`` prints its message
(if any) to stderr and exits with its code. Daemon errors (``dockyard.errors`` raised by the
client) print as ``Error response from daemon: …`` and exit 1 unless a command says
otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from .base import PROG, CLIState, StatusError, describe_error
from .flagspec import BOOL, INT, LIST, Flag

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.reference import Reference

__all__ = [
    "PROG",
    "CLIState",
    "DockerCommand",
    "StatusError",
    "click_flags",
    "describe_error",
    "get_client",
    "get_state",
    "require_args",
    "usage_error",
]

_F = TypeVar("_F", bound=Callable[..., Any])


def click_flags(flags: Sequence[Flag], *, args: str | None = None) -> Callable[[_F], _F]:
    """click options for a ``flagspec`` table (and an unprocessed ``args`` argument), so a
    command parsed by ``main``'s fast path and by click has one definition of its flags."""

    def decorate(fn: _F) -> _F:
        decorators = [click.argument(args, nargs=-1, type=click.UNPROCESSED)] if args else []
        decorators += [_click_option(flag) for flag in flags]
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return decorate


class _Checked(click.ParamType):  # type: ignore[type-arg]
    """A string whose ``Flag.check`` complaint becomes docker's "invalid argument" error."""

    name = "string"

    def __init__(self, check: Callable[[str], str | None]) -> None:
        self.check = check

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        problem = self.check(str(value))
        if problem is not None:
            self.fail(problem, param, ctx)
        return value


def _click_option(flag: Flag) -> Callable[[Any], Any]:
    common: dict[str, Any] = {"help": flag.help, "hidden": flag.hidden}
    if flag.kind == BOOL and flag.default:
        decls = [n if not n.startswith("--") else f"{n}/--no-{n[2:]}" for n in flag.names]
        return click.option(*decls, flag.dest, default=True, **common)
    if flag.kind == BOOL:
        return click.option(*flag.names, flag.dest, is_flag=True, **common)
    if flag.check is not None:
        common["type"] = _Checked(flag.check)
    if flag.kind == LIST:
        return click.option(*flag.names, flag.dest, multiple=True, **common)
    if flag.kind == INT:
        return click.option(*flag.names, flag.dest, type=int, default=flag.default, **common)
    return click.option(*flag.names, flag.dest, default=flag.default, **common)


def get_state(ctx: click.Context) -> CLIState:
    state = ctx.find_object(CLIState)
    if state is None:
        state = CLIState()
        ctx.obj = state
    return state


def get_client(ctx: click.Context) -> Client:
    return get_state(ctx).client()


_GROUP_ALIASES = {"list": "ls", "ps": "ls", "remove": "rm"}


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
        usage = self.usage or self.name or ""
        if ctx.parent is not None and ctx.parent.parent is not None and ctx.info_name:
            # under a group the command goes by that group's name for it (``image ls`` is
            # the ``images`` command), aliases by the canonical one (``container ps`` → ls)
            name = _GROUP_ALIASES.get(ctx.info_name, ctx.info_name)
            usage = f"{name} {usage.partition(' ')[2]}".rstrip()
        return f"{parent} {usage}".rstrip()

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
        """``--flag=true|false`` for boolean flags and ``-x=value`` for shorthands, as Go's
        pflag accepts them. An option's separate value is copied as it is (and, for
        ``run``, is not mistaken for the image that ends the flags)."""
        flags: set[str] = set()
        valued: set[str] = set()
        negation = {f"--{name}": f"--no-{name}" for name in self.negatable}
        for param in self.params:
            if isinstance(param, click.Option):
                (flags if param.is_flag else valued).update(param.opts)
                if param.secondary_opts:  # --x/--no-x: docker spells it --x=false (or -X=false)
                    negation.update((o, param.secondary_opts[0]) for o in param.opts)
        out: list[str] = []
        interspersed = self.context_settings.get("allow_interspersed_args", True)
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--" or (not interspersed and not arg.startswith("-")):
                out.extend(args[i - 1 :])
                break
            if arg[:2] in valued and arg[2:3] == "=":  # pflag: -e=A=1 means -e A=1
                out.extend((arg[:2], arg[3:]))
                continue
            name, sep, value = arg.partition("=")
            if sep and name in flags and (name.startswith("--") or len(name) == 2):
                low = value.lower()
                if low in ("true", "1", "t"):
                    out.append(name)
                    continue
                if low in ("false", "0", "f"):
                    if name in negation:
                        out.append(negation[name])
                    continue
            out.append(arg)
            if not sep and _takes_next(arg, flags, valued) and i < len(args):
                out.append(args[i])
                i += 1
        return out


def _takes_next(arg: str, flags: set[str], valued: set[str]) -> bool:
    """Whether ``arg`` is an option whose value is the next argument (``--name X``,
    ``-e X``, ``-de X``)."""
    if arg.startswith("--"):
        return arg in valued
    if not arg.startswith("-") or arg == "-":
        return False
    for j in range(1, len(arg)):
        short = "-" + arg[j]
        if short in valued:
            return j == len(arg) - 1
        if short not in flags:
            return False
    return False


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
