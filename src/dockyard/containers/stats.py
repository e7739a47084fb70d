"""``docker stats``: a container's resource usage in dockerd's JSON shape, from its cgroups.

Where the numbers come from (what containerd's cgroups package reads for dockerd):

=================  ==========================================  ================================
field              cgroup v1                                   cgroup v2 (unified)
=================  ==========================================  ================================
cpu total/user/sys cpuacct.usage, cpuacct.stat (ticks → ns)    cpu.stat usage/user/system_usec
percpu_usage       cpuacct.usage_percpu                        (none)
throttling_data    cpu.stat nr_periods/nr_throttled/…_time      cpu.stat nr_…, throttled_usec
memory usage/limit memory.usage_in_bytes, limit_in_bytes        memory.current, memory.max
memory max/failcnt memory.max_usage_in_bytes, memory.failcnt    (none), memory.events ``oom``
memory stats       memory.stat (docker's fixed key set)        memory.stat (docker's v2 keys)
pids               pids.current, pids.max                       pids.current, pids.max
blkio              blkio.io_*_recursive, else blkio.throttle.*  io.stat rbytes/wbytes
=================  ==========================================  ================================

The container's cgroup directories are found from ``/proc/<pid>/cgroup`` and the daemon's
``/proc/self/mountinfo`` (any layout, v1, v2 or hybrid; v1 wins when its memory controller
is there, as in dockerd on a hybrid host). ``system_cpu_usage`` and ``online_cpus`` come from
``/proc/stat``; a memory limit above the machine's memory is the machine's memory; networks
are the interfaces of the container's netns (``/proc/<pid>/net/dev``, ``lo`` left out).

Parsing is pure and everything is read below a ``proc`` root, so tests use fake trees. Files
that cannot be read count as zero: a container may exit while it is being measured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.containers.timefmt import ZERO_TIME

__all__ = [
    "CgroupDirs",
    "Sample",
    "StatsReader",
    "empty_stats",
    "parse_blkio_v1",
    "parse_flat_keyed",
    "parse_io_stat",
    "parse_mountinfo",
    "parse_net_dev",
    "parse_proc_cgroup",
    "parse_proc_stat",
    "stats_json",
]

_UNLIMITED_V1 = 0x7FFFFFFFFFFFF000  # memory.limit_in_bytes when no limit is set

MEMORY_V1_KEYS = (
    "cache",
    "rss",
    "rss_huge",
    "mapped_file",
    "dirty",
    "writeback",
    "pgpgin",
    "pgpgout",
    "pgfault",
    "pgmajfault",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "hierarchical_memory_limit",
    "hierarchical_memsw_limit",
    "total_cache",
    "total_rss",
    "total_rss_huge",
    "total_mapped_file",
    "total_dirty",
    "total_writeback",
    "total_pgpgin",
    "total_pgpgout",
    "total_pgfault",
    "total_pgmajfault",
    "total_inactive_anon",
    "total_active_anon",
    "total_inactive_file",
    "total_active_file",
    "total_unevictable",
)

MEMORY_V2_KEYS = (
    "anon",
    "file",
    "kernel_stack",
    "slab",
    "sock",
    "shmem",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "anon_thp",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "slab_reclaimable",
    "slab_unreclaimable",
    "pgfault",
    "pgmajfault",
    "workingset_refault",
    "workingset_activate",
    "workingset_nodereclaim",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "thp_fault_alloc",
    "thp_collapse_alloc",
)

# blkio_stats keys (docker) → v1 file stem (containerd).
BLKIO_V1_FILES = (
    ("io_service_bytes_recursive", "io_service_bytes_recursive"),
    ("io_serviced_recursive", "io_serviced_recursive"),
    ("io_queue_recursive", "io_queued_recursive"),
    ("io_service_time_recursive", "io_service_time_recursive"),
    ("io_wait_time_recursive", "io_wait_time_recursive"),
    ("io_merged_recursive", "io_merged_recursive"),
    ("io_time_recursive", "time_recursive"),
    ("sectors_recursive", "sectors_recursive"),
)

NET_KEYS = (
    "rx_bytes",
    "rx_packets",
    "rx_errors",
    "rx_dropped",
    "tx_bytes",
    "tx_packets",
    "tx_errors",
    "tx_dropped",
)

# ---------------------------------------------------------------------------- parsing


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return 0


def parse_proc_cgroup(text: str) -> tuple[dict[str, str], str | None]:
    """``/proc/<pid>/cgroup`` → (v1 controller → path, unified path or None)."""
    v1: dict[str, str] = {}
    unified: str | None = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            unified = path
            continue
        for name in controllers.split(","):
            if name and not name.startswith("name="):
                v1[name] = path
    return v1, unified


@dataclass(frozen=True)
class CgroupMount:
    mount_point: str
    root: str
    fstype: str
    options: tuple[str, ...]


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """The cgroup and cgroup2 mounts of a ``mountinfo`` file."""
    out: list[CgroupMount] = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        if len(fields) < sep + 4 or sep < 6:
            continue
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        out.append(
            CgroupMount(
                mount_point=_unescape(fields[4]),
                root=_unescape(fields[3]),
                fstype=fstype,
                options=tuple(fields[sep + 3].split(",")),
            )
        )
    return out


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 3 < len(text) and text[i + 1 : i + 4].isdigit():
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _join(mount: CgroupMount, path: str) -> Path:
    root = mount.root.rstrip("/")
    rel = path[len(root) :] if root and (path == root or path.startswith(root + "/")) else path
    return Path(mount.mount_point) / rel.lstrip("/")


@dataclass(frozen=True)
class CgroupDirs:
    """A process's cgroup directories: per v1 controller, and the unified (v2) one."""

    v1: Mapping[str, Path] = field(default_factory=dict)
    unified: Path | None = None

    @classmethod
    def resolve(cls, proc_cgroup: str, mountinfo: str) -> CgroupDirs:
        controllers, unified_path = parse_proc_cgroup(proc_cgroup)
        v1: dict[str, Path] = {}
        unified: Path | None = None
        for mount in parse_mountinfo(mountinfo):
            if mount.fstype == "cgroup2":
                if unified_path is not None and unified is None:
                    unified = _join(mount, unified_path)
                continue
            for option in mount.options:
                if option in controllers and option not in v1:
                    v1[option] = _join(mount, controllers[option])
        return cls(v1=v1, unified=unified)

    @property
    def is_v1(self) -> bool:
        return "memory" in self.v1 or "cpuacct" in self.v1


