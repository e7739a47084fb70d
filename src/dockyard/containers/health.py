"""Healthchecks: dockerd's HEALTHCHECK monitor (moby ``daemon/health.go``), one per container.

What a container's ``Config.Healthcheck`` means (durations in nanoseconds, 0 = default)::

    Test           ["CMD", argv…] | ["CMD-SHELL", "cmd"] (run by Config.Shell or /bin/sh -c)
                   | ["NONE"] (disabled); empty or unknown: no checks
    Interval       between the end of one probe and the start of the next       (30s)
    Timeout        a probe running longer is killed and counts as failed        (30s)
    StartPeriod    failures while still ``starting`` within it do not count     (0s)
    StartInterval  the interval while ``starting`` within the start period      (5s)
    Retries        consecutive failures that make the container unhealthy       (3)

Lifecycle, driven by ``ContainerService``:

    start(record)  the container runs (start, restart, daemon start-up finding it running):
                   ``State.Health`` becomes {Status: starting, FailingStreak: 0}, the log of
                   earlier results is kept, and a task probes it
    stop(cid)      it exited: the task is cancelled (a probe in flight is killed) and the
                   status becomes ``unhealthy``, as dockerd reports a stopped monitor

A probe is an exec in the container (its user, environment and working directory, no TTY,
stdout and stderr together). Exit 0 makes the container healthy and resets FailingStreak;
anything else (a non-zero exit, a timeout or an exec that cannot start: -1) adds to it,
unless the container is still starting within its start period; ``Retries`` failures in a
row make it unhealthy. The last 5 results are kept, each output cut to 4096 bytes + "...".
While the container is paused, no probe runs.

The state is ``ContainerRecord.health``, the JSON Docker shows as ``State.Health``; like
dockerd, it is persisted best-effort (with the record's next save). The state functions are
pure and ``HealthMonitor`` takes its clock (Unix ns), sleep and prober as arguments, so the state
machine is tested with a fake clock; ``ExecProber`` is the one part that runs processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dockyard import errors
from dockyard.containers.record import ContainerRecord
from dockyard.containers.timefmt import rfc3339

if TYPE_CHECKING:
    from dockyard.containers.service import ContainerService, ExecRecord

__all__ = [
    "HEALTH_STATUSES",
    "ExecProber",
    "HealthConfig",
    "HealthMonitor",
    "ProbeResult",
    "Prober",
    "apply_result",
    "go_duration",
    "health_status",
    "next_delay",
    "probe_config",
    "reset_health",
    "stopped_health",
    "validate_healthcheck",
]

log = logging.getLogger(__name__)

STARTING = "starting"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
NO_HEALTHCHECK = "none"
HEALTH_STATUSES = frozenset({STARTING, HEALTHY, UNHEALTHY, NO_HEALTHCHECK})

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_PERIOD = 0.0
DEFAULT_START_INTERVAL = 5.0
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096
EXEC_START_TIMEOUT = 30.0  # dockerd's separate limit on starting the probe's exec

_NS = 1_000_000_000
_MINIMUM_NS = 1_000_000  # dockerd's containertypes.MinimumDuration (1ms)


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class HealthConfig:
    """A container's healthcheck with dockerd's defaults applied (seconds)."""

    argv: tuple[str, ...]
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    start_period: float = DEFAULT_START_PERIOD
    start_interval: float = DEFAULT_START_INTERVAL
    retries: int = DEFAULT_RETRIES


def _seconds(check: dict[str, Any], key: str, default: float) -> float:
    value = check.get(key) or 0
    return value / _NS if isinstance(value, int) and value > 0 else default


def probe_config(config: dict[str, Any]) -> HealthConfig | None:
    """The probe a container Config asks for, or None (no Healthcheck, ``NONE``, an empty
    or unknown test: dockerd's ``getProbe``)."""
    check = config.get("Healthcheck")
    if not isinstance(check, dict):
        return None
    test = check.get("Test")
    if not isinstance(test, list) or not test or not all(isinstance(t, str) for t in test):
        return None
    if test[0] == "CMD":
        argv = list(test[1:])
    elif test[0] == "CMD-SHELL":
        shell = config.get("Shell") or ["/bin/sh", "-c"]
        argv = [*shell, *test[1:]]
    else:
        return None
    if not argv:
        return None
    retries = check.get("Retries")
    return HealthConfig(
        argv=tuple(argv),
        interval=_seconds(check, "Interval", DEFAULT_INTERVAL),
        timeout=_seconds(check, "Timeout", DEFAULT_TIMEOUT),
        start_period=_seconds(check, "StartPeriod", DEFAULT_START_PERIOD),
        start_interval=_seconds(check, "StartInterval", DEFAULT_START_INTERVAL),
        retries=retries if isinstance(retries, int) and retries > 0 else DEFAULT_RETRIES,
    )


def validate_healthcheck(check: Any) -> None:
    """dockerd's create-time checks (``validateHealthCheck``); ``InvalidArgument``."""
    if check is None:
        return
    if not isinstance(check, dict):
        raise errors.InvalidArgument(
            "json: cannot unmarshal into Go struct field Config.Healthcheck of type "
            "container.HealthConfig"
        )
    test = check.get("Test")
    if test is not None and (
        not isinstance(test, list) or not all(isinstance(t, str) for t in test)
    ):
        raise errors.InvalidArgument(
            "json: cannot unmarshal into Go struct field HealthConfig.Healthcheck.Test of "
            "type []string"
        )
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        value = check.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise errors.InvalidArgument(
                f"json: cannot unmarshal into Go struct field HealthConfig.Healthcheck.{key} "
                "of type time.Duration"
            )
        if value != 0 and value < _MINIMUM_NS:
            raise errors.InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms")
    retries = check.get("Retries")
    if retries is not None:
        if not isinstance(retries, int) or isinstance(retries, bool):
            raise errors.InvalidArgument(
                "json: cannot unmarshal into Go struct field HealthConfig.Healthcheck.Retries "
                "of type int"
            )
        if retries < 0:
            raise errors.InvalidArgument("Retries in Healthcheck cannot be negative")


# --------------------------------------------------------------------------- the state


@dataclass(frozen=True)
class ProbeResult:
    """One probe: its exit code (-1: timed out or could not run), output, start and end."""

    exit_code: int
    output: str
    start_ns: int = 0
    end_ns: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "Start": rfc3339(self.start_ns),
            "End": rfc3339(self.end_ns),
            "ExitCode": self.exit_code,
            "Output": self.output,
        }


