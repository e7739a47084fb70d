"""What every command needs before click is loaded: the exit-status exception, the global
options, docker's error prefix.

Kept free of click (and of ``dataclasses``/``typing`` at run time) because ``run`` and
``build`` take a fast path that never imports click: start-up time is part of every
container's start.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: importing typing costs start-up time

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.client.dockerconfig import ConfigFile

__all__ = ["PROG", "CLIState", "StatusError", "describe_error", "write_stderr"]

PROG = "dockyard"


class StatusError(Exception):
    """Exit with ``code``, printing ``message`` to stderr first when there is one."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or "")
        self.code = code
        self.message = message


class CLIState:
    """Global options (``-H``, ``-D``, ``--config``), shared by every command; the client and
    the client config are made on first use."""

    __slots__ = ("_client", "_docker_config", "config_dir", "debug", "host")

    def __init__(
        self, host: str | None = None, debug: bool = False, config_dir: str | None = None
    ) -> None:
        self.host = host
        self.debug = debug
        self.config_dir = config_dir
        self._client: Client | None = None
        self._docker_config: ConfigFile | None = None

    def __repr__(self) -> str:
        return f"CLIState(host={self.host!r}, debug={self.debug!r}, config_dir={self.config_dir!r})"

    def client(self) -> Client:
        if self._client is None:
            from dockyard.client import Client

            self._client = Client(self.host)
        return self._client

    def docker_config(self) -> ConfigFile:
        """The client config (``--config``/``DOCKYARD_CONFIG``/``DOCKER_CONFIG``/``~/.docker``),
        read once; a broken file is reported on stderr and treated as empty, like docker."""
        if self._docker_config is None:
            from dockyard.client import dockerconfig

            config = dockerconfig.load(dockerconfig.config_dir(self.config_dir))
            if config.warning:
                sys.stderr.write(f"WARNING: {config.warning}\n")
                sys.stderr.flush()
            self._docker_config = config
        return self._docker_config


def describe_error(exc: BaseException) -> str:
    """The line docker prints for an error: daemon answers get their prefix."""
    from dockyard.client import is_response_error

    message = getattr(exc, "message", None) or str(exc)
    if is_response_error(exc):
        return f"Error response from daemon: {message}"
    return str(message)


def write_stderr(message: str) -> None:
    """One line to stderr, after whatever stdout holds (docker's order on a terminal)."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
