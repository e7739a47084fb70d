"""A running exec session (``docker exec``), monitored by its own conmon (notes §6).

Lifecycle: ``Runtime.exec`` returns an ``ExecProcess`` once the process runs (its output
already flows into ``stream``: the attach socket was connected before ``runc exec`` started
it). ``wait`` returns the exit status and then removes the session directory; call it exactly
once per session, also for detached execs (from a background task), or the directory stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from pathlib import Path

from dockyard.runtime.attach import AttachStream
from dockyard.runtime.conmon import parse_sync_message, recv_message
from dockyard.runtime.ctl import CtlChannel
from dockyard.runtime.exits import read_exit_file
from dockyard.runtime.runc import OCIRuntimeError

__all__ = ["ExecProcess"]

_EXIT_FILE_WAIT = 5.0  # Podman waits as long for the exit file when the sync pipe says nothing


class ExecProcess:
    """One exec'd process: its host PID, its attach stream, its exit status."""

    def __init__(
        self,
        *,
        cid: str,
        pid: int,
        stream: AttachStream,
        sync: socket.socket,
        session_dir: Path,
        monitor_pid: int,
    ) -> None:
        self.cid = cid
        self.pid = pid
        self.stream = stream
        self.session_dir = session_dir
        self.monitor_pid = monitor_pid
        self._sync = sync
        self._ctl = CtlChannel(session_dir / "ctl")
        self._exit_code: int | None = None
        self._lock = asyncio.Lock()

    @property
    def exit_code(self) -> int | None:
        return self._exit_code

    def resize(self, height: int, width: int) -> None:
        """Resize the exec's terminal (TTY sessions only; rate-limited, see ``CtlChannel``)."""
        if self._exit_code is None:
            self._ctl.resize(height, width)

    async def wait(self) -> int:
        """The exit status (``128+N`` when killed by signal N) from conmon's second sync message,
        else from the session's exit file; then the session directory is removed. Cancelling
        leaves the session intact, so ``wait`` can be called again."""
        async with self._lock:
            if self._exit_code is not None:
                return self._exit_code
            data = await recv_message(self._sync, None)
            code: int | None = None
            if data:
                with contextlib.suppress(OCIRuntimeError):
                    code = parse_sync_message(data)[0]
            if code is None:
                code = await self._code_from_exit_file()
            self._exit_code = code
            self._cleanup()
            return code

    async def _code_from_exit_file(self) -> int:
        path = self.session_dir / "exit" / self.cid
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _EXIT_FILE_WAIT
        while True:
            result = read_exit_file(path)
            if result is not None:
                return result[0]
            if loop.time() >= deadline:
                return -1  # status unknown (conmon died); Podman records -1 too
            await asyncio.sleep(0.05)

    def _cleanup(self) -> None:
        self._ctl.close()
        self._sync.close()
        shutil.rmtree(self.session_dir, ignore_errors=True)
