"""The click-free fast path of ``run``/``create``/``build`` parses exactly as click does,
declines what only click can word, and really leaves click (and typing) unimported."""

from __future__ import annotations

import subprocess
import sys
import urllib.parse
from typing import Any

import click
import pytest

from dockyard.cli.build import build as build_command
from dockyard.cli.buildflow import BUILD_FLAGS
from dockyard.cli.containers import create as create_command
from dockyard.cli.containers import run as run_command
from dockyard.cli.flagspec import Flag, parse_flags
from dockyard.cli.runflow import CREATE_FLAGS, RUN_FLAGS
from dockyard.client.wire import quote, quote_plus

RUN_ARGVS = [
    ["busybox"],
    ["--rm", "busybox", "true"],
    ["-it", "--rm", "busybox", "sh"],
    ["-d", "-p", "8080:80", "-p127.0.0.1:81:80", "--name", "web", "nginx"],
    ["-dp", "80:80", "nginx"],
    ["-e", "A=1", "--env=B=2", "-eC=3", "-e=D=4", "busybox", "env"],
    ["--network", "none", "--net=host", "busybox"],
    ["--sig-proxy=false", "busybox"],
    ["--rm=true", "-i=false", "busybox"],
    ["--stop-timeout", "7", "busybox"],
    ["-v", "/a:/b", "--mount", "type=tmpfs,dst=/t", "-w", "/w", "-u", "1:2", "busybox"],
    ["busybox", "sh", "-c", "echo --rm -d"],
    ["--", "busybox", "-x"],
    ["--entrypoint", "", "--hostname", "h", "-h", "h2", "busybox"],
    ["--pull", "never", "-q", "--platform", "linux/amd64", "busybox"],
]


def _click_params(command: click.Command, argv: list[str]) -> dict[str, Any]:
    ctx = command.make_context(command.name or "x", list(argv))
    return dict(ctx.params)


def _fast(flags: tuple[Flag, ...], argv: list[str], interspersed: bool) -> dict[str, Any]:
    parsed = parse_flags(flags, argv, interspersed=interspersed)
    assert parsed is not None, argv
    values, positionals = parsed
    values["args"] = tuple(positionals)
    return values


@pytest.mark.parametrize("argv", RUN_ARGVS)
def test_run_flags_parse_as_click_does(argv: list[str]) -> None:
    assert _fast(RUN_FLAGS, argv, False) == _click_params(run_command, argv)


@pytest.mark.parametrize("argv", RUN_ARGVS[:7])
def test_create_flags_parse_as_click_does(argv: list[str]) -> None:
    argv = [a for a in argv if a not in ("-d", "-dp", "--sig-proxy=false")]
    if argv[:1] == ["80:80"]:
        argv = argv[1:]
    assert _fast(CREATE_FLAGS, argv, False) == _click_params(create_command, argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["."],
        ["-t", "a:1", "-t", "b", "--build-arg", "X=1", "-f", "Dockerfile.x", "."],
        [".", "-q", "--no-cache", "--rm=false", "--label", "k=v"],
        ["--iidfile", "/tmp/id", "--target", "stage", "--pull", "-"],
    ],
)
def test_build_flags_parse_as_click_does(argv: list[str]) -> None:
    assert _fast(BUILD_FLAGS, argv, True) == _click_params(build_command, argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--bogus", "busybox"],
        ["-Z", "busybox"],
        ["--name"],
        ["-e"],
        ["--stop-timeout", "soon", "busybox"],
        ["--rm=maybe", "busybox"],
        ["--no-sig-proxy", "busybox"],
    ],
)
def test_fast_parse_declines_what_click_must_word(argv: list[str]) -> None:
    assert parse_flags(RUN_FLAGS, argv, interspersed=False) is None


def test_run_never_imports_click_or_typing() -> None:
    code = (
        "import sys\n"
        "from dockyard.cli.main import main\n"
        "rc = main(['-H', 'unix:///nonexistent/dockyard.sock', 'run', '--rm', 'busybox'])\n"
        "loaded = [m for m in ('click', 'typing', 'dataclasses') if m in sys.modules]\n"
        "print(rc, ','.join(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    rc, _, loaded = out.stdout.strip().partition(" ")
    assert loaded == ""
    assert rc != "0"  # no daemon there: the command failed, but never went through click
    assert "Cannot connect" in out.stderr or "connect" in out.stderr.lower()


def test_usage_errors_still_come_from_click() -> None:
    code = (
        "import sys\n"
        "from dockyard.cli.main import main\n"
        "rc = main(['run', '--bogus', 'busybox'])\n"
        "print(rc, 'click' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["125", "True"]
    assert "unknown flag: --bogus" in out.stderr


@pytest.mark.parametrize(
    "text", ["busybox", "a b/c", "ünï:cödé", "x?y=z&w", "~._-", "%41", "/v1.44/containers"]
)
@pytest.mark.parametrize("safe", ["", "/", "$&+,/:;=@"])
def test_quote_matches_urllib(text: str, safe: str) -> None:
    assert quote(text, safe) == urllib.parse.quote(text, safe=safe)
    assert quote_plus(text, safe) == urllib.parse.quote_plus(text, safe=safe)