def parse_flat_keyed(text: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat, cpuacct.stat, memory.events)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = _int(parts[1])
    return out


def parse_blkio_v1(text: str) -> list[dict[str, Any]]:
    """``MAJ:MIN Op value`` lines (the ``Total`` line is skipped), ops as the kernel spells."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, _, minor = parts[0].partition(":")
            out.append(
                {
                    "major": _int(major),
                    "minor": _int(minor),
                    "op": parts[1],
                    "value": _int(parts[2]),
                }
            )
        elif len(parts) == 2 and ":" in parts[0]:  # sectors_recursive, time_recursive
            major, _, minor = parts[0].partition(":")
            out.append(
                {"major": _int(major), "minor": _int(minor), "op": "", "value": _int(parts[1])}
            )
    return out


def parse_io_stat(text: str) -> list[dict[str, Any]]:
    """cgroup v2 ``io.stat`` → dockerd's read/write ``io_service_bytes_recursive`` entries."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        values = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for op, key in (("read", "rbytes"), ("write", "wbytes")):
            out.append(
                {
                    "major": _int(major),
                    "minor": _int(minor),
                    "op": op,
                    "value": _int(values.get(key, "0")),
                }
            )
    return out


def parse_proc_stat(text: str, clock_ticks: int) -> tuple[int, int]:
    """``/proc/stat`` → (system CPU time in ns, online CPUs), as moby's getSystemCPUUsage."""
    usage = 0
    cpus = 0
    for line in text.splitlines():
        if len(line) < 4 or not line.startswith("cpu"):
            break
        if line[3] == " ":
            fields = line.split()
            if len(fields) >= 8:
                ticks = sum(_int(v) for v in fields[1:8])
                usage = ticks * 1_000_000_000 // clock_ticks
        elif line[3].isdigit():
            cpus += 1
    return usage, cpus


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """``/proc/<pid>/net/dev`` → interface → docker's eight counters (``lo`` left out)."""
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        name = name.strip()
        if not sep or not name or name == "lo":
            continue
        v = [_int(x) for x in rest.split()]
        if len(v) < 12:
            continue
        out[name] = {
            "rx_bytes": v[0],
            "rx_packets": v[1],
            "rx_errors": v[2],
            "rx_dropped": v[3],
            "tx_bytes": v[8],
            "tx_packets": v[9],
            "tx_errors": v[10],
            "tx_dropped": v[11],
        }
    return out


def _mem_total(meminfo: str) -> int:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2:
                return _int(parts[1]) * (1024 if parts[-1] == "kB" else 1)
    return 0


# ---------------------------------------------------------------------------- JSON shapes


