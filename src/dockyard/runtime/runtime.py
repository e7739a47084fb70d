"""``Runtime``: containers run by runc, each watched by its own conmon.

Layout under the exec root (``--exec-root``, e.g. ``/run/dockyard``)::

    <exec_root>/runc/<cid>/…        runc's state (runc --root; never /run/runc: other engines)
    <exec_root>/exits/<cid>         conmon's exit file for a container (ExitWatcher reads it)

and in each bundle (the caller's directory with ``config.json``)::

    attach        conmon's SEQPACKET attach socket (removed by conmon at exit)
    ctl, winsz    conmon's FIFOs (resize, log reopen; left behind, removed on the next create)
    pidfile       the container init PID (runc)      conmon.pid   the monitor PID (conmon)
    oci-log       runc's JSON log (errors of runc create)

Container lifecycle: ``create`` (conmon runs ``runc create``; state ``created``; attach now to
miss no output) → ``start`` → the process exits, conmon writes the exit file → ``delete``.
Nothing ties a monitor to this object or to this process: a new ``Runtime`` on the same exec
root attaches, resizes, kills and reads exit files of containers created by an earlier one
(persist ``MonitorInfo`` to tell a live monitor from a dead one).

Errors: ``OCIRuntimeError`` (runc/conmon failed; runc's own message), ``NotFound`` (runc does
not know the container), ``Conflict`` (wrong state: not running, already running, no monitor
to attach to), ``InvalidArgument`` (bad container ID, bundle without config.json, terminal
setting that contradicts the spec).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
from pathlib import Path
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.runtime import conmon
from dockyard.runtime.attach import AttachStream
from dockyard.runtime.cgroups import MonitorCgroup
from dockyard.runtime.conmon import MonitorInfo, default_monitor
from dockyard.runtime.ctl import CtlChannel
from dockyard.runtime.exec import ExecProcess
from dockyard.runtime.exits import read_exit_file
from dockyard.runtime.runc import (
    OCIRuntimeError,
    Runc,
    clean_runtime_message,
    last_error_in_log,
    raise_for_runc,
)

__all__ = ["Runtime"]

log = logging.getLogger(__name__)

_ID = re.compile(r"^[\w+\-.]+$")  # runc's container ID rule
_CONMON_FILES = ("attach", "ctl", "winsz")
_MAX_IDLE_CHANNELS = 64


def _check_id(cid: str) -> None:
    if not _ID.match(cid) or cid in (".", ".."):
        raise InvalidArgument(f"invalid container ID: {cid!r}")


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        path.unlink()


class Runtime:
    """runc + conmon behind one object; see the module docstring for layout and lifecycle."""

    def __init__(
        self,
        exec_root: Path,
        *,
        runc: str = "/usr/sbin/runc",
        conmon: str | None = None,
        cgroup_parent: str = "/dockyard",
        timeout: float = 120.0,
    ) -> None:
        self.exec_root = Path(exec_root).absolute()
        self.runc_root = self.exec_root / "runc"
        self.exit_dir = self.exec_root / "exits"
        for d in (self.exec_root, self.runc_root, self.exit_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.runc_binary = runc
        # The monitor binary: conmon 2.1.6 or dockyard-monitor (same command line and
        # protocol); by default dockyard-monitor when installed.
        self.conmon_binary = conmon if conmon is not None else default_monitor()
        self.timeout = timeout
        self._runc = Runc(runc, self.runc_root, timeout=timeout)
        self._cgroup = MonitorCgroup(cgroup_parent)
        self._channels: dict[Path, CtlChannel] = {}

    # --- containers ---------------------------------------------------------------------

    async def create(
        self,
        cid: str,
        bundle: Path,
        *,
        tty: bool,
        stdin: bool,
        stdin_once: bool,
        log_path: Path,
        log_size_max: int | None = None,
        log_max_files: int = 1,
    ) -> MonitorInfo:
        """Have conmon run ``runc create``; return once the container is ``created``.

        ``stdin`` opens a stdin pipe (``-i``); ``stdin_once`` closes it at the first client
        disconnect (Docker's ``StdinOnce``). TTY containers get a pty (``-t``) and must say
        ``process.terminal: true`` in ``config.json``. Any stale exit file of ``cid`` is
        removed first. On failure nothing is left behind: runc state, monitor, sockets.
        Raises ``OCIRuntimeError`` with runc's message (e.g. the executable does not exist).
        """
        _check_id(cid)
        bundle = Path(bundle).absolute()
        self._check_bundle(bundle, tty)
        for name in (*_CONMON_FILES, "pidfile", "conmon.pid", "oci-log"):
            _unlink(bundle / name)
        self.remove_exit_file(cid)
        log_path = Path(log_path).absolute()
        log_path.parent.mkdir(parents=True, exist_ok=True)

        argv = conmon.create_argv(
            conmon=self.conmon_binary,
            runc=self.runc_binary,
            runc_root=self.runc_root,
            cid=cid,
            bundle=bundle,
            exit_dir=self.exit_dir,
            log_path=log_path,
            tty=tty,
            stdin=stdin,
            stdin_once=stdin_once,
            log_size_max=log_size_max,
            log_max_files=log_max_files,
        )
        # The handshake is not interrupted half-way (a monitor forked but not yet known, or a
        # closed sync pipe, would leave a `created` container behind — notes §2.2 step 5): on
        # cancellation it runs to its end and what it made is then deleted through runc.
        inner = asyncio.ensure_future(self._create(cid, bundle, argv))
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            await asyncio.shield(self._discard_create(cid, bundle, inner))
            raise

    async def _create(self, cid: str, bundle: Path, argv: list[str]) -> MonitorInfo:
        launched: conmon.Launched | None = None
        try:
            launched = await conmon.launch(
                argv,
                cwd=bundle,
                pidfile=bundle / "conmon.pid",
                attach_pipe=False,
                timeout=self.timeout,
                place=self._cgroup.place,
            )
            try:
                data = await conmon.recv_message(launched.sync, self.timeout)
            except TimeoutError:
                raise OCIRuntimeError(
                    f"timed out after {self.timeout:g}s waiting for conmon to create {cid}"
                ) from None
            pid = self._sync_result(data, bundle / "oci-log")
            if launched.monitor_start_time is None:
                raise OCIRuntimeError(f"conmon {launched.monitor_pid} vanished during create")
            return MonitorInfo(
                monitor_pid=launched.monitor_pid,
                monitor_start_time=launched.monitor_start_time,
                container_pid=pid,
            )
        except BaseException:
            await asyncio.shield(self._abort_create(cid, bundle, launched))
            raise
        finally:
            if launched is not None:
                # The PID has been read (or we gave up): closing the sync pipe is safe now.
                launched.close()

    async def _discard_create(
        self, cid: str, bundle: Path, inner: asyncio.Future[MonitorInfo]
    ) -> None:
        """A create whose caller went away: once it has finished, delete the container; the
        monitor then sees its init die, exits, and its exit file is removed."""
        try:
            info = await inner
        except BaseException:
            return  # it failed and cleaned up after itself
        with contextlib.suppress(Exception):
            await self._runc.delete(cid, force=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while conmon.monitor_alive(info) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        conmon.kill_monitor(info.monitor_pid, info.monitor_start_time)
        self.remove_exit_file(cid)
        for name in _CONMON_FILES:
            _unlink(bundle / name)

    @staticmethod
    def _check_bundle(bundle: Path, tty: bool) -> None:
        try:
            with open(bundle / "config.json", "rb") as f:
                spec = json.load(f)
        except FileNotFoundError:
            raise InvalidArgument(f"bundle {bundle} has no config.json") from None
        except (OSError, ValueError) as e:
            raise InvalidArgument(f"cannot read {bundle}/config.json: {e}") from e
        terminal = bool(spec.get("process", {}).get("terminal", False))
        if terminal != tty:
            raise InvalidArgument(
                f"process.terminal is {str(terminal).lower()} in {bundle}/config.json but tty={tty}"
            )

    @staticmethod
    def _sync_result(data: bytes, oci_log: Path) -> int:
        """PID from the sync message, or ``OCIRuntimeError`` with runc's cleanest message:
        the JSON ``--log`` first (Podman's preference), then the sync message itself."""
        if not data:
            detail = last_error_in_log(oci_log)
            raise OCIRuntimeError(
                detail or "conmon exited without reporting a PID (runc printed nothing)"
            )
        value, message = conmon.parse_sync_message(data)
        if value <= 0:
            text = last_error_in_log(oci_log) or clean_runtime_message(message or "")
            raise OCIRuntimeError(text or f"runtime failed (status {value})")
        return value

    async def _abort_create(self, cid: str, bundle: Path, launched: conmon.Launched | None) -> None:
        """Undo a failed or timed-out create: the monitor first (a still running ``runc create``
        dies with it, PDEATHSIG), then runc's state and whatever container process got made."""
        if launched is not None:
            conmon.kill_monitor(launched.monitor_pid, launched.monitor_start_time)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 2.0
            while loop.time() < deadline:
                st = conmon.proc_stat(launched.monitor_pid)
                if st is None or st[0] in ("Z", "X", "x") or st[2] != launched.monitor_start_time:
                    break
                await asyncio.sleep(0.02)
        with contextlib.suppress(Exception):
            await self._runc.delete(cid, force=True)
        for name in _CONMON_FILES:
            _unlink(bundle / name)

    async def start(self, cid: str) -> None:
        """``runc start``: run the created container's process. ``NotFound``/``Conflict`` for
        an unknown or not-``created`` container."""
        _check_id(cid)
        await self._runc.start(cid)

    async def kill(self, cid: str, signal: int, *, all_procs: bool = False) -> None:
        """``runc kill``. Raises ``Conflict`` if the container is not running (also after it
        exited but before ``delete``) and ``NotFound`` if runc does not know it."""
        _check_id(cid)
        await self._runc.kill(cid, signal, all_procs=all_procs)

    async def delete(self, cid: str, *, force: bool = False) -> None:
        """``runc delete``: drop runc's state and the container's cgroups. A missing container
        is not an error; a running one needs ``force`` (else ``Conflict``).

        runc keeps a container's state in ``<runc root>/<id>``; without it there is nothing
        to delete, and not spawning runc saves ~10 ms on every ``--rm``."""
        _check_id(cid)
        if not (self.runc_root / cid).exists():
            return
        await self._runc.delete(cid, force=force)

    async def pause(self, cid: str) -> None:
        """``runc pause``: freeze the container's processes (cgroup freezer, v1 and v2).
        ``Conflict`` if it is not running, ``NotFound`` if runc does not know it."""
        _check_id(cid)
        await self._runc.pause(cid)

    async def resume(self, cid: str) -> None:
        """``runc resume``: thaw a paused container. ``Conflict`` if it is not paused."""
        _check_id(cid)
        await self._runc.resume(cid)

    async def update(self, cid: str, resources: Path) -> None:
        """``runc update``: new cgroup limits (an OCI LinuxResources JSON file) for a running
        container. ``OCIRuntimeError`` with runc's message when it refuses."""
        _check_id(cid)
        await self._runc.update(cid, resources)

    async def pids(self, cid: str) -> list[int]:
        """Host PIDs of every process in the container (``runc ps``; from its cgroup)."""
        _check_id(cid)
        return await self._runc.pids(cid)

    async def state(self, cid: str) -> dict[str, Any] | None:
        """``runc state`` as parsed JSON (``status``: created/running/stopped/paused, ``pid``,
        ``bundle`` …), or ``None`` if runc does not know the container."""
        _check_id(cid)
        return await self._runc.state(cid)

    # --- monitors and exit files ---------------------------------------------------------

    def monitor_alive(self, info: MonitorInfo) -> bool:
        """Is this exact conmon still running (not a zombie, same start time)?"""
        return conmon.monitor_alive(info)

    def exit_file(self, cid: str) -> Path:
        _check_id(cid)
        return self.exit_dir / cid

    def read_exit_file(self, cid: str) -> tuple[int, float] | None:
        """``(status, finished_at)`` from ``exits/<cid>``, ``None`` while there is none."""
        return read_exit_file(self.exit_file(cid))

    def remove_exit_file(self, cid: str) -> None:
        _unlink(self.exit_file(cid))

    # --- stdio ---------------------------------------------------------------------------

    async def attach(self, bundle: Path) -> AttachStream:
        """A new connection to the container's attach socket; ``Conflict`` without a monitor."""
        return await AttachStream.connect(Path(bundle).absolute() / "attach")

    def _channel(self, ctl: Path) -> CtlChannel:
        channel = self._channels.get(ctl)
        if channel is None:
            if len(self._channels) >= _MAX_IDLE_CHANNELS:
                for path, ch in list(self._channels.items()):
                    if ch.idle:
                        del self._channels[path]
            channel = self._channels[ctl] = CtlChannel(ctl)
        return channel

    def resize(self, bundle: Path, height: int, width: int) -> None:
        """Resize a TTY container's terminal (the caller checks it is one). Messages are kept
        ≥ 100 ms apart and coalesced to the latest size; no monitor means nothing happens."""
        self._channel(Path(bundle).absolute() / "ctl").resize(height, width)

    def reopen_log(self, bundle: Path) -> None:
        """Make conmon start a new, empty log file at its log path (after a rotation rename)."""
        self._channel(Path(bundle).absolute() / "ctl").reopen_log()

    # --- exec ----------------------------------------------------------------------------

    async def exec(
        self,
        cid: str,
        session_dir: Path,
        process: dict[str, Any],
        *,
        tty: bool,
        stdin: bool,
        height: int = 0,
        width: int = 0,
    ) -> ExecProcess:
        """Run ``process`` (an OCI process object) in container ``cid``.

        ``session_dir`` is this session's own directory (created; its name is the session ID
        given to conmon; it is removed by ``ExecProcess.wait``). The attach stream is connected
        and the initial terminal size applied before the process starts, so no output is lost.
        Raises ``OCIRuntimeError`` with runc's message when the process cannot be started
        (e.g. ``exec: "/nonexistent": stat /nonexistent: no such file or directory``), and
        ``Conflict`` when the container is not running.
        """
        _check_id(cid)
        session_dir = Path(session_dir).absolute()
        if not session_dir.name:
            raise InvalidArgument("exec session directory needs a name")
        (session_dir / "exit").mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in (*_CONMON_FILES, "exec_pid", "conmon.pid", "oci-log"):
            _unlink(session_dir / name)
        _unlink(session_dir / "exit" / cid)
        spec = dict(process)
        spec["terminal"] = tty  # must match -t, or runc refuses
        (session_dir / "process.json").write_text(json.dumps(spec))

        argv = conmon.exec_argv(
            conmon=self.conmon_binary,
            runc=self.runc_binary,
            runc_root=self.runc_root,
            cid=cid,
            session_dir=session_dir,
            tty=tty,
            stdin=stdin,
        )
        inner = asyncio.ensure_future(
            self._exec(cid, session_dir, argv, tty=tty, height=height, width=width)
        )
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            await asyncio.shield(self._discard_exec(inner))
            raise

    async def _exec(
        self, cid: str, session_dir: Path, argv: list[str], *, tty: bool, height: int, width: int
    ) -> ExecProcess:
        launched: conmon.Launched | None = None
        stream: AttachStream | None = None
        try:
            launched = await conmon.launch(
                argv,
                cwd=session_dir,
                pidfile=session_dir / "conmon.pid",
                attach_pipe=True,
                timeout=self.timeout,
                place=self._cgroup.place,
            )
            assert launched.attach is not None
            ready = await conmon.recv_message(launched.attach, self.timeout)
            if ready:
                stream = await AttachStream.connect(session_dir / "attach")
                if tty and height > 0 and width > 0:
                    CtlChannel(session_dir / "ctl").resize(height, width)
                with contextlib.suppress(OSError):
                    launched.start.send(b"\0")  # start #2: conmon now runs `runc exec`
            data = await conmon.recv_message(launched.sync, self.timeout)
            try:
                pid = self._sync_result(data, session_dir / "oci-log")
            except OCIRuntimeError as e:
                if "stopped container" in e.message or "not running" in e.message:
                    raise_for_runc(e.message)
                raise
            if stream is None:
                raise OCIRuntimeError("conmon did not open the exec attach socket")
            process = ExecProcess(
                cid=cid,
                pid=pid,
                stream=stream,
                sync=launched.sync,
                session_dir=session_dir,
                monitor_pid=launched.monitor_pid,
            )
            launched.start.close()
            launched.attach.close()
            return process
        except BaseException as e:
            if stream is not None:
                stream.close()
            if launched is not None:
                launched.close()
                conmon.kill_monitor(launched.monitor_pid, launched.monitor_start_time)
            shutil.rmtree(session_dir, ignore_errors=True)
            if isinstance(e, TimeoutError):
                raise OCIRuntimeError(
                    f"timed out after {self.timeout:g}s starting an exec in {cid}"
                ) from None
            raise

    @staticmethod
    async def _discard_exec(inner: asyncio.Future[ExecProcess]) -> None:
        """An exec whose caller went away: once started, kill the process and reap the
        session (its directory is removed by ``wait``)."""
        try:
            process = await inner
        except BaseException:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.stream.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await process.wait()