def health_status(health: dict[str, Any] | None) -> str:
    """The status ``ps --filter health=`` matches: ``none`` without a healthcheck; a state
    without a status yet counts as ``unhealthy`` (dockerd's ``Health.Status``)."""
    if health is None:
        return NO_HEALTHCHECK
    return str(health.get("Status") or UNHEALTHY)


def reset_health(health: dict[str, Any] | None) -> dict[str, Any]:
    """A (re)started container: starting, no failures, earlier results kept."""
    return {
        "Status": STARTING,
        "FailingStreak": 0,
        "Log": list((health or {}).get("Log") or []),
    }


def stopped_health(health: dict[str, Any]) -> dict[str, Any]:
    """The monitor stopped (the container exited): ``unhealthy``, for compatibility."""
    return {**health, "Status": UNHEALTHY}


def apply_result(
    health: dict[str, Any] | None,
    result: ProbeResult,
    config: HealthConfig,
    started_at_ns: int,
) -> dict[str, Any]:
    """The state after ``result`` (dockerd's ``handleProbeResult``)."""
    current = health if health is not None else reset_health(None)
    entries = [*(current.get("Log") or []), result.to_json()][-MAX_LOG_ENTRIES:]
    status = health_status(current)
    streak = int(current.get("FailingStreak") or 0)
    if result.exit_code == 0:
        status, streak = HEALTHY, 0
    else:
        counts = not (
            status == STARTING and result.start_ns - started_at_ns < config.start_period * _NS
        )
        if counts:
            streak += 1
            if streak >= config.retries:
                status = UNHEALTHY
    return {"Status": status, "FailingStreak": streak, "Log": entries}


