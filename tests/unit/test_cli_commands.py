"""``dockyard`` commands end to end against the in-test fake daemon.

Each test checks the requests the CLI sends (order, paths, bodies) and what it prints and
exits with, against what the docker CLI 28 does (``docker-cli-wire.md``).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.cli.main import main
from dockyard.client import encode_frame
from tests.unit.test_client_api import FakeDaemon, Reply, Request, error_reply, json_reply

pytestmark = pytest.mark.unit

CID = "7ef01e8c" + "0" * 56


@pytest.fixture(autouse=True)
def _isolated_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read the user's credentials: pulls would send them."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.delenv("DOCKYARD_CONFIG", raising=False)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[FakeDaemon]:
    with FakeDaemon(tmp_path) as fake:
        yield fake


def run(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["-H", daemon.host, *args])
    out, err = capsys.readouterr()
    return code, out, err


def api(daemon: FakeDaemon) -> list[str]:
    return [line for line in daemon.lines() if not line.startswith("HEAD /_ping")]


# --------------------------------------------------------------------------- run


def _attach_streaming(frames: list[bytes], stdin_seen: list[bytes] | None = None) -> Reply:
    def session(sock: socket.socket) -> None:
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        if stdin_seen is not None:
            stdin_seen.append(data)
        for frame in frames:
            sock.sendall(frame)
        sock.close()

    return Reply(upgrade=session)


def _wait_reply(status: int, started: threading.Event) -> Reply:
    def body() -> Iterator[bytes]:
        yield b""
        started.wait(5)
        yield json.dumps({"Error": None, "StatusCode": status}).encode() + b"\n"

    return Reply(200, headers={"Content-Type": "application/json"}, chunks=body())


def test_run_pulls_a_missing_image_then_attaches_waits_and_starts(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    creates: list[Request] = []
    started = threading.Event()

    def create(request: Request) -> Reply:
        creates.append(request)
        if len(creates) == 1:
            return error_reply(404, "No such image: busybox:latest")
        return json_reply({"Id": CID, "Warnings": ["careful"]}, 201)

    def start(_request: Request) -> Reply:
        started.set()
        return Reply(204)

    pull = [
        {"status": "Pulling from library/busybox", "id": "latest"},
        {"status": "Status: Downloaded newer image for busybox:latest"},
    ]
    daemon.on("POST", "/containers/create", create)
    daemon.on(
        "POST",
        "/images/create",
        Reply(200, "\r\n".join(json.dumps(m) for m in pull), {"Content-Type": "application/json"}),
    )
    daemon.on(
        "POST",
        f"/containers/{CID}/attach",
        _attach_streaming([encode_frame(2, b"err\n"), encode_frame(1, b"out\n")]),
    )
    daemon.on("POST", f"/containers/{CID}/wait", lambda r: _wait_reply(7, started))
    daemon.on("POST", f"/containers/{CID}/start", start)

    code, out, err = run(daemon, capsys, "run", "--rm", "busybox", "sh", "-c", "exit 7")

    assert code == 7
    assert out == "out\n"
    assert err == (
        "Unable to find image 'busybox:latest' locally\n"
        "latest: Pulling from library/busybox\n"
        "Status: Downloaded newer image for busybox:latest\n"
        "WARNING: careful\n"
        "err\n"
    )
    assert api(daemon) == [
        "POST /v1.44/containers/create",
        "POST /v1.44/images/create?fromImage=docker.io%2Flibrary%2Fbusybox&tag=latest",
        "POST /v1.44/containers/create",
        f"POST /v1.44/containers/{CID}/attach?stderr=1&stdout=1&stream=1",
        f"POST /v1.44/containers/{CID}/wait?condition=removed",
        f"POST /v1.44/containers/{CID}/start",
    ]
    assert creates[0].body == creates[1].body


DOCKER_CREATE_BODY = (
    '{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,'
    '"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,'
    '"Cmd":["echo","hi"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,'
    '"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":'
    '{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":'
    '"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,'
    '"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":'
    '[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,'
    '"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":'
    'false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"",'
    '"CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,'
    '"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],'
    '"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,'
    '"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],'
    '"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,'
    '"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,'
    '"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,'
    '"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,'
    '"Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":'
    '"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"",'
    '"GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}'
)


def test_create_body_is_byte_identical_to_docker(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("POST", "/containers/create", error_reply(400, "stop here"))
    code, _, err = run(daemon, capsys, "run", "--rm", "busybox", "echo", "hi")
    assert daemon.requests[-1].body.decode() == DOCKER_CREATE_BODY
    assert code == 125
    assert err == (
        "dockyard: Error response from daemon: stop here\n\n"
        "Run 'dockyard run --help' for more information\n"
    )


def test_create_flags(
    daemon: FakeDaemon,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env_file = tmp_path / "envf"
    env_file.write_text("A=1\n# comment\nB\n\nC=x y\n")
    monkeypatch.setenv("B", "fromenv")
    monkeypatch.delenv("Y", raising=False)
    daemon.on("POST", "/containers/create", json_reply({"Id": CID, "Warnings": []}, 201))
    code, out, _ = run(
        daemon,
        capsys,
        "create",
        "--name",
        "wflags",
        "-i",
        "-t",
        "-e",
        "X=1",
        "-e",
        "Y",
        "--env-file",
        str(env_file),
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "--entrypoint",
        "sh",
        "--hostname",
        "hh",
        "-l",
        "k=v",
        "-l",
        "k2",
        "--network",
        "host",
        "--restart",
        "on-failure:3",
        "busybox",
        "-c",
        "echo hi",
    )
    assert (code, out) == (0, CID + "\n")
    request = daemon.requests[-1]
    assert request.target == "/v1.44/containers/create?name=wflags"
    body = request.json()
    assert body["Env"] == ["A=1", "B=fromenv", "C=x y", "X=1", "Y"]
    assert [body[k] for k in ("Hostname", "User", "WorkingDir", "Entrypoint", "Cmd")] == [
        "hh",
        "1000:1000",
        "/tmp",
        ["sh"],
        ["-c", "echo hi"],
    ]
    assert [body[k] for k in ("AttachStdin", "Tty", "OpenStdin", "StdinOnce")] == [True] * 4
    assert body["Labels"] == {"k": "v", "k2": ""}
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert body["HostConfig"]["NetworkMode"] == "host"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {}}


def test_run_pull_never_and_flag_errors(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("POST", "/containers/create", error_reply(404, "No such image: nosuch:1"))
    code, _, err = run(daemon, capsys, "run", "--pull", "never", "nosuch:1")
    assert code == 125
    assert err.startswith("dockyard: Error response from daemon: No such image: nosuch:1\n")
    assert api(daemon) == ["POST /v1.44/containers/create"]

    code, _, err = run(daemon, capsys, "run", "--pull", "bogus", "busybox")
    assert code == 125
    assert err == (
        'dockyard: invalid pull option: \'bogus\': must be one of "always", "missing" or '
        "\"never\"\n\nRun 'dockyard run --help' for more information\n"
    )
    code, _, err = run(daemon, capsys, "run", "--rm", "--restart", "always", "busybox")
    assert code == 125
    assert "conflicting options: cannot specify both --restart and --rm" in err


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ('exec: "/nonexistent": stat /nonexistent: no such file or directory: unknown', 127),
        ('exec: "x": executable file not found in $PATH: unknown', 127),
        ("exec /etc: permission denied", 126),
        ("network nosuchnet not found", 125),
    ],
)
def test_run_start_error_exit_codes(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str], message: str, code: int
) -> None:
    daemon.on("POST", "/containers/create", json_reply({"Id": CID, "Warnings": None}, 201))
    daemon.on("POST", f"/containers/{CID}/attach", _attach_streaming([]))
    daemon.on("POST", f"/containers/{CID}/wait", json_reply({"Error": None, "StatusCode": 128}))
    daemon.on("POST", f"/containers/{CID}/start", error_reply(400, message))
    got, _, err = run(daemon, capsys, "run", "busybox", "/nonexistent")
    assert got == code
    assert err == (
        f"dockyard: Error response from daemon: {message}\n\n"
        "Run 'dockyard run --help' for more information\n"
    )


def test_run_detached_prints_the_id(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    started = threading.Event()
    daemon.on("POST", "/containers/create", json_reply({"Id": CID, "Warnings": []}, 201))
    daemon.on("POST", f"/containers/{CID}/wait", lambda r: _wait_reply(0, started))
    daemon.on("POST", f"/containers/{CID}/start", Reply(204))
    code, out, _ = run(daemon, capsys, "run", "-d", "--name", "wx", "busybox", "sleep", "300")
    started.set()
    assert (code, out) == (0, CID + "\n")
    assert api(daemon) == [
        "POST /v1.44/containers/create?name=wx",
        f"POST /v1.44/containers/{CID}/wait?condition=next-exit",
        f"POST /v1.44/containers/{CID}/start",
    ]
    body = daemon.requests[1].json()
    assert (body["AttachStdout"], body["AttachStderr"], body["AttachStdin"]) == (
        False,
        False,
        False,
    )


def test_run_interactive_sends_stdin_and_half_closes(
    daemon: FakeDaemon,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io
    import sys

    seen: list[bytes] = []
    started = threading.Event()
    daemon.on("POST", "/containers/create", json_reply({"Id": CID, "Warnings": []}, 201))
    daemon.on(
        "POST",
        f"/containers/{CID}/attach",
        _attach_streaming([encode_frame(1, b"hello-stdin\n")], seen),
    )
    daemon.on("POST", f"/containers/{CID}/wait", lambda r: _wait_reply(0, started))

    def start(_request: Request) -> Reply:
        started.set()
        return Reply(204)

    daemon.on("POST", f"/containers/{CID}/start", start)
    stdin_file = tmp_path / "stdin"
    stdin_file.write_bytes(b"hello-stdin\n")
    with stdin_file.open("rb") as fh:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(fh))
        code, out, _ = run(daemon, capsys, "run", "-i", "--rm", "busybox", "cat")
    assert (code, out) == (0, "hello-stdin\n")
    assert seen == [b"hello-stdin\n"]
    assert daemon.requests[1].json()["StdinOnce"] is True
    assert (
        api(daemon)[1] == f"POST /v1.44/containers/{CID}/attach?stderr=1&stdin=1&stdout=1&stream=1"
    )


# --------------------------------------------------------------------------- exec, logs


def test_exec_runs_and_exits_with_the_exec_code(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("GET", "/containers/wx/json", json_reply({"Id": CID}))
    daemon.on("POST", "/containers/wx/exec", json_reply({"Id": "e1"}, 201))
    daemon.on("POST", "/exec/e1/start", _attach_streaming([encode_frame(1, b"hi\n")]))
    daemon.on("GET", "/exec/e1/json", json_reply({"ExitCode": 3, "Running": False}))
    code, out, _ = run(
        daemon,
        capsys,
        "exec",
        "-e",
        "A=1",
        "-w",
        "/tmp",
        "-u",
        "0",
        "wx",
        "sh",
        "-c",
        "echo hi; exit 3",
    )
    assert (code, out) == (3, "hi\n")
    assert api(daemon) == [
        "GET /v1.44/containers/wx/json",
        "POST /v1.44/containers/wx/exec",
        "POST /v1.44/exec/e1/start",
        "GET /v1.44/exec/e1/json",
    ]
    assert daemon.requests[2].body == (
        b'{"User":"0","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStderr":true,'
        b'"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":["A=1"],"WorkingDir":"/tmp",'
        b'"Cmd":["sh","-c","echo hi; exit 3"]}'
    )
    assert daemon.requests[3].body == b'{"Detach":false,"Tty":false}'


def test_exec_on_a_missing_container_creates_nothing(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("GET", "/containers/nosuch/json", error_reply(404, "No such container: nosuch"))
    code, _, err = run(daemon, capsys, "exec", "nosuch", "true")
    assert (code, err) == (1, "Error response from daemon: No such container: nosuch\n")
    assert api(daemon) == ["GET /v1.44/containers/nosuch/json"]


def test_logs_inspects_then_reads_by_id(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("GET", "/containers/wx/json", json_reply({"Id": CID, "Config": {"Tty": False}}))
    frames = encode_frame(1, b"line1\n") + encode_frame(2, b"err1\n")
    daemon.on("GET", f"/containers/{CID}/logs", Reply(200, chunks=[frames[:5], frames[5:]]))
    code, out, err = run(daemon, capsys, "logs", "-f", "--tail", "1", "-t", "wx")
    assert (code, out, err) == (0, "line1\n", "err1\n")
    assert api(daemon)[-1] == (
        f"GET /v1.44/containers/{CID}/logs?follow=1&stderr=1&stdout=1&tail=1&timestamps=1"
    )


def test_logs_of_a_tty_container_is_raw(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("GET", "/containers/wt/json", json_reply({"Id": CID, "Config": {"Tty": True}}))
    daemon.on("GET", f"/containers/{CID}/logs", Reply(200, b"tty-line\r\n"))
    assert run(daemon, capsys, "logs", "wt") == (0, "tty-line\r\n", "")


# --------------------------------------------------------------------------- lists


def test_ps_default_and_filters(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.on("GET", "/containers/json", json_reply([]))
    code, out, _ = run(daemon, capsys, "ps", "-a", "-n", "2", "--filter", "name=wp")
    assert code == 0
    assert out == "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    assert api(daemon)[-1] == (
        "GET /v1.44/containers/json?all=1&filters=%7B%22name%22%3A%7B%22wp%22%3Atrue%7D%7D&limit=2"
    )


def test_ps_requests_sizes_only_when_the_template_uses_them(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("GET", "/containers/json", json_reply([{"Id": CID, "Names": ["/w"], "SizeRw": 2}]))
    assert run(daemon, capsys, "ps", "--format", "{{.Names}} {{.Size}}")[1] == "w 2B\n"
    assert run(daemon, capsys, "ps", "--format", "json")[0] == 0
    assert run(daemon, capsys, "ps", "-q")[1] == CID[:12] + "\n"
    assert [line.split("?")[-1] for line in api(daemon)] == [
        "size=1",
        "GET /v1.44/containers/json",
        "GET /v1.44/containers/json",
    ]


def test_ps_template_errors(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(daemon, capsys, "ps", "--format", "{{.Foo}}")
    assert code == 1
    assert err == (
        'failed to execute template: template: :1:2: executing "" at <.Foo>: '
        "can't evaluate field Foo in type *formatter.ContainerContext\n"
    )


def test_images_default(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.on(
        "GET",
        "/images/json",
        json_reply(
            [
                {
                    "Id": "sha256:6fc5bf6b4077214baf497240008ceaf652d31db8efe4c278cae7f2be9dde8d04",
                    "RepoTags": ["busybox:latest"],
                    "RepoDigests": [],
                    "Created": 0,
                    "Size": 1984000,
                    "Containers": -1,
                    "SharedSize": -1,
                }
            ]
        ),
    )
    code, out, _ = run(daemon, capsys, "images", "busybox")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "REPOSITORY   TAG       IMAGE ID       CREATED        SIZE"
    assert lines[1].startswith("busybox      latest    6fc5bf6b4077   ")
    assert lines[1].endswith("   1.98MB")
    assert api(daemon)[-1] == (
        "GET /v1.44/images/json?filters=%7B%22reference%22%3A%7B%22busybox%22%3Atrue%7D%7D"
    )


# --------------------------------------------------------------------------- inspect


def test_inspect_nosuch_tries_every_type(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("GET", "/info", json_reply({"Swarm": {"LocalNodeState": "inactive"}}))
    code, out, err = run(daemon, capsys, "inspect", "nosuch")
    assert (code, out, err) == (1, "[]\n", "Error: No such object: nosuch\n")
    assert api(daemon) == [
        "GET /v1.44/containers/nosuch/json",
        "GET /v1.44/images/nosuch/json",
        "GET /v1.44/networks/nosuch",
        "GET /v1.44/volumes/nosuch",
        "GET /v1.44/info",
        "GET /v1.44/plugins/nosuch/json",
    ]


def test_inspect_prints_indented_raw_json_and_templates(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = b'{"Id":"abc","Name":"/w","State":{"Status":"running","Pid":42},"Args":[]}\n'
    daemon.on("GET", "/containers/w/json", Reply(200, raw, {"Content-Type": "application/json"}))
    code, out, _ = run(daemon, capsys, "inspect", "w")
    assert code == 0
    assert out == (
        '[\n    {\n        "Id": "abc",\n        "Name": "/w",\n        "State": {\n'
        '            "Status": "running",\n            "Pid": 42\n        },\n'
        '        "Args": []\n    }\n]\n'
    )
    assert run(daemon, capsys, "inspect", "-f", "{{.Name}} {{.State.Pid}}", "w")[1] == "/w 42\n"
    code, out, err = run(daemon, capsys, "container", "inspect", "-f", "{{.Nope.X}}", "w")
    assert (code, out) == (1, "\n")
    assert err == (
        'template parsing error: template: :1:7: executing "" at <.Nope.X>: '
        'map has no entry for key "Nope"\n'
    )


# --------------------------------------------------------------------------- multi-name verbs


def test_rm_prints_each_name_and_fails_if_any_failed(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("DELETE", "/containers/a", Reply(204))
    daemon.on("DELETE", "/containers/b", Reply(204))
    code, out, err = run(daemon, capsys, "rm", "-f", "-v", "a", "nosuch2", "b")
    assert (code, out) == (0, "a\nb\n")  # -f: a missing container is only reported
    assert err == "Error response from daemon: page not found\n"
    code, out, err = run(daemon, capsys, "rm", "a", "nosuch", "b")
    assert (code, out, err) == (1, "a\nb\n", "Error response from daemon: page not found\n")
    assert "DELETE /v1.44/containers/a?force=1&v=1" in api(daemon)


def test_stop_sends_timeout_and_treats_304_as_success(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("POST", "/containers/w/stop", Reply(304))
    assert run(daemon, capsys, "stop", "-t", "1", "-s", "KILL", "w") == (0, "w\n", "")
    assert api(daemon) == ["POST /v1.44/containers/w/stop?signal=KILL&t=1"]


def test_start_reports_failures_docker_style(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("POST", "/containers/a/start", Reply(204))
    daemon.on("POST", "/containers/nosuch/start", error_reply(404, "No such container: nosuch"))
    code, out, err = run(daemon, capsys, "start", "a", "nosuch")
    assert (code, out) == (1, "a\n")
    assert err == (
        "Error response from daemon: No such container: nosuch\n"
        "Error: failed to start containers: nosuch\n"
    )


def test_wait_prints_status_codes(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.on("POST", "/containers/w/wait", json_reply({"Error": None, "StatusCode": 5}))
    assert run(daemon, capsys, "wait", "w") == (0, "5\n", "")
    assert api(daemon) == ["POST /v1.44/containers/w/wait"]


def test_container_prune(daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon.on(
        "POST",
        "/containers/prune",
        json_reply({"ContainersDeleted": [CID], "SpaceReclaimed": 1500}),
    )
    code, out, _ = run(daemon, capsys, "container", "prune", "-f")
    assert (code, out) == (0, f"Deleted Containers:\n{CID}\n\nTotal reclaimed space: 1.5kB\n")


# --------------------------------------------------------------------------- images


def test_pull_renders_progress_and_prints_the_reference(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = [
        {"status": "Pulling from library/busybox", "id": "latest"},
        {"status": "Digest: sha256:ab"},
        {"status": "Status: Image is up to date for busybox:latest"},
    ]
    daemon.on(
        "POST",
        "/images/create",
        Reply(
            200,
            headers={"Content-Type": "application/json"},
            chunks=[json.dumps(m).encode() + b"\r\n" for m in messages],
        ),
    )
    code, out, _ = run(daemon, capsys, "pull", "busybox")
    assert code == 0
    assert out == (
        "Using default tag: latest\nlatest: Pulling from library/busybox\nDigest: sha256:ab\n"
        "Status: Image is up to date for busybox:latest\ndocker.io/library/busybox:latest\n"
    )
    assert daemon.requests[-1].headers["x-registry-auth"] == "e30="


def test_pull_error_in_stream_exits_with_its_code(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on(
        "POST",
        "/images/create",
        json_reply({"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"}),
    )
    assert run(daemon, capsys, "pull", "127.0.0.1:5921/x:1") == (1, "", "manifest unknown\n")
    assert api(daemon)[-1] == "POST /v1.44/images/create?fromImage=127.0.0.1%3A5921%2Fx&tag=1"
    assert run(daemon, capsys, "pull", "Bad:Name")[2] == (
        "invalid reference format: repository name (library/Bad) must be lowercase\n"
    )


def test_tag_rmi_load_save(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    daemon.on("POST", "/images/busybox/tag", Reply(201))
    daemon.on(
        "DELETE", "/images/tt:1", json_reply([{"Untagged": "tt:1"}, {"Deleted": "sha256:ab"}])
    )
    daemon.on(
        "POST", "/images/load", lambda r: json_reply({"stream": f"Loaded image: {len(r.body)}\n"})
    )
    daemon.on("GET", "/images/get", Reply(200, b"TARDATA", {"Content-Type": "application/x-tar"}))
    assert run(daemon, capsys, "tag", "busybox", "tt:1") == (0, "", "")
    assert run(daemon, capsys, "rmi", "-f", "--no-prune", "tt:1") == (
        0,
        "Untagged: tt:1\nDeleted: sha256:ab\n",
        "",
    )
    archive = tmp_path / "in.tar"
    archive.write_bytes(b"x" * 70000)
    assert run(daemon, capsys, "load", "-i", str(archive)) == (0, "Loaded image: 70000\n", "")
    target = tmp_path / "out.tar"
    assert run(daemon, capsys, "save", "-o", str(target), "busybox", "a:1") == (0, "", "")
    assert target.read_bytes() == b"TARDATA"
    assert api(daemon) == [
        "POST /v1.44/images/busybox/tag?repo=docker.io%2Flibrary%2Ftt&tag=1",
        "DELETE /v1.44/images/tt:1?force=1&noprune=1",
        "POST /v1.44/images/load?quiet=1",
        "GET /v1.44/images/get?names=busybox&names=a%3A1",
    ]


# --------------------------------------------------------------------------- system, usage


def test_version_renders_docker_layout(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on(
        "GET",
        "/version",
        json_reply(
            {
                "Platform": {"Name": ""},
                "Components": [
                    {
                        "Name": "Engine",
                        "Version": "0.1.0",
                        "Details": {
                            "ApiVersion": "1.44",
                            "MinAPIVersion": "1.24",
                            "GoVersion": "python3.11",
                            "GitCommit": "abc",
                            "BuildTime": "2026-11-27T10:00:00.000000000+00:00",
                            "Os": "linux",
                            "Arch": "amd64",
                            "Experimental": "false",
                        },
                    },
                    {"Name": "runc", "Version": "1.1.5", "Details": {"GitCommit": "x"}},
                ],
                "Version": "0.1.0",
                "ApiVersion": "1.44",
            }
        ),
    )
    code, out, _ = run(daemon, capsys, "version")
    assert code == 0
    server = out.split("Server:")[1]
    assert server == (
        "\n Engine:\n  Version:          0.1.0\n"
        "  API version:      1.44 (minimum version 1.24)\n"
        "  Go version:       python3.11\n  Git commit:       abc\n"
        "  Built:            Fri Nov 27 10:00:00 2026\n  OS/Arch:          linux/amd64\n"
        "  Experimental:     false\n runc:\n  Version:          1.1.5\n"
        "  GitCommit:        x\n"
    )
    assert " API version:       1.44\n" in out
    assert run(daemon, capsys, "version", "--format", "{{.Server.Version}}")[1] == "0.1.0\n"


@pytest.mark.parametrize(
    ("args", "code", "err"),
    [
        (
            ["rm"],
            1,
            "dockyard: 'dockyard rm' requires at least 1 argument\n\n"
            "Usage:  dockyard rm [OPTIONS] CONTAINER [CONTAINER...]\n\n"
            "See 'dockyard rm --help' for more information\n",
        ),
        (
            ["logs"],
            1,
            "dockyard: 'dockyard logs' requires 1 argument\n\n"
            "Usage:  dockyard logs [OPTIONS] CONTAINER\n\n"
            "Run 'dockyard logs --help' for more information\n",
        ),
        (
            ["ps", "x"],
            1,
            "dockyard: 'dockyard ps' accepts no arguments\n\n"
            "Usage:  dockyard ps [OPTIONS]\n\nRun 'dockyard ps --help' for more information\n",
        ),
        (
            ["ps", "--bogus"],
            125,
            "unknown flag: --bogus\n\nUsage:  dockyard ps [OPTIONS]\n\n"
            "Run 'dockyard ps --help' for more information\n",
        ),
        (
            ["ps", "-x"],
            125,
            "unknown shorthand flag: 'x' in -x\n\nUsage:  dockyard ps [OPTIONS]\n\n"
            "Run 'dockyard ps --help' for more information\n",
        ),
        (
            ["ps", "--format"],
            125,
            "flag needs an argument: --format\n\n"
            "Usage:  dockyard ps [OPTIONS]\n\nRun 'dockyard ps --help' for more information\n",
        ),
        (
            ["stop", "-t", "abc", "w"],
            125,
            'invalid argument "abc" for "-t, --timeout" flag: '
            'strconv.ParseInt: parsing "abc": invalid syntax\n\n'
            "Usage:  dockyard stop [OPTIONS] CONTAINER [CONTAINER...]\n\n"
            "Run 'dockyard stop --help' for more information\n",
        ),
        (
            ["bogus"],
            1,
            "dockyard: unknown command: dockyard bogus\n\n"
            "Run 'dockyard --help' for more information\n",
        ),
        (
            ["container", "bogus"],
            1,
            "dockyard: unknown command: dockyard container bogus\n\n"
            "Usage:  dockyard container\n\nRun 'dockyard container --help' for more information\n",
        ),
        (
            ["inspect", "--type", "bogus", "x"],
            1,
            'unknown type: "bogus": must be one of "config", '
            '"container", "image", "network", "node", "plugin", "secret", "service", "task", '
            '"volume"\n',
        ),
    ],
)
def test_usage_errors(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str], args: list[str], code: int, err: str
) -> None:
    assert run(daemon, capsys, *args) == (code, "", err)
    assert api(daemon) == []


def test_unreachable_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-H", f"unix://{tmp_path}/none.sock", "ps"]) == 1
    assert capsys.readouterr().err == (
        f"Cannot connect to the Dockyard daemon at unix://{tmp_path}/none.sock. "
        "Is the dockyard daemon running?\n"
    )


def test_container_and_image_aliases(
    daemon: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon.on("GET", "/containers/json", json_reply([]))
    daemon.on("GET", "/images/json", json_reply([]))
    for args in (["container", "ls"], ["container", "ps"], ["container", "list"]):
        assert run(daemon, capsys, *args)[0] == 0
    assert run(daemon, capsys, "image", "ls", "-q") == (0, "", "")
    assert api(daemon) == ["GET /v1.44/containers/json"] * 3 + ["GET /v1.44/images/json"]


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == "Dockyard version 0.1.0\n"
