"""The pure parts of diff, top and stats: the changes walk, ps parsing, cgroup readings,
and the CLI's stats arithmetic and table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard import errors
from dockyard.cli.container_ops import (
    DEFAULT_STATS_FORMAT,
    STATS_HEADERS,
    StatsContext,
    stats_entry,
)
from dockyard.cli.formatting import Formatter
from dockyard.containers.changes import ADD, DELETE, MODIFY, Change, changes, layer_dirs
from dockyard.containers.stats import (
    CgroupDirs,
    StatsReader,
    empty_stats,
    parse_blkio_v1,
    parse_io_stat,
    parse_net_dev,
    parse_proc_cgroup,
    parse_proc_stat,
    stats_json,
)
from dockyard.containers.top import parse_ps_output, ps_args_list, validate_ps_args
from dockyard.mount import Mount

pytestmark = pytest.mark.unit

# --------------------------------------------------------------------------- changes


def _write(root: Path, rel: str, data: bytes = b"x") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _same_dir_meta(upper: Path, lower: Path) -> None:
    st = os.stat(lower)
    os.chmod(upper, st.st_mode & 0o7777)
    os.utime(upper, ns=(st.st_atime_ns, st.st_mtime_ns))


def _marker_deleted(upper: Path, path: str, st: os.stat_result) -> str | None:
    """A stand-in for whiteouts that needs no mknod: files holding ``WHITEOUT``."""
    target = upper / path.lstrip("/")
    if target.is_file() and target.read_bytes() == b"WHITEOUT":
        return path
    return None


def _lines(found: list[Change]) -> list[str]:
    return [f"{c.letter} {c.path}" for c in found]


def test_changes_add_modify_delete_in_walk_order(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    _write(lower, "etc/passwd")
    _write(lower, "bin/ls")
    _write(lower, "bin/sh")
    _write(upper, "etc/passwd", b"changed")
    _write(upper, "bin/ls", b"WHITEOUT")
    _write(upper, "new/deep/file")
    _write(upper, "B-upper")  # bytewise order: uppercase before lowercase
    got = changes(upper, [lower], deleted=_marker_deleted)
    assert _lines(got) == [
        "A /B-upper",
        "C /bin",
        "D /bin/ls",
        "C /etc",
        "C /etc/passwd",
        "A /new",
        "A /new/deep",
        "A /new/deep/file",
    ]
    assert got[2].to_json() == {"Path": "/bin/ls", "Kind": DELETE}
    assert got[0].kind == ADD and got[1].kind == MODIFY


def test_copied_up_directory_is_reported_only_for_its_changed_child(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    _write(lower, "etc/passwd")
    _write(upper, "etc/passwd", b"changed")  # a modification: the parent is not added
    _same_dir_meta(upper / "etc", lower / "etc")
    assert _lines(changes(upper, [lower])) == ["C /etc/passwd"]
    _write(upper, "etc/new")  # an addition reports the unchanged parent first (moby#13590)
    _same_dir_meta(upper / "etc", lower / "etc")
    assert _lines(changes(upper, [lower])) == ["C /etc", "A /etc/new", "C /etc/passwd"]


def test_runtime_mount_points_are_hidden(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    _write(lower, "etc/passwd")
    for placeholder in ("etc/hosts", "etc/hostname", "etc/resolv.conf"):
        _write(upper, placeholder, b"")
    (upper / "proc").mkdir()
    (upper / "sys").mkdir()
    (upper / "dev" / "pts").mkdir(parents=True)
    assert changes(upper, [lower]) == []
    (upper / "emptydir").mkdir()  # an empty directory someone made is a change
    _write(upper, "etc/hosts", b"127.0.0.1 x\n")  # no longer a bare placeholder
    assert _lines(changes(upper, [lower])) == ["A /emptydir", "C /etc", "A /etc/hosts"]
    assert _lines(changes(upper, [lower], hide_runtime_paths=False))[:2] == ["A /dev", "A /dev/pts"]


def test_modified_when_in_any_lower_layer(tmp_path: Path) -> None:
    top, bottom, upper = tmp_path / "top", tmp_path / "bottom", tmp_path / "upper"
    top.mkdir()
    _write(bottom, "deep")
    _write(upper, "deep", b"new")
    assert _lines(changes(upper, [top, bottom])) == ["C /deep"]


def test_overlay_whiteouts_and_opaque_directories(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    _write(lower, "bin/ls")
    _write(lower, "var/old")
    (upper / "bin").mkdir(parents=True)
    try:
        os.mknod(upper / "bin" / "ls", 0o600 | 0o020000, os.makedev(0, 0))
        (upper / "var").mkdir()
        os.setxattr(upper / "var", "trusted.overlay.opaque", b"y")
    except PermissionError:
        pytest.skip("making whiteouts needs CAP_MKNOD and CAP_SYS_ADMIN")
    _write(upper, "var/new")
    assert _lines(changes(upper, [lower])) == ["C /bin", "D /bin/ls", "D /var", "A /var/new"]


def test_layer_dirs() -> None:
    overlay = Mount("overlay", "overlay", ("index=off", "upperdir=/u", "lowerdir=/a:/b"))
    assert layer_dirs([overlay]) == [Path("/a"), Path("/b")]
    assert layer_dirs([Mount("bind", "/diff", ("rw", "rbind"))]) == []


# --------------------------------------------------------------------------- top

PS_EF = """\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 01:18 ?        00:00:42 /sbin/init splash
root       12535   12523  0 05:14 ?        00:00:00 sh -c while true; do sleep 1; done
root       12600   12535  0 05:14 ?        00:00:00 sleep 1
root       99999       1  0 05:14 ?        00:00:00 other thing
"""


def test_parse_ps_output_keeps_the_containers_rows() -> None:
    got = parse_ps_output(PS_EF, [12535, 12600])
    assert got["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert got["Processes"] == [
        ["root", "12535", "12523", "0", "05:14", "?", "00:00:00", "sh -c while true; do sleep 1; done"],
        ["root", "12600", "12535", "0", "05:14", "?", "00:00:00", "sleep 1"],
    ]  # fmt: skip


def test_parse_ps_output_command_first_and_threads() -> None:
    text = (
        "CMD                          PPID   PID\n"
        "/bin/bash /st 28808             1 15468\n"
        "redis-server *:28808        15468 15497\n"
        "-                               - -\n"
    )
    got = parse_ps_output(text, [15497])
    assert got["Titles"] == ["CMD", "PPID", "PID"]
    assert got["Processes"] == [["redis-server *:28808", "15468", "15497"], ["-", "-", "-"]]


def test_ps_errors() -> None:
    with pytest.raises(errors.SystemError, match="Couldn't find PID field"):
        parse_ps_output("USER COMMAND\nroot x\n", [1])
    with pytest.raises(errors.SystemError, match="Unexpected pid 'abc'"):
        parse_ps_output("PID CMD\nabc x\n", [1])
    with pytest.raises(errors.SystemError, match='specifying "user=PID" is not allowed'):
        validate_ps_args("-o user=PID")
    validate_ps_args("-o pid=PID")
    with pytest.raises(errors.SystemError, match="option --no-headers is not allowed"):
        ps_args_list("-ef --no-headers")
    assert ps_args_list("") == ["-ef"]
    assert ps_args_list("-o  pid,args") == ["-o", "pid,args"]


# --------------------------------------------------------------------------- stats

CID = "c" * 64


def _fake_v1(tmp_path: Path) -> tuple[Path, Path]:
    proc, cg = tmp_path / "proc", tmp_path / "cgroup"
    rel = f"dockyard/{CID}"
    (proc / "42" / "net").mkdir(parents=True)
    (proc / "self").mkdir()
    (proc / "42" / "cgroup").write_text(
        f"9:name=systemd:/{rel}\n8:pids:/{rel}\n7:blkio:/{rel}\n4:memory:/{rel}\n"
        f"2:cpuacct:/{rel}\n1:cpu:/{rel}\n0::/{rel}\n"
    )
    mounts = []
    for i, ctrl in enumerate(("cpu", "cpuacct", "memory", "blkio", "pids")):
        (cg / ctrl / rel).mkdir(parents=True)
        mounts.append(
            f"{30 + i} 25 0:{30 + i} / {cg / ctrl} rw,nosuid shared:{i} - cgroup cgroup rw,{ctrl}"
        )
    (cg / "unified" / rel).mkdir(parents=True)
    mounts.append(f"40 25 0:40 / {cg / 'unified'} rw shared:9 - cgroup2 cgroup2 rw")
    (proc / "self" / "mountinfo").write_text("\n".join(mounts) + "\n")
    (proc / "stat").write_text(
        "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\n"
        "cpu1 50 0 50 400 0 0 0 0 0 0\nintr 1 2 3\n"
    )
    (proc / "meminfo").write_text("MemTotal:        1000000 kB\nMemFree: 1 kB\n")
    (proc / "42" / "net" / "dev").write_text(
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets "
        "errs drop fifo colls carrier compressed\n"
        "    lo:     100       1    0    0    0     0          0         0      100       1 "
        "   0    0    0     0       0          0\n"
        "  eth0:     990      11    1    2    0     0          0         0      266       3 "
        "   3    4    0     0       0          0\n"
    )
    acct, cpu, mem = cg / "cpuacct" / rel, cg / "cpu" / rel, cg / "memory" / rel
    (acct / "cpuacct.usage").write_text("5000000\n")
    (acct / "cpuacct.usage_percpu").write_text("3000000 2000000 \n")
    (acct / "cpuacct.stat").write_text("user 2\nsystem 1\n")
    (cpu / "cpu.stat").write_text("nr_periods 7\nnr_throttled 1\nthrottled_time 99\n")
    (mem / "memory.usage_in_bytes").write_text("3000000\n")
    (mem / "memory.max_usage_in_bytes").write_text("4000000\n")
    (mem / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (mem / "memory.failcnt").write_text("0\n")
    (mem / "memory.stat").write_text("cache 10\nrss 20\ntotal_inactive_file 1000000\nswap 0\n")
    (cg / "pids" / rel / "pids.current").write_text("2\n")
    (cg / "pids" / rel / "pids.max").write_text("max\n")
    (cg / "blkio" / rel / "blkio.throttle.io_service_bytes_recursive").write_text(
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Total 12288\nTotal 12288\n"
    )
    return proc, cg


def test_v1_sample(tmp_path: Path) -> None:
    proc, _ = _fake_v1(tmp_path)
    reader = StatsReader(proc, clock_ticks=100)
    sample = reader.sample(42, networks=True, now="2026-01-01T00:00:00.000000001Z")
    cpu = sample.cpu_stats
    assert cpu["cpu_usage"] == {
        "total_usage": 5000000,
        "percpu_usage": [3000000, 2000000],
        "usage_in_kernelmode": 10_000_000,
        "usage_in_usermode": 20_000_000,
    }
    assert cpu["system_cpu_usage"] == 1000 * 10_000_000 and cpu["online_cpus"] == 2
    assert cpu["throttling_data"] == {"periods": 7, "throttled_periods": 1, "throttled_time": 99}
    mem = sample.memory_stats
    assert mem["usage"] == 3000000 and mem["max_usage"] == 4000000
    assert mem["limit"] == 1000000 * 1024  # unlimited: the machine's memory
    assert "failcnt" not in mem  # omitempty
    assert mem["stats"]["total_inactive_file"] == 1000000 and mem["stats"]["rss"] == 20
    assert "swap" not in mem["stats"]
    assert sample.pids_stats == {"current": 2}
    assert sample.blkio_stats["io_service_bytes_recursive"][:2] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 4096},
        {"major": 8, "minor": 0, "op": "Write", "value": 8192},
    ]
    assert sample.blkio_stats["io_queue_recursive"] is None
    assert sample.networks == {
        "eth0": {
            "rx_bytes": 990, "rx_packets": 11, "rx_errors": 1, "rx_dropped": 2,
            "tx_bytes": 266, "tx_packets": 3, "tx_errors": 3, "tx_dropped": 4,
        }
    }  # fmt: skip
    out = stats_json("web", CID, sample, None)
    assert out["name"] == "/web" and out["id"] == CID and out["num_procs"] == 0
    assert out["preread"] == "0001-01-01T00:00:00Z"
    assert out["precpu_stats"]["cpu_usage"] == {
        "total_usage": 0,
        "usage_in_kernelmode": 0,
        "usage_in_usermode": 0,
    }


def test_v2_sample(tmp_path: Path) -> None:
    proc, cg = tmp_path / "proc", tmp_path / "cg2"
    d = cg / "dockyard" / CID
    d.mkdir(parents=True)
    (proc / "7").mkdir(parents=True)
    (proc / "self").mkdir()
    (proc / "7" / "cgroup").write_text(f"0::/dockyard/{CID}\n")
    (proc / "self" / "mountinfo").write_text(
        f"30 1 0:26 / {cg} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n"
    )
    (proc / "stat").write_text("cpu  1 1 1 1 1 1 1 0\ncpu0 1 1 1 1 1 1 1 0\n")
    (proc / "meminfo").write_text("MemTotal: 2048 kB\n")
    (d / "cpu.stat").write_text(
        "usage_usec 300\nuser_usec 200\nsystem_usec 100\nnr_periods 0\nnr_throttled 0\n"
        "throttled_usec 5\n"
    )
    (d / "memory.current").write_text("1048576\n")
    (d / "memory.max").write_text("1000000\n")
    (d / "memory.stat").write_text("anon 5\ninactive_file 4096\nfile 7\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n")
    (d / "pids.current").write_text("3\n")
    (d / "pids.max").write_text("100\n")
    (d / "io.stat").write_text("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n")
    sample = StatsReader(proc, clock_ticks=100).sample(7, networks=False, now="t")
    assert sample.cpu_stats["cpu_usage"] == {
        "total_usage": 300_000,
        "usage_in_kernelmode": 100_000,
        "usage_in_usermode": 200_000,
    }
    assert sample.cpu_stats["online_cpus"] == 1
    assert sample.cpu_stats["throttling_data"]["throttled_time"] == 5000
    assert sample.memory_stats["usage"] == 1048576 and sample.memory_stats["limit"] == 1000000
    assert sample.memory_stats["failcnt"] == 2 and sample.memory_stats["stats"]["anon"] == 5
    assert sample.pids_stats == {"current": 3, "limit": 100}
    assert sample.blkio_stats["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "read", "value": 10},
        {"major": 8, "minor": 0, "op": "write", "value": 20},
    ]
    assert sample.networks is None


def test_empty_stats_shape() -> None:
    out = empty_stats("stopped", CID)
    assert out["read"] == out["preread"] == "0001-01-01T00:00:00Z"
    assert out["pids_stats"] == {} and out["memory_stats"] == {} and out["storage_stats"] == {}
    assert set(out["blkio_stats"]) == {
        "io_service_bytes_recursive",
        "io_serviced_recursive",
        "io_queue_recursive",
        "io_service_time_recursive",
        "io_wait_time_recursive",
        "io_merged_recursive",
        "io_time_recursive",
        "sectors_recursive",
    }
    assert all(v is None for v in out["blkio_stats"].values())
    assert "networks" not in out and "system_cpu_usage" not in out["cpu_stats"]


def test_small_parsers() -> None:
    assert parse_proc_cgroup("3:cpu,cpuacct:/a\n1:name=systemd:/b\n0::/c\n") == (
        {"cpu": "/a", "cpuacct": "/a"},
        "/c",
    )
    assert parse_proc_stat("cpu  1 2 3 4 5 6 7 8\ncpu0 1\ncpu1 1\ncpu2 1\n", 100) == (
        28 * 10_000_000,
        3,
    )
    assert parse_blkio_v1("Total 0\n") == []
    assert parse_io_stat("") == []
    assert parse_net_dev("h\nh\n  lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n") == {}
    dirs = CgroupDirs.resolve(
        "0::/x\n", "30 1 0:26 /x /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    )  # a cgroup namespace: the mount's root is the process's cgroup
    assert dirs.unified == Path("/sys/fs/cgroup") and not dirs.is_v1


# --------------------------------------------------------------------------- CLI


def _response(**over: object) -> dict[str, object]:
    v: dict[str, object] = {
        "name": "/web",
        "id": CID,
        "cpu_stats": {
            "cpu_usage": {"total_usage": 300, "percpu_usage": [1, 2]},
            "system_cpu_usage": 2000,
            "online_cpus": 2,
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
        "memory_stats": {
            "usage": 3 * 1024 * 1024,
            "limit": 100 * 1024 * 1024,
            "stats": {"total_inactive_file": 1024 * 1024},
        },
        "pids_stats": {"current": 4},
        "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 500}, "eth1": {"rx_bytes": 500}},
        "blkio_stats": {
            "io_service_bytes_recursive": [
                {"op": "Read", "value": 4096},
                {"op": "write", "value": 2_000_000},
                {"op": "Total", "value": 1},
            ]
        },
    }
    v.update(over)
    return v


def test_stats_entry_arithmetic() -> None:
    e = stats_entry(_response())
    assert e["CPUPercentage"] == pytest.approx(40.0)  # 200/1000 * 2 CPUs * 100
    assert e["Memory"] == 2 * 1024 * 1024 and e["MemoryPercentage"] == pytest.approx(2.0)
    assert (e["NetworkRx"], e["NetworkTx"]) == (2000, 500)
    assert (e["BlockRead"], e["BlockWrite"]) == (4096, 2_000_000)
    assert e["PidsCurrent"] == 4
    v2 = stats_entry(
        _response(memory_stats={"usage": 100, "limit": 0, "stats": {"inactive_file": 40}})
    )
    assert v2["Memory"] == 60 and v2["MemoryPercentage"] == 0.0
    zero = stats_entry(_response(cpu_stats={}, precpu_stats={}))
    assert zero["CPUPercentage"] == 0.0


def test_stats_table() -> None:
    rows = [
        StatsContext("web", stats_entry(_response())),
        StatsContext("gone", None),
    ]
    text = Formatter(DEFAULT_STATS_FORMAT, STATS_HEADERS).render(rows)
    assert text.splitlines() == [
        "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O      BLOCK I/O     PIDS",
        "cccccccccccc   web       40.00%    2MiB / 100MiB       2.00%     2kB / 500B   4.1kB / 2MB   4",
        "               --        --        -- / --             --        --           --            --",
    ]
    custom = Formatter("{{.Container}}: {{.MemPerc}}", STATS_HEADERS)
    assert custom.render([StatsContext("web", stats_entry(_response()))]) == "web: 2.00%\n"
