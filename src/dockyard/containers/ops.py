"""Read-only container views that need more than the records: ``top``, ``changes``, ``stats``.

``ContainerOps`` composes the container service (records and state), the runtime (``runc
ps``) and the snapshotter (upper and lower directories). It keeps no state of its own, so an
API handler may make one per request from the daemon's services.

Errors (dockerd's): ``NotFound`` ``No such container: x``; ``Conflict`` ``Container <id> is
not running`` for ``top`` of a stopped container; ``InvalidArgument`` for ``stats`` with
both ``stream`` and ``one-shot``; ``SystemError`` when ``ps`` fails (see ``top``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from dockyard import errors
from dockyard.containers.changes import changes, layer_dirs
from dockyard.containers.record import ContainerRecord
from dockyard.containers.service import ContainerService
from dockyard.containers.stats import Sample, StatsReader, stats_json
from dockyard.containers.timefmt import now_ns, rfc3339
from dockyard.containers.top import parse_ps_output, ps_args_list, run_ps, validate_ps_args
from dockyard.runtime import Runtime
from dockyard.snapshots import OverlaySnapshotter

__all__ = ["STATS_INTERVAL", "ContainerOps"]

STATS_INTERVAL = 1.0  # dockerd's stats collector samples once a second


class ContainerOps:
    def __init__(
        self,
        containers: ContainerService,
        runtime: Runtime,
        snapshots: OverlaySnapshotter,
        reader: StatsReader | None = None,
        *,
        interval: float = STATS_INTERVAL,
    ) -> None:
        self._containers = containers
        self._runtime = runtime
        self._snapshots = snapshots
        self._reader = reader or StatsReader()
        self._interval = interval

    # ---- top ----------------------------------------------------------------------------

    async def top(self, ref: str, ps_args: str) -> dict[str, Any]:
        """``{"Titles", "Processes"}``: the host's ``ps`` rows of the container's processes."""
        validate_ps_args(ps_args or "-ef")
        record = self._containers.get(ref)
        if not record.state.running:
            raise errors.Conflict(f"Container {record.id} is not running")
        if record.state.status == "restarting":
            raise errors.Conflict(
                f"Container {record.id} is restarting, wait until the container is running"
            )
        args = ps_args_list(ps_args)
        try:
            pids = await self._runtime.pids(record.id)
        except (errors.NotFound, errors.Conflict):
            raise errors.Conflict(f"Container {record.id} is not running") from None
        output = await run_ps(args, pids)
        processes = parse_ps_output(output, pids)
        self._containers.emit(record, "top")
        return processes

    # ---- changes ------------------------------------------------------------------------

    async def changes(self, ref: str) -> list[dict[str, object]] | None:
        """The container's filesystem changes (``None`` when there are none, as dockerd's
        nil list); works on stopped containers too: their upper directory stays."""
        record = self._containers.get(ref)
        try:
            upper = self._snapshots.upper_dir(record.id)
            lowers = layer_dirs(self._snapshots.mounts(record.id))
        except errors.NotFound:
            raise errors.SystemError(
                f"RWLayer of container {record.id} is unexpectedly nil"
            ) from None
        found = await asyncio.to_thread(changes, upper, lowers)
        return [c.to_json() for c in found] or None

    # ---- stats --------------------------------------------------------------------------

    def stats(
        self, ref: str, *, stream: bool, one_shot: bool
    ) -> AsyncGenerator[dict[str, Any], None]:
        """dockerd's stats objects: one (``stream=False``; primed with a reading one interval
        earlier for ``precpu_stats`` unless ``one_shot``) or one per interval until the
        container is removed. Checks the arguments and the container before returning."""
        if stream and one_shot:
            raise errors.InvalidArgument("cannot have stream=true and one-shot=true")
        record = self._containers.get(ref)
        if stream:
            return self._stream(record.id)
        return self._once(record, prime=not one_shot)

    async def _read(self, record: ContainerRecord) -> Sample | None:
        state = record.state
        if state.status not in ("running", "paused") or not state.pid:
            return None
        mode = record.host_config.get("NetworkMode") or "default"
        own_netns = mode not in ("none", "host") and not mode.startswith("container:")
        return await asyncio.to_thread(
            self._reader.sample, state.pid, networks=own_netns, now=rfc3339(now_ns())
        )

    async def _once(
        self, record: ContainerRecord, *, prime: bool
    ) -> AsyncGenerator[dict[str, Any], None]:
        first = await self._read(record)
        if first is None or not prime:
            yield stats_json(record.name, record.id, first, None)
            return
        await asyncio.sleep(self._interval)
        second = await self._read(record)
        yield stats_json(record.name, record.id, second, first if second is not None else None)

    async def _stream(self, cid: str) -> AsyncGenerator[dict[str, Any], None]:
        previous: Sample | None = None
        while True:
            try:
                record = self._containers.get(cid)
            except errors.NotFound:
                return
            sample = await self._read(record)
            yield stats_json(record.name, record.id, sample, previous)
            previous = sample
            await asyncio.sleep(self._interval)
