"""The one place that runs host tools (debootstrap, unshare, chroot) for image builds.

Commands are argv lists with timeouts and a fixed environment (the host's locale, shell
settings and PYTHON* variables must not leak into the image; proxy settings pass through, as
apt needs them to reach the mirror). Their output goes to a log
file under the cache; a failure raises SystemError quoting the end of that log, because the
interesting line of a failed debootstrap is rarely the last one printed to a terminal.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from dockyard.errors import InvalidArgument, SystemError

__all__ = ["BUILD_PATH", "build_env", "require_root_tools", "run_logged"]

BUILD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_PASS_THROUGH = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def build_env() -> dict[str, str]:
    env = {
        "PATH": BUILD_PATH,
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "TERM": "dumb",
        "DEBIAN_FRONTEND": "noninteractive",
        "DEBCONF_NONINTERACTIVE_SEEN": "true",
    }
    env.update({k: os.environ[k] for k in _PASS_THROUGH if k in os.environ})
    return env


def require_root_tools(image: str, tools: Sequence[str]) -> None:
    """Raise InvalidArgument unless we are root and every tool is on the build PATH."""
    if os.geteuid() != 0:
        raise InvalidArgument(
            f"{image}: needs root (debootstrap, chroot, mount namespaces); "
            "run as root or use --only busybox"
        )
    missing = [t for t in tools if shutil.which(t, path=BUILD_PATH) is None]
    if missing:
        raise InvalidArgument(
            f"{image}: missing tools: {', '.join(missing)} (apt-get install debootstrap util-linux)"
        )


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the builder dies, even by SIGKILL.

    Our tools run under `unshare --kill-child`, so killing unshare ends the whole build
    namespace; without this a killed builder would leave debootstrap writing into scratch
    space that the next build deletes.
    """
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def run_logged(argv: Sequence[str], log: Path, what: str, timeout: float) -> None:
    """Run argv with stdout/stderr appended to `log`; raise SystemError on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(("\n$ " + " ".join(argv) + "\n").encode())
        out.flush()
        try:
            result = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=build_env(),
                timeout=timeout,
                check=False,
                preexec_fn=_die_with_parent,  # the builder is single-threaded
            )
        except subprocess.TimeoutExpired as e:
            raise SystemError(f"{what} timed out after {timeout:.0f}s; log: {log}") from e
        except OSError as e:
            raise SystemError(f"{what}: cannot run {argv[0]}: {e}") from e
    if result.returncode != 0:
        tail = log.read_bytes()[-3000:].decode(errors="replace")
        raise SystemError(
            f"{what} failed (exit {result.returncode}); log: {log}\n--- end of log ---\n{tail}"
        )
