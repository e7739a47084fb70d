"""Where monitors live: ``<cgroup_parent>/conmon`` in every hierarchy, as Podman does.

conmon stays in the daemon's cgroups unless it is moved in the window between spawn and the
start message (notes §2.2, §8.1). Moving it keeps monitors out of the daemon's accounting —
here the daemon's shell sits in a memory cgroup of its own — and lets the daemon's cgroup be
torn down without touching them. Containers go to ``<cgroup_parent>/<id>`` (runc, from
``linux.cgroupsPath``), siblings of ``conmon``, so the parent never holds processes itself
(cgroup v2's no-internal-processes rule).

Best effort by design: a hierarchy that refuses is logged and skipped. cpuset (v1) is skipped:
a fresh cpuset cgroup has no CPUs and refuses tasks until someone copies its parent's.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["MonitorCgroup"]

log = logging.getLogger(__name__)

_SKIP_V1 = {"cpuset"}


class MonitorCgroup:
    def __init__(self, parent: str, *, root: Path = Path("/sys/fs/cgroup")) -> None:
        self.parent = parent.strip("/")
        self.root = root
        self._dirs: list[Path] | None = None

    def hierarchies(self) -> list[Path]:
        """Mounted hierarchies that can take the monitor (v2: the one unified tree)."""
        if (self.root / "cgroup.controllers").exists():
            return [self.root]
        out: list[Path] = []
        seen: set[str] = set()
        try:
            entries = sorted(self.root.iterdir())
        except OSError:
            return []
        for d in entries:
            if d.name in _SKIP_V1 or not (d / "cgroup.procs").exists():
                continue
            real = os.path.realpath(d)  # "cpu" and "cpuacct" may be links to "cpu,cpuacct"
            if real in seen:
                continue
            seen.add(real)
            out.append(d)
        return out

    def directories(self) -> list[Path]:
        if self._dirs is None:
            self._dirs = [h / self.parent / "conmon" for h in self.hierarchies()]
        return self._dirs

    def place(self, pid: int) -> None:
        if not self.parent:
            return
        for d in self.directories():
            try:
                d.mkdir(parents=True, exist_ok=True)
                (d / "cgroup.procs").write_text(f"{pid}\n")
            except OSError as e:
                log.debug("cannot move %d into %s: %s", pid, d, e)
