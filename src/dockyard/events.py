"""The daemon's event log: what ``GET /events`` streams, as dockerd does.

Subsystems report through the one-method ``EventSink`` role (``emit``), which the
composition root gives them; they never see the daemon. ``EventBus`` is the in-memory
implementation: it stamps each event with the time, keeps the last ``capacity`` for
``since`` queries, and hands each to every live subscriber's queue.

Messages are Docker's ``EventMessage``: ``Type``, ``Action``, ``Actor{ID, Attributes}``,
``scope`` (always ``local``), ``time``, ``timeNano`` — plus the deprecated ``status``,
``id`` and ``from`` that dockerd still fills for container and image events.

``EventFilter`` applies dockerd's matching rules (``daemon/events/filter.go``): every
given key must match; ``container``/``network``/``volume`` match the actor's ID or name
by prefix, ``image`` exactly (also without the tag), ``event`` exactly — by prefix when
it names ``exec_create``, ``exec_start`` or ``health_status`` — and ``label`` against the
actor's attributes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dockyard.errors import InvalidArgument

__all__ = [
    "FILTER_KEYS",
    "Event",
    "EventBus",
    "EventFilter",
    "EventSink",
    "NullSink",
    "Subscription",
]

FILTER_KEYS = frozenset(
    {
        "config",
        "container",
        "daemon",
        "event",
        "image",
        "label",
        "network",
        "node",
        "plugin",
        "scope",
        "secret",
        "service",
        "type",
        "volume",
    }
)
_FUZZY_ACTIONS = frozenset({"exec_create", "exec_start", "health_status"})


class EventSink(Protocol):
    """Where a subsystem reports what happened to one of its objects."""

    def emit(
        self, type: str, action: str, actor_id: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        """Record ``action`` on object ``actor_id`` of ``type`` (container, image, …).

        Never raises: reporting must not make the operation fail.
        """


class NullSink:
    """The sink for subsystems used without a daemon (tests, tools): drops everything."""

    def emit(
        self, type: str, action: str, actor_id: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        return None


@dataclass(frozen=True)
class Event:
    type: str
    action: str
    actor_id: str
    attributes: Mapping[str, str]
    time_ns: int

    def to_message(self) -> dict[str, Any]:
        """Docker's ``EventMessage`` (keys in dockerd's order)."""
        out: dict[str, Any] = {}
        if self.type in ("container", "image"):
            out["status"] = self.action
            out["id"] = self.actor_id
            if self.type == "container":
                out["from"] = self.attributes.get("image", "")
        out["Type"] = self.type
        out["Action"] = self.action
        out["Actor"] = {"ID": self.actor_id, "Attributes": dict(sorted(self.attributes.items()))}
        out["scope"] = "local"
        out["time"] = self.time_ns // 1_000_000_000
        out["timeNano"] = self.time_ns
        return out


def _strip_tag(ref: str) -> str:
    """``busybox:latest`` → ``busybox``; a registry port or a digest is not a tag."""
    name = ref.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon]
    return name


class EventFilter:
    """dockerd's event filter over a parsed ``filters`` map (``{"type": ["container"]}``).

    Raises ``InvalidArgument`` for a key dockerd does not know.
    """

    def __init__(self, filters: Mapping[str, Iterable[str]] | None = None) -> None:
        self._f: dict[str, set[str]] = {}
        for key, values in (filters or {}).items():
            if key not in FILTER_KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")
            self._f[key] = set(values)

    def _exact(self, key: str, *sources: str) -> bool:
        wanted = self._f.get(key)
        if wanted is None:
            return True
        return any(s in wanted for s in sources)

    def _fuzzy(self, key: str, *sources: str) -> bool:
        wanted = self._f.get(key)
        if wanted is None:
            return True
        return any(s.startswith(w) for s in sources for w in wanted)

    def _name(self, event: Event, type: str) -> bool:
        return self._fuzzy(type, event.actor_id, event.attributes.get("name", ""))

    def _labels(self, attributes: Mapping[str, str]) -> bool:
        wanted = self._f.get("label")
        if wanted is None:
            return True
        for item in wanted:
            key, sep, value = item.partition("=")
            if key not in attributes or (sep and attributes[key] != value):
                return False
        return True

    def _image(self, event: Event) -> bool:
        name = event.attributes.get("name" if event.type == "image" else "image", "")
        return self._exact(
            "image", event.actor_id, name, _strip_tag(event.actor_id), _strip_tag(name)
        )

    def _action(self, event: Event) -> bool:
        wanted = self._f.get("event")
        if wanted is not None and wanted & _FUZZY_ACTIONS:
            return self._fuzzy("event", event.action)
        return self._exact("event", event.action)

    def __call__(self, event: Event) -> bool:
        return (
            self._action(event)
            and self._exact("type", event.type)
            and self._exact("scope", "local")
            and self._name(event, "container")
            and self._name(event, "volume")
            and self._name(event, "network")
            and self._image(event)
            and self._fuzzy("daemon", "" if event.type != "daemon" else event.actor_id)
            and self._labels(event.attributes)
        )


@dataclass(eq=False)
class Subscription:
    """A live subscriber: events arrive on ``queue``, in the subscriber's event loop."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)

    def deliver(self, event: Event) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)


class EventBus:
    """In-memory event log with live subscribers (one per ``/events`` stream).

    ``emit`` may be called from any thread (image work runs in worker threads);
    ``subscribe`` from a running event loop, where the events are then delivered in order.
    Slow readers get an unbounded queue; an abandoned subscription must be
    ``unsubscribe``d.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self._log: deque[Event] = deque(maxlen=capacity)
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()

    def emit(
        self, type: str, action: str, actor_id: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        with self._lock:
            now = time.time_ns()
            if self._log and now <= self._log[-1].time_ns:
                now = self._log[-1].time_ns + 1  # keep the log strictly ordered
            event = Event(type, action, actor_id, dict(attributes or {}), now)
            self._log.append(event)
            for sub in self._subscribers:
                sub.deliver(event)

    def subscribe(
        self, since_ns: int | None, until_ns: int | None
    ) -> tuple[list[Event], Subscription]:
        """The logged events in ``[since, until]`` (none without ``since``) and a live feed.

        Both are taken at once, so no event is missed or seen twice.
        """
        sub = Subscription(asyncio.get_running_loop())
        with self._lock:
            past: list[Event] = []
            if since_ns is not None:
                past = [
                    e
                    for e in self._log
                    if e.time_ns >= since_ns and (until_ns is None or e.time_ns <= until_ns)
                ]
            self._subscribers.add(sub)
        return past, sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(sub)
