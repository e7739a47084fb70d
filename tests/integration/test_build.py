"""Builds through POST /build with the docker CLI (DOCKER_BUILDKIT=0), our CLI and raw API."""

from __future__ import annotations

import io
import json
import tarfile
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration


def _tar(files: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def _build(daemon: TestDaemon, files: dict[str, str | bytes], query: str = "") -> tuple[int, Any]:
    return daemon.request(
        "POST",
        "/v1.41/build?" + query,
        raw=_tar(files),
        headers={"Content-Type": "application/x-tar"},
        timeout=120,
    )


def _stream(out: Any) -> str:
    assert isinstance(out, list), out
    return "".join(m.get("stream", "") for m in out)


def _image_id(out: Any) -> str:
    ids = [m["aux"]["ID"] for m in out if "aux" in m]
    assert ids, out
    return str(ids[-1])


def _inspect(daemon: TestDaemon, name: str) -> dict[str, Any]:
    status, body = daemon.request("GET", f"/images/{name}/json")
    assert status == 200, body
    assert isinstance(body, dict)
    return body


def _write(ctx: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return ctx


def _leftovers(daemon: TestDaemon) -> tuple[list[Any], list[str]]:
    status, containers = daemon.request("GET", "/containers/json?all=1")
    assert status == 200
    mounts = [
        line
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if str(daemon.data_root) in line and "/containers/" not in line
    ]
    return containers, mounts


def test_docker_cli_build_runs_and_tags(daemon: TestDaemon, tmp_path: Path) -> None:
    ctx = _write(
        tmp_path,
        {
            "Dockerfile": "FROM busybox\nCOPY hello.txt /hello.txt\n"
            'RUN cat /hello.txt && echo built > /built.txt\nCMD ["cat", "/built.txt"]\n',
            "hello.txt": "hello-from-context\n",
        },
    )
    r = daemon.docker("build", "-t", "bt-docker:1", str(ctx))
    assert r.returncode == 0, r.stderr + r.stdout
    assert "Step 1/4 : FROM busybox" in r.stdout
    assert " ---> Running in " in r.stdout
    assert "hello-from-context" in r.stdout
    assert "Removing intermediate container" in r.stdout
    assert "Successfully tagged bt-docker:1" in r.stdout
    run = daemon.docker("run", "--rm", "bt-docker:1")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "built\n"
    containers, _mounts = _leftovers(daemon)
    assert not [c for c in containers if c["Image"] != "bt-docker:1"]


FULL_DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM busybox
ARG VERSION=1.0
ENV APP=/app NAME="my app"
ENV GREETING hello world
LABEL org.example.version=$VERSION "other label"=x
EXPOSE 80 443/tcp 53/udp 8000-8001
VOLUME ["/data", "/logs"]
WORKDIR /app
WORKDIR sub
RUN echo "$VERSION $APP" > /version.txt && \\
    pwd > /pwd.txt
COPY --chmod=0755 tool.sh /usr/local/bin/
COPY --chown=nobody dir/ /opt/dir/
ADD files.tar /unpacked/
COPY <<EOF /heredoc.txt
from a heredoc
EOF
USER nobody
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD wget -q localhost || exit 1
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/echo"]
CMD ["hello"]
ONBUILD RUN echo triggered
"""


def _files_tar() -> bytes:
    return _tar({"a.txt": "A\n", "sub/b.txt": "B\n"})


def _ok(out: Any) -> str:
    assert isinstance(out, list), out
    assert not [m for m in out if "error" in m], out
    return _stream(out)


def test_every_instruction_and_config(daemon: TestDaemon) -> None:
    files: dict[str, str | bytes] = {
        "Dockerfile": FULL_DOCKERFILE,
        "tool.sh": "#!/bin/sh\necho tool\n",
        "dir/one.txt": "1\n",
        "dir/nested/two.txt": "2\n",
        "files.tar": _files_tar(),
    }
    status, out = _build(daemon, files, "t=bt-full:1")
    assert status == 200, out
    assert "Successfully tagged bt-full:1" in _ok(out)
    config = _inspect(daemon, "bt-full:1")["Config"]
    assert config["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "APP=/app",
        "NAME=my app",
        "GREETING=hello world",
    ]
    assert config["Labels"] == {"org.example.version": "1.0", "other label": "x"}
    assert config["ExposedPorts"] == {
        "80/tcp": {},
        "443/tcp": {},
        "53/udp": {},
        "8000/tcp": {},
        "8001/tcp": {},
    }
    assert config["Volumes"] == {"/data": {}, "/logs": {}}
    assert config["WorkingDir"] == "/app/sub"
    assert config["User"] == "nobody"
    assert config["StopSignal"] == "SIGTERM"
    assert config["Healthcheck"] == {
        "Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
        "Interval": 30_000_000_000,
        "Timeout": 5_000_000_000,
        "Retries": 3,
    }
    assert config["Shell"] == ["/bin/sh", "-ec"]
    assert config["Entrypoint"] == ["/bin/echo"]
    assert config["Cmd"] == ["hello"]
    assert config["OnBuild"] == ["RUN echo triggered"]

    script = (
        "cat /version.txt /pwd.txt /heredoc.txt; /usr/local/bin/tool.sh;"
        " stat -c '%a %U' /usr/local/bin/tool.sh /opt/dir/one.txt /opt/dir/nested/two.txt;"
        " cat /unpacked/a.txt /unpacked/sub/b.txt"
    )
    r = daemon.docker("run", "--rm", "--user", "0", "--entrypoint", "sh", "bt-full:1", "-c", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "1.0 /app",
        "/app/sub",
        "from a heredoc",
        "tool",
        "755 root",
        "644 nobody",
        "644 nobody",
        "A",
        "B",
    ]
    status, hist = daemon.request("GET", "/images/bt-full:1/history")
    assert status == 200, hist
    assert hist[0]["Id"] == _inspect(daemon, "bt-full:1")["Id"]
    assert "ONBUILD" in hist[0]["CreatedBy"]
    r = daemon.docker("history", "--no-trunc", "bt-full:1")
    assert r.returncode == 0, r.stderr
    assert "ONBUILD" in r.stdout


def test_onbuild_triggers_run_in_child(daemon: TestDaemon) -> None:
    _, out = _build(
        daemon,
        {"Dockerfile": "FROM busybox\nONBUILD RUN echo triggered > /t\n"},
        "t=bt-onbuild-base",
    )
    _ok(out)
    _, out = _build(
        daemon, {"Dockerfile": 'FROM bt-onbuild-base\nCMD ["cat", "/t"]\n'}, "t=bt-onbuild-child"
    )
    assert "Executing 1 build trigger" in _ok(out)
    r = daemon.docker("run", "--rm", "bt-onbuild-child")
    assert r.stdout == "triggered\n", r.stderr


def test_multi_stage_copy_from_and_target(daemon: TestDaemon, tmp_path: Path) -> None:
    dockerfile = (
        "FROM busybox AS builder\nRUN echo compiled > /artifact\n"
        "FROM busybox AS unused\nRUN echo never-built-marker > /x\n"
        'FROM busybox\nCOPY --from=builder /artifact /artifact\nCMD ["cat", "/artifact"]\n'
    )
    ctx = _write(tmp_path, {"Dockerfile": dockerfile})
    r = daemon.cli("build", "-t", "bt-multi", str(ctx))
    assert r.returncode == 0, r.stderr + r.stdout
    assert "Sending build context to Docker daemon" in r.stdout
    assert "never-built-marker" not in r.stdout
    run = daemon.cli("run", "--rm", "bt-multi")
    assert run.stdout == "compiled\n", run.stderr
    r = daemon.cli("build", "--target", "builder", "-q", str(ctx))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("sha256:")
    assert "Step" not in r.stdout


def test_dockerignore(daemon: TestDaemon, tmp_path: Path) -> None:
    ctx = _write(
        tmp_path,
        {
            "Dockerfile": 'FROM busybox\nCOPY . /ctx/\nCMD ["find", "/ctx", "-type", "f"]\n',
            ".dockerignore": "# comment\n*.log\nsecret/\n!keep.log\n**/tmp-*\n",
            "a.txt": "a",
            "debug.log": "x",
            "keep.log": "k",
            "secret/key": "s",
            "deep/dir/tmp-1": "t",
            "deep/dir/ok": "o",
        },
    )
    for client in (daemon.cli, daemon.docker):
        r = client("build", "-t", "bt-ignore", str(ctx))
        assert r.returncode == 0, r.stderr + r.stdout
        run = daemon.cli("run", "--rm", "bt-ignore")
        assert sorted(run.stdout.split()) == sorted(
            [
                "/ctx/Dockerfile",
                "/ctx/.dockerignore",
                "/ctx/a.txt",
                "/ctx/keep.log",
                "/ctx/deep/dir/ok",
            ]
        )


def test_cache_hits_and_misses(daemon: TestDaemon, tmp_path: Path) -> None:
    dockerfile = (
        "FROM busybox\nRUN echo first > /first\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\n"
        'COPY b.txt /b.txt\nCMD ["cat", "/copy", "/b.txt"]\n'
    )
    ctx = _write(tmp_path, {"Dockerfile": dockerfile, "a.txt": "A1\n", "b.txt": "B\n"})
    r1 = daemon.docker("build", "-t", "bt-cache", str(ctx))
    assert r1.returncode == 0, r1.stderr
    r2 = daemon.docker("build", "-t", "bt-cache", str(ctx))
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout.count("Using cache") == 5
    (ctx / "b.txt").write_text("B2\n")
    r3 = daemon.cli("build", "-t", "bt-cache", str(ctx))
    assert r3.returncode == 0, r3.stderr
    assert r3.stdout.count("Using cache") == 3  # RUN, COPY a.txt, RUN; then b.txt changed
    (ctx / "a.txt").write_text("A2\n")
    r4 = daemon.cli("build", "-t", "bt-cache", str(ctx))
    assert r4.stdout.count("Using cache") == 1
    assert "Running in" in r4.stdout
    run = daemon.cli("run", "--rm", "bt-cache")
    assert run.stdout == "A2\nB2\n"
    r5 = daemon.cli("build", "--no-cache", "-t", "bt-cache", str(ctx))
    assert r5.returncode == 0 and "Using cache" not in r5.stdout


def test_parse_error_is_400_with_line(daemon: TestDaemon, tmp_path: Path) -> None:
    status, body = _build(daemon, {"Dockerfile": "FROM busybox\n\nFROMM x\n"})
    assert status == 400
    assert body["message"] == "dockerfile parse error line 3: unknown instruction: FROMM"
    ctx = _write(tmp_path, {"Dockerfile": "FROMM busybox\n"})
    r = daemon.docker("build", str(ctx))
    assert r.returncode == 1
    assert "dockerfile parse error line 1: unknown instruction: FROMM" in r.stderr
    r = daemon.cli("build", str(ctx))
    assert r.returncode == 1
    assert "dockerfile parse error line 1: unknown instruction: FROMM" in r.stderr


def test_failing_run_exit_code_and_cleanup(daemon: TestDaemon, tmp_path: Path) -> None:
    before = daemon.request("GET", "/images/json")[1]
    ctx = _write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo about to fail && exit 42\n"})
    r = daemon.docker("build", "-t", "bt-fail", str(ctx))
    assert r.returncode == 42, r.stdout + r.stderr
    assert "about to fail" in r.stdout
    assert (
        "The command '/bin/sh -c echo about to fail && exit 42' returned a non-zero code: 42"
        in r.stderr
    )
    r = daemon.cli("build", "-t", "bt-fail", str(ctx))
    assert r.returncode == 42
    status, _ = daemon.request("GET", "/images/bt-fail/json")
    assert status == 404
    containers, mounts = _leftovers(daemon)
    assert [c for c in containers if c["Image"] == "sha256"] == []
    assert not [c for c in containers if c["State"] != "running" and "bt-" not in c["Names"][0]]
    assert not [m for m in mounts if "/tmp/" in m], mounts
    after = daemon.request("GET", "/images/json")[1]
    tagged_before = {t for i in before for t in i["RepoTags"]}
    tagged_after = {t for i in after for t in i["RepoTags"]}
    assert "bt-fail:latest" not in tagged_after
    assert tagged_after >= tagged_before


def test_missing_copy_source(daemon: TestDaemon) -> None:
    status, out = _build(daemon, {"Dockerfile": "FROM busybox\nCOPY missing.txt /x\n"})
    assert status == 200
    errors = [m for m in out if "errorDetail" in m]
    assert errors and "missing.txt" in errors[0]["error"]
    assert "file not found" in errors[0]["error"]


def test_unknown_base_image(daemon: TestDaemon) -> None:
    # A registry on a closed loopback port: the pull fails (and nothing reaches docker.io).
    status, out = _build(daemon, {"Dockerfile": "FROM 127.0.0.1:9/no-such-image-here:1\n"})
    assert status == 200
    errors = [m for m in out if "errorDetail" in m]
    assert errors and "127.0.0.1:9" in errors[0]["error"]


def test_context_escaping_root_is_refused(daemon: TestDaemon) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\n"), ("../escape.txt", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    status, body = daemon.request(
        "POST", "/build", raw=buf.getvalue(), headers={"Content-Type": "application/x-tar"}
    )
    assert status == 400, body
    assert "outside of the context" in body["message"]


def test_commit_export_history(daemon: TestDaemon, tmp_path: Path) -> None:
    r = daemon.cli(
        "run", "--name", "bt-commit-src", "busybox", "sh", "-c", "echo committed > /c.txt"
    )
    assert r.returncode == 0, r.stderr
    try:
        r = daemon.cli("commit", "-c", 'CMD ["cat", "/c.txt"]', "bt-commit-src", "bt-committed:v1")
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("sha256:")
        run = daemon.cli("run", "--rm", "bt-committed:v1")
        assert run.stdout == "committed\n", run.stderr
        out = tmp_path / "fs.tar"
        r = daemon.cli("export", "-o", str(out), "bt-commit-src")
        assert r.returncode == 0, r.stderr
        with tarfile.open(out) as tar:
            names = tar.getnames()
        assert "c.txt" in names and "bin/sh" in names
        r = daemon.docker("export", "-o", str(tmp_path / "d.tar"), "bt-commit-src")
        assert r.returncode == 0, r.stderr
        r = daemon.docker("commit", "bt-commit-src", "bt-committed:v2")
        assert r.returncode == 0, r.stderr
        h = daemon.cli("history", "bt-committed:v1")
        assert h.returncode == 0, h.stderr
        assert "IMAGE" in h.stdout and "CREATED BY" in h.stdout
    finally:
        daemon.cli("rm", "-f", "bt-commit-src")


def test_build_args_and_predefined(daemon: TestDaemon) -> None:
    dockerfile = (
        "ARG BASE=busybox\nFROM $BASE\nARG WHO=nobody\nARG TARGETARCH\n"
        'RUN echo "$WHO on $TARGETARCH" > /who\nCMD ["cat", "/who"]\n'
    )
    _, out = _build(
        daemon,
        {"Dockerfile": dockerfile},
        "t=bt-args&buildargs=" + urllib.parse.quote(json.dumps({"WHO": "me"})),
    )
    _ok(out)
    r = daemon.docker("run", "--rm", "bt-args")
    assert r.stdout == "me on amd64\n", r.stderr
