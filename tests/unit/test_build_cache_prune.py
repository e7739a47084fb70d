"""``select_prunable``: BuildKit's prune filters over the build cache's entries."""

from __future__ import annotations

import pytest

from dockyard.build.cache import select_prunable
from dockyard.errors import InvalidArgument

ENTRIES = [
    {"key": "a" * 64, "parent": "sha256:p1", "image_id": "sha256:i1", "created": 1000},
    {"key": "b" * 64, "parent": "sha256:p2", "image_id": "sha256:i2", "created": 2000},
]


def test_no_filters_selects_everything() -> None:
    assert select_prunable(ENTRIES, {}) == ["a" * 64, "b" * 64]


def test_until_keeps_newer_entries() -> None:
    assert select_prunable(ENTRIES, {"until": ["x"]}, until=1500) == ["a" * 64]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"id": ["b" * 64]}, ["b" * 64]),
        ({"parent": ["sha256:p1"]}, ["a" * 64]),
        ({"description": ["sha256:i2"]}, ["b" * 64]),
        ({"shared": ["true"]}, ["a" * 64, "b" * 64]),
        ({"private": ["true"]}, []),
        ({"inuse": ["false"]}, ["a" * 64, "b" * 64]),
        ({"type": ["regular"]}, ["a" * 64, "b" * 64]),
    ],
)
def test_field_filters(filters: dict[str, list[str]], expected: list[str]) -> None:
    assert select_prunable(ENTRIES, filters) == expected


def test_bad_filters_are_refused() -> None:
    with pytest.raises(InvalidArgument, match='"color" filter not supported'):
        select_prunable(ENTRIES, {"color": ["red"]})
    with pytest.raises(InvalidArgument, match="only one value"):
        select_prunable(ENTRIES, {"id": ["a", "b"]})
