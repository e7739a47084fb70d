"""Root tests of dockyard.runtime against real runc 1.1.5 and each monitor: conmon 2.1.6 and
dockyard-monitor (compiled from this checkout; see conftest.py). Every test runs once per
monitor, so the two are held to the same observable behaviour.

Each test gets its own exec root (runc --root, exit dir) and its own cgroup parent
``/dockyard-test-<hex>``; containers run a static busybox rootfs shared by the module. Teardown
force-deletes every container, kills every monitor by PID, removes the cgroup directories and
checks that no process mentions the test's directories any more. Every await is bounded by
``asyncio.timeout`` so that a hang fails in seconds instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dockyard.containers.ocispec import SpecOptions, build_runtime_spec
from dockyard.errors import Conflict
from dockyard.runtime import (
    AttachStream,
    ExitWatcher,
    MonitorInfo,
    OCIRuntimeError,
    Runtime,
)
from dockyard.runtime.conmon import kill_monitor, proc_stat

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.access("/usr/sbin/runc", os.X_OK), reason="needs runc"),
    pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox-static"),
]

T = TypeVar("T")
TIMEOUT = 20.0
BUSYBOX_APPLETS = [
    *("sh", "echo", "cat", "sleep", "ls", "id", "stty", "true", "false", "head", "wc"),
    *("printf", "tail", "tr", "seq", "grep"),
]
CGROUP_ROOT = Path("/sys/fs/cgroup")


def run(coro: Awaitable[T], timeout: float = TIMEOUT) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("busybox") / "rootfs"
    (root / "bin").mkdir(parents=True)
    for d in ("proc", "sys", "dev", "etc", "tmp"):
        (root / d).mkdir()
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    return root


@dataclass
class Env:
    """One test's runtime, bundles and everything to clean up."""

    base: Path
    rootfs: Path
    cgroup_parent: str
    monitor: str
    runtime: Runtime
    containers: list[str] = field(default_factory=list)
    monitors: list[MonitorInfo] = field(default_factory=list)

    def bundle(
        self,
        cid: str,
        args: list[str],
        *,
        tty: bool = False,
        parent: Path | None = None,
    ) -> Path:
        bundle = (parent or self.base / "bundles") / cid
        bundle.mkdir(parents=True)
        spec = build_runtime_spec(
            SpecOptions(
                rootfs=self.rootfs,
                args=args,
                env=["PATH=/bin", "HOME=/"],
                hostname=cid[:12],
                tty=tty,
                network_mode="private",
                cgroups_path=f"{self.cgroup_parent}/{cid}",
            )
        )
        (bundle / "config.json").write_text(json.dumps(spec))
        return bundle

    async def create(
        self,
        cid: str,
        bundle: Path,
        *,
        tty: bool = False,
        stdin: bool = False,
        stdin_once: bool = True,
    ) -> MonitorInfo:
        self.containers.append(cid)
        info = await self.runtime.create(
            cid,
            bundle,
            tty=tty,
            stdin=stdin,
            stdin_once=stdin_once,
            log_path=bundle / "ctr.log",
        )
        self.monitors.append(info)
        return info


def _cgroup_dirs(parent: str) -> list[Path]:
    return [
        h / parent.strip("/") for h in CGROUP_ROOT.iterdir() if (h / parent.strip("/")).is_dir()
    ]


def _remove_cgroups(parent: str) -> list[Path]:
    deadline = time.monotonic() + 5
    while True:
        for top in _cgroup_dirs(parent):
            for d in [*sorted(top.rglob("*"), key=lambda p: -len(p.parts)), top]:
                if d.is_dir():
                    try:
                        d.rmdir()
                    except OSError:
                        pass
        left = _cgroup_dirs(parent)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if needle in f.read():
                    st = proc_stat(int(entry))
                    if st is not None and st[0] != "Z":
                        pids.append(int(entry))
        except OSError:
            continue
    return pids


