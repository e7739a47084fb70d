""".dockerignore rules, as moby/patternmatcher decides them."""

from __future__ import annotations

import pytest

from dockyard.build.dockerignore import Matcher

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        ("*.log", "a.log", True),
        ("*.log", "dir/a.log", False),
        ("**/*.log", "dir/a.log", True),
        ("**/*.log", "a.log", True),
        ("secret", "secret/key", True),
        ("secret/", "secret/key", True),
        ("/secret", "secret", True),
        ("a/*/c", "a/b/c", True),
        ("a/*/c", "a/b/x/c", False),
        ("a/**/c", "a/b/x/c", True),
        ("?.txt", "a.txt", True),
        ("?.txt", "ab.txt", False),
        ("[a-c].txt", "b.txt", True),
        ("[a-c].txt", "d.txt", False),
        ("*.log\n!keep.log", "keep.log", False),
        ("*.log\n!keep.log", "other.log", True),
        ("!keep.log\n*.log", "keep.log", True),
        ("dir\n!dir/inner", "dir/inner/x", False),
        ("dir\n!dir/inner", "dir/other", True),
        ("# comment\n\n  spaced  ", "spaced", True),
        ("./x/../y", "y", True),
        ("**", "anything/at/all", True),
    ],
)
def test_patterns(patterns: str, path: str, excluded: bool) -> None:
    assert Matcher.from_text(patterns).excluded(path) is excluded


def test_exclusions_keep_directories_walkable() -> None:
    m = Matcher.from_text("dir\n!dir/keep")
    assert m.may_contain_included("dir")
    assert not Matcher.from_text("dir").may_contain_included("dir")
