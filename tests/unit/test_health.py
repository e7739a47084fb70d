"""Healthchecks without containers: the state machine, its timing on a fake clock, the
config it reads, and the ``--health-*`` flags that write it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from dockyard import errors
from dockyard.cli.createopts import CreateOptions, build_create_body, parse_duration
from dockyard.containers.config import merge_config
from dockyard.containers.health import (
    HealthConfig,
    HealthMonitor,
    ProbeResult,
    apply_result,
    go_duration,
    health_status,
    next_delay,
    probe_config,
    reset_health,
    validate_healthcheck,
)
from dockyard.containers.record import ContainerRecord, ContainerState

pytestmark = pytest.mark.unit

S = 1_000_000_000
T0 = 1_800_000_000 * S  # a fixed "now" for the fake clock


def _result(code: int, start_s: float = 0.0, output: str = "") -> ProbeResult:
    start = T0 + int(start_s * S)
    return ProbeResult(code, output, start_ns=start, end_ns=start + S // 10)


# --------------------------------------------------------------------------- the state


def test_success_makes_healthy_and_resets_the_streak() -> None:
    config = HealthConfig(argv=("true",), retries=3)
    health = {"Status": "unhealthy", "FailingStreak": 4, "Log": []}
    after = apply_result(health, _result(0, 40), config, T0)
    assert after["Status"] == "healthy" and after["FailingStreak"] == 0
    assert after["Log"][-1]["ExitCode"] == 0


@pytest.mark.parametrize(
    ("codes", "retries", "statuses"),
    [
        ([1, 1, 1], 3, ["starting", "starting", "unhealthy"]),
        ([1], 1, ["unhealthy"]),
        ([0, 1, 1, 1], 3, ["healthy", "healthy", "healthy", "unhealthy"]),
        ([1, 1, 0, 1], 2, ["starting", "unhealthy", "healthy", "healthy"]),
        ([-1, 2, 137], 3, ["starting", "starting", "unhealthy"]),  # any non-zero fails
    ],
)
def test_failures_count_up_to_retries(codes: list[int], retries: int, statuses: list[str]) -> None:
    config = HealthConfig(argv=("x",), retries=retries)
    health = reset_health(None)
    seen = []
    for i, code in enumerate(codes):
        health = apply_result(health, _result(code, 30.0 * (i + 1)), config, T0)
        seen.append(health["Status"])
    assert seen == statuses


def test_start_period_forgives_failures_only_while_starting() -> None:
    config = HealthConfig(argv=("x",), retries=1, start_period=10.0)
    health = apply_result(reset_health(None), _result(1, 5), config, T0)
    assert health["Status"] == "starting" and health["FailingStreak"] == 0
    health = apply_result(health, _result(0, 6), config, T0)
    assert health["Status"] == "healthy"
    # Healthy once: a failure inside the start period counts now.
    health = apply_result(health, _result(1, 7), config, T0)
    assert health["Status"] == "unhealthy" and health["FailingStreak"] == 1
    # Starting, but past the start period: it counts.
    late = apply_result(reset_health(None), _result(1, 11), config, T0)
    assert late["Status"] == "unhealthy"


def test_log_keeps_the_last_five_results() -> None:
    config = HealthConfig(argv=("x",))
    health = reset_health(None)
    for i in range(8):
        health = apply_result(health, _result(0, i, output=f"run{i}"), config, T0)
    assert [e["Output"] for e in health["Log"]] == [f"run{i}" for i in range(3, 8)]
    entry = health["Log"][0]
    assert list(entry) == ["Start", "End", "ExitCode", "Output"]
    assert entry["Start"].endswith("Z") and entry["Start"] < entry["End"]


def test_reset_keeps_the_log_and_status_helpers() -> None:
    health = {"Status": "unhealthy", "FailingStreak": 3, "Log": [{"ExitCode": 1}]}
    assert reset_health(health) == {
        "Status": "starting",
        "FailingStreak": 0,
        "Log": [{"ExitCode": 1}],
    }
    assert reset_health(None) == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert health_status(None) == "none"
    assert health_status({"Status": ""}) == "unhealthy"
    assert health_status({"Status": "healthy"}) == "healthy"


@pytest.mark.parametrize(
    ("config", "status", "since", "delay"),
    [
        (HealthConfig(argv=("x",)), "starting", 0.0, 30.0),
        (HealthConfig(argv=("x",), interval=1.0), "healthy", 100.0, 1.0),
        (HealthConfig(argv=("x",), interval=60, start_period=20), "starting", 0.0, 5.0),
        (
            HealthConfig(argv=("x",), interval=60, start_period=20, start_interval=2),
            "starting",
            3.0,
            2.0,
        ),
        (HealthConfig(argv=("x",), interval=60, start_period=20), "healthy", 3.0, 60.0),
        (HealthConfig(argv=("x",), interval=60, start_period=20), "starting", 20.0, 60.0),
        # the start interval is cut at the end of the start period
        (HealthConfig(argv=("x",), start_period=20, start_interval=10), "starting", 15.0, 5.0),
        (HealthConfig(argv=("x",), interval=10, start_period=20), "healthy", 15.0, 10.0),
    ],
)
def test_next_delay(config: HealthConfig, status: str, since: float, delay: float) -> None:
    assert next_delay(config, status, since) == pytest.approx(delay)


# --------------------------------------------------------------------------- the config


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, None),
        ({"Healthcheck": {"Test": ["NONE"]}}, None),
        ({"Healthcheck": {"Test": []}}, None),
        ({"Healthcheck": {"Interval": S}}, None),
        ({"Healthcheck": {"Test": ["BOGUS", "x"]}}, None),
        ({"Healthcheck": {"Test": ["CMD"]}}, None),
        ({"Healthcheck": {"Test": ["CMD", "cat", "/x"]}}, HealthConfig(argv=("cat", "/x"))),
        (
            {"Healthcheck": {"Test": ["CMD-SHELL", "test -e /x || exit 1"]}},
            HealthConfig(argv=("/bin/sh", "-c", "test -e /x || exit 1")),
        ),
        (
            {"Shell": ["/bin/ash", "-e", "-c"], "Healthcheck": {"Test": ["CMD-SHELL", "true"]}},
            HealthConfig(argv=("/bin/ash", "-e", "-c", "true")),
        ),
        (
            {
                "Healthcheck": {
                    "Test": ["CMD", "true"],
                    "Interval": S,
                    "Timeout": S // 2,
                    "StartPeriod": 3 * S,
                    "StartInterval": 2 * S,
                    "Retries": 0,
                }
            },
            HealthConfig(
                argv=("true",), interval=1.0, timeout=0.5, start_period=3.0, start_interval=2.0
            ),
        ),
    ],
)
def test_probe_config(config: dict[str, Any], expected: HealthConfig | None) -> None:
    assert probe_config(config) == expected


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"Interval": 10}, "Interval in Healthcheck cannot be less than 1ms"),
        ({"Timeout": 999_999}, "Timeout in Healthcheck cannot be less than 1ms"),
        ({"StartPeriod": 5}, "StartPeriod in Healthcheck cannot be less than 1ms"),
        ({"StartInterval": 5}, "StartInterval in Healthcheck cannot be less than 1ms"),
        ({"Retries": -1}, "Retries in Healthcheck cannot be negative"),
    ],
)
def test_validate_healthcheck(check: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        validate_healthcheck(check)
    validate_healthcheck({"Test": ["CMD", "true"], "Interval": 1_000_000, "Retries": 0})


def test_merge_takes_unset_fields_from_the_image() -> None:
    image = {
        "config": {
            "Cmd": ["sh"],
            "Healthcheck": {"Test": ["CMD", "check"], "Interval": 5 * S, "Retries": 4},
        }
    }
    merged = merge_config({"Healthcheck": {"Interval": S}}, image, "c" * 64)
    assert merged["Healthcheck"] == {"Interval": S, "Test": ["CMD", "check"], "Retries": 4}
    assert merge_config({}, image, "c" * 64)["Healthcheck"] == image["config"]["Healthcheck"]
    disabled = merge_config({"Healthcheck": {"Test": ["NONE"]}}, image, "c" * 64)
    assert probe_config(disabled) is None
    with pytest.raises(errors.InvalidArgument):
        merge_config({"Healthcheck": {"Interval": 5}}, image, "c" * 64)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1, "1s"),
        (1.5, "1.5s"),
        (0.5, "500ms"),
        (0.0015, "1.5ms"),
        (2e-6, "2µs"),
        (90, "1m30s"),
        (3600, "1h0m0s"),
        (3725.25, "1h2m5.25s"),
    ],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


# --------------------------------------------------------------------------- the monitor


class FakeTime:
    """A clock that moves only when the monitor sleeps or a probe runs."""

    def __init__(self) -> None:
        self.now = T0
        self.sleeps: list[float] = []

    def clock(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += int(seconds * S)
        await asyncio.sleep(0)


class ScriptedProber:
    """Answers probes from a script of (exit code, seconds it takes); then blocks."""

    def __init__(self, time: FakeTime, script: list[tuple[int, float]]) -> None:
        self.time = time
        self.script = list(script)
        self.calls: list[tuple[list[str], float, int]] = []
        self.exhausted = asyncio.Event()

    async def probe(self, cid: str, argv: list[str], timeout: float) -> ProbeResult:
        if not self.script:
            self.exhausted.set()
            await asyncio.Event().wait()  # until the monitor is stopped
        self.calls.append((argv, timeout, self.time.now))
        code, seconds = self.script.pop(0)
        self.time.now += int(seconds * S)
        return ProbeResult(code, f"exit {code}", end_ns=self.time.now)


def _record(check: dict[str, Any], time: FakeTime) -> ContainerRecord:
    return ContainerRecord(
        id="f" * 64,
        name="hc",
        created=time.now,
        image_id="sha256:" + "0" * 64,
        config={"Cmd": ["sleep", "1000"], "Healthcheck": check},
        host_config={},
        state=ContainerState(status="running", pid=42, started_at=time.now),
    )


def _run(coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 5))


def test_monitor_probes_every_interval_and_turns_unhealthy() -> None:
    async def scenario() -> None:
        time = FakeTime()
        prober = ScriptedProber(time, [(0, 0.2), (1, 0.1), (1, 0.1), (0, 0.1)])
        monitor = HealthMonitor(prober, clock=time.clock, sleep=time.sleep)
        record = _record(
            {"Test": ["CMD-SHELL", "check"], "Interval": 2 * S, "Timeout": S, "Retries": 2}, time
        )
        monitor.start(record)
        assert record.health == {"Status": "starting", "FailingStreak": 0, "Log": []}
        await prober.exhausted.wait()
        # Probes start one interval after the previous one ended.
        assert [round((at - T0) / S, 3) for _, _, at in prober.calls] == [2.0, 4.2, 6.3, 8.4]
        assert all(call[:2] == (["/bin/sh", "-c", "check"], 1.0) for call in prober.calls)
        assert record.health is not None
        assert record.health["Status"] == "healthy"
        assert [e["ExitCode"] for e in record.health["Log"]] == [0, 1, 1, 0]
        assert record.status_text(T0 / S + 9) == "Up 9 seconds (healthy)"
        monitor.stop(record.id)
        assert record.health["Status"] == "unhealthy" and not monitor.running(record.id)
        await asyncio.sleep(0)

    _run(scenario)


def test_monitor_statuses_on_the_way() -> None:
    async def scenario() -> None:
        time = FakeTime()
        prober = ScriptedProber(time, [(1, 0), (1, 0)])
        monitor = HealthMonitor(prober, clock=time.clock, sleep=time.sleep)
        record = _record({"Test": ["CMD", "false"], "Interval": S, "Retries": 2}, time)
        monitor.start(record)
        assert record.status_text(time.now / S) == "Up Less than a second (health: starting)"
        await prober.exhausted.wait()
        assert record.health is not None
        assert record.health["Status"] == "unhealthy" and record.health["FailingStreak"] == 2
        assert record.state_json()["Health"] is record.health
        # A restart resets the status and the streak, and keeps the log.
        prober.script = [(0, 0)]
        prober.exhausted.clear()
        monitor.start(record)
        assert record.health["Status"] == "starting" and len(record.health["Log"]) == 2
        await prober.exhausted.wait()
        assert record.health["Status"] == "healthy" and len(record.health["Log"]) == 3
        await monitor.close()

    _run(scenario)


def test_monitor_waits_the_start_interval_and_forgives_early_failures() -> None:
    async def scenario() -> None:
        time = FakeTime()
        prober = ScriptedProber(time, [(1, 0), (1, 0), (1, 0), (1, 0)])
        monitor = HealthMonitor(prober, clock=time.clock, sleep=time.sleep)
        check = {
            "Test": ["CMD", "false"],
            "Interval": 30 * S,
            "StartPeriod": 10 * S,
            "StartInterval": 3 * S,
            "Retries": 1,
        }
        record = _record(check, time)
        monitor.start(record)
        await prober.exhausted.wait()
        # 3s start intervals while starting (3, 6, 9), then the start period's end (10).
        assert [round((at - T0) / S) for _, _, at in prober.calls] == [3, 6, 9, 10]
        assert record.health is not None
        assert [record.health["FailingStreak"], record.health["Status"]] == [1, "unhealthy"]
        await monitor.close()

    _run(scenario)


def test_monitor_skips_probes_while_paused_and_survives_a_broken_prober() -> None:
    async def scenario() -> None:
        time = FakeTime()

        class Broken(ScriptedProber):
            async def probe(self, cid: str, argv: list[str], timeout: float) -> ProbeResult:
                if len(self.calls) == 0:
                    self.calls.append((argv, timeout, self.time.now))
                    raise errors.Conflict("container is not running")
                return await super().probe(cid, argv, timeout)

        prober = Broken(time, [(0, 0)])
        monitor = HealthMonitor(prober, clock=time.clock, sleep=time.sleep)
        record = _record({"Test": ["CMD", "true"], "Interval": S}, time)
        record.state.status = "paused"
        monitor.start(record)
        for _ in range(5):
            await asyncio.sleep(0)
        assert prober.calls == [] and len(time.sleeps) >= 2
        record.state.status = "running"
        await prober.exhausted.wait()
        assert record.health is not None
        log = record.health["Log"]
        assert [e["ExitCode"] for e in log] == [-1, 0]
        assert log[0]["Output"] == "container is not running"
        await monitor.close()

    _run(scenario)


def test_no_probe_no_monitor() -> None:
    async def scenario() -> None:
        time = FakeTime()
        monitor = HealthMonitor(ScriptedProber(time, []), clock=time.clock, sleep=time.sleep)
        record = _record({"Test": ["NONE"]}, time)
        monitor.start(record)
        assert record.health is None and not monitor.running(record.id)
        monitor.stop(record.id)
        assert record.health is None
        assert record.status_text(time.now / S + 3) == "Up 3 seconds"
        assert "Health" not in record.state_json()

    _run(scenario)


# --------------------------------------------------------------------------- the CLI flags


def _body(**options: Any) -> dict[str, Any]:
    return build_create_body(CreateOptions("busybox", **options))


def test_health_flags_make_the_cli_healthcheck() -> None:
    body = _body(
        health_cmd="test -e /ok",
        health_interval="1s",
        health_timeout="500ms",
        health_start_period="1m30s",
        health_start_interval="2s",
        health_retries=4,
    )
    assert body["Healthcheck"] == {
        "Test": ["CMD-SHELL", "test -e /ok"],
        "Interval": S,
        "Timeout": S // 2,
        "StartPeriod": 90 * S,
        "StartInterval": 2 * S,
        "Retries": 4,
    }
    keys = list(body)
    assert keys.index("Cmd") + 1 == keys.index("Healthcheck") == keys.index("Image") - 1
    assert _body(health_interval="2s")["Healthcheck"] == {"Interval": 2 * S}
    assert "Healthcheck" not in _body()
    assert _body(no_healthcheck=True)["Healthcheck"] == {"Test": ["NONE"]}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"no_healthcheck": True, "health_cmd": "true"},
            "--no-healthcheck conflicts with --health-* options",
        ),
        ({"health_interval": "-1s"}, "--health-interval cannot be negative"),
        ({"health_timeout": "-1s"}, "--health-timeout cannot be negative"),
        ({"health_retries": -2}, "--health-retries cannot be negative"),
        ({"health_start_period": "-1s"}, "--health-start-period cannot be negative"),
        (
            {"health_interval": "5"},
            'invalid argument "5" for "--health-interval" flag: time: missing unit in duration "5"',
        ),
        (
            {"health_timeout": "1x"},
            'invalid argument "1x" for "--health-timeout" flag: '
            'time: unknown unit "x" in duration "1x"',
        ),
    ],
)
def test_health_flag_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        _body(**options)
    assert info.value.message == message


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("1s", S),
        ("1.5s", 3 * S // 2),
        ("100ms", S // 10),
        ("1h2m3s", 3723 * S),
        ("-2m", -120 * S),
        ("+3us", 3000),
        ("2µs", 2000),
        (".5s", S // 2),
        ("1ns", 1),
    ],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("s", 'time: invalid duration "s"'),
        ("1", 'time: missing unit in duration "1"'),
        ("1s2", 'time: missing unit in duration "1s2"'),
        ("3d", 'time: unknown unit "d" in duration "3d"'),
        (".s", 'time: invalid duration ".s"'),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        parse_duration(text)
    assert info.value.message == message


def test_probe_output_is_cut_at_4096_bytes() -> None:
    from dockyard.containers.health import _LimitedBuffer

    buf = _LimitedBuffer()
    buf.write(b"a" * 4000)
    buf.write(b"b" * 200)
    buf.write(b"c")
    assert buf.text() == "a" * 4000 + "b" * 96 + "..."
    small = _LimitedBuffer()
    small.write("héllo\n".encode())
    small.write(b"\xff")
    assert small.text() == "héllo\n\ufffd"
