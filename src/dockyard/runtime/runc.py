"""The runc adapter: every ``runc`` command line the engine runs directly, and runc's errors.

conmon runs ``runc create`` and ``runc exec``; the engine runs ``start``, ``kill``, ``delete``,
``state``, ``pause``, ``resume`` and ``ps`` itself, always with its own ``--root``
(``/run/runc`` belongs to other engines) and ``--log-format json`` so that errors can be
parsed instead of scraped.

runc reports errors in three shapes, all handled by ``clean_runtime_message``:

- JSON log lines ``{"level":"error","msg":"…","time":"…"}`` (``--log-format json``);
- logfmt ``time="…" level=error msg="…"`` (runc's default text format);
- the bare fatal message runc 1.1 prints to stderr when ``--log`` points elsewhere.

Errors raised here:

- ``OCIRuntimeError`` (a ``dockyard.errors.SystemError``): runc failed; ``.message`` is runc's
  own text, e.g. ``runc create failed: unable to start container process: exec:
  "/nonexistent": stat /nonexistent: no such file or directory``;
- ``NotFound``: runc says the container does not exist (``start``, ``kill``);
- ``Conflict``: the container is in the wrong state (not running, already running, stopped).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from pathlib import Path
from typing import Any, NoReturn

from dockyard import errors

__all__ = ["OCIRuntimeError", "Runc", "clean_runtime_message", "last_error_in_log"]

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_LOGFMT = re.compile(
    r'^time="[^"]*"\s+level=(?P<level>\w+)\s+msg="(?P<msg>(?:[^"\\]|\\.)*)"', re.DOTALL
)
_ERROR_LEVELS = ("error", "fatal", "panic")


class OCIRuntimeError(errors.SystemError):
    """runc (or conmon driving it) failed; ``message`` is runc's own text, cleaned of log noise."""


def _unquote_go(text: str) -> str:
    """Undo logfmt quoting (Go ``%q``-style escapes: ``\\"``, ``\\\\``, ``\\n``, ``\\t``)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _parse_line(line: str) -> tuple[str | None, str]:
    """(level or None, message) for one line of runc output."""
    if line.startswith("{"):
        try:
            obj = json.loads(line, strict=False)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "msg" in obj:
            return str(obj.get("level", "")) or None, str(obj["msg"])
    m = _LOGFMT.match(line)
    if m:
        return m.group("level"), _unquote_go(m.group("msg"))
    return None, line


def clean_runtime_message(text: str) -> str:
    """runc's error text without ``time=… level=error msg=`` or JSON wrapping.

    The last error-level line wins (runc logs warnings before its fatal error); lines that
    carry no level are kept as they are; without any of those, all lines are joined.
    """
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").split("\n")]
    parsed = [_parse_line(ln) for ln in lines if ln]
    if not parsed:
        return ""
    errors_ = [msg for level, msg in parsed if level in _ERROR_LEVELS]
    if errors_:
        return errors_[-1].strip()
    plain = [msg for level, msg in parsed if level is None]
    if plain:
        return "\n".join(plain).strip()
    return "\n".join(msg for _, msg in parsed).strip()


def last_error_in_log(path: Path) -> str | None:
    """The last error-level ``msg`` in a runc ``--log`` file (JSON lines), if any."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 65536))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    found: str | None = None
    for line in data.splitlines():
        level, msg = _parse_line(line.strip())
        if level in _ERROR_LEVELS and msg.strip():
            found = msg.strip()
    return found


def raise_for_runc(
    message: str, *, default: type[errors.DockyardError] = OCIRuntimeError
) -> NoReturn:
    """Map runc's well-known refusals to typed errors; everything else is ``default``."""
    low = message.lower()
    if "container does not exist" in low:
        raise errors.NotFound(message)
    if any(
        s in low
        for s in (
            "container not running",
            "cannot start an already running container",
            "cannot start a container that has stopped",
            "cannot exec in a stopped container",
            "is not stopped",
            "container is not running",
            "container not paused",
        )
    ):
        raise errors.Conflict(message)
    raise default(message)


