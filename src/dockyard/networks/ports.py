"""Published ports, pure: from ExposedPorts/PortBindings/PublishAllPorts to the list to publish.

``HostPort`` is a string on the wire (``""`` or ``"0"``: any free port); ``HostIp`` ``""`` means
every IPv4 address. Errors: ``InvalidArgument`` for malformed keys or ports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dockyard.errors import InvalidArgument

__all__ = ["PortMapping", "PortRequest", "parse_port_key", "ports_from_config"]


@dataclass(frozen=True)
class PortRequest:
    proto: str
    container_port: int
    host_ip: str
    host_port: int  # 0: pick one


@dataclass(frozen=True)
class PortMapping:
    """One published port as made: the host side and the container address it reaches."""

    proto: str
    container_port: int
    host_ip: str
    host_port: int
    address: str
    bridge: str

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PortMapping:
        return cls(**data)


def parse_port_key(key: str) -> tuple[int, str]:
    """``"80/tcp"`` → (80, "tcp"); the protocol defaults to tcp."""
    port_text, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    try:
        port = int(port_text)
    except ValueError:
        raise InvalidArgument(f"invalid containerPort: {port_text}") from None
    if not 0 < port < 65536:
        raise InvalidArgument(f"invalid containerPort: {port_text}")
    return port, proto


def _host_port(text: Any) -> int:
    if text in (None, "", 0, "0"):
        return 0
    value = str(text)
    if "-" in value:
        start, _, end = value.partition("-")
        if start == end:
            value = start
        else:
            raise InvalidArgument(f"host port ranges are not supported: {value}")
    try:
        port = int(value)
    except ValueError:
        raise InvalidArgument(f"invalid hostPort: {text}") from None
    if not 0 <= port < 65536:
        raise InvalidArgument(f"invalid hostPort: {text}")
    return port


def ports_from_config(config: dict[str, Any], host_config: dict[str, Any]) -> list[PortRequest]:
    """What to publish, in a stable order: explicit bindings, then ``-P``'s exposed ports."""
    out: list[PortRequest] = []
    bindings = host_config.get("PortBindings") or {}
    if not isinstance(bindings, dict):
        raise InvalidArgument("PortBindings must be an object")
    for key in sorted(bindings, key=lambda k: parse_port_key(k)):
        port, proto = parse_port_key(key)
        if proto == "sctp":
            raise InvalidArgument("sctp ports are not supported")
        for binding in bindings[key] or [{}]:
            binding = binding or {}
            host_ip = str(binding.get("HostIp") or "")
            if ":" in host_ip:
                continue  # IPv6 host addresses are not published here
            out.append(PortRequest(proto, port, host_ip, _host_port(binding.get("HostPort"))))
    if host_config.get("PublishAllPorts"):
        for key in sorted(config.get("ExposedPorts") or {}, key=lambda k: parse_port_key(k)):
            if key in bindings:
                continue
            port, proto = parse_port_key(key)
            if proto != "sctp":
                out.append(PortRequest(proto, port, "", 0))
    return out
