"""The conmon adapter: command lines, the pipe handshake and facts about monitor processes.

How conmon 2.1.6 is driven here is written up, with what was verified, in
``/work/shared/notes/conmon.md``; section numbers below refer to it.

Lifecycle of one launch (§2): the engine spawns conmon (the *launcher*) with one end of each
``SOCK_SEQPACKET`` socketpair (sync, start, and for exec attach) named by ``_OCI_*PIPE`` env
vars; the launcher blocks on the start pipe — the window in which it is moved into the monitor
cgroup — then forks the *monitor*, writes ``-P`` and exits 0. The monitor reports on the sync
pipe: ``{"data": PID}`` or ``{"data": -1, "message": …}``. For exec (§6.2) it first writes
``{"data": 0}`` on the attach pipe and waits for a second start message, so the engine can
connect to the attach socket before the process runs; the exec's exit status follows as a second
sync message.

The monitor is reparented to PID 1 (or the nearest subreaper) and survives the engine;
``MonitorInfo`` (PID + ``/proc/<pid>/stat`` start time) identifies it again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dockyard.runtime.runc import PATH, OCIRuntimeError

__all__ = [
    "CONMON",
    "DOCKYARD_MONITOR",
    "Launched",
    "MonitorInfo",
    "create_argv",
    "default_monitor",
    "exec_argv",
    "launch",
    "parse_sync_message",
    "proc_stat",
    "recv_message",
]

log = logging.getLogger(__name__)

# Dockyard's own monitor (src/dockyard/runtime/monitor, built by scripts/install): a static,
# glib-free drop-in for the conmon subset used here, ~1/3 of conmon's resident memory.
DOCKYARD_MONITOR = "/usr/local/libexec/dockyard/dockyard-monitor"
CONMON = "/usr/bin/conmon"


def default_monitor() -> str:
    """``dockyard-monitor`` when it is installed (an executable file), else conmon."""
    if os.path.isfile(DOCKYARD_MONITOR) and os.access(DOCKYARD_MONITOR, os.X_OK):
        return DOCKYARD_MONITOR
    return CONMON


# Big enough for conmon's JSON-escaped copy of ≤ 8191 bytes of runc stderr (\u00XX = 6x).
SYNC_RECV_SIZE = 1 << 18


@dataclass(frozen=True)
class MonitorInfo:
    """What identifies a container's conmon across daemon restarts (persist it)."""

    monitor_pid: int  # conmon monitor PID (from the -P file)
    monitor_start_time: int  # field 22 of /proc/<pid>/stat, to detect PID reuse
    container_pid: int  # init PID from the sync pipe


def create_argv(
    *,
    conmon: str,
    runc: str,
    runc_root: Path,
    cid: str,
    bundle: Path,
    exit_dir: Path,
    log_path: Path,
    tty: bool,
    stdin: bool,
    stdin_once: bool,
    log_size_max: int | None = None,
    log_max_files: int = 1,
) -> list[str]:
    """conmon's command line for a container (§1.2). Docker's ``StdinOnce=false`` keeps stdin
    open across client disconnects (``--leave-stdin-open``); TTY containers get ``-t`` only,
    like Podman (with ``-t``, ``-i`` only changes what a disconnect does, §5.4)."""
    argv = [
        conmon,
        "--api-version",
        "1",
        "-c",
        cid,
        "-u",
        cid,
        "-r",
        runc,
        "-b",
        str(bundle),
        "-p",
        str(bundle / "pidfile"),
        "-P",
        str(bundle / "conmon.pid"),
        "-l",
        f"k8s-file:{log_path}",
    ]
    if log_size_max is not None and log_size_max > 0:
        argv += ["--log-size-max", str(log_size_max)]
        # rotation (Docker's max-file) is dockyard-monitor's; conmon empties the log instead
        if log_max_files > 1 and "dockyard-monitor" in Path(conmon).name:
            argv += ["--log-max-files", str(log_max_files)]
    argv += ["--exit-dir", str(exit_dir), "--full-attach"]
    if tty:
        argv.append("-t")
    elif stdin:
        argv.append("-i")
        if not stdin_once:
            argv.append("--leave-stdin-open")
    argv += _runtime_args(runc_root, bundle / "oci-log")
    return argv


def exec_argv(
    *,
    conmon: str,
    runc: str,
    runc_root: Path,
    cid: str,
    session_dir: Path,
    tty: bool,
    stdin: bool,
) -> list[str]:
    """conmon's command line for an exec session (§6.1). Everything lands in ``session_dir``:
    attach/ctl/winsz, the pid files, ``process.json``, ``oci-log`` and ``exit/<cid>`` (never the
    container exit dir: the exec's exit file is also named after the container)."""
    argv = [
        conmon,
        "--api-version",
        "1",
        "-c",
        cid,
        "-u",
        session_dir.name,
        "-r",
        runc,
        "-b",
        str(session_dir),
        "-p",
        str(session_dir / "exec_pid"),
        "-P",
        str(session_dir / "conmon.pid"),
        "--exit-dir",
        str(session_dir / "exit"),
        "--full-attach",
        "-l",
        "none",
    ]
    if tty:
        argv.append("-t")
    if stdin:
        argv.append("-i")
    argv += ["-e", "--exec-attach", "--exec-process-spec", str(session_dir / "process.json")]
    argv += _runtime_args(runc_root, session_dir / "oci-log")
    return argv


