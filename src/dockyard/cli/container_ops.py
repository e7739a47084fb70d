"""Container commands: pause, unpause, rename, top, diff, stats — the docker CLI's output.

- ``pause``/``unpause`` print each name done, then every error; exit 1 if any failed.
- ``rename`` prints the daemon's error, then ``Error: failed to rename container named X``.
- ``top`` prints ``ps``'s titles and rows through a tabwriter (min width 20, padding 3).
- ``diff`` prints ``C``/``A``/``D`` and the path, one change a line.
- ``stats`` collects one stats stream per container (a thread each) and prints docker's
  table: ``--no-stream`` once after the first reading of each, otherwise every 500 ms,
  redrawn in place (cursor home, erase to end of line/screen) as docker does. Without
  container arguments it follows the container list (polled every 2 s: no events API).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import click

from dockyard.client import Client
from dockyard.client.container_ops_api import (
    container_changes,
    container_pause,
    container_rename,
    container_stats,
    container_top,
    container_unpause,
)
from dockyard.errors import DockyardError

from .common import DockerCommand, StatusError, describe_error, get_client, get_state, require_args
from .containers import _parallel, _report
from .formatting import Formatter, _Context, bytes_size, human_size, tabwrite
from .gofmt import TemplateError

__all__ = [
    "STATS_HEADERS",
    "StatsContext",
    "diff",
    "pause",
    "rename",
    "stats",
    "stats_entry",
    "top",
    "unpause",
]

_CTX = {"help_option_names": ["-h", "--help"]}
_TOP_CTX = {
    "help_option_names": ["--help"],
    "allow_interspersed_args": False,
    "ignore_unknown_options": True,
}

DEFAULT_STATS_FORMAT = (
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t"
    "{{.BlockIO}}\t{{.PIDs}}"
)
STATS_HEADERS: dict[str, str] = {
    "Container": "CONTAINER",
    "Name": "NAME",
    "ID": "CONTAINER ID",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}
_FIRST_TIMEOUT = 5.0  # docker waits 2 s; the daemon needs 1 s to prime the CPU reading


# --------------------------------------------------------------------------- pause/unpause


@click.command(
    cls=DockerCommand,
    usage="pause CONTAINER [CONTAINER...]",
    context_settings=_CTX,
    short_help="Pause all processes within one or more containers",
)
@click.argument("containers", nargs=-1)
@click.pass_context
def pause(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Pause all processes within one or more containers."""
    require_args(ctx, containers, minimum=1)
    _report(containers, _parallel(get_client(ctx), containers, container_pause))