@pytest.fixture
def env(tmp_path: Path, rootfs: Path, monitor: str) -> Iterator[Env]:
    parent = f"/dockyard-test-{secrets.token_hex(4)}"
    e = Env(
        base=tmp_path,
        rootfs=rootfs,
        cgroup_parent=parent,
        monitor=monitor,
        runtime=Runtime(tmp_path / "exec", conmon=monitor, cgroup_parent=parent, timeout=TIMEOUT),
    )
    try:
        yield e
    finally:

        async def teardown() -> None:
            rt = Runtime(tmp_path / "exec", conmon=monitor, cgroup_parent=parent)
            for cid in e.containers:
                await rt.delete(cid, force=True)

        run(teardown())
        for info in e.monitors:
            kill_monitor(info.monitor_pid, info.monitor_start_time)
        deadline = time.monotonic() + 5
        while _processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.05)
        leftovers = _processes_mentioning(str(tmp_path))
        for pid in leftovers:
            os.kill(pid, 9)
        cgroups_left = _remove_cgroups(parent)
        assert not leftovers, f"processes left behind: {leftovers}"
        assert not cgroups_left, f"cgroups left behind: {cgroups_left}"


async def read_all(stream: AttachStream) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    while (msg := await stream.read()) is not None:
        out.append(msg)
    return out


def joined(messages: list[tuple[int, bytes]], stream: int) -> bytes:
    return b"".join(data for s, data in messages if s == stream)


@asynccontextmanager
async def exit_watcher(rt: Runtime) -> AsyncIterator[asyncio.Queue[tuple[str, int, float]]]:
    queue: asyncio.Queue[tuple[str, int, float]] = asyncio.Queue()

    async def on_exit(cid: str, code: int, finished_at: float) -> None:
        await queue.put((cid, code, finished_at))
        rt.remove_exit_file(cid)

    task = asyncio.create_task(ExitWatcher(rt.exit_dir).run(on_exit))
    try:
        yield queue
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def wait_for_exit(queue: asyncio.Queue[tuple[str, int, float]], cid: str) -> int:
    while True:
        got, code, _ = await queue.get()
        if got == cid:
            return code


