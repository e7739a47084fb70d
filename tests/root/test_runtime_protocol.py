"""dockyard.runtime without conmon or runc: command lines, wire formats, exit files, ctl pacing.

Tables of input → output for the pure parts; small real fakes (socketpairs, FIFOs, a temp
exit dir) for the I/O parts. Needs no root; it lives beside the root tests of the same package.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dockyard import errors
from dockyard.runtime import AttachStream, ExitWatcher, MonitorInfo, OCIRuntimeError
from dockyard.runtime import exits as exits_mod
from dockyard.runtime.attach import connect_seqpacket
from dockyard.runtime.conmon import (
    create_argv,
    exec_argv,
    monitor_alive,
    parse_sync_message,
    proc_stat,
)
from dockyard.runtime.ctl import MIN_INTERVAL, CtlChannel, write_ctl
from dockyard.runtime.runc import clean_runtime_message, last_error_in_log, raise_for_runc

pytestmark = pytest.mark.unit

T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 10.0) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


# --- command lines -----------------------------------------------------------------------------

_RUNTIME_ARGS = [
    "--runtime-arg", "--root", "--runtime-arg", "/run/dy/runc",
    "--runtime-arg", "--log-format=json", "--runtime-arg", "--log", "--runtime-arg", "/b/oci-log",
]  # fmt: skip


@pytest.mark.parametrize(
    ("tty", "stdin", "stdin_once", "size", "flags"),
    [
        (False, False, False, None, []),
        (False, True, True, None, ["-i"]),
        (False, True, False, None, ["-i", "--leave-stdin-open"]),
        (True, False, False, None, ["-t"]),
        (True, True, False, None, ["-t"]),  # Podman: -t only for TTY containers
        (False, False, False, 1000, []),
    ],
)
def test_create_argv(
    tty: bool, stdin: bool, stdin_once: bool, size: int | None, flags: list[str]
) -> None:
    argv = create_argv(
        conmon="/usr/bin/conmon",
        runc="/usr/sbin/runc",
        runc_root=Path("/run/dy/runc"),
        cid="abc",
        bundle=Path("/b"),
        exit_dir=Path("/run/dy/exits"),
        log_path=Path("/b/ctr.log"),
        tty=tty,
        stdin=stdin,
        stdin_once=stdin_once,
        log_size_max=size,
    )
    expected = [
        "/usr/bin/conmon", "--api-version", "1", "-c", "abc", "-u", "abc",
        "-r", "/usr/sbin/runc", "-b", "/b", "-p", "/b/pidfile", "-P", "/b/conmon.pid",
        "-l", "k8s-file:/b/ctr.log",
        *(["--log-size-max", "1000"] if size else []),
        "--exit-dir", "/run/dy/exits", "--full-attach", *flags, *_RUNTIME_ARGS,
    ]  # fmt: skip
    assert argv == expected


@pytest.mark.parametrize(
    ("tty", "stdin", "flags"),
    [(False, False, []), (False, True, ["-i"]), (True, True, ["-t", "-i"]), (True, False, ["-t"])],
)
def test_exec_argv(tty: bool, stdin: bool, flags: list[str]) -> None:
    s = Path("/x/sess1")
    argv = exec_argv(
        conmon="/usr/bin/conmon",
        runc="/usr/sbin/runc",
        runc_root=Path("/run/dy/runc"),
        cid="abc",
        session_dir=s,
        tty=tty,
        stdin=stdin,
    )
    assert argv == [
        "/usr/bin/conmon", "--api-version", "1", "-c", "abc", "-u", "sess1",
        "-r", "/usr/sbin/runc", "-b", "/x/sess1", "-p", "/x/sess1/exec_pid",
        "-P", "/x/sess1/conmon.pid", "--exit-dir", "/x/sess1/exit", "--full-attach",
        "-l", "none", *flags, "-e", "--exec-attach", "--exec-process-spec",
        "/x/sess1/process.json",
        "--runtime-arg", "--root", "--runtime-arg", "/run/dy/runc",
        "--runtime-arg", "--log-format=json", "--runtime-arg", "--log",
        "--runtime-arg", "/x/sess1/oci-log",
    ]  # fmt: skip


# --- sync messages and runc errors -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"data": 3636}\n', (3636, None)),
        (b'{"pid": 12}\n', (12, None)),  # without --api-version 1
        (b'{"exit_code": 3}\n', (3, None)),
        (b'{"data": 0}\n', (0, None)),
        (b'{"data": -1, "message": "boom"}\n', (-1, "boom")),
        (b'{"data": -1, "message": "a\x1fb\xffc"}\n', (-1, "a\x1fb\ufffdc")),  # raw bytes
        (b'{"data": -1, "message": "line\\nnext"}', (-1, "line\nnext")),
    ],
)
def test_parse_sync_message(raw: bytes, expected: tuple[int, str | None]) -> None:
    assert parse_sync_message(raw) == expected


@pytest.mark.parametrize("raw", [b"", b"garbage", b"[1]", b'{"data": "x"}', b'{"data": true}'])
def test_parse_sync_message_rejects(raw: bytes) -> None:
    with pytest.raises(OCIRuntimeError):
        parse_sync_message(raw)


_NOENT = (
    'runc create failed: unable to start container process: exec: "/nonexistent": '
    "stat /nonexistent: no such file or directory"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'time="2026-11-28T00:59:51Z" level=error msg="runc create failed: unable to start '
            'container process: exec: \\"/nonexistent\\": stat /nonexistent: no such file or '
            'directory"\n',
            _NOENT,
        ),
        (_NOENT + "\n", _NOENT),
        (
            '{"level":"error","msg":"container does not exist","time":"x"}\n',
            "container does not exist",
        ),
        (
            '{"level":"warning","msg":"deprecated","time":"x"}\n'
            '{"level":"error","msg":"the real one","time":"x"}\n',
            "the real one",
        ),
        ('time="x" level=warning msg="only a warning"\n', "only a warning"),
        ("", ""),
        ("   \n", ""),
    ],
)
def test_clean_runtime_message(text: str, expected: str) -> None:
    assert clean_runtime_message(text) == expected


def test_last_error_in_log(tmp_path: Path) -> None:
    log = tmp_path / "oci-log"
    assert last_error_in_log(log) is None
    log.write_text(
        '{"level":"info","msg":"hello","time":"t"}\n'
        '{"level":"error","msg":"first","time":"t"}\n'
        '{"level":"error","msg":"' + _NOENT.replace('"', '\\"') + '","time":"t"}\n'
    )
    assert last_error_in_log(log) == _NOENT


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("container does not exist", errors.NotFound),
        ("container not running", errors.Conflict),
        ("cannot start an already running container", errors.Conflict),
        ("cannot start a container that has stopped", errors.Conflict),
        ("exec failed: cannot exec in a stopped container", errors.Conflict),
        ("cannot delete container abc that is not stopped: running", errors.Conflict),
        ("something else broke", OCIRuntimeError),
    ],
)
def test_raise_for_runc(message: str, kind: type[Exception]) -> None:
    with pytest.raises(kind) as caught:
        raise_for_runc(message)
    assert str(caught.value) == message


def test_oci_runtime_error_is_a_system_error() -> None:
    e = OCIRuntimeError("runc create failed: x")
    assert isinstance(e, errors.SystemError)
    assert e.message == "runc create failed: x"


# --- monitors ----------------------------------------------------------------------------------


def test_proc_stat_and_monitor_alive_detect_pid_reuse() -> None:
    st = proc_stat(os.getpid())
    assert st is not None
    state, ppid, start = st
    assert state in "RS" and ppid == os.getppid()
    assert monitor_alive(MonitorInfo(os.getpid(), start, 1))
    assert not monitor_alive(MonitorInfo(os.getpid(), start + 1, 1))  # same PID, other process
    assert not monitor_alive(MonitorInfo(2**22 + 4321, start, 1))  # no such PID
    assert proc_stat(2**22 + 4321) is None


# --- attach stream -----------------------------------------------------------------------------


def _pair() -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    return ours, theirs


def test_attach_stream_maps_headers_and_ends_at_eof() -> None:
    async def scenario() -> None:
        ours, conmon_side = _pair()
        stream = AttachStream(ours)
        for msg in (b"\x02out", b"\x03err", b"\x02", b"\x09junk", b"\x02" + b"x" * 8192):
            conmon_side.send(msg)
        conmon_side.close()
        got = []
        while (m := await stream.read()) is not None:
            got.append(m)
        assert got == [(1, b"out"), (2, b"err"), (1, b"x" * 8192)]
        assert await stream.read() is None
        stream.close()

    run(scenario())


def test_attach_stream_splits_stdin_and_half_closes() -> None:
    async def scenario() -> None:
        ours, conmon_side = _pair()
        conmon_side.setblocking(False)
        stream = AttachStream(ours)
        await stream.write(b"a" * 40000)
        await stream.write(b"")
        sizes = [len(conmon_side.recv(65536)), len(conmon_side.recv(65536))]
        assert sizes == [32768, 40000 - 32768]
        stream.close_stdin()
        assert conmon_side.recv(65536) == b""  # conmon sees the client's EOF
        conmon_side.send(b"\x02still readable")
        assert await stream.read() == (1, b"still readable")
        await stream.write(b"dropped")  # after close_stdin: silently dropped
        stream.close()
        conmon_side.close()

    run(scenario())


def test_attach_stream_close_wakes_a_pending_read_and_write_after_peer_gone() -> None:
    async def scenario() -> None:
        ours, conmon_side = _pair()
        stream = AttachStream(ours)
        reader = asyncio.create_task(stream.read())
        await asyncio.sleep(0.05)
        assert not reader.done()
        stream.close()
        assert await reader is None
        assert stream.closed
        stream.close()  # idempotent
        conmon_side.close()

        ours2, conmon_side2 = _pair()
        stream2 = AttachStream(ours2)
        conmon_side2.close()
        await stream2.write(b"nobody listens")  # EPIPE is swallowed
        assert await stream2.read() is None
        stream2.close()

    run(scenario())


def test_connect_seqpacket_long_path_and_missing_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("a" * 80) / ("b" * 40)
    deep.mkdir(parents=True)
    path = deep / "attach"
    assert len(os.fsencode(path)) >= 108
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    dirfd = os.open(deep, os.O_PATH)
    try:
        server.bind(f"/proc/self/fd/{dirfd}/attach")  # what conmon does with --full-attach
    finally:
        os.close(dirfd)
    server.listen(1)

    async def scenario() -> None:
        stream = await AttachStream.connect(path)
        conn, _ = server.accept()
        conn.send(b"\x02hi")
        assert await stream.read() == (1, b"hi")
        stream.close()
        conn.close()
        with pytest.raises(errors.Conflict):
            await connect_seqpacket(tmp_path / "nothing" / "attach")
        (tmp_path / "stale").mkdir()
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        stale.bind(str(tmp_path / "stale" / "attach"))
        stale.close()  # bound, never listening: a monitor that died
        with pytest.raises(errors.Conflict):
            await connect_seqpacket(tmp_path / "stale" / "attach")

    try:
        run(scenario())
    finally:
        server.close()


# --- ctl pacing --------------------------------------------------------------------------------


def _read_fifo_messages(fd: int, until: float) -> list[tuple[float, str]]:
    got: list[tuple[float, str]] = []
    while time.monotonic() < until:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            data = b""
        if data:
            got.append((time.monotonic(), data.decode()))
        time.sleep(0.005)
    return got


def test_ctl_channel_spaces_and_coalesces_messages(tmp_path: Path) -> None:
    ctl = tmp_path / "ctl"
    os.mkfifo(ctl)
    reader = os.open(ctl, os.O_RDONLY | os.O_NONBLOCK)

    async def scenario() -> list[tuple[float, str]]:
        channel = CtlChannel(ctl)
        channel.resize(10, 20)  # first one goes out at once
        for h in range(30, 40):  # a burst: only the latest survives
            channel.resize(h, 80)
        channel.reopen_log()
        channel.resize(0, 5)  # ignored
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, _read_fifo_messages, reader, time.monotonic() + 5 * MIN_INTERVAL
        )

    try:
        got = run(scenario())
    finally:
        os.close(reader)
    assert [m for _, m in got] == ["1 10 20\n", "1 39 80\n", "2 0 0\n"]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(got)]
    assert all(g >= MIN_INTERVAL * 0.9 for g in gaps), gaps


def test_ctl_channel_outside_an_event_loop_sleeps_instead(tmp_path: Path) -> None:
    ctl = tmp_path / "ctl"
    os.mkfifo(ctl)
    reader = os.open(ctl, os.O_RDONLY | os.O_NONBLOCK)
    try:
        channel = CtlChannel(ctl)
        t0 = time.monotonic()
        channel.resize(1, 2)
        channel.resize(3, 4)
        assert time.monotonic() - t0 >= MIN_INTERVAL * 0.9
        assert os.read(reader, 100) == b"1 1 2\n1 3 4\n"
    finally:
        os.close(reader)


def test_write_ctl_without_conmon_is_a_no_op(tmp_path: Path) -> None:
    assert write_ctl(tmp_path / "missing", "1 1 1\n") is False  # ENOENT
    os.mkfifo(tmp_path / "ctl")
    assert write_ctl(tmp_path / "ctl", "1 1 1\n") is False  # ENXIO: no reader, never blocks


# --- exit files --------------------------------------------------------------------------------


def _write_exit(directory: Path, cid: str, code: str) -> None:
    tmp = directory / f"{cid}.AbC123"
    tmp.write_text(code)
    os.rename(tmp, directory / cid)


@pytest.mark.parametrize("use_inotify", [True, False])
def test_exit_watcher_reports_each_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, use_inotify: bool
) -> None:
    if not use_inotify:
        monkeypatch.setattr(exits_mod._Inotify, "open", classmethod(lambda cls, d: None))
    exit_dir = tmp_path / "exits"
    exit_dir.mkdir()
    _write_exit(exit_dir, "before", "0")  # written while nobody watched

    async def scenario() -> list[tuple[str, int]]:
        seen: list[tuple[str, int]] = []
        arrived = asyncio.Event()

        async def on_exit(cid: str, code: int, finished_at: float) -> None:
            assert abs(finished_at - time.time()) < 60
            seen.append((cid, code))
            arrived.set()
            if cid == "boom":
                raise RuntimeError("callback bug")  # must not stop the watcher
            if cid != "kept":
                (exit_dir / cid).unlink()

        async def expect(n: int) -> None:
            while len(seen) < n:
                arrived.clear()
                await arrived.wait()

        task = asyncio.create_task(ExitWatcher(exit_dir).run(on_exit))
        await expect(1)
        (exit_dir / "temp.XYZ").write_text("5")  # conmon's temp name: ignored
        _write_exit(exit_dir, "boom", "1")
        await expect(2)
        _write_exit(exit_dir, "kept", "137")
        await expect(3)
        await asyncio.sleep(0.5)  # "kept" stays but is not reported again
        os.unlink(exit_dir / "kept")
        await asyncio.sleep(0.05)
        _write_exit(exit_dir, "kept", "2")  # the next run of a restarted container
        await expect(4)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return seen

    seen = run(scenario())
    assert seen == [("before", 0), ("boom", 1), ("kept", 137), ("kept", 2)]


def test_exit_watcher_cancels_promptly(tmp_path: Path) -> None:
    async def scenario() -> None:
        async def on_exit(cid: str, code: int, finished_at: float) -> None:
            return None

        for _ in range(20):
            task = asyncio.create_task(ExitWatcher(tmp_path / "e").run(on_exit))
            await asyncio.sleep(0.01)
            _write_exit(tmp_path / "e", "x", "0")
            await asyncio.sleep(0)
            task.cancel()
            async with asyncio.timeout(2):
                await asyncio.gather(task, return_exceptions=True)
            os.unlink(tmp_path / "e" / "x")

    run(scenario(), timeout=30)


def test_read_exit_file(tmp_path: Path) -> None:
    from dockyard.runtime.exits import read_exit_file

    assert read_exit_file(tmp_path / "none") is None
    (tmp_path / "a").write_text("137")
    result: Any = read_exit_file(tmp_path / "a")
    assert result[0] == 137 and result[1] == pytest.approx(os.stat(tmp_path / "a").st_mtime)
    (tmp_path / "b").write_text("")
    assert read_exit_file(tmp_path / "b") is None
