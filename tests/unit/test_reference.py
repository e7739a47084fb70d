"""Reference parsing: Docker's normalisation and errors."""

from __future__ import annotations

import pytest

from dockyard import errors
from dockyard.reference import parse

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("nginx", "docker.io/library/nginx:latest", "nginx:latest"),
        ("library/nginx:1", "docker.io/library/nginx:1", "nginx:1"),
        ("user/app", "docker.io/user/app:latest", "user/app:latest"),
        ("127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t", "127.0.0.1:5000/a/b:t"),
        ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        (
            "busybox@sha256:" + "a" * 64,
            "docker.io/library/busybox@sha256:" + "a" * 64,
            "busybox@sha256:" + "a" * 64,
        ),
    ],
)
def test_normalise(text: str, full: str, familiar: str) -> None:
    ref = parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


@pytest.mark.parametrize("text", ["", "UPPER", "a:b:c", "bad//path", "x@sha256:short", "-x"])
def test_invalid(text: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="invalid reference format"):
        parse(text)


def test_uppercase_message() -> None:
    with pytest.raises(
        errors.InvalidArgument, match=r"repository name \(library/Bad\) must be lowercase"
    ):
        parse("Bad:Name")
