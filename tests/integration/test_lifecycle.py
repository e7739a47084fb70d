"""Detached containers: ps, logs, exec, inspect, stop/start/restart/kill, wait, attach, rm, prune."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from tests.integration.clients import runner
from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration


@pytest.fixture(params=["dockyard", "docker"])
def run(request: pytest.FixtureRequest, daemon: TestDaemon):  # type: ignore[no-untyped-def]
    return runner(daemon, request.param)


def _name(prefix: str) -> str:
    return f"{prefix}{time.monotonic_ns() % 10**9}"


def _wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_ps_logs_exec_stop_rm(run, daemon: TestDaemon) -> None:  # type: ignore[no-untyped-def]
    name = _name("life")
    r = run(
        "run",
        "-d",
        "--name",
        name,
        "-l",
        "team=dock",
        "busybox",
        "sh",
        "-c",
        "echo line1; echo err1 >&2; sleep 0.2; echo line2; exec sleep 300",
    )
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        ps = run("ps")
        assert ps.returncode == 0
        header = ps.stdout.splitlines()[0]
        assert re.match(
            r"CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES", header
        )
        row = next(line for line in ps.stdout.splitlines() if line.endswith(name))
        assert row.startswith(cid[:12]) and "busybox" in row and "Up " in row
        assert run("ps", "-q", "--filter", f"name={name}").stdout.split() == [cid[:12]]
        assert run("ps", "-q", "--no-trunc", "--filter", "label=team=dock").stdout.split() == [cid]
        assert run(
            "ps", "--format", "{{.Names}} {{.Status}}", "--filter", f"id={cid[:10]}"
        ).stdout.startswith(f"{name} Up")

        _wait_for(lambda: "line2" in run("logs", name).stdout)
        logs = run("logs", name)
        assert logs.stdout == "line1\nline2\n"
        assert logs.stderr == "err1\n"
        assert run("logs", "--tail", "1", name).stdout == "line2\n"
        stamped = run("logs", "-t", name).stdout.splitlines()[0]
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line1$", stamped)

        assert (
            run("inspect", "--format", "{{.State.Status}} {{.Name}}", name).stdout
            == f"running /{name}\n"
        )
        info = json.loads(run("inspect", name).stdout)
        assert info[0]["Id"] == cid and info[0]["Config"]["Labels"] == {"team": "dock"}

        ex = run("exec", name, "sh", "-c", "echo from-exec; echo exec-err >&2; exit 3")
        assert ex.returncode == 3
        assert ex.stdout == "from-exec\n" and ex.stderr == "exec-err\n"
        assert (
            run("exec", "-e", "X=1", "-w", "/tmp", name, "sh", "-c", "echo $X $(pwd)").stdout
            == "1 /tmp\n"
        )
        assert run("exec", "-i", name, "cat", input=b"piped\n").stdout == "piped\n"

        stop = run("stop", "-t", "1", name)
        assert stop.returncode == 0 and stop.stdout.strip() == name
        status = daemon.request("GET", f"/containers/{cid}/json")[1]["State"]
        assert status["Status"] == "exited" and status["ExitCode"] == 137
        assert "Exited (137)" in run("ps", "-a", "--filter", f"name={name}").stdout
        assert run("ps", "-q", "--filter", f"name={name}").stdout == ""
        assert run("stop", name).returncode == 0  # 304: already stopped, still success

        assert run("start", name).returncode == 0
        assert daemon.request("GET", f"/containers/{cid}/json")[1]["State"]["Running"]
        assert run("restart", "-t", "1", name).returncode == 0
        assert daemon.request("GET", f"/containers/{cid}/json")[1]["State"]["Running"]

        rm = run("rm", name)
        assert rm.returncode == 1 and "You cannot remove a running container" in rm.stderr
        assert run("kill", name).returncode == 0
        _wait_for(
            lambda: not daemon.request("GET", f"/containers/{cid}/json")[1]["State"]["Running"]
        )
        assert run("rm", name).returncode == 0
        assert daemon.request("GET", f"/containers/{cid}/json")[0] == 404
    finally:
        daemon.request("DELETE", f"/containers/{cid}?force=1")


def test_wait_prints_exit_code(run) -> None:  # type: ignore[no-untyped-def]
    cid = run("run", "-d", "busybox", "sh", "-c", "sleep 0.5; exit 5").stdout.strip()
    try:
        w = run("wait", cid)
        assert w.returncode == 0 and w.stdout.strip() == "5"
    finally:
        run("rm", "-f", cid)


def test_create_then_start(run, daemon: TestDaemon) -> None:  # type: ignore[no-untyped-def]
    name = _name("cs")
    r = run("create", "--name", name, "busybox", "sh", "-c", "echo created-then-started")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        assert daemon.request("GET", f"/containers/{cid}/json")[1]["State"]["Status"] == "created"
        assert run("start", name).stdout.strip() == name
        assert run("wait", name).stdout.strip() == "0"
        assert run("logs", name).stdout == "created-then-started\n"
    finally:
        run("rm", "-f", cid)


def test_attach_follows_output(run, daemon: TestDaemon) -> None:  # type: ignore[no-untyped-def]
    cid = run(
        "run", "-d", "busybox", "sh", "-c", "sleep 1; echo attached-out; sleep 0.5; exit 4"
    ).stdout.strip()
    try:
        a = run("attach", "--no-stdin", cid)
        assert "attached-out" in a.stdout
        assert a.returncode == 4
    finally:
        run("rm", "-f", cid)


def test_logs_follow_ends_with_container(run) -> None:  # type: ignore[no-untyped-def]
    cid = run(
        "run", "-d", "busybox", "sh", "-c", "for i in 1 2 3; do echo tick$i; sleep 0.3; done"
    ).stdout.strip()
    try:
        f = run("logs", "-f", cid, timeout=20)
        assert f.stdout == "tick1\ntick2\ntick3\n"
    finally:
        run("rm", "-f", cid)


def test_container_prune(run, daemon: TestDaemon) -> None:  # type: ignore[no-untyped-def]
    stopped = run("run", "-d", "busybox", "true").stdout.strip()
    running = run("run", "-d", "busybox", "sleep", "300").stdout.strip()
    try:
        run("wait", stopped)
        p = run("container", "prune", "-f")
        assert p.returncode == 0, p.stderr
        assert stopped in p.stdout
        assert daemon.request("GET", f"/containers/{stopped}/json")[0] == 404
        assert daemon.request("GET", f"/containers/{running}/json")[0] == 200
    finally:
        run("rm", "-f", running)
        daemon.request("DELETE", f"/containers/{stopped}?force=1")


def test_exec_tty(daemon: TestDaemon) -> None:
    """``docker exec -t`` through a pseudo-terminal: raw bytes with CRLF."""
    cid = daemon.docker("run", "-d", "busybox", "sleep", "300").stdout.strip()
    try:
        r = daemon.docker("exec", "-t", cid, "echo", "tty-exec")
        assert r.stdout == "tty-exec\r\n"
        r2 = daemon.cli("exec", "-t", cid, "echo", "tty-exec")
        assert r2.stdout == "tty-exec\r\n"
    finally:
        daemon.docker("rm", "-f", cid)


def test_interactive_tty_session(daemon: TestDaemon) -> None:
    """``docker run -it`` on a real pty: prompt, command, exit code."""
    import os
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(
            "/usr/local/bin/docker", ["docker", "run", "-it", "--rm", "busybox", "sh"], daemon.env
        )
    out = b""
    try:
        deadline = time.monotonic() + 20
        sent = False
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if not sent and b"# " in out:
                os.write(fd, b"echo hi-$((40+2)); exit 3\r")
                sent = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert b"hi-42" in out
    assert os.waitstatus_to_exitcode(status) == 3


def test_sdk_round_trip(daemon: TestDaemon) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=daemon.host)
    c = client.containers.create("busybox", ["sh", "-c", "echo sdk-out; exit 2"], name=_name("sdk"))
    try:
        c.start()
        assert c.wait(timeout=30)["StatusCode"] == 2
        assert c.logs() == b"sdk-out\n"
        c.reload()
        assert c.status == "exited"
    finally:
        c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(c.id)
    assert subprocess.run(["true"]).returncode == 0
