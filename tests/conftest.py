"""Fixtures shared by every tier: the test images made by an independent tool.

`run_image_builder` is the one place that runs the tool; `build_test_images` (the shared,
cached output every tier uses) and the root tests that need their own copy go through it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SHARED_BUILDER = Path(
    os.environ.get("DOCKYARD_TEST_IMAGE_BUILDER", "/work/shared/images/build-test-images")
)
TEST_IMAGES = Path(os.environ.get("DOCKYARD_TEST_IMAGES", "/var/cache/dockyard-test-images"))
TEST_IMAGE_CACHE = Path(os.environ.get("DOCKYARD_TEST_IMAGE_CACHE", "/var/cache/test-images"))
DEFAULT_TEST_IMAGES = "busybox,busybox-multi"


def run_image_builder(
    out: Path, names: str = DEFAULT_TEST_IMAGES, *, timeout: float = 1800
) -> None:
    """Build ``names`` (comma-separated short names) into ``out``, layers cached in
    ``TEST_IMAGE_CACHE`` (a cached run is near-instant). Skips the calling test when the
    tool is not installed; ``CalledProcessError``/``TimeoutExpired`` when it fails."""
    if not SHARED_BUILDER.is_file():
        pytest.skip(f"test image builder {SHARED_BUILDER} is not available")
    subprocess.run(
        [
            *(sys.executable, str(SHARED_BUILDER), "--only", names),
            *("--cache-dir", str(TEST_IMAGE_CACHE), str(out)),
        ],
        check=True,
        capture_output=True,
        timeout=timeout,
    )


def build_test_images(names: str = DEFAULT_TEST_IMAGES) -> Path:
    """Images made by someone else's tool (OCI layouts + docker-archive tars), cached across runs."""
    marker = TEST_IMAGES / "images.json"
    wanted = set(names.split(","))
    if marker.exists():
        have = set(json.loads(marker.read_text()).get("images", {}).keys())
        known = {n.split(":")[0] for n in have} | have
        if wanted <= known:
            return TEST_IMAGES
    run_image_builder(TEST_IMAGES, names)
    return TEST_IMAGES


@pytest.fixture(scope="session")
def test_images() -> Path:
    return build_test_images()