def _runtime_args(runc_root: Path, oci_log: Path) -> list[str]:
    out: list[str] = []
    for arg in ("--root", str(runc_root), "--log-format=json", "--log", str(oci_log)):
        out += ["--runtime-arg", arg]
    return out


def parse_sync_message(data: bytes) -> tuple[int, str | None]:
    """``(data, message)`` from one sync/attach pipe message (``{"data": N[, "message": …]}``).

    conmon escapes only some control bytes, so parsing is lenient (``strict=False``, invalid
    UTF-8 replaced). Raises ``OCIRuntimeError`` for anything that is not such an object.
    """
    text = data.decode("utf-8", errors="replace").strip()
    try:
        obj = json.loads(text, strict=False)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        raise OCIRuntimeError(f"unexpected message from conmon: {text[:200]!r}")
    value = obj.get("data", obj.get("pid", obj.get("exit_code")))
    if isinstance(value, bool) or not isinstance(value, int):
        raise OCIRuntimeError(f"unexpected message from conmon: {text[:200]!r}")
    message = obj.get("message")
    return value, (str(message) if message is not None else None)


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, ppid, start_time)`` from ``/proc/<pid>/stat`` (fields 3, 4, 22), or ``None``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rfind(b")") + 2 :].split()
    try:
        return rest[0].decode(), int(rest[1]), int(rest[19])
    except (IndexError, ValueError):
        return None


def monitor_alive(info: MonitorInfo) -> bool:
    """True if the monitor still runs: not a zombie (PID 1 reaps lazily here, and a zombie
    still answers ``kill(pid, 0)``) and the same process (start time unchanged)."""
    st = proc_stat(info.monitor_pid)
    return st is not None and st[0] not in ("Z", "X", "x") and st[2] == info.monitor_start_time


def kill_monitor(pid: int, start_time: int | None, sig: int = 9) -> None:
    """Signal a monitor by PID only if it is still the process we started."""
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X", "x"):
        return
    if start_time is not None and st[2] != start_time:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


async def recv_message(sock: socket.socket, timeout: float | None) -> bytes:
    """One SEQPACKET message (``b""`` at EOF or when the peer reset the connection)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            return await loop.sock_recv(sock, SYNC_RECV_SIZE)
    except (ConnectionResetError, BrokenPipeError):
        return b""


@dataclass
class Launched:
    """A conmon whose launcher has been released and reaped; the caller owns the sockets."""

    monitor_pid: int
    monitor_start_time: int | None
    sync: socket.socket
    start: socket.socket
    attach: socket.socket | None

    def close(self) -> None:
        for s in (self.sync, self.start, self.attach):
            if s is not None:
                s.close()


def _pair() -> tuple[socket.socket, socket.socket]:
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    parent.setblocking(False)
    return parent, child


def _read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


async def launch(
    argv: list[str],
    *,
    cwd: Path,
    pidfile: Path,
    attach_pipe: bool,
    timeout: float,
    place: Callable[[int], None] | None = None,
) -> Launched:
    """Spawn conmon, release it (start #1), reap the launcher and read ``-P``.

    ``place(pid)`` runs while the launcher is blocked on the start pipe (cgroup placement).
    Raises ``OCIRuntimeError`` when conmon cannot be run, exits non-zero (its stderr and stdout
    say why: pre-fork errors go to either) or does not finish in time.
    """
    sync_p, sync_c = _pair()
    start_p, start_c = _pair()
    attach_p, attach_c = _pair() if attach_pipe else (None, None)
    children = [s for s in (sync_c, start_c, attach_c) if s is not None]
    env = {
        "PATH": PATH,
        "_OCI_SYNCPIPE": str(sync_c.fileno()),
        "_OCI_STARTPIPE": str(start_c.fileno()),
    }
    if attach_c is not None:
        env["_OCI_ATTACHPIPE"] = str(attach_c.fileno())
    parents = [s for s in (sync_p, start_p, attach_p) if s is not None]
    proc: asyncio.subprocess.Process | None = None
    try:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=str(cwd),
                env=env,
                pass_fds=tuple(s.fileno() for s in children),
                start_new_session=True,
            )
        except OSError as e:
            raise OCIRuntimeError(f"cannot run conmon {argv[0]}: {e.strerror or e}") from e
        finally:
            for s in children:  # else we would never see EOF on our ends
                s.close()
        if place is not None:
            try:
                place(proc.pid)
            except Exception:  # placement is best effort; never fail a start for it
                log.warning("could not move conmon %d into its cgroup", proc.pid, exc_info=True)
        try:
            start_p.send(b"\0")
        except OSError:
            pass  # the launcher already exited (a pre-fork error): its output says why
        try:
            async with asyncio.timeout(timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            raise OCIRuntimeError(f"conmon did not fork within {timeout:g}s") from None
        if proc.returncode != 0:
            text = " ".join(
                t.decode("utf-8", errors="replace").strip() for t in (err, out) if t.strip()
            )
            raise OCIRuntimeError(
                f"conmon failed (exit status {proc.returncode}): {text or 'no message'}"
            )
        monitor_pid = _read_pidfile(pidfile)
        if monitor_pid is None:
            raise OCIRuntimeError(f"conmon wrote no pid file at {pidfile}")
        st = proc_stat(monitor_pid)
        return Launched(
            monitor_pid=monitor_pid,
            monitor_start_time=st[2] if st is not None else None,
            sync=sync_p,
            start=start_p,
            attach=attach_p,
        )
    except BaseException:
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
        for s in parents:
            s.close()
        raise
