"""Run the same command line through our CLI or the real docker CLI."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from tests.integration.daemon import TestDaemon

Run = Callable[..., subprocess.CompletedProcess[str]]


def runner(daemon: TestDaemon, which: str) -> Run:
    return daemon.cli if which == "dockyard" else daemon.docker
