"""Pure helpers behind ``GET /images/json`` filters (no root, no I/O)."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.images.filters import familiar_match, parse_timestamp, path_match
from dockyard.reference import parse

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("pattern", "name", "matched"),
    [
        ("busybox", "busybox", True),
        ("busy*", "busybox", True),
        ("*", "a/b", False),  # * does not cross /
        ("*/*", "a/b", True),
        ("b?sybox", "busybox", True),
        ("b[a-v]sybox", "busybox", True),
        ("b[^u]sybox", "busybox", False),
        ("b[!u]sybox", "b!sybox", True),  # Go negates with ^ only
        (r"a\*b", "a*b", True),
        (r"a\*b", "axb", False),
        ("busybox", "busybox:latest", False),
        ("", "", True),
    ],
)
def test_path_match_is_gos(pattern: str, name: str, matched: bool) -> None:
    assert path_match(pattern, name) is matched


@pytest.mark.parametrize("pattern", ["[", "a[", "\\", "[a-"])
def test_bad_patterns(pattern: str) -> None:
    with pytest.raises(InvalidArgument):
        path_match(pattern, "anything")


def test_familiar_match_uses_the_familiar_string_then_name() -> None:
    ref = parse("docker.io/library/busybox:latest")
    assert familiar_match("busybox", ref)
    assert familiar_match("busybox:latest", ref)
    assert familiar_match("busybox:*", ref)
    assert not familiar_match("library/busybox", ref)
    assert not familiar_match("busybox:1", ref)
    reg = parse("127.0.0.1:5000/team/app:v1")
    assert familiar_match("127.0.0.1:5000/team/*", reg)
    assert familiar_match("*/team/app:v1", reg)
    assert not familiar_match("*/app:v1", reg)  # '*' does not cross '/'
    assert not familiar_match("team/app", reg)


def test_parse_timestamp() -> None:
    assert parse_timestamp("1700000000") == 1700000000.0
    assert parse_timestamp("1700000000.5") == 1700000000.5
    assert parse_timestamp("2024-01-01T00:00:00Z") == 1704067200.0
    assert parse_timestamp("1h30m", now=10_000.0) == 10_000.0 - 5400
    assert parse_timestamp("500ms", now=1.0) == 0.5
    for bad in ("", "yesterday", "10x", "1h 2m"):
        with pytest.raises(InvalidArgument):
            parse_timestamp(bad)
