"""The CLI's surface next to the docker CLI's: every command's usage line (groups and their
aliases included) and ``network ls`` output in each of its formats."""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.daemon import DOCKER, DOCKYARD, TestDaemon

pytestmark = pytest.mark.integration


def _usage(argv: list[str]) -> str:
    out = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=30).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("Usage:")), "")
    for prog in ("Usage:  dockyard ", "Usage:  docker "):
        if line.startswith(prog):
            return "PROG " + line[len(prog) :]
    return line


def _commands(argv: list[str]) -> list[str]:
    out = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=30).stdout
    names, listing = [], False
    for line in out.splitlines():
        if line.startswith("Commands:"):
            listing = True
        elif listing and line.startswith("  ") and not line.startswith("   "):
            names.append(line.split()[0])
        elif listing and not line.strip():
            listing = False
    return names


@pytest.mark.parametrize("group", ["container", "image", "network", "volume", "system", "builder"])
def test_group_usage_lines_match_docker(group: str) -> None:
    subs = _commands([DOCKYARD, group])
    assert subs, group
    for sub in [*subs, *(["list", "remove"] if group in ("container", "image") else [])]:
        ours = _usage([DOCKYARD, group, sub])
        assert ours.startswith("PROG ") and ours == _usage([DOCKER, group, sub]), (group, sub)


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("-q",),
        ("--no-trunc",),
        ("--format", "json"),
        ("--format", "{{.Name}} {{.Driver}} {{.IPv6}} {{.Internal}} {{.CreatedAt}}"),
        ("--format", "table {{.Name}}\t{{.Scope}}"),
        ("-q", "--format", "{{.Name}}"),
        ("--filter", "driver=bridge"),
    ],
)
def test_network_ls_formats_match_docker(daemon: TestDaemon, args: tuple[str, ...]) -> None:
    ours = daemon.cli("network", "ls", *args)
    theirs = daemon.docker("network", "ls", *args)
    assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
    assert ours.stdout == theirs.stdout


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("-q",),
        ("--no-trunc",),
        ("-H=false",),
        ("--human=false",),
        ("--format", "json"),
        ("--format", "{{.ID}}|{{.CreatedAt}}|{{.CreatedSince}}|{{.Size}}|{{.Comment}}"),
        ("--format", "table {{.ID}}\t{{.CreatedBy}}"),
    ],
)
def test_history_formats_match_docker(daemon: TestDaemon, args: tuple[str, ...]) -> None:
    ours = daemon.cli("history", *args, "busybox")
    theirs = daemon.docker("history", *args, "busybox")
    assert ours.returncode == theirs.returncode == 0, (ours.stderr, theirs.stderr)
    assert ours.stdout == theirs.stdout
