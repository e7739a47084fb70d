"""Integration fixtures: one shared daemon with the test images loaded, and fresh ones on demand."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import build_test_images
from tests.integration.daemon import TestDaemon


def _base_dir() -> Path:
    # Short paths: conmon's attach socket path must stay under 108 bytes where possible.
    return Path(tempfile.mkdtemp(prefix="dy-", dir="/var/tmp"))


@contextlib.contextmanager
def running_daemon(config: dict[str, Any] | None = None) -> Iterator[TestDaemon]:
    """A started daemon (with ``config`` as its daemon.json additions) and busybox loaded;
    everything it made is removed afterwards."""
    images = build_test_images()
    base = _base_dir()
    d = TestDaemon(base, config)
    try:
        d.start()
        d.load(images / "busybox_latest.tar")
        yield d
    finally:
        d.close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def daemon() -> Iterator[TestDaemon]:
    with running_daemon() as d:
        yield d


@pytest.fixture
def fresh_daemon() -> Iterator[TestDaemon]:
    with running_daemon() as d:
        yield d
