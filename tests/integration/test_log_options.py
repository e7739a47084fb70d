"""Log drivers and options: max-size rotation over max-file files (read back in order by
``logs``), the local driver's defaults, dockerd's checks of options, and daemon defaults."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.clients import runner
from tests.integration.conftest import running_daemon
from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration

# 400 numbered lines of ~100 bytes: ~45 kB of log records
WRITER = 'i=0; while [ $i -lt 400 ]; do printf "line %04d %090d\\n" $i 0; i=$((i+1)); done'


@pytest.fixture(params=["dockyard", "docker"])
def which(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _numbers(text: str) -> list[int]:
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("line ")]


def test_max_size_rotates_over_max_file(daemon: TestDaemon, which: str) -> None:
    run = runner(daemon, which)
    name = f"rot-{secrets.token_hex(3)}"
    r = run("run", "--name", name, "--log-opt", "max-size=10k", "--log-opt", "max-file=3",
            "busybox", "sh", "-c", WRITER)  # fmt: skip
    assert r.returncode == 0, r.stderr
    try:
        info = daemon.request("GET", f"/containers/{name}/json")[1]
        assert info["HostConfig"]["LogConfig"] == {
            "Type": "json-file",
            "Config": {"max-file": "3", "max-size": "10k"},
        }
        log = Path(info["LogPath"])
        files = sorted(p.name for p in log.parent.iterdir() if p.name.startswith(log.name))
        assert files == [log.name, f"{log.name}.1", f"{log.name}.2"], files
        for f in (log, Path(f"{log}.1"), Path(f"{log}.2")):
            assert f.stat().st_size <= 10 * 1024
        got = _numbers(run("logs", name).stdout)
        # the newest lines, in order, with nothing missing between the first and the last
        assert got == list(range(got[0], 400)) and 100 < got[0] < 350, got[:3]
    finally:
        daemon.cli("rm", "-f", name)


def test_log_opt_checks(daemon: TestDaemon, which: str) -> None:
    run = runner(daemon, which)
    for argv, message in [
        (("--log-opt", "max-file=0"), "max-file cannot be less than 1"),
        (("--log-opt", "max-size=lots"), "invalid log opt max-size: lots"),
        (("--log-opt", "colour=red"), "unknown log opt 'colour' for json-file log driver"),
        (("--log-driver", "local", "--log-opt", "tag=x"), "unknown log opt 'tag' for local"),
    ]:
        r = run("create", *argv, "busybox", "true")
        assert r.returncode != 0 and message in r.stderr, (argv, r.stderr)


@pytest.fixture(scope="module")
def defaults_daemon() -> Iterator[TestDaemon]:
    with running_daemon({"log-driver": "local", "log-opts": {"max-size": "8k"}}) as d:
        yield d


def test_daemon_log_defaults(defaults_daemon: TestDaemon) -> None:
    d = defaults_daemon
    info = json.loads(d.cli("info", "--format", "{{json .}}").stdout)
    assert info["LoggingDriver"] == "local"
    name = f"def-{secrets.token_hex(3)}"
    r = d.cli("run", "--name", name, "busybox", "sh", "-c", WRITER)
    assert r.returncode == 0, r.stderr
    try:
        hc = d.request("GET", f"/containers/{name}/json")[1]["HostConfig"]
        assert hc["LogConfig"] == {"Type": "local", "Config": {"max-size": "8k"}}
        got = _numbers(d.cli("logs", name).stdout)
        # local keeps 5 files by default: 40 kB of the ~55 kB of records
        assert got == list(range(got[0], 400)) and 100 < got[0] < 300, got[:3]
    finally:
        d.cli("rm", "-f", name)
    # another driver does not take the daemon's options
    r = d.cli("run", "--rm", "--log-driver", "json-file", "--name", name, "busybox", "true")
    assert r.returncode == 0, r.stderr
