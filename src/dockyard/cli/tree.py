"""The click command tree: the lazy command tables, the groups, docker's usage errors.

Start-up time is part of every command's latency, so this module imports only click;
command modules (and the client, which speaks HTTP itself) load when a command runs.
``main`` comes here for every command its click-free fast path does not take.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import click

from .common import PROG, CLIState, DockerCommand, StatusError

__all__ = ["VERSION", "cli", "run_click"]

VERSION = "0.1.0"

# name → ("module:attribute", short help). Order is the order of --help.
TOP_COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("containers:run", "Create and run a new container from an image"),
    "exec": ("interactive:exec_", "Execute a command in a running container"),
    "ps": ("containers:ps", "List containers"),
    "pull": ("images:pull", "Download an image from a registry"),
    "push": ("registry:push", "Upload an image to a registry"),
    "images": ("images:images", "List images"),
    "login": ("registry:login", "Authenticate to a registry"),
    "logout": ("registry:logout", "Log out from a registry"),
    "build": ("build:build", "Build an image from a Dockerfile"),
    "commit": ("build:commit", "Create a new image from a container's changes"),
    "cp": ("copy:cp", "Copy files/folders between a container and the local filesystem"),
    "export": ("build:export", "Export a container's filesystem as a tar archive"),
    "history": ("build:history", "Show the history of an image"),
    "import": ("images:import_", "Import the contents from a tarball to create a filesystem image"),
    "info": ("system:info", "Display system-wide information"),
    "events": ("events:events", "Get real time events from the server"),
    "version": ("system:version", "Show the Dockyard version information"),
    "attach": (
        "interactive:attach",
        "Attach local standard input, output, and error streams to a running container",
    ),
    "create": ("containers:create", "Create a new container"),
    "diff": ("container_ops:diff", "Inspect changes to files or directories in a container"),
    "inspect": ("system:inspect", "Return low-level information on Dockyard objects"),
    "kill": ("containers:kill", "Kill one or more running containers"),
    "load": ("images:load", "Load an image from a tar archive or STDIN"),
    "logs": ("containers:logs", "Fetch the logs of a container"),
    "pause": ("container_ops:pause", "Pause all processes within one or more containers"),
    "rename": ("container_ops:rename", "Rename a container"),
    "restart": ("containers:restart", "Restart one or more containers"),
    "rm": ("containers:rm", "Remove one or more containers"),
    "rmi": ("images:rmi", "Remove one or more images"),
    "save": (
        "images:save",
        "Save one or more images to a tar archive (streamed to STDOUT by default)",
    ),
    "start": ("containers:start", "Start one or more stopped containers"),
    "stats": ("container_ops:stats", "Display a live stream of container resource usage"),
    "stop": ("containers:stop", "Stop one or more running containers"),
    "tag": ("images:tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    "top": ("container_ops:top", "Display the running processes of a container"),
    "unpause": ("container_ops:unpause", "Unpause all processes within one or more containers"),
    "update": ("update:update", "Update configuration of one or more containers"),
    "wait": (
        "containers:wait",
        "Block until one or more containers stop, then print their exit codes",
    ),
    "container": ("tree:container_group", "Manage containers"),
    "image": ("tree:image_group", "Manage images"),
    "system": ("tree:system_group", "Manage Dockyard"),
    "network": ("tree:network_group", "Manage networks"),
    "volume": ("tree:volume_group", "Manage volumes"),
    "builder": ("tree:builder_group", "Manage builds"),
    "port": ("networks:port", "List port mappings or a specific mapping for the container"),
}

CONTAINER_COMMANDS: dict[str, tuple[str, str]] = {
    "attach": TOP_COMMANDS["attach"],
    "create": TOP_COMMANDS["create"],
    "cp": TOP_COMMANDS["cp"],
    "diff": TOP_COMMANDS["diff"],
    "exec": TOP_COMMANDS["exec"],
    "inspect": (
        "system:container_inspect",
        "Display detailed information on one or more containers",
    ),
    "kill": TOP_COMMANDS["kill"],
    "logs": TOP_COMMANDS["logs"],
    "ls": ("containers:ps", "List containers"),
    "list": ("containers:ps", "List containers"),
    "pause": TOP_COMMANDS["pause"],
    "ps": ("containers:ps", "List containers"),
    "prune": ("containers:prune", "Remove all stopped containers"),
    "restart": TOP_COMMANDS["restart"],
    "rm": TOP_COMMANDS["rm"],
    "remove": TOP_COMMANDS["rm"],
    "rename": TOP_COMMANDS["rename"],
    "run": TOP_COMMANDS["run"],
    "start": TOP_COMMANDS["start"],
    "stats": TOP_COMMANDS["stats"],
    "stop": TOP_COMMANDS["stop"],
    "top": TOP_COMMANDS["top"],
    "unpause": TOP_COMMANDS["unpause"],
    "update": TOP_COMMANDS["update"],
    "wait": TOP_COMMANDS["wait"],
}

IMAGE_COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("system:image_inspect", "Display detailed information on one or more images"),
    "build": TOP_COMMANDS["build"],
    "history": TOP_COMMANDS["history"],
    "import": TOP_COMMANDS["import"],
    "load": TOP_COMMANDS["load"],
    "ls": ("images:images", "List images"),
    "prune": ("prune:image_prune", "Remove unused images"),
    "list": ("images:images", "List images"),
    "pull": TOP_COMMANDS["pull"],
    "push": TOP_COMMANDS["push"],
    "rm": TOP_COMMANDS["rmi"],
    "remove": TOP_COMMANDS["rmi"],
    "save": TOP_COMMANDS["save"],
    "tag": TOP_COMMANDS["tag"],
}

SYSTEM_COMMANDS: dict[str, tuple[str, str]] = {
    "df": ("diskusage:df", "Show docker disk usage"),
    "events": TOP_COMMANDS["events"],
    "info": TOP_COMMANDS["info"],
    "prune": ("prune:system_prune", "Remove unused data"),
}

NETWORK_COMMANDS: dict[str, tuple[str, str]] = {
    "connect": ("networks:connect", "Connect a container to a network"),
    "create": ("networks:create", "Create a network"),
    "disconnect": ("networks:disconnect", "Disconnect a container from a network"),
    "inspect": ("networks:inspect", "Display detailed information on one or more networks"),
    "ls": ("networks:ls", "List networks"),
    "list": ("networks:ls", "List networks"),
    "prune": ("networks:prune", "Remove all unused networks"),
    "rm": ("networks:rm", "Remove one or more networks"),
    "remove": ("networks:rm", "Remove one or more networks"),
}

VOLUME_COMMANDS: dict[str, tuple[str, str]] = {
    "create": ("volumes:create", "Create a volume"),
    "inspect": ("volumes:inspect", "Display detailed information on one or more volumes"),
    "ls": ("volumes:ls", "List volumes"),
    "list": ("volumes:ls", "List volumes"),
    "prune": ("volumes:prune", "Remove unused local volumes"),
    "rm": ("volumes:rm", "Remove one or more volumes"),
    "remove": ("volumes:rm", "Remove one or more volumes"),
}

BUILDER_COMMANDS: dict[str, tuple[str, str]] = {
    "build": TOP_COMMANDS["build"],
    "prune": ("prune:builder_prune", "Remove build cache"),
}

_HIDDEN_ALIASES = {"list", "remove"}


class LazyGroup(click.Group):
    """A group whose commands are imported only when invoked (fast ``--help`` and start-up)."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in self.lazy if name not in _HIDDEN_ALIASES]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = self.lazy.get(cmd_name)
        if spec is None:
            return None
        module_name, attr = spec[0].split(":")
        module = importlib.import_module(f"dockyard.cli.{module_name}")
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.lazy[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if ctx.parent is None:
            formatter.write(f"Usage:  {PROG} [OPTIONS] COMMAND\n")
        else:
            formatter.write(f"Usage:  {ctx.command_path} COMMAND\n")


_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"Dockyard version {VERSION}")
        ctx.exit(0)


