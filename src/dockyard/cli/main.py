"""``dockyard``: the command line, a drop-in for the docker CLI's container and image verbs.

Start-up time is part of every container's start, and importing click costs more than the
daemon spends starting one. So ``run``, ``create`` and ``build`` are parsed first by
``flagspec`` and run without click; whatever that parse is not sure of (help, usage errors,
other commands) goes to the click tree in ``tree``. Both paths end in the same exit-status
handling here.
"""

from __future__ import annotations

import os
import sys

from .base import PROG, CLIState, StatusError, describe_error, write_stderr

TYPE_CHECKING = False  # not typing's: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from .flagspec import Flag

__all__ = ["main"]

# Global options the fast path understands: the flag → CLIState attribute (None: no value).
_GLOBAL_VALUE_FLAGS = {"-H": "host", "--host": "host", "--config": "config_dir"}
_GLOBAL_BOOL_FLAGS = {"-D": "debug", "--debug": "debug"}
_LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: run one command, return its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        fast = _fast_command(args)
        if fast is not None:
            return fast()
        from .tree import run_click

        return run_click(args)
    except StatusError as exc:
        if exc.message:
            write_stderr(exc.message)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output went to a closed pipe (`dockyard ps | head`): not an error of ours.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 0
    except Exception as exc:
        from dockyard.errors import DockyardError

        if isinstance(exc, DockyardError):
            write_stderr(describe_error(exc))
            return 1
        raise


def _fast_command(args: list[str]) -> Callable[[], int] | None:
    """The click-free way to run ``args``, or ``None`` when click must parse them."""
    state = CLIState()
    i = _global_options(args, state)
    if i is None or i >= len(args):
        return None
    path = [args[i]]
    if args[i] in ("container", "image") and i + 1 < len(args):
        path.append(args[i + 1])
    rest = args[i + len(path) :]
    command = " ".join(path)
    command_path = f"{PROG} {command}"
    if command in ("run", "container run", "create", "container create"):
        from . import runflow

        flags = runflow.RUN_FLAGS if path[-1] == "run" else runflow.CREATE_FLAGS
        parsed = _parse(flags, rest, interspersed=False)
        if parsed is None:
            return None
        opts = parsed
        if path[-1] == "run":
            return lambda: runflow.run_command(state, command_path, opts)

        def create() -> int:
            runflow.create_command(state, command_path, opts)
            return 0

        return create
    if command in ("build", "image build"):
        from . import buildflow

        parsed = _parse(buildflow.BUILD_FLAGS, rest, interspersed=True, exact=1)
        if parsed is None:
            return None
        opts = parsed
        return lambda: buildflow.build_command(state, opts)
    return None


def _parse(
    flags: Sequence[Flag], rest: list[str], *, interspersed: bool, exact: int | None = None
) -> dict[str, Any] | None:
    """The command's options with ``args`` (its positional arguments), or ``None``."""
    from .flagspec import parse_flags

    result = parse_flags(flags, rest, interspersed=interspersed)
    if result is None:
        return None
    values, positionals = result
    if not positionals or (exact is not None and len(positionals) != exact):
        return None  # click words the usage error
    values["args"] = tuple(positionals)
    return values


def _global_options(args: list[str], state: CLIState) -> int | None:
    """Read the global options into ``state``; the index of the command, or ``None`` for
    anything unusual (``--help``, ``-v``, a bad log level …), which click then handles."""
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-":
            return i
        name, eq, value = arg.partition("=")
        if name in _GLOBAL_BOOL_FLAGS and not eq:
            setattr(state, _GLOBAL_BOOL_FLAGS[name], True)
            i += 1
            continue
        if name in _GLOBAL_VALUE_FLAGS or name in ("-l", "--log-level"):
            if not eq:
                if i + 1 >= len(args):
                    return None
                value = args[i + 1]
                i += 1
            i += 1
            if name in ("-l", "--log-level"):
                if value not in _LOG_LEVELS:
                    return None
                continue
            setattr(state, _GLOBAL_VALUE_FLAGS[name], value)
            continue
        return None
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
