"""What the container lifecycle needs from networking (implemented by ``networks``).

The composition root passes a ``NetworkManager``; without one, containers keep today's
behaviour (an own namespace with loopback only for the default mode).
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["NetSetupLike", "NetworkManager"]


class NetSetupLike(Protocol):
    netns: str  # the namespace handle runc joins
    hosts: list[tuple[str, str]]  # (address, "") lines for /etc/hosts
    nameservers: list[str] | None  # the embedded DNS on user-defined networks


class NetworkManager(Protocol):
    def managed(self, host_config: dict[str, Any]) -> bool: ...

    def on_create(
        self, cid: str, name: str, host_config: dict[str, Any], networking: dict[str, Any] | None
    ) -> None: ...

    def on_remove(self, cid: str) -> None: ...

    def rename(self, cid: str, name: str) -> None: ...

    async def setup(
        self, cid: str, name: str, config: dict[str, Any], host_config: dict[str, Any]
    ) -> NetSetupLike | None: ...

    async def teardown(self, cid: str) -> None: ...

    async def connect(
        self, cid: str, name: str, ref: str, endpoint_config: dict[str, Any], running: bool
    ) -> NetSetupLike | None: ...

    async def disconnect(self, cid: str, ref: str, running: bool) -> NetSetupLike | None: ...

    def settings(self, cid: str, config: dict[str, Any], running: bool) -> dict[str, Any]: ...

    def host_gateway(self) -> str:
        """The address ``--add-host name:host-gateway`` maps to (the default bridge's)."""
        ...

    def summary(
        self, cid: str, config: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]: ...
