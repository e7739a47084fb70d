"""Flags as data: one table per command, read by click and by a small pflag-style parser.

Hot commands (``run``, ``create``, ``build``) are parsed here without importing click, which
costs more start-up time than the daemon spends starting a container. The parser only takes
what it is sure of: anything else (``--help``, an unknown flag, a missing or bad value, no
positional argument) answers ``None`` and the command goes through click, which gives
docker's usage errors. Both paths see the same flags, so they cannot drift apart.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

__all__ = ["BOOL", "INT", "LIST", "STR", "Flag", "check_extra_host", "parse_flags"]

BOOL = "bool"
STR = "str"
LIST = "list"
INT = "int"

_TRUE = ("true", "1", "t")
_FALSE = ("false", "0", "f")


class Flag:
    """One flag: its ``-x``/``--name`` spellings, where its value goes, what kind it is.

    ``BOOL`` flags take ``--flag`` or ``--flag=true|false`` (pflag); ``LIST`` flags repeat;
    ``INT`` parses base 10; ``STR`` keeps the last value given.
    """

    __slots__ = ("check", "default", "dest", "help", "hidden", "kind", "names")

    def __init__(
        self,
        *names: str,
        dest: str,
        kind: str = STR,
        default: Any = None,
        help: str = "",
        hidden: bool = False,
        check: Callable[[str], str | None] | None = None,
    ) -> None:
        """``check`` answers a value with pflag's complaint about it (None: fine)."""
        self.names = names
        self.check = check
        self.dest = dest
        self.kind = kind
        self.default = False if kind == BOOL and default is None else default
        self.help = help
        self.hidden = hidden

    def initial(self) -> Any:
        return () if self.kind == LIST else self.default


def parse_flags(
    flags: Sequence[Flag], argv: Sequence[str], *, interspersed: bool = True
) -> tuple[dict[str, Any], list[str]] | None:
    """``(values by dest, positional arguments)``, or ``None`` when click must decide.

    pflag's rules: ``--name=value`` or ``--name value``; shorthand clusters (``-it``,
    ``-dp 80:80``, ``-p80``, ``-p=80``); ``--`` ends the flags; with ``interspersed`` false the
    first positional argument ends them too (``run IMAGE CMD -flags-of-CMD``).
    """
    by_name = {name: flag for flag in flags for name in flag.names}
    values: dict[str, Any] = {flag.dest: flag.initial() for flag in flags}
    lists: dict[str, list[str]] = {flag.dest: [] for flag in flags if flag.kind == LIST}
    positionals: list[str] = []
    i = 0
    n = len(argv)
    while i < n:
        arg = argv[i]
        i += 1
        if arg == "--":
            positionals.extend(argv[i:])
            break
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            flag = by_name.get(name)
            if flag is None:
                return None
            if flag.kind == BOOL:
                parsed = _bool(value) if eq else True
                if parsed is None:
                    return None
                values[flag.dest] = parsed
                continue
            if not eq:
                if i >= n:
                    return None
                value = argv[i]
                i += 1
            if not _store(flag, value, values, lists):
                return None
            continue
        if arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                flag = by_name.get("-" + arg[j])
                if flag is None:
                    return None
                if flag.kind == BOOL:
                    if arg[j + 1 : j + 2] == "=":  # -i=false
                        parsed = _bool(arg[j + 2 :])
                        if parsed is None:
                            return None
                        values[flag.dest] = parsed
                        break
                    values[flag.dest] = True
                    j += 1
                    continue
                rest = arg[j + 1 :]
                if rest.startswith("="):
                    rest = rest[1:]
                if rest:
                    value = rest
                elif i < n:
                    value = argv[i]
                    i += 1
                else:
                    return None
                if not _store(flag, value, values, lists):
                    return None
                break
            continue
        positionals.append(arg)
        if not interspersed:
            positionals.extend(argv[i:])
            break
    for dest, items in lists.items():
        values[dest] = tuple(items)
    return values, positionals


def _bool(text: str) -> bool | None:
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return None


def _store(flag: Flag, value: str, values: dict[str, Any], lists: dict[str, list[str]]) -> bool:
    if flag.check is not None and flag.check(value) is not None:
        return False  # click reports it, with the usage line
    if flag.kind == LIST:
        lists[flag.dest].append(value)
    elif flag.kind == INT:
        try:
            values[flag.dest] = int(value, 10)
        except ValueError:
            return False
    else:
        values[flag.dest] = value
    return True


def check_extra_host(value: str) -> str | None:
    """docker's ``ValidateExtraHost``: ``name:ip`` or ``name=ip`` (``host-gateway`` too)."""
    name, sep, address = value.partition("=")
    if not sep:
        name, sep, address = value.partition(":")
    if not sep or not name:
        return f'bad format for add-host: "{value}"'
    if address == "host-gateway":
        return None
    import ipaddress

    try:
        ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return f'invalid IP address in add-host: "{address}"'
    return None