@click.group(
    cls=LazyGroup,
    lazy=TOP_COMMANDS,
    context_settings=_CONTEXT,
    invoke_without_command=True,
    help="A self-sufficient runtime for containers (Docker-compatible).",
)
@click.option(
    "--config",
    "config_dir",
    metavar="DIR",
    default=None,
    help="Location of client config files (default: $DOCKER_CONFIG or ~/.docker)",
)
@click.option("-H", "--host", "host", metavar="HOST", help="Daemon socket to connect to")
@click.option("-D", "--debug", is_flag=True, help="Enable debug mode")
@click.option(
    "-l",
    "--log-level",
    type=click.Choice(["debug", "info", "warn", "error", "fatal"]),
    default="info",
    help="Set the logging level",
)
@click.option(
    "-v",
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print version information and quit",
)
@click.pass_context
def cli(
    ctx: click.Context, config_dir: str | None, host: str | None, debug: bool, log_level: str
) -> None:
    ctx.obj = CLIState(host=host, debug=debug, config_dir=config_dir)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _group(name: str, lazy: dict[str, tuple[str, str]], help_text: str) -> click.Group:
    @click.group(
        name=name,
        cls=LazyGroup,
        lazy=lazy,
        context_settings=_CONTEXT,
        invoke_without_command=True,
        help=help_text,
    )
    @click.pass_context
    def group(ctx: click.Context) -> None:
        if ctx.invoked_subcommand is None:
            click.echo(ctx.get_help())

    return group