def next_delay(config: HealthConfig, status: str, since_start: float) -> float:
    """Seconds until the next probe: the start interval while starting within the start
    period (cut at its end: moby#46747), else the interval."""
    if since_start >= config.start_period or status != STARTING:
        return config.interval
    return min(config.start_interval, config.start_period - since_start)


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String``: ``1s``, ``1.5s``, ``500ms``, ``1m30s``, ``1h0m0s``."""
    ns = round(seconds * _NS)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < _NS:
        for unit, scale in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < scale * 1000:
                return sign + _frac(u, scale) + unit
    text = _frac(u % (60 * _NS), _NS) + "s"
    minutes = u // (60 * _NS)
    if minutes:
        text = f"{minutes % 60}m" + text
        if minutes >= 60:
            text = f"{minutes // 60}h" + text
    return sign + text


def _frac(value: int, scale: int) -> str:
    whole, rest = divmod(value, scale)
    if not rest:
        return str(whole)
    digits = str(rest).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


# --------------------------------------------------------------------------- the monitor


class Prober(Protocol):
    """Runs one probe; never raises for a failing check (that is a result)."""

    async def probe(self, cid: str, argv: list[str], timeout: float) -> ProbeResult: ...


class HealthMonitor:
    """One task per running container with a healthcheck (see the module docstring)."""

    def __init__(
        self,
        prober: Prober,
        *,
        clock: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_change: Callable[[ContainerRecord, str], None] | None = None,
    ) -> None:
        self._prober = prober
        self._on_change = on_change
        self._clock = clock
        self._sleep = sleep
        self._tasks: dict[str, tuple[asyncio.Task[None], ContainerRecord]] = {}
        self._stopping: set[asyncio.Task[None]] = set()  # cancelled, still reaping a probe

    def running(self, cid: str) -> bool:
        return cid in self._tasks

    def start(self, record: ContainerRecord) -> None:
        """Reset the container's health and probe it from now on (no-op without a probe)."""
        config = probe_config(record.config)
        if config is None:
            return
        self._cancel(record.id)
        record.health = reset_health(record.health)
        task = asyncio.get_running_loop().create_task(
            self._monitor(record, config), name=f"health-{record.id[:12]}"
        )
        self._tasks[record.id] = (task, record)

    def stop(self, cid: str) -> None:
        """Stop probing (a probe in flight is killed); the status becomes ``unhealthy``."""
        record = self._cancel(cid)
        if record is not None and record.health is not None:
            record.health = stopped_health(record.health)

    async def close(self) -> None:
        """Cancel every monitor and wait until their probes are reaped (daemon shutdown;
        the health states are left as they are)."""
        for cid in list(self._tasks):
            self._cancel(cid)
        for task in list(self._stopping):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _cancel(self, cid: str) -> ContainerRecord | None:
        entry = self._tasks.pop(cid, None)
        if entry is None:
            return None
        task, record = entry
        task.cancel()
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)
        return record

    async def _monitor(self, record: ContainerRecord, config: HealthConfig) -> None:
        while True:
            since_start = (self._clock() - record.state.started_at) / _NS
            await self._sleep(next_delay(config, health_status(record.health), since_start))
            if record.state.status != "running":
                continue  # paused: dockerd stops probing until it runs again
            start_ns = self._clock()
            try:
                result = await self._prober.probe(record.id, list(config.argv), config.timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broken probe is a failed check, not a dead monitor
                log.warning("health check for container %s failed: %s", record.id[:12], exc)
                message = exc.message if isinstance(exc, errors.DockyardError) else str(exc)
                result = ProbeResult(-1, message, end_ns=self._clock())
            result = dataclasses.replace(result, start_ns=start_ns)
            before = health_status(record.health)
            record.health = apply_result(record.health, result, config, record.state.started_at)
            after = health_status(record.health)
            if before != after:
                log.info("container %s is %s", record.id[:12], after)
                if self._on_change is not None:
                    self._on_change(record, after)


# --------------------------------------------------------------------------- probes as execs


class _LimitedBuffer:
    """The first ``MAX_OUTPUT`` bytes; ``...`` marks that more were dropped."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._truncated = False

    def write(self, chunk: bytes) -> None:
        room = MAX_OUTPUT - len(self._data)
        if room > 0:
            self._data += chunk[:room]
        if len(chunk) > room:
            self._truncated = True

    def text(self) -> str:
        out = self._data.decode("utf-8", errors="replace")
        return out + "..." if self._truncated else out


class ExecProber:
    """Probes as execs through the container service (shown in ``ExecIDs`` while they run,
    forgotten once done: dockerd garbage-collects them)."""

    def __init__(self, containers: ContainerService) -> None:
        self._containers = containers

    async def probe(self, cid: str, argv: list[str], timeout: float) -> ProbeResult:
        service = self._containers
        exec_id = service.exec_create(
            cid,
            {
                "AttachStdin": False,
                "AttachStdout": True,
                "AttachStderr": True,
                "Tty": False,
                "Cmd": argv,
            },
        )
        try:
            return await self._run(cid, exec_id, timeout)
        finally:
            service.exec_forget(exec_id)

    async def _run(self, cid: str, exec_id: str, timeout: float) -> ProbeResult:
        service = self._containers
        try:
            rec = await asyncio.wait_for(service.exec_start(exec_id, tty=False), EXEC_START_TIMEOUT)
        except TimeoutError:
            return _now_result(-1, f"timed out starting health check for container {cid}")
        except errors.DockyardError as exc:
            return _now_result(-1, f"OCI runtime exec failed: {exc.message.strip()}: unknown")
        proc = rec.process
        assert proc is not None
        output = _LimitedBuffer()

        async def collect() -> None:
            while (message := await proc.stream.read()) is not None:
                output.write(message[1])

        reader = asyncio.ensure_future(collect())
        try:
            try:
                code = await asyncio.wait_for(service.exec_finish(rec), timeout)
            except TimeoutError:
                _kill(proc.pid)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(service.exec_finish(rec), 10)
                text = output.text()
                message = f"Health check exceeded timeout ({go_duration(timeout)})"
                return _now_result(-1, f"{message}: {text}" if text else message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), 2)
            return _now_result(code, output.text())
        except asyncio.CancelledError:
            # The monitor stopped mid-probe: kill the probe and reap its session first.
            _kill(proc.pid)
            with contextlib.suppress(Exception):
                await asyncio.shield(self._reap(rec))
            raise
        finally:
            reader.cancel()
            proc.stream.close()

    async def _reap(self, rec: ExecRecord) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._containers.exec_finish(rec), 10)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _now_result(code: int, output: str) -> ProbeResult:
    return ProbeResult(code, output, end_ns=time.time_ns())
