"""``events`` / ``system events``: docker CLI 28's requests and output.

``--since``/``--until`` go through ``GetTimestamp`` (durations, dates, Unix times) before
they are sent. Without ``--format`` each event prints as docker's ``prettyPrintEvent``:
``<RFC 3339 time, 9 fractional digits> <type> <action> <actor id> (k=v, …)`` with the
attributes sorted; ``--format json`` is ``{{json .}}``; a template sees the Go field names
(``.Type``, ``.Action``, ``.Actor.ID``, ``.Actor.Attributes``, ``.Status``, ``.ID``,
``.From``, ``.Scope``, ``.Time``, ``.TimeNano``). The stream ends at ``--until`` or when
the daemon closes it; Ctrl-C ends it quietly.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from dockyard.errors import InvalidArgument

from .common import DockerCommand, StatusError, flag_error, get_client, require_args
from .gofmt import TemplateError

__all__ = ["events", "pretty_event"]

_CTX = {"help_option_names": ["-h", "--help"]}

_GO_FIELDS = {
    "Status": "status",
    "ID": "id",
    "From": "from",
    "Type": "Type",
    "Action": "Action",
    "Actor": "Actor",
    "Scope": "scope",
    "Time": "time",
    "TimeNano": "timeNano",
}


def _rfc3339_nano(time_ns: int) -> str:
    """Go's ``2006-01-02T15:04:05.000000000Z07:00`` in local time."""
    local = datetime.fromtimestamp(time_ns // 1_000_000_000).astimezone()
    offset = local.strftime("%z")
    zone = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    return f"{local.strftime('%Y-%m-%dT%H:%M:%S')}.{time_ns % 1_000_000_000:09d}{zone}"


def pretty_event(message: dict[str, Any]) -> str:
    """One event as docker's default output (with the trailing newline)."""
    out = ""
    if message.get("timeNano"):
        out = _rfc3339_nano(int(message["timeNano"])) + " "
    elif message.get("time"):
        out = _rfc3339_nano(int(message["time"]) * 1_000_000_000) + " "
    actor = message.get("Actor") or {}
    out += f"{message.get('Type', '')} {message.get('Action', '')} {actor.get('ID', '')}"
    attributes = actor.get("Attributes") or {}
    if attributes:
        out += " (" + ", ".join(f"{k}={attributes[k]}" for k in sorted(attributes)) + ")"
    return out + "\n"


class _EventView:
    """An event for templates: Go's ``events.Message`` field names over the JSON."""

    go_type = "events.Message"

    def __init__(self, message: dict[str, Any]) -> None:
        self.message = message

    def template_field(self, name: str) -> Any:
        from .gotemplate import GoMap, GoStruct

        key = _GO_FIELDS[name]  # KeyError: no such field
        value = self.message.get(key)
        if name == "Actor":
            actor = value or {}
            return GoStruct(
                {
                    "ID": actor.get("ID", ""),
                    "Attributes": GoMap(actor.get("Attributes") or {}),
                },
                "events.Actor",
            )
        if value is None:
            return 0 if name in ("Time", "TimeNano") else ""
        return value

    def template_json(self) -> Any:
        return self.message


def _timestamp(ctx: click.Context, flag: str, value: str | None) -> str | None:
    if not value:
        return None
    from .containers import parse_timestamp

    try:
        return parse_timestamp(value)
    except InvalidArgument as exc:
        raise StatusError(1, exc.message) from exc
    except ValueError as exc:
        raise flag_error(ctx, f'invalid argument "{value}" for "{flag}" flag: {exc}') from exc


@click.command(
    cls=DockerCommand,
    usage="events [OPTIONS]",
    context_settings=_CTX,
    short_help="Get real time events from the server",
)
@click.option(
    "-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided"
)
@click.option("--format", "fmt", default="", help="Format output using a custom template")
@click.option("--since", default="", help="Show all events created since timestamp")
@click.option("--until", default="", help="Stream events until this timestamp")
@click.argument("args", nargs=-1)
@click.pass_context
def events(
    ctx: click.Context,
    filters: tuple[str, ...],
    fmt: str,
    since: str,
    until: str,
    args: tuple[str, ...],
) -> None:
    """Get real time events from the server."""
    from dockyard.client.streams import iter_json_messages
    from dockyard.client.wire import encode_filters, go_json, parse_filter_args

    require_args(ctx, args, none=True)
    try:
        wanted = parse_filter_args(filters)
    except ValueError as exc:
        bad = next((v for v in filters if "=" not in v), "")
        raise flag_error(ctx, f'invalid argument "{bad}" for "-f, --filter" flag: {exc}') from exc
    tmpl = None
    if fmt:
        from . import gotemplate

        try:
            tmpl = gotemplate.parse("{{json .}}" if fmt == "json" else fmt)
        except TemplateError as exc:
            raise StatusError(64, f"template parsing error: {exc}") from exc
    query: dict[str, str | None] = {
        "filters": encode_filters(wanted) if wanted else None,
        "since": _timestamp(ctx, "--since", since),
        "until": _timestamp(ctx, "--until", until),
    }

    def to_json(value: Any) -> str:
        if isinstance(value, _EventView):
            return go_json(value.message)
        return go_json(value)

    client = get_client(ctx)
    stream = client.stream("GET", "/events", query=query)
    try:
        for message in iter_json_messages(stream.read):
            if not isinstance(message, dict):
                continue
            if tmpl is None:
                sys.stdout.write(pretty_event(message))
            else:
                try:
                    line = tmpl.execute(_EventView(message), funcs={"json": to_json})
                except TemplateError as exc:
                    raise StatusError(1, str(exc)) from exc
                sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()
