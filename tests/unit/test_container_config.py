"""Pure pieces of the container subsystem: config merge, names, signals, filters, paths, logs."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from dockyard import errors
from dockyard.containers.config import merge_config, validate_host_config
from dockyard.containers.filters import parse_filters, parse_time
from dockyard.containers.names import generate_name, validate_name
from dockyard.containers.record import ContainerRecord, ContainerState
from dockyard.containers.securejoin import mkdir_in_root, secure_join
from dockyard.containers.signals import parse_signal
from dockyard.containers.timefmt import ZERO_TIME, human_duration, rfc3339
from dockyard.logs import format_timestamp, parse_record, read_entries

pytestmark = pytest.mark.unit

IMAGE = {
    "config": {
        "Env": ["PATH=/bin", "A=1"],
        "Cmd": ["sh"],
        "Labels": {"img": "1"},
        "WorkingDir": "/w",
    }
}


@pytest.mark.parametrize(
    ("body", "entrypoint", "cmd"),
    [
        ({}, None, ["sh"]),
        ({"Cmd": ["echo", "hi"]}, None, ["echo", "hi"]),
        ({"Entrypoint": ["echo"]}, ["echo"], None),
        ({"Entrypoint": ["echo"], "Cmd": ["x"]}, ["echo"], ["x"]),
        ({"Entrypoint": "echo"}, ["echo"], None),
    ],
)
def test_entrypoint_cmd_rules(
    body: dict, entrypoint: list[str] | None, cmd: list[str] | None
) -> None:  # type: ignore[type-arg]
    cfg = merge_config({"Image": "i", **body}, IMAGE, "a" * 64)
    assert cfg["Entrypoint"] == entrypoint
    assert cfg["Cmd"] == cmd


def test_env_labels_hostname_merge() -> None:
    cfg = merge_config({"Image": "i", "Env": ["A=2", "B=3"], "Labels": {"c": "2"}}, IMAGE, "b" * 64)
    assert cfg["Env"] == ["PATH=/bin", "A=2", "B=3"]
    assert cfg["Labels"] == {"img": "1", "c": "2"}
    assert cfg["Hostname"] == "b" * 12
    assert cfg["WorkingDir"] == "/w"


def test_no_command() -> None:
    with pytest.raises(errors.InvalidArgument, match="No command specified"):
        merge_config({"Image": "i"}, {"config": {}}, "c" * 64)


def test_restart_policy_validation() -> None:
    with pytest.raises(errors.InvalidArgument, match="invalid restart policy 'bogus'"):
        validate_host_config({"RestartPolicy": {"Name": "bogus"}})
    assert validate_host_config({})["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}


@pytest.mark.parametrize("name", ["x", "-bad", "bad name", "a/b", ""])
def test_invalid_names(name: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="Invalid container name"):
        validate_name(name)


def test_generated_names_are_valid() -> None:
    for retry in range(50):
        name = generate_name(retry=retry % 3)
        assert validate_name(name) == name
        assert re.fullmatch(r"[a-z]+_[a-z]+\d*", name)


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("KILL", 9),
        ("SIGTERM", 15),
        ("int", 2),
        ("9", 9),
        (None, 9),
        ("WINCH", 28),
        ("SIGRTMIN+1", signal.SIGRTMIN + 1),
    ],
)
def test_signals(value: str | None, number: int) -> None:
    assert parse_signal(value) == number


@pytest.mark.parametrize("value", ["BOGUS", "0", "99", "SIGRTMIN+x"])
def test_bad_signals(value: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=re.escape(f"Invalid signal: {value}")):
        parse_signal(value)


def test_filters_both_shapes() -> None:
    assert parse_filters('{"name":{"a":true,"b":false}}') == {"name": ["a"]}
    assert parse_filters('{"name":["a","b"]}') == {"name": ["a", "b"]}
    with pytest.raises(errors.InvalidArgument):
        parse_filters("{bad")


def test_parse_time() -> None:
    assert parse_time("1700000000") == 1700000000
    assert parse_time("10m", now=1000.0) == 400.0
    assert parse_time("2024-01-01T00:00:00Z") == 1704067200


def test_time_formats() -> None:
    assert rfc3339(0) == ZERO_TIME
    assert rfc3339(1704067200_000000001) == "2024-01-01T00:00:00.000000001Z"
    assert human_duration(0.2) == "Less than a second"
    assert human_duration(3) == "3 seconds"
    assert human_duration(90) == "About a minute"
    assert human_duration(600) == "10 minutes"


def test_status_text() -> None:
    rec = ContainerRecord("a" * 64, "n", 0, "sha256:x", {}, {})
    assert rec.status_text() == "Created"
    rec.state = ContainerState(status="exited", exit_code=3, finished_at=int(1000e9))
    assert rec.status_text(now=1002) == "Exited (3) 2 seconds ago"
    rec.state = ContainerState(status="running", started_at=int(1000e9))
    assert rec.status_text(now=1000 + 65) == "Up About a minute"


def test_secure_join_clamps_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/", root / "up")
    os.symlink("../../../../outside", root / "etc" / "rel")
    assert secure_join(root, "/up/etc/passwd") == root / "etc" / "passwd"
    assert secure_join(root, "etc/rel/x") == root / "outside" / "x"
    assert secure_join(root, "../../x") == root / "x"


def test_mkdir_in_root_stays_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    os.symlink(str(outside), root / "work")  # absolute symlink to a host dir
    made = mkdir_in_root(root, "/work/sub")
    assert made == root / str(outside).lstrip("/") / "sub"
    assert made.is_dir() and not outside.exists()


def test_k8s_log_records(tmp_path: Path) -> None:
    entry = parse_record(b"2026-11-28T00:57:34.949088275+00:00 stdout F hello world")
    assert entry is not None and entry.data == b"hello world\n" and entry.stream == 1
    assert entry.time_ns % 1_000_000_000 == 949088275
    part = parse_record(b"2026-11-28T01:57:34.000000001+01:00 stderr P part")
    assert part is not None and part.data == b"part" and part.stream == 2
    assert format_timestamp(part.time_ns) == "2026-11-28T00:57:34.000000001Z"
    log = tmp_path / "c.log"
    log.write_bytes(
        b"2026-11-28T00:00:01.000000000+00:00 stdout F one\n"
        b"2026-11-28T00:00:02.000000000+00:00 stderr F two\n"
        b"2026-11-28T00:00:03.000000000+00:00 stdout F three\n"
        b"2026-11-28T00:00:04.000000000+00:00 stdout F partial-wri"
    )
    assert [e.data for e in read_entries(log)] == [b"one\n", b"two\n", b"three\n"]
    assert [e.data for e in read_entries(log, tail=1)] == [b"three\n"]
    assert [e.data for e in read_entries(log, tail=0)] == []
    assert [e.data for e in read_entries(log, streams=frozenset({2}))] == [b"two\n"]
    since = parse_record(b"2026-11-28T00:00:02.000000000+00:00 stdout F x")
    assert since is not None
    assert [e.data for e in read_entries(log, since_ns=since.time_ns)] == [b"two\n", b"three\n"]
    assert [e.data for e in read_entries(log, until_ns=since.time_ns)] == [b"one\n", b"two\n"]
