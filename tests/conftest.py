"""Fixtures shared by every tier: the test images made by an independent tool."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

SHARED_BUILDER = Path(
    os.environ.get("DOCKYARD_TEST_IMAGE_BUILDER", "/work/shared/images/build-test-images")
)
TEST_IMAGES = Path(os.environ.get("DOCKYARD_TEST_IMAGES", "/var/cache/dockyard-test-images"))
TEST_IMAGE_CACHE = Path(os.environ.get("DOCKYARD_TEST_IMAGE_CACHE", "/var/cache/test-images"))


def build_test_images(names: str = "busybox,busybox-multi") -> Path:
    """Images made by someone else's tool (OCI layouts + docker-archive tars), cached across runs."""
    if not SHARED_BUILDER.exists():
        pytest.skip(f"test image builder {SHARED_BUILDER} is not available")
    marker = TEST_IMAGES / "images.json"
    wanted = set(names.split(","))
    if marker.exists():
        have = set(json.loads(marker.read_text()).get("images", {}).keys())
        known = {n.split(":")[0] for n in have} | have
        if wanted <= known:
            return TEST_IMAGES
    subprocess.run(
        [
            str(SHARED_BUILDER),
            "--only",
            names,
            "--cache-dir",
            str(TEST_IMAGE_CACHE),
            str(TEST_IMAGES),
        ],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    return TEST_IMAGES


@pytest.fixture(scope="session")
def test_images() -> Path:
    return build_test_images()
