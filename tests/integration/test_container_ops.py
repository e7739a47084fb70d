"""pause/unpause, rename, top, diff and stats: our CLI, the docker CLI and the raw API."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.clients import runner
from tests.integration.daemon import DOCKYARD, TestDaemon, _UnixHTTPConnection

pytestmark = pytest.mark.integration

LOOP = "trap 'exit 0' TERM; while true; do sleep 0.2; done"


@pytest.fixture(params=["dockyard", "docker"])
def run(request: pytest.FixtureRequest, daemon: TestDaemon):  # type: ignore[no-untyped-def]
    return runner(daemon, request.param)


def _name(prefix: str) -> str:
    return f"{prefix}{time.monotonic_ns() % 10**9}"


def _wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def _state(d: TestDaemon, ref: str) -> dict[str, Any]:
    status, body = d.request("GET", f"/containers/{ref}/json")
    assert status == 200, body
    return dict(body["State"])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _frozen(d: TestDaemon, cid: str) -> bool:
    runc = subprocess.run(
        ["runc", "--root", str(d.exec_root / "runc"), "state", cid],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return runc.returncode == 0 and json.loads(runc.stdout)["status"] == "paused"


@pytest.fixture
def container(daemon: TestDaemon) -> Iterator[tuple[str, str]]:
    """A running busybox that exits 0 on SIGTERM: (name, id); removed afterwards."""
    name = _name("ops")
    r = daemon.cli("run", "-d", "--name", name, "busybox", "sh", "-c", LOOP)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        yield name, cid
    finally:
        daemon.request("DELETE", f"/containers/{cid}?force=1")


# --------------------------------------------------------------------------- pause


def test_pause_unpause(run, daemon: TestDaemon, container: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    name, cid = container
    r = run("pause", name)
    assert r.returncode == 0 and r.stdout == f"{name}\n", r.stderr
    state = _state(daemon, cid)
    assert state["Status"] == "paused" and state["Paused"] is True and state["Running"] is True
    assert _frozen(daemon, cid)
    row = next(line for line in run("ps").stdout.splitlines() if line.endswith(name))
    assert re.search(r"Up .* \(Paused\)", row), row
    assert run("ps", "-q", "--filter", "status=paused").stdout.split().count(cid[:12]) == 1

    again = run("pause", name)
    assert again.returncode == 1
    assert again.stderr == f"Error response from daemon: Container {cid} is already paused\n"
    assert daemon.request("POST", f"/containers/{name}/pause")[0] == 409

    ex = run("exec", name, "true")
    assert ex.returncode != 0
    assert f"Container {name} is paused, unpause the container before exec" in ex.stderr
    status, body = daemon.request("POST", f"/containers/{name}/exec", {"Cmd": ["true"]})
    assert status == 409 and "is paused, unpause the container before exec" in body["message"]
    status, body = daemon.request("POST", f"/containers/{name}/start")
    assert (
        status == 409 and body["message"] == "cannot start a paused container, try unpause instead"
    )

    r = run("unpause", name)
    assert r.returncode == 0 and r.stdout == f"{name}\n", r.stderr
    assert _state(daemon, cid)["Status"] == "running" and not _frozen(daemon, cid)
    status, body = daemon.request("POST", f"/containers/{name}/unpause")
    assert status == 500 and body["message"] == f"Container {cid} is not paused"
    assert run("exec", name, "echo", "thawed").stdout == "thawed\n"


def test_pause_errors(daemon: TestDaemon) -> None:
    name = _name("opscreated")
    assert daemon.cli("create", "--name", name, "busybox", "true").returncode == 0
    try:
        cid = daemon.request("GET", f"/containers/{name}/json")[1]["Id"]
        status, body = daemon.request("POST", f"/containers/{name}/pause")
        assert status == 409 and body["message"] == f"Container {cid} is not running"
        status, body = daemon.request("POST", f"/containers/{name}/unpause")
        assert status == 500 and body["message"] == f"Container {cid} is not paused"
        for verb in ("pause", "unpause"):
            status, body = daemon.request("POST", f"/containers/nosuchctr/{verb}")
            assert status == 404 and body["message"] == "No such container: nosuchctr"
        both = daemon.docker("pause", name, "nosuchctr")
        assert both.returncode == 1 and both.stdout == ""
        assert "No such container: nosuchctr" in both.stderr and "is not running" in both.stderr
    finally:
        daemon.request("DELETE", f"/containers/{name}?force=1")


def test_stop_kill_rm_of_paused(run, daemon: TestDaemon) -> None:  # type: ignore[no-untyped-def]
    names = [_name("opsstop"), _name("opskill"), _name("opsrm")]
    ids = []
    try:
        for name in names:
            r = daemon.cli("run", "-d", "--name", name, "busybox", "sh", "-c", LOOP)
            assert r.returncode == 0, r.stderr
            ids.append(r.stdout.strip())
            assert run("pause", name).returncode == 0
        stop_name, kill_name, rm_name = names

        started = time.monotonic()
        assert run("stop", "-t", "20", stop_name).returncode == 0
        assert time.monotonic() - started < 15  # SIGTERM was delivered: no 20 s timeout
        state = _state(daemon, stop_name)
        assert state["Status"] == "exited" and state["ExitCode"] == 0 and not state["Paused"]

        assert run("kill", kill_name).returncode == 0
        _wait_for(lambda: _state(daemon, kill_name)["Status"] == "exited")
        assert _state(daemon, kill_name)["ExitCode"] == 137

        pid = _state(daemon, rm_name)["Pid"]
        rm = run("rm", rm_name)
        assert rm.returncode == 1
        assert (
            f"You cannot remove a paused container {ids[2]}. Unpause and then stop the container "
            "before attempting removal or force remove" in rm.stderr
        )
        assert run("rm", "-f", rm_name).returncode == 0
        assert daemon.request("GET", f"/containers/{rm_name}/json")[0] == 404
        _wait_for(lambda: not _alive(pid))
    finally:
        for cid in ids:
            daemon.request("DELETE", f"/containers/{cid}?force=1")


def test_pause_survives_daemon_kill9(fresh_daemon: TestDaemon) -> None:
    d = fresh_daemon
    r = d.cli("run", "-d", "--name", "frozen", "busybox", "sh", "-c", LOOP)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    pid = _state(d, cid)["Pid"]
    assert d.cli("pause", "frozen").returncode == 0
    d.kill9()
    assert _alive(pid) and _frozen(d, cid)
    d.start()
    state = _state(d, cid)
    assert state["Status"] == "paused" and state["Paused"] and state["Pid"] == pid
    assert "(Paused)" in d.docker("ps", "--filter", "name=frozen").stdout
    assert d.docker("unpause", "frozen").returncode == 0
    assert d.docker("exec", "frozen", "echo", "alive").stdout == "alive\n"

    # Paused behind the daemon's back: start-up reconciliation reads runc's state.
    d.kill9()
    subprocess.run(
        ["runc", "--root", str(d.exec_root / "runc"), "pause", cid], check=True, timeout=30
    )
    d.start()
    assert _state(d, cid)["Status"] == "paused"
    assert d.cli("rm", "-f", "frozen").returncode == 0
    _wait_for(lambda: not _alive(pid))


# --------------------------------------------------------------------------- rename


def test_rename(run, daemon: TestDaemon, container: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    name, cid = container
    new = _name("renamed")
    r = run("rename", name, new)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    assert daemon.request("GET", f"/containers/{cid}/json")[1]["Name"] == f"/{new}"
    assert run("ps", "--format", "{{.Names}}", "--filter", f"id={cid}").stdout == f"{new}\n"
    assert daemon.request("GET", f"/containers/{name}/json")[0] == 404

    other = _name("other")
    assert daemon.cli("create", "--name", other, "busybox", "true").returncode == 0
    try:
        taken = run("rename", new, other)
        assert taken.returncode == 1
        assert taken.stderr.endswith(f"Error: failed to rename container named {new}\n")
        assert f'The container name "/{other}" is already in use by container' in taken.stderr
        status, body = daemon.request("POST", f"/containers/{new}/rename?name={other}")
        assert status == 409 and body["message"].startswith(
            f'Error when allocating new name: Conflict. The container name "/{other}"'
        )
    finally:
        daemon.request("DELETE", f"/containers/{other}?force=1")

    status, body = daemon.request("POST", f"/containers/{new}/rename?name=")
    assert status == 400 and body["message"] == "Neither old nor new names may be empty"
    status, body = daemon.request("POST", f"/containers/{new}/rename?name={new}")
    assert status == 400
    assert body["message"] == "Renaming a container with the same name as its current name"
    status, body = daemon.request("POST", f"/containers/{new}/rename?name=bad%20name")
    assert status == 400 and body["message"] == (
        "Error when allocating new name: Invalid container name (/bad name), only "
        "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    )
    status, body = daemon.request("POST", "/containers/nosuchctr/rename?name=abc")
    assert status == 404
    empty = run("rename", new, " ")
    assert empty.returncode == 1 and "Neither old nor new names may be empty" in empty.stderr
    assert run("rename", new, name).returncode == 0  # the fixture removes it by ID anyway


def test_rename_updates_dns_names(daemon: TestDaemon) -> None:
    net = _name("opsnet")
    assert daemon.cli("network", "create", net).returncode == 0
    web, renamed = _name("web"), _name("site")
    try:
        r = daemon.cli("run", "-d", "--name", web, "--network", net, "busybox", "sh", "-c", LOOP)
        assert r.returncode == 0, r.stderr
        assert daemon.docker("rename", web, renamed).returncode == 0
        info = daemon.request("GET", f"/containers/{renamed}/json")[1]
        assert renamed in info["NetworkSettings"]["Networks"][net]["DNSNames"]
        assert web not in info["NetworkSettings"]["Networks"][net]["DNSNames"]
        got = daemon.cli("run", "--rm", "--network", net, "busybox", "nslookup", renamed)
        assert got.returncode == 0 and f"Name:\t{renamed}\nAddress: " in got.stdout, got.stdout
        old = daemon.cli("run", "--rm", "--network", net, "busybox", "nslookup", web)
        assert old.returncode != 0 and "NXDOMAIN" in old.stdout
    finally:
        daemon.request("DELETE", f"/containers/{renamed}?force=1")
        daemon.request("DELETE", f"/containers/{web}?force=1")
        daemon.cli("network", "rm", net)


# --------------------------------------------------------------------------- top


def test_top(run, daemon: TestDaemon, container: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    name, cid = container
    pid = _state(daemon, cid)["Pid"]
    r = run("top", name)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert re.match(r"UID {17}PID {17}PPID", lines[0])  # tabwriter: min width 20, padding 3
    rows = [line.split() for line in lines[1:]]
    assert str(pid) in [row[1] for row in rows]
    assert all(row[1] != "1" for row in rows)  # only the container's processes

    r = run("top", name, "-o", "pid,args")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == ["PID", "COMMAND"]
    assert any(line.split(None, 1) == [str(pid), f"sh -c {LOOP}"] for line in r.stdout.splitlines())

    status, body = daemon.request("GET", f"/containers/{name}/top?ps_args=-o+pid,comm")
    assert status == 200 and body["Titles"] == ["PID", "COMMAND"]
    assert [str(pid), "sh"] in body["Processes"]
    status, body = daemon.request("GET", f"/containers/{name}/top?ps_args=-o+user%3DPID")
    assert status == 500 and body["message"] == 'specifying "user=PID" is not allowed'

    assert run("pause", name).returncode == 0
    assert daemon.request("GET", f"/containers/{name}/top")[0] == 200  # ps reads frozen tasks
    assert run("unpause", name).returncode == 0


def test_top_not_running(daemon: TestDaemon) -> None:
    name = _name("opstop")
    assert daemon.cli("create", "--name", name, "busybox", "true").returncode == 0
    try:
        cid = daemon.request("GET", f"/containers/{name}/json")[1]["Id"]
        status, body = daemon.request("GET", f"/containers/{name}/top")
        assert status == 409 and body["message"] == f"Container {cid} is not running"
        r = daemon.docker("top", name)
        assert r.returncode == 1 and f"Container {cid} is not running" in r.stderr
    finally:
        daemon.request("DELETE", f"/containers/{name}?force=1")


# --------------------------------------------------------------------------- diff

DIFF_SCRIPT = (
    "echo x > /tmp/new; echo extra >> /etc/passwd; rm /bin/ls; mkdir -p /home/u/d; "
    "touch /home/u/d/f; rmdir /var; mkdir /var; touch /var/new"
)
DIFF_EXPECTED = [
    "C /bin",
    "D /bin/ls",
    "C /etc",
    "C /etc/passwd",
    "C /home",
    "A /home/u",
    "A /home/u/d",
    "A /home/u/d/f",
    "C /tmp",
    "A /tmp/new",
    "D /var",  # re-made over a whiteout: an opaque directory, reported as moby does
    "A /var/new",
]


def test_diff(run, daemon: TestDaemon) -> None:  # type: ignore[no-untyped-def]
    name = _name("opsdiff")
    r = daemon.cli("run", "--name", name, "busybox", "sh", "-c", DIFF_SCRIPT)
    assert r.returncode == 0, r.stderr
    try:
        out = run("diff", name)  # a stopped container: its upper directory is still there
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == DIFF_EXPECTED
        status, body = daemon.request("GET", f"/containers/{name}/changes")
        assert status == 200
        assert {"Path": "/bin/ls", "Kind": 2} in body and {"Path": "/tmp/new", "Kind": 1} in body
        assert {"Path": "/etc/passwd", "Kind": 0} in body
    finally:
        daemon.request("DELETE", f"/containers/{name}?force=1")


def test_diff_of_fresh_and_running_container(
    run,  # type: ignore[no-untyped-def]
    daemon: TestDaemon,
    container: tuple[str, str],
) -> None:
    name, _ = container
    # runc's mount points (/etc/hosts, /proc, …) are hidden, as Docker's init layer hides them.
    assert daemon.request("GET", f"/containers/{name}/changes") == (200, None)
    assert run("diff", name).stdout == ""
    assert daemon.cli("exec", name, "sh", "-c", "echo y > /root/file").returncode == 0
    assert run("diff", name).stdout == "C /root\nA /root/file\n"
    status, body = daemon.request("GET", "/containers/nosuchctr/changes")
    assert status == 404 and body["message"] == "No such container: nosuchctr"


# --------------------------------------------------------------------------- stats


def _stream_lines(d: TestDaemon, path: str, count: int) -> list[dict[str, Any]]:
    conn = _UnixHTTPConnection(str(d.sock), timeout=20)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200
        out = []
        while len(out) < count:
            line = resp.readline()
            assert line, "stream ended early"
            if line.strip():
                out.append(json.loads(line))
        return out
    finally:
        conn.close()


def test_stats_api(daemon: TestDaemon, container: tuple[str, str]) -> None:
    name, cid = container
    status, v = daemon.request("GET", f"/containers/{name}/stats?stream=0")
    assert status == 200
    assert v["name"] == f"/{name}" and v["id"] == cid
    assert v["memory_stats"]["usage"] > 0 and v["memory_stats"]["limit"] > 0
    assert (
        "total_inactive_file" in v["memory_stats"]["stats"]
        or "inactive_file" in (v["memory_stats"]["stats"])
    )
    assert v["pids_stats"]["current"] >= 1
    cpu = v["cpu_stats"]
    assert cpu["online_cpus"] >= 1 and cpu["system_cpu_usage"] > 0
    assert cpu["cpu_usage"]["total_usage"] > 0
    assert set(cpu["throttling_data"]) == {"periods", "throttled_periods", "throttled_time"}
    # Not streaming: the daemon primed precpu_stats one second earlier.
    assert v["precpu_stats"]["system_cpu_usage"] < cpu["system_cpu_usage"]
    assert v["preread"] < v["read"]
    assert set(v["networks"]) == {"eth0"} and v["networks"]["eth0"]["rx_packets"] >= 0
    assert set(v["blkio_stats"]) >= {"io_service_bytes_recursive", "io_serviced_recursive"}

    status, v = daemon.request("GET", f"/containers/{name}/stats?stream=0&one-shot=1")
    assert status == 200 and v["preread"] == "0001-01-01T00:00:00Z"
    assert v["precpu_stats"]["cpu_usage"]["total_usage"] == 0

    status, body = daemon.request("GET", f"/containers/{name}/stats?stream=1&one-shot=1")
    assert status == 400 and body["message"] == "cannot have stream=true and one-shot=true"
    assert daemon.request("GET", "/containers/nosuchctr/stats?stream=0")[0] == 404

    first, second = _stream_lines(daemon, f"/containers/{name}/stats", 2)
    assert first["preread"] == "0001-01-01T00:00:00Z"
    assert second["preread"] == first["read"]
    assert second["precpu_stats"] == first["cpu_stats"]


def test_stats_of_stopped_container_are_zeros(daemon: TestDaemon) -> None:
    name = _name("opsstopped")
    assert daemon.cli("create", "--name", name, "busybox", "true").returncode == 0
    try:
        status, v = daemon.request("GET", f"/containers/{name}/stats?stream=0")
        assert status == 200
        assert v["read"] == "0001-01-01T00:00:00Z" and v["name"] == f"/{name}"
        assert v["memory_stats"] == {} and v["pids_stats"] == {}
        assert v["cpu_stats"]["cpu_usage"]["total_usage"] == 0
        assert "networks" not in v
        (streamed,) = _stream_lines(daemon, f"/containers/{name}/stats?stream=1", 1)
        assert streamed["read"] == "0001-01-01T00:00:00Z"
        r = daemon.docker("stats", "--no-stream", name)
        assert r.returncode == 0, r.stderr
        row = r.stdout.splitlines()[1].split()
        assert row[1:] == [name, "0.00%", "0B", "/", "0B", "0.00%", "0B", "/", "0B", "0B", "/",
                           "0B", "0"]  # fmt: skip
    finally:
        daemon.request("DELETE", f"/containers/{name}?force=1")


def test_stats_table(run, daemon: TestDaemon, container: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    name, cid = container
    r = run("stats", "--no-stream", name)
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert re.match(
        r"CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE / LIMIT\s+MEM %\s+NET I/O\s+BLOCK I/O\s+PIDS$",
        header,
    )
    m = re.match(
        r"(\w{12})\s+(\S+)\s+(\d+\.\d\d)%\s+([\d.]+[KMG]?i?B) / ([\d.]+[KMGT]?i?B)\s+"
        r"(\d+\.\d\d)%\s+([\d.]+[kMG]?B) / ([\d.]+[kMG]?B)\s+(\S+ / \S+)\s+(\d+)$",
        row,
    )
    assert m, row
    assert m.group(1) == cid[:12] and m.group(2) == name
    assert m.group(4) != "0B" and int(m.group(10)) >= 1

    r = run("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.Container}}", name)
    assert r.returncode == 0 and re.match(rf"{name} \d+ {name}\n$", r.stdout), r.stdout
    r = run("stats", "--no-stream", "--no-trunc", "--format", "{{.ID}}")
    assert cid in r.stdout.split()
    missing = run("stats", "--no-stream", "nosuchctr")
    assert missing.returncode == 1
    assert "No such container: nosuchctr" in missing.stderr


def test_stats_streams_in_place(daemon: TestDaemon, container: tuple[str, str]) -> None:
    name, _ = container
    proc = subprocess.Popen(
        [DOCKYARD, "stats", name], env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        time.sleep(3)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    text = out.decode()
    assert "\033[H" in text and "CONTAINER ID" in text
    assert text.count(f" {name} ") >= 2  # redrawn
