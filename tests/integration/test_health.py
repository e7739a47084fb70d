"""Healthchecks on a real daemon: --health-* flags and image HEALTHCHECKs, State.Health,
``ps`` status and ``--filter health=``, timeouts, stop and daemon restart; through our CLI,
the docker CLI and the docker SDK. Intervals are 1s so each test takes a few seconds."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.clients import Run, runner
from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration

FAST = ("--health-interval", "1s", "--health-timeout", "5s")


@pytest.fixture(params=["dockyard", "docker"])
def run(request: pytest.FixtureRequest, daemon: TestDaemon) -> Run:
    return runner(daemon, request.param)


def _name(prefix: str) -> str:
    return f"{prefix}{time.monotonic_ns() % 10**9}"


def _state(daemon: TestDaemon, ref: str) -> dict[str, Any]:
    status, body = daemon.request("GET", f"/containers/{ref}/json")
    assert status == 200, body
    state: dict[str, Any] = body["State"]
    return state


def _wait_health(daemon: TestDaemon, ref: str, wanted: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        health = _state(daemon, ref).get("Health") or {}
        if health.get("Status") == wanted:
            return health
        time.sleep(0.1)
    raise AssertionError(f"health of {ref} never became {wanted}: {health}")


def _ps_status(run: Run, name: str) -> str:
    out = run("ps", "-a", "--filter", f"name=^{name}$", "--format", "{{.Status}}").stdout
    return out.strip()


def _ps_names(run: Run, *filters: str) -> set[str]:
    args = [arg for f in filters for arg in ("--filter", f)]
    return set(run("ps", "-a", *args, "--format", "{{.Names}}").stdout.split())


def test_healthy_unhealthy_transitions(run: Run, daemon: TestDaemon) -> None:
    name, plain = _name("hc"), _name("plain")
    r = run(
        "run",
        "-d",
        "--name",
        name,
        "--health-cmd",
        "cat /tmp/ready",
        "--health-retries",
        "2",
        *FAST,
        "busybox",
        "sleep",
        "300",
    )
    assert r.returncode == 0, r.stderr
    assert run("run", "-d", "--name", plain, "busybox", "sleep", "300").returncode == 0
    try:
        config = json.loads(run("inspect", name).stdout)[0]["Config"]["Healthcheck"]
        assert config == {
            "Test": ["CMD-SHELL", "cat /tmp/ready"],
            "Interval": 1_000_000_000,
            "Timeout": 5_000_000_000,
            "Retries": 2,
        }
        health = _state(daemon, name)["Health"]
        if health["Status"] == "starting":
            assert "(health: starting)" in _ps_status(run, name)

        health = _wait_health(daemon, name, "unhealthy")
        assert health["FailingStreak"] >= 2
        failed = health["Log"][-1]
        assert failed["ExitCode"] == 1
        assert "No such file or directory" in failed["Output"]
        assert _ps_status(run, name).endswith("(unhealthy)")
        assert name in _ps_names(run, "health=unhealthy")

        assert run("exec", name, "sh", "-c", "echo ready > /tmp/ready").returncode == 0
        health = _wait_health(daemon, name, "healthy")
        assert health["FailingStreak"] == 0
        assert health["Log"][-1]["ExitCode"] == 0 and health["Log"][-1]["Output"] == "ready\n"
        assert 1 <= len(health["Log"]) <= 5
        status = _ps_status(run, name)
        assert status.startswith("Up ") and status.endswith("(healthy)")
        assert name in _ps_names(run, "health=healthy")
        assert name not in _ps_names(run, "health=unhealthy")
        assert plain in _ps_names(run, "health=none") and name not in _ps_names(run, "health=none")
        assert _ps_status(run, plain).startswith("Up ") and "(" not in _ps_status(run, plain)

        assert run("exec", name, "rm", "/tmp/ready").returncode == 0
        _wait_health(daemon, name, "unhealthy")

        bad = run("ps", "--filter", "health=sick")
        assert bad.returncode == 1
        assert "Unrecognised filter value for health: sick" in bad.stderr

        assert run("stop", "-t", "1", name).returncode == 0
        state = _state(daemon, name)
        assert state["Status"] == "exited" and state["Health"]["Status"] == "unhealthy"
        assert _ps_status(run, name).startswith("Exited (")
        # The probes' exec sessions went with them, and so did their exec records: only
        # the test's own two execs are listed.
        info = daemon.request("GET", f"/containers/{name}/json")[1]
        assert not list((daemon.data_root / "containers" / info["Id"] / "exec").glob("*"))
        assert len(info["ExecIDs"]) == 2
    finally:
        run("rm", "-f", name, plain)


def test_timeout_kills_the_probe(daemon: TestDaemon) -> None:
    name = _name("hcslow")
    r = daemon.cli(
        "run",
        "-d",
        "--name",
        name,
        "--health-cmd",
        "echo started; sleep 29",
        "--health-interval",
        "1s",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "300",
    )
    assert r.returncode == 0, r.stderr
    try:
        health = _wait_health(daemon, name, "unhealthy")
        entry = health["Log"][-1]
        assert entry["ExitCode"] == -1
        assert entry["Output"] == "Health check exceeded timeout (300ms): started\n"
        # Killed probes do not pile up: at most the one in flight runs.
        _wait_until(lambda: len(_state(daemon, name)["Health"]["Log"]) >= 3)
        ps = daemon.docker("exec", name, "ps", "-o", "args")
        assert ps.stdout.count("sleep 29") <= 1, ps.stdout
    finally:
        daemon.cli("rm", "-f", name)


def test_cmd_form_exec_failure_and_no_healthcheck(daemon: TestDaemon) -> None:
    broken, none = _name("hcbroken"), _name("hcnone")
    try:
        status, body = daemon.request(
            "POST",
            f"/containers/create?name={broken}",
            {
                "Image": "busybox",
                "Cmd": ["sleep", "300"],
                "Healthcheck": {
                    "Test": ["CMD", "/no/such/probe"],
                    "Interval": 1_000_000_000,
                    "Retries": 1,
                },
            },
        )
        assert status == 201, body
        assert daemon.request("POST", f"/containers/{broken}/start")[0] == 204
        entry = _wait_health(daemon, broken, "unhealthy")["Log"][-1]
        assert entry["ExitCode"] == -1
        assert entry["Output"].startswith("OCI runtime exec failed:")
        assert "/no/such/probe" in entry["Output"]

        r = daemon.docker(
            "run", "-d", "--name", none, "--no-healthcheck", "busybox", "sleep", "300"
        )
        assert r.returncode == 0, r.stderr
        info = json.loads(daemon.cli("inspect", none).stdout)[0]
        assert info["Config"]["Healthcheck"] == {"Test": ["NONE"]}
        assert "Health" not in info["State"]
        conflict = daemon.docker("run", "--no-healthcheck", "--health-cmd", "true", "busybox")
        assert conflict.returncode == 125
        assert "--no-healthcheck conflicts with --health-* options" in conflict.stderr
        ours = daemon.cli("run", "--no-healthcheck", "--health-cmd", "true", "busybox")
        assert ours.returncode == 125
        assert "--no-healthcheck conflicts with --health-* options" in ours.stderr
        bad = daemon.cli("create", "--health-interval", "5", "busybox")
        assert bad.returncode == 125
        assert 'time: missing unit in duration "5"' in bad.stderr
        tiny = daemon.request(
            "POST",
            "/containers/create",
            {"Image": "busybox", "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5}},
        )
        assert tiny == (400, {"message": "Interval in Healthcheck cannot be less than 1ms"})
    finally:
        daemon.cli("rm", "-f", broken, none)


def test_image_healthcheck_from_build(daemon: TestDaemon, tmp_path: Path) -> None:
    tag = _name("hcimage") + ":1"
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\n"
        "HEALTHCHECK --interval=1s --timeout=5s --retries=1 CMD cat /tmp/ok\n"
        'CMD ["sleep", "300"]\n'
    )
    r = daemon.cli("build", "-q", "-t", tag, str(tmp_path))
    assert r.returncode == 0, r.stderr
    first, second, third = _name("hci"), _name("hci"), _name("hci")
    try:
        assert daemon.docker("run", "-d", "--name", first, tag).returncode == 0
        info = json.loads(daemon.docker("inspect", first).stdout)[0]
        assert info["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "cat /tmp/ok"]
        _wait_health(daemon, first, "unhealthy")
        daemon.docker("exec", first, "touch", "/tmp/ok")
        _wait_health(daemon, first, "healthy")

        # Flags override single fields; the rest comes from the image.
        r = daemon.cli(
            "run", "-d", "--name", second, "--health-retries", "7", "--health-interval", "2s", tag
        )
        assert r.returncode == 0, r.stderr
        check = json.loads(daemon.cli("inspect", second).stdout)[0]["Config"]["Healthcheck"]
        assert check["Test"] == ["CMD-SHELL", "cat /tmp/ok"]
        assert (check["Retries"], check["Interval"], check["Timeout"]) == (7, 2 * 10**9, 5 * 10**9)

        assert daemon.docker("run", "-d", "--name", third, "--no-healthcheck", tag).returncode == 0
        assert "Health" not in _state(daemon, third)
        names = set(
            daemon.docker("ps", "--filter", "health=none", "--format", "{{.Names}}").stdout.split()
        )
        assert third in names and first not in names
    finally:
        daemon.cli("rm", "-f", first, second, third)
        daemon.cli("rmi", tag)


def test_sdk_sees_health(daemon: TestDaemon) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=daemon.host, version="1.44")
    name = _name("hcsdk")
    try:
        container = client.containers.run(
            "busybox",
            ["sleep", "300"],
            name=name,
            detach=True,
            healthcheck={
                "test": ["CMD", "true"],
                "interval": 1_000_000_000,
                "timeout": 2_000_000_000,
                "retries": 1,
            },
        )
        deadline = time.monotonic() + 15
        while container.health != "healthy" and time.monotonic() < deadline:
            time.sleep(0.2)
            container.reload()
        assert container.health == "healthy"
        assert [c.name for c in client.containers.list(filters={"health": "healthy"})].count(
            name
        ) == 1
        container.remove(force=True)
    finally:
        daemon.cli("rm", "-f", name)
        client.close()


def test_checks_restart_with_the_container_and_the_daemon(fresh_daemon: TestDaemon) -> None:
    d = fresh_daemon
    r = d.cli(
        "run", "-d", "--name", "hcr", "--health-cmd", "true", *FAST, "busybox", "sleep", "300"
    )
    assert r.returncode == 0, r.stderr
    first = _wait_health(d, "hcr", "healthy")
    # Stopped: no probes; started again: starting, the log kept.
    assert d.cli("stop", "-t", "0", "hcr").returncode == 0
    stopped = _state(d, "hcr")["Health"]
    time.sleep(1.5)
    assert _state(d, "hcr")["Health"] == stopped
    assert stopped["Status"] == "unhealthy" and stopped["Log"][: len(first["Log"])] == first["Log"]
    assert d.cli("start", "hcr").returncode == 0
    again = _state(d, "hcr")["Health"]
    assert again["Status"] in ("starting", "healthy") and again["FailingStreak"] == 0
    _wait_health(d, "hcr", "healthy")

    # The daemon restarts: the running container is probed again.
    before = _state(d, "hcr")["Health"]["Log"][-1]["Start"]
    d.stop()
    d.start()
    _wait_until(lambda: _state(d, "hcr")["Health"]["Log"][-1]["Start"] > before)
    assert _wait_health(d, "hcr", "healthy")["Log"][-1]["ExitCode"] == 0
    assert d.docker("ps", "--format", "{{.Status}}").stdout.strip().endswith("(healthy)")


def _wait_until(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached")
