"""IP address management, pure: subnets, pools, and picking the next free address.

Nothing here touches the system or the database. ``NetworkService`` keeps the allocations
(the ``endpoints`` table, ``UNIQUE(network_id, address)``) and asks these functions which
subnet or address to take next.

Errors: ``InvalidArgument`` with Docker's wording for malformed or overlapping subnets,
``Unavailable`` when a pool or a subnet is exhausted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument, Unavailable

__all__ = [
    "DEFAULT_POOLS",
    "AddressPool",
    "IPAMConfig",
    "allocate_address",
    "allocate_subnet",
    "check_overlap",
    "mac_for",
    "parse_ipam_config",
    "parse_pools",
]

IPv4Net = ipaddress.IPv4Network
IPv4Addr = ipaddress.IPv4Address


@dataclass(frozen=True)
class AddressPool:
    """``default-address-pools`` entry: carve ``/size`` subnets out of ``base``."""

    base: IPv4Net
    size: int


# Not Docker's 172.17/16 pools: other engines run on the same machines.
DEFAULT_POOLS = (
    AddressPool(ipaddress.IPv4Network("172.30.0.0/15"), 16),
    AddressPool(ipaddress.IPv4Network("10.210.0.0/16"), 24),
)


@dataclass(frozen=True)
class IPAMConfig:
    """One IPv4 IPAM config of a network: its subnet, gateway and the range to allocate from."""

    subnet: IPv4Net
    gateway: IPv4Addr
    ip_range: IPv4Net | None = None
    aux: tuple[tuple[str, IPv4Addr], ...] = ()  # AuxiliaryAddresses: never handed out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Subnet": str(self.subnet), "Gateway": str(self.gateway)}
        if self.ip_range is not None:
            out["IPRange"] = str(self.ip_range)
        if self.aux:
            out["AuxiliaryAddresses"] = {name: str(addr) for name, addr in self.aux}
        return out


def _net(text: str, what: str) -> IPv4Net:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid {what}: {text}") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise InvalidArgument(f"IPv6 is not supported: {text}")
    return net


def parse_pools(raw: object) -> tuple[AddressPool, ...]:
    """``[{"base": "10.10.0.0/16", "size": 24}]`` from daemon.json."""
    if not raw:
        return DEFAULT_POOLS
    if not isinstance(raw, list):
        raise InvalidArgument("default-address-pools must be a list")
    pools = []
    for item in raw:
        if not isinstance(item, dict) or "base" not in item or "size" not in item:
            raise InvalidArgument(f"invalid default-address-pools entry: {item}")
        base = _net(str(item["base"]), "default-address-pools base")
        size = int(item["size"])
        if size < base.prefixlen or size > 30:
            raise InvalidArgument(f"invalid default-address-pools size: {size}")
        pools.append(AddressPool(base, size))
    return tuple(pools)


def parse_bip(bip: str) -> IPAMConfig:
    """``--bip 10.213.1.1/24``: the bridge's address is the gateway, its network the subnet."""
    try:
        iface = ipaddress.ip_interface(bip)
    except ValueError:
        raise InvalidArgument(f"invalid bip: {bip}") from None
    if not isinstance(iface, ipaddress.IPv4Interface) or iface.network.prefixlen > 30:
        raise InvalidArgument(f"invalid bip: {bip}")
    if iface.ip in (iface.network.network_address, iface.network.broadcast_address):
        raise InvalidArgument(f"invalid bip: {bip}: the address must be a host address")
    return IPAMConfig(iface.network, iface.ip)