def _cpu_json(
    total: int = 0,
    percpu: list[int] | None = None,
    kernel: int = 0,
    user: int = 0,
    system: int = 0,
    online: int = 0,
    throttling: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """dockerd's CPUStats (``omitempty`` fields left out when zero, as Go does)."""
    usage: dict[str, Any] = {"total_usage": total}
    if percpu:
        usage["percpu_usage"] = percpu
    usage["usage_in_kernelmode"] = kernel
    usage["usage_in_usermode"] = user
    out: dict[str, Any] = {"cpu_usage": usage}
    if system:
        out["system_cpu_usage"] = system
    if online:
        out["online_cpus"] = online
    t = throttling or {}
    out["throttling_data"] = {
        "periods": t.get("periods", 0),
        "throttled_periods": t.get("throttled_periods", 0),
        "throttled_time": t.get("throttled_time", 0),
    }
    return out


def _empty_blkio() -> dict[str, Any]:
    return {key: None for key, _ in BLKIO_V1_FILES}


def _omit_zero(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v}


@dataclass
class Sample:
    """One reading of a running container (everything but name, id and the ``pre`` fields)."""

    read: str
    cpu_stats: dict[str, Any]
    memory_stats: dict[str, Any]
    pids_stats: dict[str, Any]
    blkio_stats: dict[str, Any]
    networks: dict[str, dict[str, int]] | None = None


def empty_stats(name: str, cid: str) -> dict[str, Any]:
    """What dockerd answers for a container that is not running: zeros, name and id."""
    return stats_json(name, cid, None, None)


def stats_json(
    name: str, cid: str, sample: Sample | None, previous: Sample | None
) -> dict[str, Any]:
    """dockerd's ``StatsJSON`` for ``sample``, with ``previous`` as ``pre*`` (zeros if None)."""
    out: dict[str, Any] = {
        "read": sample.read if sample else ZERO_TIME,
        "preread": previous.read if previous else ZERO_TIME,
        "pids_stats": dict(sample.pids_stats) if sample else {},
        "blkio_stats": dict(sample.blkio_stats) if sample else _empty_blkio(),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": sample.cpu_stats if sample else _cpu_json(),
        "precpu_stats": previous.cpu_stats if previous else _cpu_json(),
        "memory_stats": sample.memory_stats if sample else {},
        "name": f"/{name.lstrip('/')}",
        "id": cid,
    }
    if sample is not None and sample.networks:
        out["networks"] = sample.networks
    return out


# ---------------------------------------------------------------------------- reading


class StatsReader:
    """Reads samples below a ``proc`` root (``/proc``; a fake tree in tests).

    Cgroup paths come from the mount table, so a fake tree's mountinfo names fake
    directories. Never raises for missing files (they read as zero).
    """

    def __init__(self, proc: Path = Path("/proc"), clock_ticks: int | None = None) -> None:
        self.proc = proc
        self.clock_ticks = clock_ticks or os.sysconf("SC_CLK_TCK") or 100
        self._mem_total: int | None = None

    def _text(self, path: Path) -> str:
        try:
            return path.read_text()
        except (OSError, UnicodeDecodeError):
            return ""

    def machine_memory(self) -> int:
        if self._mem_total is None:
            self._mem_total = _mem_total(self._text(self.proc / "meminfo"))
        return self._mem_total

    def system_cpu(self) -> tuple[int, int]:
        return parse_proc_stat(self._text(self.proc / "stat"), self.clock_ticks)

    def cgroups(self, pid: int) -> CgroupDirs:
        return CgroupDirs.resolve(
            self._text(self.proc / str(pid) / "cgroup"),
            self._text(self.proc / "self" / "mountinfo"),
        )

    def sample(self, pid: int, *, networks: bool, now: str) -> Sample:
        """Read the container whose init is ``pid``; ``now`` is the ``read`` timestamp."""
        dirs = self.cgroups(pid)
        system, online = self.system_cpu()
        if dirs.is_v1 or dirs.unified is None:
            sample = self._v1(dirs, system, online, now)
        else:
            sample = self._v2(dirs.unified, system, online, now)
        if networks:
            sample.networks = parse_net_dev(self._text(self.proc / str(pid) / "net" / "dev"))
        return sample

    def _limit(self, value: int) -> int:
        machine = self.machine_memory()
        return machine if machine and (value == 0 or value > machine) else value

    def _v1(self, dirs: CgroupDirs, system: int, online: int, now: str) -> Sample:
        acct = dirs.v1.get("cpuacct")
        cpu = dirs.v1.get("cpu")
        mem = dirs.v1.get("memory")
        pids = dirs.v1.get("pids")
        blkio = dirs.v1.get("blkio")
        total = percpu = user = kernel = None
        if acct is not None:
            total = _int(self._text(acct / "cpuacct.usage") or "0")
            percpu = [_int(v) for v in self._text(acct / "cpuacct.usage_percpu").split()]
            ticks = parse_flat_keyed(self._text(acct / "cpuacct.stat"))
            user = ticks.get("user", 0) * 1_000_000_000 // self.clock_ticks
            kernel = ticks.get("system", 0) * 1_000_000_000 // self.clock_ticks
        throttle = parse_flat_keyed(self._text(cpu / "cpu.stat")) if cpu is not None else {}
        cpu_stats = _cpu_json(
            total=total or 0,
            percpu=percpu or None,
            kernel=kernel or 0,
            user=user or 0,
            system=system,
            online=online,
            throttling={
                "periods": throttle.get("nr_periods", 0),
                "throttled_periods": throttle.get("nr_throttled", 0),
                "throttled_time": throttle.get("throttled_time", 0),
            },
        )
        memory: dict[str, Any] = {}
        if mem is not None:
            raw = parse_flat_keyed(self._text(mem / "memory.stat"))
            memory = _omit_zero(
                {
                    "usage": _int(self._text(mem / "memory.usage_in_bytes") or "0"),
                    "max_usage": _int(self._text(mem / "memory.max_usage_in_bytes") or "0"),
                    "stats": {k: raw.get(k, 0) for k in MEMORY_V1_KEYS},
                    "failcnt": _int(self._text(mem / "memory.failcnt") or "0"),
                    "limit": self._limit(
                        _int(self._text(mem / "memory.limit_in_bytes") or "0") or _UNLIMITED_V1
                    ),
                }
            )
        blk = _empty_blkio()
        if blkio is not None:
            if (blkio / "blkio.io_serviced_recursive").exists():
                for key, stem in BLKIO_V1_FILES:
                    blk[key] = parse_blkio_v1(self._text(blkio / f"blkio.{stem}")) or None
            if not blk["io_service_bytes_recursive"]:
                for key, stem in (
                    ("io_service_bytes_recursive", "io_service_bytes"),
                    ("io_serviced_recursive", "io_serviced"),
                ):
                    text = self._text(blkio / f"blkio.throttle.{stem}_recursive") or self._text(
                        blkio / f"blkio.throttle.{stem}"
                    )
                    blk[key] = parse_blkio_v1(text) or None
        return Sample(
            read=now,
            cpu_stats=cpu_stats,
            memory_stats=memory,
            pids_stats=self._pids(pids),
            blkio_stats=blk,
        )

    def _pids(self, d: Path | None) -> dict[str, Any]:
        if d is None:
            return {}
        limit_text = self._text(d / "pids.max").strip()
        return _omit_zero(
            {
                "current": _int(self._text(d / "pids.current") or "0"),
                "limit": 0 if limit_text in ("", "max") else _int(limit_text),
            }
        )

    def _v2(self, d: Path, system: int, online: int, now: str) -> Sample:
        cpu = parse_flat_keyed(self._text(d / "cpu.stat"))
        cpu_stats = _cpu_json(
            total=cpu.get("usage_usec", 0) * 1000,
            kernel=cpu.get("system_usec", 0) * 1000,
            user=cpu.get("user_usec", 0) * 1000,
            system=system,
            online=online,
            throttling={
                "periods": cpu.get("nr_periods", 0),
                "throttled_periods": cpu.get("nr_throttled", 0),
                "throttled_time": cpu.get("throttled_usec", 0) * 1000,
            },
        )
        memory: dict[str, Any] = {}
        if (d / "memory.current").exists():
            raw = parse_flat_keyed(self._text(d / "memory.stat"))
            limit_text = self._text(d / "memory.max").strip()
            events = parse_flat_keyed(self._text(d / "memory.events"))
            memory = _omit_zero(
                {
                    "usage": _int(self._text(d / "memory.current") or "0"),
                    "stats": {k: raw.get(k, 0) for k in MEMORY_V2_KEYS},
                    "failcnt": events.get("oom", 0),
                    "limit": self._limit(0 if limit_text in ("", "max") else _int(limit_text)),
                }
            )
        blk = _empty_blkio()
        blk["io_service_bytes_recursive"] = parse_io_stat(self._text(d / "io.stat")) or None
        return Sample(
            read=now,
            cpu_stats=cpu_stats,
            memory_stats=memory,
            pids_stats=self._pids(d if (d / "pids.current").exists() else None),
            blkio_stats=blk,
        )
