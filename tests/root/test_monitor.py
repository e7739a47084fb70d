"""Monitor behaviour beyond test_runtime.py, for conmon 2.1.6 and dockyard-monitor alike.

The same scenarios run against both monitors (the ``monitor`` fixture, see conftest.py): the
k8s-file records, ``--log-size-max`` truncation, log reopen after a rotation rename, signal
forwarding, the OOM file, stdin back-pressure, fast exec exits, the process tree and the files
in the bundle. A few tests pin down where dockyard-monitor deliberately differs from 2.1.6
(conmon bugs fixed in later releases) and its memory footprint.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import stat
import time
from pathlib import Path

import pytest

from dockyard.containers.ocispec import SpecOptions, build_runtime_spec
from dockyard.runtime import MonitorInfo, Runtime
from dockyard.runtime.conmon import CONMON, proc_stat
from dockyard.runtime.ctl import write_ctl
from tests.root import test_runtime as base

pytestmark = base.pytestmark

# The fixtures of test_runtime.py (module-scoped busybox rootfs, per-test Env with cleanup).
rootfs = base.rootfs
env = base.env
Env = base.Env
run = base.run
poll = base.poll
read_all = base.read_all
joined = base.joined

_RECORD = re.compile(
    rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d\d:\d\d) (stdout|stderr) ([PF]) (.*)$", re.S
)


def _bundle(e: Env, cid: str, args: list[str], *, tty: bool = False, memory: int = 0) -> Path:
    bundle = e.base / "bundles" / cid
    bundle.mkdir(parents=True)
    spec = build_runtime_spec(
        SpecOptions(
            rootfs=e.rootfs,
            args=args,
            env=["PATH=/bin", "HOME=/"],
            hostname=cid[:12],
            tty=tty,
            network_mode="private",
            cgroups_path=f"{e.cgroup_parent}/{cid}",
            memory=memory,
            memory_swap=memory,
        )
    )
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


async def _create(
    e: Env,
    cid: str,
    bundle: Path,
    *,
    tty: bool = False,
    stdin: bool = False,
    stdin_once: bool = True,
    log_size_max: int | None = None,
) -> MonitorInfo:
    e.containers.append(cid)
    info = await e.runtime.create(
        cid,
        bundle,
        tty=tty,
        stdin=stdin,
        stdin_once=stdin_once,
        log_path=bundle / "ctr.log",
        log_size_max=log_size_max,
    )
    e.monitors.append(info)
    return info


async def _wait_exit(rt: Runtime, cid: str, timeout: float = 10.0) -> int:
    await poll(lambda: rt.read_exit_file(cid) is not None, timeout)
    result = rt.read_exit_file(cid)
    assert result is not None
    return result[0]


def _records(path: Path) -> list[tuple[bytes, bytes, bytes, bytes]]:
    data = path.read_bytes()
    assert data.endswith(b"\n") or not data
    out = []
    for line in data.split(b"\n")[:-1]:
        m = _RECORD.match(line)
        assert m is not None, line
        out.append((m.group(1), m.group(2), m.group(3), m.group(4)))
    return out


def _stream_bytes(records: list[tuple[bytes, bytes, bytes, bytes]], stream: bytes) -> bytes:
    return b"".join(c + (b"\n" if tag == b"F" else b"") for _, s, tag, c in records if s == stream)


def _vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# --- logs ------------------------------------------------------------------------------------


def test_log_records_partial_full_and_chunked(env: Env) -> None:
    script = (
        "printf 'one\\ntwo'; sleep 0.2; printf '\\n'; sleep 0.1; printf err >&2; sleep 0.1;"
        " head -c 20000 /dev/zero | tr '\\0' x; echo"
    )
    bundle = _bundle(env, "logfmt", ["sh", "-c", script])

    async def scenario() -> None:
        await _create(env, "logfmt", bundle)
        await env.runtime.start("logfmt")
        assert await _wait_exit(env.runtime, "logfmt") == 0
        await env.runtime.delete("logfmt")

    run(scenario())
    records = _records(bundle / "ctr.log")
    first = [(s, tag, c) for _, s, tag, c in records[:4]]
    assert first == [
        (b"stdout", b"F", b"one"),
        (b"stdout", b"P", b"two"),
        (b"stdout", b"F", b""),  # only the newline arrived in a later read
        (b"stderr", b"P", b"err"),
    ]
    assert _stream_bytes(records, b"stdout") == b"one\ntwo\n" + b"x" * 20000 + b"\n"
    assert all(len(c) <= 8192 for *_, c in records)
    offset = time.strftime("%z")  # local time with a numeric offset, as conmon writes it
    for stamp, *_ in records:
        assert stamp.endswith(f"{offset[:3]}:{offset[3:]}".encode())
    # Records of one read share a timestamp; timestamps never go backwards.
    stamps = [s for s, *_ in records]
    assert stamps[0] == stamps[1] and stamps == sorted(stamps)


def test_log_size_max_truncates_without_keeping_old_content(env: Env) -> None:
    bundle = _bundle(env, "sizemax", ["sh", "-c", "for i in $(seq 10 59); do echo line-$i; done"])

    async def scenario() -> None:
        await _create(env, "sizemax", bundle, log_size_max=1000)
        await env.runtime.start("sizemax")
        assert await _wait_exit(env.runtime, "sizemax") == 0
        await env.runtime.delete("sizemax")

    run(scenario())
    data = (bundle / "ctr.log").read_bytes()
    assert 0 < len(data) <= 1000
    records = _records(bundle / "ctr.log")
    assert records[-1][3] == b"line-59"
    assert b"line-10" not in data
    assert not (bundle / "ctr.log.1").exists() and not (bundle / "ctr.log.tmp").exists()


def test_reopen_after_rename_splits_the_log(env: Env) -> None:
    bundle = _bundle(env, "rotate", ["sh", "-c", "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.05; done"])  # fmt: skip
    log = bundle / "ctr.log"

    async def scenario() -> None:
        await _create(env, "rotate", bundle)
        await env.runtime.start("rotate")
        await poll(lambda: log.exists() and log.read_bytes().count(b"\n") >= 3)
        os.rename(log, bundle / "ctr.log.1")
        env.runtime.reopen_log(bundle)
        await poll(lambda: log.exists() and log.read_bytes().count(b"\n") >= 3)
        await env.runtime.kill("rotate", 9)
        assert await _wait_exit(env.runtime, "rotate") == 137
        await env.runtime.delete("rotate")

    run(scenario())
    old = _stream_bytes(_records(bundle / "ctr.log.1"), b"stdout").split()
    new = _stream_bytes(_records(log), b"stdout").split()
    ticks = old + new
    assert ticks == [f"tick-{i}".encode() for i in range(len(ticks))]  # nothing lost or doubled
    assert len(old) >= 3 and len(new) >= 3


# --- signals, OOM, stdin ----------------------------------------------------------------------


def test_sigterm_to_the_monitor_is_forwarded_to_the_container(env: Env) -> None:
    script = "trap 'exit 42' TERM; echo ready; while true; do sleep 0.05; done"
    bundle = _bundle(env, "fwd", ["sh", "-c", script])

    async def scenario() -> None:
        info = await _create(env, "fwd", bundle)
        stream = await env.runtime.attach(bundle)
        await env.runtime.start("fwd")
        assert await stream.read() == (1, b"ready\n")
        os.kill(info.monitor_pid, signal.SIGTERM)
        assert await _wait_exit(env.runtime, "fwd") == 42
        stream.close()
        await env.runtime.delete("fwd")

    run(scenario())


def test_oom_kill_leaves_an_oom_file_in_the_bundle(env: Env) -> None:
    # tail keeps the whole newline-free stream in memory: the 16 MiB limit kills it, the
    # shell survives and exits 0 (so the code says nothing; the oom file does).
    bundle = _bundle(env, "oom", ["sh", "-c", "tail /dev/zero; exit 0"], memory=16 << 20)

    async def scenario() -> None:
        await _create(env, "oom", bundle)
        await env.runtime.start("oom")
        assert await _wait_exit(env.runtime, "oom", timeout=30) == 0
        await env.runtime.delete("oom")

    run(scenario(), timeout=40)
    assert (bundle / "oom").exists()


def test_oom_file_not_written_without_oom(env: Env) -> None:
    bundle = _bundle(env, "nooom", ["true"], memory=16 << 20)

    async def scenario() -> None:
        await _create(env, "nooom", bundle)
        await env.runtime.start("nooom")
        assert await _wait_exit(env.runtime, "nooom") == 0
        await env.runtime.delete("nooom")  # removing the cgroup also signals the eventfd

    run(scenario())
    time.sleep(0.2)
    assert not (bundle / "oom").exists()


def test_stdin_back_pressure_delivers_everything(env: Env) -> None:
    bundle = _bundle(env, "pressure", ["sh", "-c", "sleep 0.5; cat"])
    payload = bytes(range(256)) * 1200  # 300 KiB: far more than the pipe holds

    async def scenario() -> None:
        await _create(env, "pressure", bundle, stdin=True, stdin_once=True)
        stream = await env.runtime.attach(bundle)
        await env.runtime.start("pressure")

        async def feed() -> None:
            await stream.write(payload)
            stream.close_stdin()

        feeder = asyncio.create_task(feed())
        out = joined(await read_all(stream), 1)
        await feeder
        stream.close()
        assert out == payload
        assert await _wait_exit(env.runtime, "pressure") == 0
        await env.runtime.delete("pressure")

    run(scenario())


def test_stdin_to_a_container_without_stdin_is_dropped(env: Env) -> None:
    bundle = _bundle(env, "nostdin", ["sh", "-c", "sleep 0.3; echo done"])

    async def scenario() -> None:
        await _create(env, "nostdin", bundle)
        stream = await env.runtime.attach(bundle)
        await env.runtime.start("nostdin")
        await stream.write(b"nobody reads this\n")
        assert joined(await read_all(stream), 1) == b"done\n"
        stream.close()
        assert await _wait_exit(env.runtime, "nostdin") == 0
        await env.runtime.delete("nostdin")

    run(scenario())


# --- exec --------------------------------------------------------------------------------------


def test_fast_exec_exits_and_large_output(env: Env) -> None:
    bundle = _bundle(env, "execs", ["sleep", "100"])
    process = {"env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}}

    async def scenario() -> None:
        await _create(env, "execs", bundle)
        await env.runtime.start("execs")
        for i, tty in enumerate([False, True] * 3):
            proc = await env.runtime.exec(
                "execs",
                env.base / f"s{i}",
                {**process, "args": ["sh", "-c", f"exit {i}"], "terminal": tty},
                tty=tty,
                stdin=False,
            )
            await read_all(proc.stream)
            proc.stream.close()
            assert await proc.wait() == i
        proc = await env.runtime.exec(
            "execs",
            env.base / "big",
            {**process, "args": ["head", "-c", "100000", "/dev/zero"]},
            tty=False,
            stdin=False,
        )
        messages = await read_all(proc.stream)
        proc.stream.close()
        assert joined(messages, 1) == b"\0" * 100000
        assert max(len(d) for _, d in messages) <= 8192
        assert await proc.wait() == 0
        await env.runtime.kill("execs", 9)
        assert await _wait_exit(env.runtime, "execs") == 137
        await env.runtime.delete("execs")

    run(scenario(), timeout=60)


# --- process tree and files -------------------------------------------------------------------


@pytest.mark.parametrize("tty", [False, True])
def test_process_tree_and_bundle_files(env: Env, tty: bool) -> None:
    cid = f"tree{int(tty)}"
    bundle = _bundle(env, cid, ["sleep", "100"], tty=tty)
    tmp_before = {p for p in os.listdir("/tmp") if "conmon" in p or "dockyard-monitor" in p}

    async def scenario() -> None:
        info = await _create(env, cid, bundle, tty=tty)
        assert int((bundle / "conmon.pid").read_text()) == info.monitor_pid
        assert int((bundle / "pidfile").read_text()) == info.container_pid
        st = proc_stat(info.container_pid)
        assert st is not None and st[1] == info.monitor_pid  # init is the monitor's child
        assert os.getsid(info.monitor_pid) == info.monitor_pid  # own session
        mst = proc_stat(info.monitor_pid)
        assert mst is not None and mst[1] != os.getpid()  # not our child
        attach = os.stat(bundle / "attach")
        assert stat.S_ISSOCK(attach.st_mode) and stat.S_IMODE(attach.st_mode) == 0o700
        for fifo in ("ctl", "winsz"):
            assert stat.S_ISFIFO(os.stat(bundle / fifo).st_mode)
        await env.runtime.start(cid)
        await env.runtime.kill(cid, 9)
        assert await _wait_exit(env.runtime, cid) == 137
        await poll(lambda: not env.runtime.monitor_alive(info))
        await env.runtime.delete(cid)

    run(scenario())
    assert (env.runtime.exit_dir / cid).read_bytes() == b"137"  # no newline
    assert not (bundle / "attach").exists()
    tmp_after = {p for p in os.listdir("/tmp") if "conmon" in p or "dockyard-monitor" in p}
    assert tmp_after <= tmp_before  # the console socket is gone


def test_tty_create_failure_reports_runc_message(env: Env) -> None:
    bundle = _bundle(env, "ttyfail", ["/nonexistent"], tty=True)

    async def scenario() -> None:
        from dockyard.runtime import OCIRuntimeError

        with pytest.raises(OCIRuntimeError, match="/nonexistent"):
            await _create(env, "ttyfail", bundle, tty=True)
        assert await env.runtime.state("ttyfail") is None

    run(scenario())


# --- where dockyard-monitor differs from conmon 2.1.6, and its footprint ----------------------


# conmon 2.1.6 applies only the first line of each read (fixed in 2.2.0): ours only.
@pytest.mark.parametrize("monitor", ["dockyard-monitor"], indirect=True)
def test_every_ctl_line_of_one_write_is_applied(env: Env) -> None:
    bundle = _bundle(env, "ctllines", ["sh", "-c", "read x; stty size"], tty=True)

    async def scenario() -> None:
        await _create(env, "ctllines", bundle, tty=True)
        stream = await env.runtime.attach(bundle)
        await env.runtime.start("ctllines")
        assert write_ctl(bundle / "ctl", "1 30 40\n2 0 0\n1 50 60\n")
        await asyncio.sleep(0.2)
        await stream.write(b"\n")
        assert joined(await read_all(stream), 1).endswith(b"50 60\r\n")
        stream.close()
        assert await _wait_exit(env.runtime, "ctllines") == 0
        await env.runtime.delete("ctllines")

    run(scenario())


def test_monitor_resident_memory(env: Env) -> None:
    bundle = _bundle(env, "rss", ["sleep", "600"])

    async def scenario() -> int:
        info = await _create(env, "rss", bundle)
        await env.runtime.start("rss")
        stream = await env.runtime.attach(bundle)  # an attached client costs a little too
        await asyncio.sleep(0.3)
        rss = _vm_rss_kib(info.monitor_pid)
        stream.close()
        await env.runtime.kill("rss", 9)
        assert await _wait_exit(env.runtime, "rss") == 137
        await env.runtime.delete("rss")
        return rss

    rss = run(scenario())
    print(f"{os.path.basename(env.monitor)}: VmRSS {rss} KiB")
    if env.monitor != CONMON:
        assert rss < 1536, f"dockyard-monitor uses {rss} KiB (target: well under 2 MiB)"
