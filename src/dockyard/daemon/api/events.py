"""``GET /events``: the event log and live events as JSON lines (dockerd's ``getEvents``).

``since``/``until`` are ``seconds[.nanoseconds]`` (the CLI converts dates and durations).
Without ``since`` only live events are sent. With an ``until`` in the past the logged
events are sent and the stream ends; with one in the future the stream ends then. Without
``until`` it stays open until the client goes away.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from dockyard import errors
from dockyard.containers.filters import parse_filters
from dockyard.daemon.app import SERVICES_KEY
from dockyard.daemon.services import Services
from dockyard.events import Event, EventFilter

__all__ = ["add_routes", "parse_event_time"]

_POLL = 0.5  # how often an idle stream checks that its client is still there


def parse_event_time(value: str | None) -> int | None:
    """moby's ``timetypes.ParseTimestamps``: ``"1700000000.5"`` → Unix ns (the digits after
    the dot are a fraction of a second). None for an empty value."""
    if not value:
        return None
    secs, dot, frac = value.partition(".")
    for part in (secs, frac) if dot else (secs,):
        if not part.lstrip("-").isdigit():
            raise errors.InvalidArgument(f'strconv.ParseInt: parsing "{part}": invalid syntax')
    nanos = int((frac + "0" * 9)[:9]) if frac else 0
    return int(secs) * 1_000_000_000 + nanos


def _line(event: Event) -> bytes:
    return json.dumps(event.to_message(), separators=(",", ":")).encode() + b"\n"


async def get_events(request: web.Request) -> web.StreamResponse:
    services: Services = request.app[SERVICES_KEY]
    since = parse_event_time(request.query.get("since"))
    until = parse_event_time(request.query.get("until"))
    if until is not None and since is not None and until < since:
        raise errors.InvalidArgument(
            f"`since` time ({request.query.get('since')}) cannot be after "
            f"`until` time ({request.query.get('until')})"
        )
    wanted = EventFilter(parse_filters(request.query.get("filters")))
    only_past = until is not None and until < time.time_ns()
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    past, sub = services.events.subscribe(since, until)
    try:
        for event in past:
            if wanted(event):
                await response.write(_line(event))
        if only_past:
            return response
        loop = asyncio.get_running_loop()
        deadline = None if until is None else loop.time() + (until - time.time_ns()) / 1e9
        while True:
            transport = request.transport
            if transport is None or transport.is_closing():
                return response
            wait = _POLL if deadline is None else min(_POLL, deadline - loop.time())
            if wait <= 0:
                break
            try:
                event = await asyncio.wait_for(sub.queue.get(), wait)
            except TimeoutError:
                continue
            if until is not None and event.time_ns > until:
                break
            if wanted(event):
                await response.write(_line(event))
    except (ConnectionResetError, BrokenPipeError):
        return response
    finally:
        services.events.unsubscribe(sub)
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/events", get_events)
