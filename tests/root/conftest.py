"""Root-test fixtures: the per-container monitors the runtime can drive.

``monitor`` is parametrized over conmon 2.1.6 (Debian's) and ``dockyard-monitor`` compiled
from this checkout into a temp dir (so the tests exercise the current source, not whatever is
installed). A monitor that is not available skips its half of the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dockyard.runtime.conmon import CONMON

MONITOR_SOURCE = (
    Path(__file__).resolve().parents[2] / "src/dockyard/runtime/monitor/dockyard-monitor.c"
)
MONITORS = ["conmon", "dockyard-monitor"]


def compile_monitor(out_dir: Path) -> Path:
    """Build ``dockyard-monitor`` as scripts/install does (static, -Os, stripped)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    binary = out_dir / "dockyard-monitor"
    result = subprocess.run(
        [
            gcc,
            *("-Os", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"),
            *("-ffunction-sections", "-fdata-sections", "-fno-asynchronous-unwind-tables"),
            *("-D_FORTIFY_SOURCE=2", "-o", str(binary), str(MONITOR_SOURCE)),
            *("-static", "-s", "-Wl,--gc-sections"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0 and "cannot find -lc" in result.stderr:
        pytest.skip("static glibc (libc6-dev) is not installed")
    assert result.returncode == 0, result.stderr
    return binary


@pytest.fixture(scope="session")
def dockyard_monitor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_monitor(tmp_path_factory.mktemp("monitor"))


@pytest.fixture(params=MONITORS)
def monitor(request: pytest.FixtureRequest) -> str:
    """Path of the monitor binary under test."""
    if request.param == "conmon":
        if not os.access(CONMON, os.X_OK):
            pytest.skip("conmon is not installed")
        return CONMON
    return str(request.getfixturevalue("dockyard_monitor"))