container_group = _group("container", CONTAINER_COMMANDS, "Manage containers")
image_group = _group("image", IMAGE_COMMANDS, "Manage images")
system_group = _group("system", SYSTEM_COMMANDS, "Manage Dockyard")
network_group = _group("network", NETWORK_COMMANDS, "Manage networks")
volume_group = _group("volume", VOLUME_COMMANDS, "Manage volumes")
builder_group = _group("builder", BUILDER_COMMANDS, "Manage builds")


def _usage_of(ctx: click.Context | None) -> str:
    if ctx is None:
        return f"{PROG} [OPTIONS] COMMAND [ARG...]"
    command = ctx.command
    if isinstance(command, DockerCommand):
        return command.usage_line(ctx)
    if ctx.parent is None:
        return f"{PROG} [OPTIONS] COMMAND [ARG...]"
    return f"{ctx.command_path}"


def _flag_error(ctx: click.Context | None, message: str) -> StatusError:
    path = ctx.command_path if ctx is not None else PROG
    return StatusError(
        125,
        f"{message}\n\nUsage:  {_usage_of(ctx)}\n\nRun '{path} --help' for more information",
    )


def _option_label(param: click.Parameter | None) -> str:
    if not isinstance(param, click.Option):
        return ""
    shorts = [o for o in param.opts if not o.startswith("--")]
    longs = [o for o in param.opts if o.startswith("--")]
    return ", ".join(shorts[:1] + longs[:1])


def _translate_usage_error(exc: click.UsageError, args: Sequence[str]) -> StatusError:
    ctx = exc.ctx
    if isinstance(exc, click.NoSuchOption):
        name = exc.option_name
        if name.startswith("--"):
            return _flag_error(ctx, f"unknown flag: {name.split('=')[0]}")
        return _flag_error(ctx, f"unknown shorthand flag: '{name[1:2]}' in {name}")
    if isinstance(exc, click.BadOptionUsage):
        name = exc.option_name
        if "requires an argument" in exc.message or "requires" in exc.message:
            if name.startswith("--"):
                return _flag_error(ctx, f"flag needs an argument: {name}")
            return _flag_error(ctx, f"flag needs an argument: '{name[1:2]}' in {name}")
        return _flag_error(ctx, exc.message)
    if isinstance(exc, click.BadParameter):
        label = _option_label(exc.param)
        value = ""
        if ctx is not None and exc.param is not None and exc.param.name:
            raw = _raw_value(args, exc.param)
            value = raw if raw is not None else ""
        if label:
            detail = exc.message
            if isinstance(exc.param, click.Option) and exc.param.type is click.INT:
                detail = f'strconv.ParseInt: parsing "{value}": invalid syntax'
            return _flag_error(ctx, f'invalid argument "{value}" for "{label}" flag: {detail}')
        return _flag_error(ctx, exc.message)
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        return StatusError(0, exc.format_message())
    message = exc.format_message()
    if "No such command" in message and ctx is not None:
        cmd_name = message.split("'")[1] if "'" in message else ""
        path = ctx.command_path
        if ctx.parent is None:
            return StatusError(
                1,
                f"{PROG}: unknown command: {PROG} {cmd_name}\n\n"
                f"Run '{PROG} --help' for more information",
            )
        return StatusError(
            1,
            f"{PROG}: unknown command: {path} {cmd_name}\n\nUsage:  {path}\n\n"
            f"Run '{path} --help' for more information",
        )
    return _flag_error(ctx, message)


def _raw_value(args: Sequence[str], param: click.Parameter) -> str | None:
    opts = param.opts if isinstance(param, click.Option) else []
    for i, arg in enumerate(args):
        for opt in opts:
            if arg == opt and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(opt + "="):
                return arg[len(opt) + 1 :]
            if not opt.startswith("--") and arg.startswith(opt) and len(arg) > len(opt):
                return arg[len(opt) :]
    return None


def run_click(args: list[str]) -> int:
    """Run one command through click; click's own exits and usage errors become exit codes
    and docker's messages (``main`` handles everything else)."""
    try:
        try:
            result = cli.main(args, prog_name=PROG, standalone_mode=False)
        except click.UsageError as exc:
            raise _translate_usage_error(exc, args) from exc
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        return 1
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    return 0