async def poll(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


# --- containers --------------------------------------------------------------------------------


def test_create_attach_start_separates_streams_and_records_exit(env: Env) -> None:
    rt = env.runtime
    bundle = env.bundle("streams", ["sh", "-c", "echo out; echo err >&2; exit 7"])

    async def scenario() -> None:
        async with exit_watcher(rt) as exits:
            t0 = time.monotonic()
            info = await env.create("streams", bundle)
            created = time.monotonic()
            state = await rt.state("streams")
            assert state is not None and state["status"] == "created"
            assert state["pid"] == info.container_pid
            assert rt.monitor_alive(info)
            stream = await rt.attach(bundle)
            await rt.start("streams")
            started = time.monotonic()
            print(
                f"create {1000 * (created - t0):.0f} ms,"
                f" create+attach+start {1000 * (started - t0):.0f} ms"
            )
            messages = await read_all(stream)
            stream.close()
            assert joined(messages, 1) == b"out\n"
            assert joined(messages, 2) == b"err\n"
            assert {s for s, _ in messages} == {1, 2}

            # The exit file exists before the watcher's callback removes it, or it was read.
            code = await wait_for_exit(exits, "streams")
            assert code == 7
            assert rt.read_exit_file("streams") is None  # the callback removed it

        state = await rt.state("streams")
        assert state is not None and state["status"] == "stopped"
        await poll(lambda: not rt.monitor_alive(info))
        await rt.delete("streams")
        assert await rt.state("streams") is None
        await rt.delete("streams")  # deleting twice is fine

    run(scenario())

    records = (bundle / "ctr.log").read_text().splitlines()
    parsed = [r.split(" ", 3) for r in records]
    assert [(p[1], p[2], p[3]) for p in parsed] == [("stdout", "F", "out"), ("stderr", "F", "err")]
    for p in parsed:
        assert p[0][10] == "T" and len(p[0].split(".")[1]) == len("nnnnnnnnn+00:00")
    for leftover in ("attach",):
        assert not (bundle / leftover).exists()


def test_exit_file_holds_code_and_finish_time(env: Env) -> None:
    rt = env.runtime
    bundle = env.bundle("exitfile", ["sh", "-c", "exit 3"])

    async def scenario() -> None:
        await env.create("exitfile", bundle)
        before = time.time()
        await rt.start("exitfile")
        await poll(lambda: rt.read_exit_file("exitfile") is not None)
        result = rt.read_exit_file("exitfile")
        assert result is not None
        code, finished = result
        assert code == 3
        assert before - 1 <= finished <= time.time() + 1
        rt.remove_exit_file("exitfile")
        assert rt.read_exit_file("exitfile") is None
        await rt.delete("exitfile")

    run(scenario())


def test_stdin_is_delivered_and_half_close_ends_it(env: Env) -> None:
    rt = env.runtime
    bundle = env.bundle("stdin", ["cat"])

    async def scenario() -> None:
        async with exit_watcher(rt) as exits:
            await env.create("stdin", bundle, stdin=True, stdin_once=True)
            stream = await rt.attach(bundle)
            await stream.write(b"hello ")  # before start: buffered in the pipe
            await rt.start("stdin")
            big = b"x" * 40000 + b"\n"  # more than one 32 KiB message
            await stream.write(big)
            stream.close_stdin()
            messages = await read_all(stream)
            stream.close()
            assert joined(messages, 1) == b"hello " + big
            assert await wait_for_exit(exits, "stdin") == 0
        await rt.delete("stdin")

    run(scenario())


def test_leave_stdin_open_survives_a_client_disconnect(env: Env) -> None:
    rt = env.runtime
    bundle = env.bundle("reattach", ["cat"])

    async def scenario() -> None:
        await env.create("reattach", bundle, stdin=True, stdin_once=False)
        await rt.start("reattach")
        first = await rt.attach(bundle)
        await first.write(b"one\n")
        assert await first.read() == (1, b"one\n")
        first.close()  # docker attach detaching: stdin stays open
        await asyncio.sleep(0.2)
        state = await rt.state("reattach")
        assert state is not None and state["status"] == "running"
        second = await rt.attach(bundle)
        await second.write(b"two\n")
        assert await second.read() == (1, b"two\n")
        second.close()
        await rt.kill("reattach", 9)
        await poll(lambda: rt.read_exit_file("reattach") is not None)
        result = rt.read_exit_file("reattach")
        assert result is not None and result[0] == 137
        await rt.delete("reattach")

    run(scenario())


def test_tty_container_gets_raw_output_and_initial_size(env: Env) -> None:
    rt = env.runtime
    bundle = env.bundle("tty", ["sh", "-c", "echo tty-out; echo tty-err >&2; stty size"], tty=True)

    async def scenario() -> None:
        await env.create("tty", bundle, tty=True)
        stream = await rt.attach(bundle)
        rt.resize(bundle, 40, 100)  # before start: conmon already holds the pty
        await rt.start("tty")
        messages = await read_all(stream)
        stream.close()
        assert {s for s, _ in messages} == {1}  # one pty: everything is "stdout"
        assert joined(messages, 1) == b"tty-out\r\ntty-err\r\n40 100\r\n"
        await poll(lambda: rt.read_exit_file("tty") is not None)
        await rt.delete("tty")

    run(scenario())
    assert b"stdout F tty-out\r\n" in (bundle / "ctr.log").read_bytes()


def test_tty_resize_while_running_is_coalesced(env: Env) -> None:
    rt = env.runtime
    script = "read a; stty size; read b; stty size"
    bundle = env.bundle("resize", ["sh", "-c", script], tty=True)

    async def scenario() -> None:
        await env.create("resize", bundle, tty=True)
        stream = await rt.attach(bundle)
        await rt.start("resize")
        rt.resize(bundle, 10, 20)
        await asyncio.sleep(0.3)
        await stream.write(b"\n")
        first = b""
        while b"10 20\r\n" not in first:
            msg = await stream.read()
            assert msg is not None, first
            first += msg[1]
        # A burst: the last size must win and must not be lost (conmon 2.1.6 applies only the
        # first message of each read, so unspaced messages would drop it).
        for h in range(30, 37):
            rt.resize(bundle, h, 80)
        await asyncio.sleep(0.4)
        await stream.write(b"\n")
        rest = joined(await read_all(stream), 1)
        stream.close()
        assert rest.endswith(b"36 80\r\n")
        await rt.delete("resize", force=True)

    run(scenario())


def test_kill_sigkill_reports_137_and_kill_after_exit_conflicts(env: Env) -> None:
    rt = env.runtime
    bundle = env.bundle("killme", ["sleep", "100"])

    async def scenario() -> None:
        async with exit_watcher(rt) as exits:
            await env.create("killme", bundle)
            await rt.start("killme")
            state = await rt.state("killme")
            assert state is not None and state["status"] == "running"
            await rt.kill("killme", 9)
            assert await wait_for_exit(exits, "killme") == 137
        with pytest.raises(Conflict):
            await rt.kill("killme", 15)
        with pytest.raises(Conflict):
            await rt.start("killme")
        with pytest.raises(Conflict):
            await rt.attach(bundle)  # no monitor any more
        await rt.delete("killme")

    run(scenario())


def test_create_failure_reports_runc_message_and_leaves_nothing(env: Env) -> None:
    rt = env.runtime
    bundle = env.bundle("broken", ["/nonexistent"])

    async def scenario() -> None:
        with pytest.raises(OCIRuntimeError) as caught:
            await env.create("broken", bundle)
        message = caught.value.message
        assert "/nonexistent" in message
        assert "no such file or directory" in message
        assert "level=" not in message and "time=" not in message
        assert message.startswith("runc create failed")
        assert await rt.state("broken") is None
        for name in ("attach", "ctl", "winsz"):
            assert not (bundle / name).exists()
        # The monitor went away as well (it exits 1 on its own; we also kill it by PID).
        pid = int((bundle / "conmon.pid").read_text())
        await poll(lambda: (st := proc_stat(pid)) is None or st[0] == "Z")

    run(scenario())


def test_create_with_terminal_mismatch_is_refused_before_conmon(env: Env) -> None:
    from dockyard.errors import InvalidArgument

    bundle = env.bundle("mismatch", ["true"], tty=False)
    with pytest.raises(InvalidArgument):
        run(
            env.runtime.create(
                "mismatch",
                bundle,
                tty=True,
                stdin=False,
                stdin_once=False,
                log_path=bundle / "ctr.log",
            )
        )


def test_long_bundle_path_attaches_through_o_path(env: Env) -> None:
    rt = env.runtime
    deep = env.base / ("d" * 60) / ("e" * 60)
    bundle = env.bundle("longpath", ["echo", "long"], parent=deep)
    assert len(os.fsencode(bundle / "attach")) >= 108

    async def scenario() -> None:
        await env.create("longpath", bundle)
        stream = await rt.attach(bundle)
        await rt.start("longpath")
        assert joined(await read_all(stream), 1) == b"long\n"
        stream.close()
        await poll(lambda: rt.read_exit_file("longpath") is not None)
        await rt.delete("longpath")

    run(scenario())


def test_monitor_outlives_its_runtime_and_is_reachable_from_a_new_one(env: Env) -> None:
    bundle = env.bundle("survivor", ["sh", "-c", "while true; do echo tick; sleep 0.1; done"])

    async def create() -> MonitorInfo:
        rt = Runtime(env.base / "exec", conmon=env.monitor, cgroup_parent=env.cgroup_parent)
        info = await env.create("survivor", bundle)
        await rt.start("survivor")
        return info

    info = run(create())
    gc.collect()
    st = proc_stat(info.monitor_pid)
    assert st is not None
    assert st[1] != os.getpid()  # reparented to init/subreaper, not our child
    assert st[2] == info.monitor_start_time

    async def reconnect() -> None:
        rt = Runtime(env.base / "exec", conmon=env.monitor, cgroup_parent=env.cgroup_parent)
        assert rt.monitor_alive(info)
        state = await rt.state("survivor")
        assert state is not None and state["status"] == "running"
        stream = await rt.attach(bundle)
        assert await stream.read() == (1, b"tick\n")
        async with exit_watcher(rt) as exits:
            await rt.kill("survivor", 9)
            rest = await read_all(stream)
            assert all(s == 1 for s, _ in rest)
            assert await wait_for_exit(exits, "survivor") == 137
        stream.close()
        await poll(lambda: not rt.monitor_alive(info))
        await rt.delete("survivor")
        assert await rt.state("survivor") is None

    run(reconnect())


# --- exec --------------------------------------------------------------------------------------


def _process(args: list[str]) -> dict[str, Any]:
    return {
        "args": args,
        "env": ["PATH=/bin"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "capabilities": {
            "bounding": ["CAP_KILL"],
            "effective": ["CAP_KILL"],
            "permitted": ["CAP_KILL"],
        },
    }


@pytest.fixture
def running(env: Env) -> Iterator[tuple[Env, Path]]:
    bundle = env.bundle("execbox", ["sleep", "1000"])

    async def start() -> None:
        await env.create("execbox", bundle)
        await env.runtime.start("execbox")

    run(start())
    yield env, bundle


def test_exec_streams_output_and_returns_exit_code(running: tuple[Env, Path]) -> None:
    env, _ = running
    rt = env.runtime
    session = env.base / "exec" / "sessions" / "s-output"

    async def scenario() -> None:
        t0 = time.monotonic()
        proc = await rt.exec(
            "execbox",
            session,
            _process(["sh", "-c", "echo exec-out; echo exec-err >&2; exit 3"]),
            tty=False,
            stdin=False,
        )
        print(f"exec started in {1000 * (time.monotonic() - t0):.0f} ms")
        assert proc.pid > 0
        messages = await read_all(proc.stream)
        proc.stream.close()
        assert joined(messages, 1) == b"exec-out\n"
        assert joined(messages, 2) == b"exec-err\n"
        assert await proc.wait() == 3
        assert await proc.wait() == 3  # idempotent
        assert not session.exists()
        state = await rt.state("execbox")
        assert state is not None and state["status"] == "running"  # the container goes on

    run(scenario())


def test_exec_with_stdin_and_tty(running: tuple[Env, Path]) -> None:
    env, _ = running
    rt = env.runtime

    async def scenario() -> None:
        proc = await rt.exec(
            "execbox", env.base / "sess-stdin", _process(["cat"]), tty=False, stdin=True
        )
        await proc.stream.write(b"piped\n")
        proc.stream.close_stdin()
        assert joined(await read_all(proc.stream), 1) == b"piped\n"
        assert await proc.wait() == 0
        proc.stream.close()

        tty = await rt.exec(
            "execbox",
            env.base / "sess-tty",
            _process(["sh", "-c", "stty size; read x; stty size"]),
            tty=True,
            stdin=True,
            height=30,
            width=90,
        )
        first = await tty.stream.read()
        assert first == (1, b"30 90\r\n")
        tty.resize(50, 120)
        await asyncio.sleep(0.2)
        await tty.stream.write(b"\n")
        rest = joined(await read_all(tty.stream), 1)
        assert rest.endswith(b"50 120\r\n")
        assert await tty.wait() == 0
        tty.stream.close()

    run(scenario())


def test_exec_of_missing_binary_raises_runc_message(running: tuple[Env, Path]) -> None:
    env, _ = running
    session = env.base / "sess-missing"

    async def scenario() -> None:
        with pytest.raises(OCIRuntimeError) as caught:
            await env.runtime.exec(
                "execbox", session, _process(["/nonexistent"]), tty=False, stdin=False
            )
        assert "no such file or directory" in caught.value.message
        assert "/nonexistent" in caught.value.message
        assert not session.exists()

    run(scenario())


def test_exec_killed_by_signal_reports_128_plus_n(running: tuple[Env, Path]) -> None:
    env, _ = running

    async def scenario() -> None:
        proc = await env.runtime.exec(
            "execbox", env.base / "sess-kill", _process(["sleep", "100"]), tty=False, stdin=False
        )
        os.kill(proc.pid, 9)
        assert await proc.wait() == 137
        proc.stream.close()

    run(scenario())


def test_exec_in_stopped_container_conflicts(env: Env) -> None:
    rt = env.runtime
    bundle = env.bundle("stopped", ["true"])

    async def scenario() -> None:
        await env.create("stopped", bundle)
        await rt.start("stopped")
        await poll(lambda: rt.read_exit_file("stopped") is not None)
        with pytest.raises(Conflict):
            await rt.exec(
                "stopped", env.base / "sess-x", _process(["true"]), tty=False, stdin=False
            )
        assert not (env.base / "sess-x").exists()
        await rt.delete("stopped")

    run(scenario())


# --- failures around conmon --------------------------------------------------------------------


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.02, 0.04])
def test_cancelled_create_leaves_nothing_behind(env: Env, delay: float) -> None:
    rt = env.runtime
    cid = f"cancel{int(delay * 1000)}"
    bundle = env.bundle(cid, ["sleep", "100"])

    async def scenario() -> None:
        task = asyncio.create_task(env.create(cid, bundle))
        await asyncio.sleep(delay)
        task.cancel()
        try:
            await task  # it may also have finished before the cancel landed
        except asyncio.CancelledError:
            # The handshake ran to its end and what it made was deleted before we got here.
            assert await rt.state(cid) is None
            assert not (bundle / "attach").exists()
            assert rt.read_exit_file(cid) is None

    run(scenario())


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.03])
def test_cancelled_exec_leaves_nothing_behind(running: tuple[Env, Path], delay: float) -> None:
    env, _ = running
    session = env.base / f"sess-cancel-{delay}"
    marker = f"{4000 + int(delay * 1000)}"

    async def scenario() -> None:
        task = asyncio.create_task(
            env.runtime.exec(
                "execbox", session, _process(["sleep", marker]), tty=False, stdin=False
            )
        )
        await asyncio.sleep(delay)
        task.cancel()
        try:
            proc = await task
        except asyncio.CancelledError:
            assert not session.exists()
            assert not _processes_mentioning(f"sleep\0{marker}")
        else:  # finished before the cancel landed
            os.kill(proc.pid, 9)
            assert await proc.wait() == 137
            proc.stream.close()

    run(scenario())


def test_conmon_prefork_errors_are_reported(env: Env, tmp_path: Path) -> None:
    bundle = env.bundle("prefork", ["true"])
    bad_runc = Runtime(
        tmp_path / "exec2", runc="/nonexistent/runc", conmon=env.monitor, cgroup_parent=""
    )
    no_conmon = Runtime(tmp_path / "exec3", conmon="/nonexistent/conmon", cgroup_parent="")

    async def scenario() -> None:
        with pytest.raises(OCIRuntimeError, match="Runtime path /nonexistent/runc is not valid"):
            await bad_runc.create(
                "prefork",
                bundle,
                tty=False,
                stdin=False,
                stdin_once=True,
                log_path=bundle / "ctr.log",
            )
        with pytest.raises(OCIRuntimeError, match="cannot run conmon"):
            await no_conmon.create(
                "prefork",
                bundle,
                tty=False,
                stdin=False,
                stdin_once=True,
                log_path=bundle / "ctr.log",
            )

    run(scenario())
