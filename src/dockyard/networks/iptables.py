"""The iptables adapter: our own chains, the jumps to them, and nothing else.

Chains (``<tag>`` keeps several daemons on one host apart; it is derived from the default
bridge's name)::

    nat    DOCKYARD-<tag>        DNAT of published ports   ← PREROUTING  -m addrtype --dst-type LOCAL
                                                           ← OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL
    nat    DOCKYARD-<tag>-POST   MASQUERADE per bridge subnet (ip-masq)   ← POSTROUTING
    filter DOCKYARD-<tag>-FWD    accept to/from our bridges and published ports   ← FORWARD

The host's default policies and foreign rules are never touched. Connections to published
ports from the host's loopback are not DNATed (that would need route_localnet): the userland
proxy serves them.

Every call is an argv list with a timeout; failures become ``SystemError``.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
from collections.abc import Sequence

from dockyard import errors

__all__ = ["Iptables", "chain_tag"]

_TIMEOUT = 20


def chain_tag(bridge: str) -> str:
    """A ≤ 12 character tag for chain names: the bridge's name, or a hash of a long one."""
    if bridge == "dockyard0":
        return ""
    if len(bridge) <= 12:
        return bridge
    return hashlib.sha256(bridge.encode()).hexdigest()[:12]


class Iptables:
    """Rules of one daemon. Methods are blocking (run them in a worker thread)."""

    def __init__(self, tag: str, binary: str = "iptables") -> None:
        base = "DOCKYARD" + (f"-{tag}" if tag else "")
        self.nat = base
        self.post = f"{base}-POST"
        self.fwd = f"{base}-FWD"
        self._bin = binary
        self._lock = threading.Lock()

    # ---- plumbing ---------------------------------------------------------------------

    def _run(self, args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [self._bin, "-w", "5", *args]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise errors.SystemError(f"iptables: {exc}") from None
        if check and r.returncode != 0:
            raise errors.SystemError(
                f"iptables {' '.join(args)} failed: {r.stderr.strip() or r.returncode}"
            )
        return r

    def _exists(self, table: str, chain: str, rule: Sequence[str]) -> bool:
        return self._run(["-t", table, "-C", chain, *rule], check=False).returncode == 0

    def _ensure(self, table: str, chain: str, rule: Sequence[str], *, insert: bool = False) -> None:
        if not self._exists(table, chain, rule):
            self._run(["-t", table, "-I" if insert else "-A", chain, *rule])

    def _delete_all(self, table: str, chain: str, rule: Sequence[str]) -> None:
        for _ in range(64):
            if self._run(["-t", table, "-D", chain, *rule], check=False).returncode != 0:
                return

    def _chain_exists(self, table: str, chain: str) -> bool:
        return self._run(["-t", table, "-S", chain], check=False).returncode == 0

    def available(self) -> bool:
        try:
            return self._run(["-t", "nat", "-S", "POSTROUTING"], check=False).returncode == 0
        except errors.SystemError:
            return False

    # ---- jumps ------------------------------------------------------------------------

    def _jumps(self) -> list[tuple[str, str, list[str]]]:
        return [
            ("nat", "PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", self.nat]),
            (
                "nat",
                "OUTPUT",
                ["!", "-d", "127.0.0.0/8", "-m", "addrtype", "--dst-type", "LOCAL", "-j", self.nat],
            ),
            ("nat", "POSTROUTING", ["-j", self.post]),
            ("filter", "FORWARD", ["-j", self.fwd]),
        ]

    def setup(self) -> None:
        """Create our chains (emptied) and the jumps to them."""
        with self._lock:
            for table, chain in (("nat", self.nat), ("nat", self.post), ("filter", self.fwd)):
                if self._chain_exists(table, chain):
                    self._run(["-t", table, "-F", chain])
                else:
                    self._run(["-t", table, "-N", chain])
            for table, parent, rule in self._jumps():
                self._ensure(table, parent, rule, insert=True)

    def teardown(self) -> None:
        """Remove the jumps and our chains (everything we ever added)."""
        with self._lock:
            for table, parent, rule in self._jumps():
                self._delete_all(table, parent, rule)
            for table, chain in (("nat", self.nat), ("nat", self.post), ("filter", self.fwd)):
                if self._chain_exists(table, chain):
                    self._run(["-t", table, "-F", chain], check=False)
                    self._run(["-t", table, "-X", chain], check=False)

    # ---- per-network rules -------------------------------------------------------------

    def _bridge_rules(
        self, bridge: str, subnet: str, masquerade: bool, internal: bool
    ) -> list[tuple[str, str, list[str]]]:
        rules: list[tuple[str, str, list[str]]] = []
        if masquerade and not internal:
            rules.append(("nat", self.post, ["-s", subnet, "!", "-o", bridge, "-j", "MASQUERADE"]))
        if internal:
            rules.append(("filter", self.fwd, ["-i", bridge, "!", "-o", bridge, "-j", "DROP"]))
            rules.append(("filter", self.fwd, ["!", "-i", bridge, "-o", bridge, "-j", "DROP"]))
        else:
            rules.append(
                (
                    "filter",
                    self.fwd,
                    [
                        "-o",
                        bridge,
                        "-m",
                        "conntrack",
                        "--ctstate",
                        "RELATED,ESTABLISHED",
                        "-j",
                        "ACCEPT",
                    ],
                )
            )
            rules.append(("filter", self.fwd, ["-i", bridge, "-j", "ACCEPT"]))
        return rules

    def add_bridge(self, bridge: str, subnet: str, *, masquerade: bool, internal: bool) -> None:
        with self._lock:
            for table, chain, rule in self._bridge_rules(bridge, subnet, masquerade, internal):
                self._ensure(table, chain, rule)

    def remove_bridge(self, bridge: str, subnet: str, *, masquerade: bool, internal: bool) -> None:
        with self._lock:
            for table, chain, rule in self._bridge_rules(bridge, subnet, masquerade, internal):
                self._delete_all(table, chain, rule)

    # ---- published ports ---------------------------------------------------------------

    def _port_rules(
        self, bridge: str, proto: str, host_ip: str, host_port: int, addr: str, port: int
    ) -> list[tuple[str, str, list[str]]]:
        dst = [] if host_ip in ("", "0.0.0.0") else ["-d", f"{host_ip}/32"]
        return [
            (
                "nat",
                self.nat,
                [
                    "!", "-i", bridge, *dst, "-p", proto, "-m", proto, "--dport", str(host_port),
                    "-j", "DNAT", "--to-destination", f"{addr}:{port}",
                ],
            ),
            (
                "filter",
                self.fwd,
                [
                    "-d", f"{addr}/32", "!", "-i", bridge, "-o", bridge, "-p", proto, "-m", proto,
                    "--dport", str(port), "-j", "ACCEPT",
                ],
            ),
        ]  # fmt: skip

    def add_port(
        self, bridge: str, proto: str, host_ip: str, host_port: int, addr: str, port: int
    ) -> None:
        with self._lock:
            for table, chain, rule in self._port_rules(
                bridge, proto, host_ip, host_port, addr, port
            ):
                self._ensure(table, chain, rule, insert=chain == self.fwd)

    def remove_port(
        self, bridge: str, proto: str, host_ip: str, host_port: int, addr: str, port: int
    ) -> None:
        with self._lock:
            for table, chain, rule in self._port_rules(
                bridge, proto, host_ip, host_port, addr, port
            ):
                self._delete_all(table, chain, rule)