class Runc:
    """``runc --root ROOT --log-format json <command>`` with timeouts, as argv lists."""

    def __init__(self, binary: str, root: Path, *, timeout: float = 60.0) -> None:
        self.binary = binary
        self.root = Path(root)
        self.timeout = timeout

    def global_args(self) -> list[str]:
        return [self.binary, "--root", str(self.root), "--log-format", "json"]

    async def run(self, *args: str) -> tuple[int, bytes, bytes]:
        """Run one runc command; (returncode, stdout, stderr). Raises ``OCIRuntimeError`` when
        runc cannot be started or does not finish within the timeout."""
        argv = [*self.global_args(), *args]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={"PATH": PATH},
            )
        except OSError as e:
            raise OCIRuntimeError(f"cannot run {self.binary}: {e.strerror or e}") from e
        try:
            async with asyncio.timeout(self.timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise OCIRuntimeError(
                f"runc {args[0] if args else ''} timed out after {self.timeout:g}s"
            ) from None
        finally:
            if proc.returncode is None:  # cancelled
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        assert proc.returncode is not None
        return proc.returncode, out, err

    @staticmethod
    def _message(out: bytes, err: bytes) -> str:
        text = clean_runtime_message(err.decode("utf-8", errors="replace"))
        if not text:
            text = clean_runtime_message(out.decode("utf-8", errors="replace"))
        return text or "runc failed without a message"

    async def _check(self, *args: str) -> bytes:
        rc, out, err = await self.run(*args)
        if rc != 0:
            raise_for_runc(self._message(out, err))
        return out

    async def start(self, cid: str) -> None:
        await self._check("start", cid)

    async def kill(self, cid: str, signal: int, *, all_procs: bool = False) -> None:
        await self._check("kill", *(["--all"] if all_procs else []), cid, str(int(signal)))

    async def delete(self, cid: str, *, force: bool = False) -> None:
        """A container that does not exist is already deleted: not an error."""
        rc, out, err = await self.run("delete", *(["--force"] if force else []), cid)
        if rc != 0:
            message = self._message(out, err)
            if "container does not exist" in message.lower():
                return
            raise_for_runc(message)

    async def pause(self, cid: str) -> None:
        """``runc pause``: freeze every process (cgroup freezer). ``Conflict`` when runc says
        the container is not running (also when it is paused already)."""
        await self._check("pause", cid)

    async def resume(self, cid: str) -> None:
        """``runc resume``: thaw a paused container. ``Conflict`` when it is not paused."""
        await self._check("resume", cid)

    async def update(self, cid: str, resources: Path) -> None:
        """``runc update --resources FILE``: apply an OCI LinuxResources JSON to the cgroup."""
        await self._check("update", "--resources", str(resources), cid)

    async def pids(self, cid: str) -> list[int]:
        """``runc ps --format json``: the host PIDs of every process in the container."""
        out = await self._check("ps", "--format", "json", cid)
        try:
            pids = json.loads(out or b"[]")
        except ValueError as e:
            raise OCIRuntimeError(f"runc ps printed invalid JSON: {e}") from e
        if not isinstance(pids, list) or not all(isinstance(p, int) for p in pids):
            raise OCIRuntimeError("runc ps printed no list of PIDs")
        return [int(p) for p in pids]

    async def state(self, cid: str) -> dict[str, Any] | None:
        rc, out, err = await self.run("state", cid)
        if rc != 0:
            message = self._message(out, err)
            if "container does not exist" in message.lower():
                return None
            raise OCIRuntimeError(message)
        try:
            state = json.loads(out)
        except ValueError as e:
            raise OCIRuntimeError(f"runc state printed invalid JSON: {e}") from e
        if not isinstance(state, dict):
            raise OCIRuntimeError("runc state printed no JSON object")
        return state