@click.command(
    cls=DockerCommand,
    usage="unpause CONTAINER [CONTAINER...]",
    context_settings=_CTX,
    short_help="Unpause all processes within one or more containers",
)
@click.argument("containers", nargs=-1)
@click.pass_context
def unpause(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Unpause all processes within one or more containers."""
    require_args(ctx, containers, minimum=1)
    _report(containers, _parallel(get_client(ctx), containers, container_unpause))


# --------------------------------------------------------------------------- rename


@click.command(
    cls=DockerCommand,
    usage="rename CONTAINER NEW_NAME",
    context_settings=_CTX,
    short_help="Rename a container",
)
@click.argument("args", nargs=-1)
@click.pass_context
def rename(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Rename a container."""
    require_args(ctx, args, exact=2)
    old, new = args[0].strip(), args[1].strip()
    if not old or not new:
        raise StatusError(1, "Error: Neither old nor new names may be empty")
    try:
        container_rename(get_client(ctx), old, new)
    except DockyardError as exc:
        raise StatusError(
            1, f"{describe_error(exc)}\nError: failed to rename container named {old}"
        ) from exc


# --------------------------------------------------------------------------- top


@click.command(
    cls=DockerCommand,
    usage="top CONTAINER [ps OPTIONS]",
    context_settings=_TOP_CTX,
    short_help="Display the running processes of a container",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def top(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Display the running processes of a container."""
    require_args(ctx, args, minimum=1)
    result = container_top(get_client(ctx), args[0], list(args[1:]))
    lines = ["\t".join(result.get("Titles") or [])]
    lines += ["\t".join(row) for row in result.get("Processes") or []]
    sys.stdout.write(tabwrite("\n".join(lines) + "\n", minwidth=20, padding=3))
    sys.stdout.flush()


# --------------------------------------------------------------------------- diff


@click.command(
    cls=DockerCommand,
    usage="diff CONTAINER",
    context_settings=_CTX,
    short_help="Inspect changes to files or directories on a container's filesystem",
)
@click.argument("args", nargs=-1)
@click.pass_context
def diff(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Inspect changes to files or directories on a container's filesystem."""
    require_args(ctx, args, exact=1)
    if not args[0]:
        raise StatusError(1, "Container name cannot be empty")
    out = []
    for change in container_changes(get_client(ctx), args[0]):
        kind = {0: "C", 1: "A", 2: "D"}.get(int(change.get("Kind", -1)), "")
        out.append(f"{kind} {change.get('Path', '')}\n")
    sys.stdout.write("".join(out))
    sys.stdout.flush()


# --------------------------------------------------------------------------- stats


def _cpu_percent(v: Mapping[str, Any]) -> float:
    """docker's calculateCPUPercentUnix."""
    cur = v.get("cpu_stats") or {}
    pre = v.get("precpu_stats") or {}
    cur_usage = cur.get("cpu_usage") or {}
    cpu_delta = float(cur_usage.get("total_usage") or 0) - float(
        (pre.get("cpu_usage") or {}).get("total_usage") or 0
    )
    system_delta = float(cur.get("system_cpu_usage") or 0) - float(pre.get("system_cpu_usage") or 0)
    online = float(cur.get("online_cpus") or 0) or float(len(cur_usage.get("percpu_usage") or []))
    if system_delta > 0.0 and cpu_delta > 0.0:
        return (cpu_delta / system_delta) * online * 100.0
    return 0.0


def _mem_usage(mem: Mapping[str, Any]) -> float:
    """docker's calculateMemUsageUnixNoCache: usage less inactive file pages."""
    usage = int(mem.get("usage") or 0)
    raw = mem.get("stats") or {}
    if "total_inactive_file" in raw and int(raw["total_inactive_file"]) < usage:
        return float(usage - int(raw["total_inactive_file"]))
    inactive = int(raw.get("inactive_file") or 0)
    if inactive < usage:
        return float(usage - inactive)
    return float(usage)


def stats_entry(v: Mapping[str, Any]) -> dict[str, Any]:
    """One stats object → the numbers docker's table shows (its StatsEntry)."""
    mem = v.get("memory_stats") or {}
    used = _mem_usage(mem)
    limit = float(mem.get("limit") or 0)
    rx = tx = 0.0
    for net in (v.get("networks") or {}).values():
        rx += float(net.get("rx_bytes") or 0)
        tx += float(net.get("tx_bytes") or 0)
    read = write = 0.0
    for entry in (v.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op") or "")[:1].lower()
        if op == "r":
            read += float(entry.get("value") or 0)
        elif op == "w":
            write += float(entry.get("value") or 0)
    return {
        "Name": str(v.get("name") or ""),
        "ID": str(v.get("id") or ""),
        "CPUPercentage": _cpu_percent(v),
        "Memory": used,
        "MemoryLimit": limit,
        "MemoryPercentage": used / limit * 100.0 if limit else 0.0,
        "NetworkRx": rx,
        "NetworkTx": tx,
        "BlockRead": read,
        "BlockWrite": write,
        "PidsCurrent": int((v.get("pids_stats") or {}).get("current") or 0),
    }


class StatsContext(_Context):
    """One container's stats row, as ``docker stats`` templates see it."""

    go_type = "*container.statsContext"

    fields = (
        "BlockIO",
        "CPUPerc",
        "Container",
        "ID",
        "MemPerc",
        "MemUsage",
        "Name",
        "NetIO",
        "PIDs",
    )

    def __init__(
        self, container: str, entry: Mapping[str, Any] | None, *, trunc: bool = True
    ) -> None:
        super().__init__()
        self.container = container
        self.s = entry or {}
        self.invalid = entry is None
        self.trunc = trunc

    def f_Container(self) -> str:
        return self.container

    def f_Name(self) -> str:
        name = str(self.s.get("Name") or "")
        return name[1:] if len(name) > 1 else "--"

    def f_ID(self) -> str:
        cid = str(self.s.get("ID") or "")
        return cid[:12] if self.trunc else cid

    def f_CPUPerc(self) -> str:
        return "--" if self.invalid else f"{self.s['CPUPercentage']:.2f}%"

    def f_MemUsage(self) -> str:
        if self.invalid:
            return "-- / --"
        return f"{bytes_size(self.s['Memory'])} / {bytes_size(self.s['MemoryLimit'])}"

    def f_MemPerc(self) -> str:
        return "--" if self.invalid else f"{self.s['MemoryPercentage']:.2f}%"

    def f_NetIO(self) -> str:
        if self.invalid:
            return "--"
        return f"{human_size(self.s['NetworkRx'], 3)} / {human_size(self.s['NetworkTx'], 3)}"

    def f_BlockIO(self) -> str:
        if self.invalid:
            return "--"
        return f"{human_size(self.s['BlockRead'], 3)} / {human_size(self.s['BlockWrite'], 3)}"

    def f_PIDs(self) -> str:
        return "--" if self.invalid else str(self.s["PidsCurrent"])


class _Collector:
    """One container's stats stream, read on a thread of its own."""

    def __init__(self, client: Client, container: str, *, stream: bool) -> None:
        self.container = container
        self.entry: dict[str, Any] | None = None
        self.error: DockyardError | None = None
        self.first = threading.Event()
        self.done = threading.Event()
        self._client = client.clone()
        self._stream = stream
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> _Collector:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._response = container_stats(self._client, self.container, stream=self._stream)
            buffer = b""
            while True:
                chunk = self._response.read()
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        self._update(json.loads(line))
                if self.first.is_set() and not self._stream:
                    break
            if buffer.strip():
                self._update(json.loads(buffer))
        except DockyardError as exc:
            self.error = exc
        except (OSError, ValueError):
            pass
        finally:
            self.first.set()
            self.done.set()
            self.close()

    def _update(self, value: Any) -> None:
        if isinstance(value, dict):
            self.entry = stats_entry(value)
            self.first.set()

    def close(self) -> None:
        response = self._response
        if response is not None:
            response.close()
        self._client.close()


def _stats_format(ctx: click.Context, fmt: str) -> str:
    if not fmt:
        fmt = str(get_state(ctx).docker_config().raw.get("statsFormat") or "") or "table"
    return DEFAULT_STATS_FORMAT if fmt == "table" else fmt


def _render(fmt: str, collectors: Sequence[_Collector], trunc: bool) -> str:
    try:
        formatter = Formatter(fmt, STATS_HEADERS)
        return formatter.render(
            StatsContext(c.container, None if c.error else c.entry, trunc=trunc) for c in collectors
        )
    except TemplateError as exc:
        raise StatusError(1, str(exc)) from exc


@click.command(
    cls=DockerCommand,
    usage="stats [OPTIONS] [CONTAINER...]",
    context_settings=_CTX,
    short_help="Display a live stream of container(s) resource usage statistics",
)
@click.option(
    "-a", "--all", "all_", is_flag=True, help="Show all containers (default shows just running)"
)
@click.option("--format", "fmt", default="", help="Format output using a custom template")
@click.option(
    "--no-stream", is_flag=True, help="Disable streaming stats and only pull the first result"
)
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.argument("containers", nargs=-1)
@click.pass_context
def stats(
    ctx: click.Context,
    all_: bool,
    fmt: str,
    no_stream: bool,
    no_trunc: bool,
    containers: tuple[str, ...],
) -> None:
    """Display a live stream of container(s) resource usage statistics."""
    client = get_client(ctx)
    show_all = not containers
    final = _stats_format(ctx, fmt)
    collectors: list[_Collector] = []
    known: set[str] = set()

    def follow(names: Sequence[str]) -> None:
        for name in names:
            if name not in known:
                known.add(name)
                collectors.append(_Collector(client, name, stream=not no_stream).start())

    def listed() -> list[str]:
        return [str(c["Id"]) for c in client.containers_list(all=all_)]

    follow(listed() if show_all else list(containers))
    deadline = time.monotonic() + _FIRST_TIMEOUT
    for c in collectors:
        c.first.wait(max(0.0, deadline - time.monotonic()))
    if not show_all:
        failures = [describe_error(c.error) for c in collectors if c.error is not None]
        if failures:
            for c in collectors:
                c.close()
            raise StatusError(1, "\n".join(failures))
    if no_stream:
        output = _render(final, collectors, not no_trunc) if collectors else ""
        for c in collectors:
            c.close()
        sys.stdout.write(output)
        sys.stdout.flush()
        return
    _stream_loop(client, final, collectors, follow, listed, show_all, all_, not no_trunc)


def _stream_loop(
    client: Client,
    fmt: str,
    collectors: list[_Collector],
    follow: Any,
    listed: Any,
    show_all: bool,
    all_: bool,
    trunc: bool,
) -> None:
    """Redraw every 500 ms; with no arguments, follow the container list every 2 s."""
    next_list = time.monotonic() + 2.0
    try:
        sys.stdout.write("\033[2J")
        while True:
            if show_all and time.monotonic() >= next_list:
                next_list = time.monotonic() + 2.0
                try:
                    follow(listed())
                except DockyardError:
                    pass
                if not all_:
                    collectors[:] = [c for c in collectors if not c.done.is_set()]
            text = _render(fmt, collectors, trunc)
            frame = ["\033[H"]
            for line in text.split("\n"):
                frame.append(f"{line} \033[K\n")
            frame.append("\033[J")
            sys.stdout.write("".join(frame))
            sys.stdout.flush()
            if not collectors and not show_all:
                return
            if not show_all and all(c.done.is_set() for c in collectors):
                return
            time.sleep(0.5)
    finally:
        for c in collectors:
            c.close()