def parse_ipam_config(entry: dict[str, object]) -> IPAMConfig | None:
    """One ``IPAM.Config`` item of ``POST /networks/create``; None when it names no subnet."""
    subnet_text = entry.get("Subnet")
    if not subnet_text:
        if entry.get("Gateway") or entry.get("IPRange"):
            raise InvalidArgument("a gateway or IP range needs a subnet")
        return None
    try:
        subnet = ipaddress.ip_network(str(subnet_text), strict=True)
    except ValueError:
        subnet = _net(str(subnet_text), "subnet")
        raise InvalidArgument(
            f"invalid subnet {subnet_text}: it should be {subnet.network_address}/{subnet.prefixlen}"
        ) from None
    if not isinstance(subnet, ipaddress.IPv4Network):
        raise InvalidArgument(f"IPv6 is not supported: {subnet_text}")
    if subnet.prefixlen > 30:
        raise InvalidArgument(f"invalid subnet {subnet}: too small")
    ip_range = None
    if entry.get("IPRange"):
        ip_range = _net(str(entry["IPRange"]), "ip range")
        if not ip_range.subnet_of(subnet):
            raise InvalidArgument(f"invalid ip range {ip_range}: not in subnet {subnet}")
    if entry.get("Gateway"):
        try:
            gateway = ipaddress.IPv4Address(str(entry["Gateway"]))
        except ValueError:
            raise InvalidArgument(f"invalid gateway address: {entry['Gateway']}") from None
        if gateway not in subnet:
            raise InvalidArgument(
                f"Invalid gateway address {gateway}: it does not belong to subnet {subnet}"
            )
    else:
        gateway = subnet.network_address + 1
    aux: list[tuple[str, IPv4Addr]] = []
    raw_aux = entry.get("AuxiliaryAddresses") or {}
    if not isinstance(raw_aux, dict):
        raise InvalidArgument("AuxiliaryAddresses must map names to addresses")
    for name, text in raw_aux.items():
        try:
            addr = ipaddress.IPv4Address(str(text))
        except ValueError:
            raise InvalidArgument(f"invalid auxiliary address {name}={text}") from None
        if addr not in subnet:
            raise InvalidArgument(
                f"auxiliary address: ({name}:{addr}) must belong to the master pool: {subnet}"
            )
        aux.append((str(name), addr))
    return IPAMConfig(subnet, gateway, ip_range, tuple(aux))


def check_overlap(subnet: IPv4Net, taken: Iterable[IPv4Net]) -> None:
    """Docker's message for a subnet that overlaps another network's."""
    for other in taken:
        if subnet.overlaps(other):
            raise InvalidArgument(
                "invalid pool request: Pool overlaps with other one on this address space"
            )


def allocate_subnet(pools: Iterable[AddressPool], taken: Iterable[IPv4Net]) -> IPv4Net:
    """The first ``/size`` subnet of the pools that overlaps nothing taken."""
    used = list(taken)
    for pool in pools:
        for candidate in pool.base.subnets(new_prefix=pool.size):
            if not any(candidate.overlaps(u) for u in used):
                return candidate
    raise Unavailable(
        "could not find an available, non-overlapping IPv4 address pool among the defaults "
        "to assign to the network"
    )


def allocate_address(
    config: IPAMConfig, used: Iterable[IPv4Addr], requested: str | None = None
) -> IPv4Addr:
    """A free host address of ``config`` (the requested one when given), never the gateway."""
    taken = set(used) | {config.gateway} | {addr for _, addr in config.aux}
    if requested:
        try:
            addr = ipaddress.IPv4Address(requested)
        except ValueError:
            raise InvalidArgument(f"invalid IPv4 address: {requested}") from None
        if addr not in config.subnet or addr in (
            config.subnet.network_address,
            config.subnet.broadcast_address,
        ):
            raise InvalidArgument(
                f"invalid address {addr}: It does not belong to any of this network's subnets"
            )
        if addr in taken:
            raise InvalidArgument(f"Address already in use: {addr}")
        return addr
    pool = config.ip_range or config.subnet
    for addr in pool.hosts():
        if addr not in taken and addr != config.subnet.broadcast_address:
            return addr
    raise Unavailable(f"no available IPv4 addresses on this network's address pools: {pool}")


def mac_for(addr: IPv4Addr) -> str:
    """Docker's MAC scheme: 02:42 followed by the four bytes of the address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in addr.packed)
