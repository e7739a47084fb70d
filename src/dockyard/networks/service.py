"""Networks: records, endpoints, and a running container's sandbox (netns, veths, ports, DNS).

Lifecycle of a container's networking::

    on_create  → endpoint rows (container, network, config); no address yet
    setup      → netns handle, per endpoint an address (IPAM) + veth + route; published ports
                 (listener/proxy + DNAT); embedded DNS when on a user-defined network
    teardown   → everything of setup undone; addresses released (the rows stay)
    on_remove  → endpoint rows deleted

``start`` (daemon start-up) reconciles: bridges and chains recreated, sandboxes of containers
that are not running torn down, those of running containers restored (proxies, DNS, rules).
``shutdown`` removes bridges and chains when no container runs any more.

Errors: ``NotFound`` "network n not found", ``Conflict`` for duplicates and taken ports,
``Forbidden`` for removing a network in use or a predefined one, ``InvalidArgument`` for
malformed requests, ``SystemError`` when the kernel refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import re
import secrets
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard import errors
from dockyard.events import EventSink, NullSink
from dockyard.networks import ipam, netlink
from dockyard.networks.dns import DNS_ADDRESS, DNSServer, host_resolvers
from dockyard.networks.iptables import Iptables, chain_tag
from dockyard.networks.ports import PortMapping, ports_from_config
from dockyard.networks.proxy import PortProxy, bind_listener
from dockyard.store import Database

__all__ = ["NetSetup", "NetworkConfig", "NetworkService"]

log = logging.getLogger(__name__)

PREDEFINED = ("bridge", "host", "none")
_MAC = re.compile(r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}")
_OPT_BRIDGE = "com.docker.network.bridge.name"
_OPT_MTU = "com.docker.network.driver.mtu"


@dataclass
class NetworkConfig:
    exec_root: Path
    bridge: str = "dockyard0"
    bip: str = ""
    pools: tuple[ipam.AddressPool, ...] = ipam.DEFAULT_POOLS
    iptables: bool = True
    ip_masq: bool = True
    userland_proxy: bool = True
    mtu: int = 1500
    dns: tuple[str, ...] = ()  # the daemon's --dns: the embedded DNS forwards there


@dataclass
class NetSetup:
    """What the container's spec and /etc files need from its networking."""

    netns: str
    hosts: list[tuple[str, str]] = field(default_factory=list)
    nameservers: list[str] | None = None


@dataclass
class _Sandbox:
    netns: Path
    ports: list[PortMapping] = field(default_factory=list)
    proxies: list[PortProxy] = field(default_factory=list)
    dns: DNSServer | None = None
    upstreams: list[str] = field(default_factory=list)  # the container's own --dns servers


def _rfc3339(ns: int) -> str:
    t = time.gmtime(ns // 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ns % 1_000_000_000:09d}Z"


class NetworkService:
    def __init__(
        self, db: Database, config: NetworkConfig, events: EventSink | None = None
    ) -> None:
        self._db = db
        self._events: EventSink = events or NullSink()
        self._cfg = config
        self._netns_dir = config.exec_root / "netns"
        self._iptables = Iptables(chain_tag(config.bridge)) if config.iptables else None
        self._sandboxes: dict[str, _Sandbox] = {}
        self._lock = asyncio.Lock()
        self._names: dict[str, str] = {}  # container id → name (for DNS)
        self._networks: dict[str, dict[str, Any]] = {}
        self._up: set[str] = set()  # networks whose bridge and rules are in place
        for row in db.query("SELECT record FROM networks"):
            rec = json.loads(row["record"])
            self._networks[rec["Id"]] = rec

    def _emit(self, rec: dict[str, Any], action: str, container: str | None = None) -> None:
        """A network event with dockerd's attributes: ``name``, ``type``, ``container``."""
        attributes = {"name": str(rec["Name"]), "type": str(rec["Driver"])}
        if container is not None:
            attributes["container"] = container
        self._events.emit("network", action, str(rec["Id"]), attributes)

    # ---- lookup ---------------------------------------------------------------------------

    def host_gateway(self) -> str:
        return str(self._ipam_of(self.get("bridge")).gateway)

    def get(self, ref: str) -> dict[str, Any]:
        """By full ID, name, or unique ID prefix; ``NotFound`` "network n not found"."""
        if ref in self._networks:
            return self._networks[ref]
        for rec in self._networks.values():
            if rec["Name"] == ref:
                return rec
        matches = [r for r in self._networks.values() if ref and r["Id"].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise errors.NotFound(f"network {ref} not found")

    def _default(self) -> dict[str, Any]:
        return self.get("bridge")

    @staticmethod
    def _is_user(rec: dict[str, Any]) -> bool:
        return bool(rec["Driver"] == "bridge" and rec["Name"] != "bridge")

    @staticmethod
    def _bridge_of(rec: dict[str, Any]) -> str:
        return str(rec["Options"].get(_OPT_BRIDGE, ""))

    @staticmethod
    def _ipam_of(rec: dict[str, Any]) -> ipam.IPAMConfig:
        entry = rec["IPAM"]["Config"][0]
        cfg = ipam.parse_ipam_config(entry)
        assert cfg is not None
        return cfg

    def _mtu_of(self, rec: dict[str, Any]) -> int:
        return int(rec["Options"].get(_OPT_MTU) or self._cfg.mtu)

    def _save_network(self, rec: dict[str, Any]) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO networks(id, name, record, created) VALUES (?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET name=excluded.name, record=excluded.record",
                (rec["Id"], rec["Name"], json.dumps(rec), time.time_ns()),
            )
        self._networks[rec["Id"]] = rec

    def _endpoint_rows(
        self, *, container_id: str | None = None, network_id: str | None = None
    ) -> list[dict[str, Any]]:
        sql = "SELECT container_id, network_id, config, address, state FROM endpoints WHERE 1=1"
        params: list[str] = []
        if container_id is not None:
            sql += " AND container_id=?"
            params.append(container_id)
        if network_id is not None:
            sql += " AND network_id=?"
            params.append(network_id)
        out = []
        for row in self._db.query(sql, params):
            out.append(
                {
                    "container_id": row["container_id"],
                    "network_id": row["network_id"],
                    "config": json.loads(row["config"]),
                    "address": row["address"],
                    "state": json.loads(row["state"]),
                }
            )
        return out

    # ---- daemon start-up and shutdown ------------------------------------------------------

    def _new_record(
        self,
        name: str,
        driver: str,
        *,
        config: ipam.IPAMConfig | None = None,
        options: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        internal: bool = False,
        attachable: bool = False,
        ipam_options: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return {
            "Name": name,
            "Id": secrets.token_hex(32),
            "Created": _rfc3339(time.time_ns()),
            "Scope": "local",
            "Driver": driver,
            "EnableIPv6": False,
            "IPAM": {
                "Driver": "default",
                "Options": ipam_options or {},
                "Config": [config.to_json()] if config is not None else [],
            },
            "Internal": internal,
            "Attachable": attachable,
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": {},
            "Options": options or {},
            "Labels": labels or {},
        }

    def _default_options(self) -> dict[str, str]:
        return {
            "com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.enable_icc": "true",
            "com.docker.network.bridge.enable_ip_masquerade": "true"
            if self._cfg.ip_masq
            else "false",
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            _OPT_BRIDGE: self._cfg.bridge,
            _OPT_MTU: str(self._cfg.mtu),
        }

    def _host_subnets(self) -> list[ipaddress.IPv4Network]:
        out = []
        for rec in self._networks.values():
            for entry in rec["IPAM"]["Config"]:
                if entry.get("Subnet"):
                    out.append(ipaddress.IPv4Network(entry["Subnet"]))
        return out

    def _ensure_predefined(self, host_routes: list[ipaddress.IPv4Network]) -> None:
        names = {r["Name"]: r for r in self._networks.values()}
        if self._cfg.bip:
            wanted = ipam.parse_bip(self._cfg.bip)
        elif "bridge" in names:
            wanted = self._ipam_of(names["bridge"])
        else:
            others = [s for s in self._host_subnets()] + host_routes
            subnet = ipam.allocate_subnet(self._cfg.pools, others)
            wanted = ipam.IPAMConfig(subnet, subnet.network_address + 1)
        rec = names.get("bridge") or self._new_record("bridge", "bridge")
        rec["IPAM"]["Config"] = [wanted.to_json()]
        rec["Options"] = self._default_options()
        self._save_network(rec)
        if "host" not in names:
            self._save_network(self._new_record("host", "host"))
        if "none" not in names:
            self._save_network(self._new_record("none", "null"))

    def _bridge_up(self, rec: dict[str, Any]) -> None:
        cfg = self._ipam_of(rec)
        bridge = self._bridge_of(rec)
        netlink.ensure_bridge(bridge, str(cfg.gateway), cfg.subnet.prefixlen, self._mtu_of(rec))
        if self._iptables is not None:
            self._iptables.add_bridge(
                bridge, str(cfg.subnet), masquerade=self._masq(rec), internal=rec["Internal"]
            )
        self._up.add(rec["Id"])

    async def _ensure_bridge(self, rec: dict[str, Any]) -> None:
        """Bridges come up on first use: an idle daemon creates none and loads no netlink.

        One that vanished since (someone ran ``ip link del``) is made again, as at start-up.
        """
        if rec["Id"] in self._up and await asyncio.to_thread(
            netlink.link_exists, self._bridge_of(rec)
        ):
            return
        await asyncio.to_thread(self._bridge_up, rec)

    def _masq(self, rec: dict[str, Any]) -> bool:
        opt = rec["Options"].get("com.docker.network.bridge.enable_ip_masquerade")
        return self._cfg.ip_masq and opt != "false"

    async def start(self, running: dict[str, str]) -> None:
        """Start-up reconciliation. ``running``: container id → name of running containers."""
        if self._iptables is not None and not await asyncio.to_thread(self._iptables.available):
            log.warning("iptables is not usable: published ports are served by the proxy only")
            self._iptables = None
        host_routes = await asyncio.to_thread(_host_networks, self._bridge_names())
        self._ensure_predefined(host_routes)
        if self._iptables is not None:
            await asyncio.to_thread(self._iptables.setup)
        in_use = {ep["network_id"] for ep in self._endpoint_rows() if ep["container_id"] in running}
        for rec in list(self._networks.values()):
            if rec["Driver"] == "bridge" and rec["Id"] in in_use:
                await asyncio.to_thread(self._bridge_up, rec)
        self._names.update(running)
        sandboxes = {
            row["container_id"]: json.loads(row["state"])
            for row in self._db.query("SELECT container_id, state FROM sandboxes")
        }
        for cid, state in sandboxes.items():
            if cid in running:
                try:
                    await self._restore(cid, state)
                    continue
                except errors.DockyardError as exc:
                    log.warning("restoring the network of %s failed: %s", cid[:12], exc)
            await self._teardown(cid, state)
        # Endpoints that hold an address without a sandbox, and handles nobody owns.
        for ep in self._endpoint_rows():
            if ep["address"] and ep["container_id"] not in self._sandboxes:
                await asyncio.to_thread(self._release_endpoint, ep)
        if self._netns_dir.exists():
            for handle in self._netns_dir.iterdir():
                if handle.name not in self._sandboxes:
                    await asyncio.to_thread(netlink.remove_netns, handle)
        if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != "1":
            log.warning("net.ipv4.ip_forward is 0: containers reach only the host and each other")

    def _bridge_names(self) -> set[str]:
        names = {self._cfg.bridge}
        for rec in self._networks.values():
            if rec["Driver"] == "bridge":
                names.add(self._bridge_of(rec))
        return names

    async def shutdown(self, any_running: bool) -> None:
        """Daemon stop: close listeners; with no container left, remove bridges and chains."""
        for sandbox in self._sandboxes.values():
            for proxy in sandbox.proxies:
                await proxy.close()
            if sandbox.dns is not None:
                await sandbox.dns.close()
        self._sandboxes.clear()
        if any_running:
            return
        for rec in self._networks.values():
            if rec["Driver"] == "bridge":
                await asyncio.to_thread(netlink.delete_link, self._bridge_of(rec))
        if self._iptables is not None:
            await asyncio.to_thread(self._iptables.teardown)

    # ---- networks API -----------------------------------------------------------------------

    def inspect(self, ref: str) -> dict[str, Any]:
        rec = dict(self.get(ref))
        containers: dict[str, Any] = {}
        for ep in self._endpoint_rows(network_id=rec["Id"]):
            if not ep["address"]:
                continue
            st = ep["state"]
            containers[ep["container_id"]] = {
                "Name": self._names.get(ep["container_id"], ep["config"].get("Name", "")),
                "EndpointID": st.get("endpoint_id", ""),
                "MacAddress": st.get("mac", ""),
                "IPv4Address": f"{ep['address']}/{st.get('prefixlen', 0)}",
                "IPv6Address": "",
            }
        rec["Containers"] = containers
        return rec

    def list_networks(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        for key in filters:
            if key not in ("dangling", "driver", "id", "label", "name", "scope", "type"):
                raise errors.InvalidArgument(f"Invalid filter '{key}'")
        out = []
        for rec in sorted(self._networks.values(), key=lambda r: r["Created"]):
            if filters.get("name") and not any(v in rec["Name"] for v in filters["name"]):
                continue
            if filters.get("id") and not any(rec["Id"].startswith(v) for v in filters["id"]):
                continue
            if filters.get("driver") and rec["Driver"] not in filters["driver"]:
                continue
            if filters.get("type"):
                kind = "builtin" if rec["Name"] in PREDEFINED else "custom"
                if kind not in filters["type"]:
                    continue
            if filters.get("label") and not _labels_match(rec["Labels"], filters["label"]):
                continue
            if filters.get("dangling"):
                used = self._in_use(rec["Id"])
                want = filters["dangling"][0] in ("1", "true")
                if rec["Name"] in PREDEFINED or used == want:
                    continue
            out.append(self.inspect(rec["Id"]))
        return out

    async def create(self, body: dict[str, Any]) -> dict[str, str]:
        name = body.get("Name")
        if not isinstance(name, str) or not name:
            raise errors.InvalidArgument("network name is required")
        driver = body.get("Driver") or "bridge"
        if driver != "bridge":
            raise errors.NotFound(f'plugin "{driver}" not found')
        if any(r["Name"] == name for r in self._networks.values()):
            raise errors.Conflict(f"network with name {name} already exists")
        if name in PREDEFINED:
            raise errors.Forbidden(f"{name} is a pre-defined network and cannot be created")
        ipam_body = body.get("IPAM") or {}
        options = {str(k): str(v) for k, v in (body.get("Options") or {}).items()}
        labels = {str(k): str(v) for k, v in (body.get("Labels") or {}).items()}
        if body.get("EnableIPv6"):
            raise errors.InvalidArgument("IPv6 networks are not supported")
        ipam_driver = str(ipam_body.get("Driver") or "default")
        if ipam_driver != "default":
            raise errors.NotFound(f'plugin "{ipam_driver}" not found')
        async with self._lock:
            configs = [
                c
                for c in (ipam.parse_ipam_config(e) for e in ipam_body.get("Config") or [])
                if c is not None
            ]
            taken = self._host_subnets()
            if configs:
                cfg = configs[0]
                ipam.check_overlap(cfg.subnet, taken)
            else:
                host_routes = await asyncio.to_thread(_host_networks, self._bridge_names())
                subnet = ipam.allocate_subnet(self._cfg.pools, taken + host_routes)
                cfg = ipam.IPAMConfig(subnet, subnet.network_address + 1)
            rec = self._new_record(
                name,
                "bridge",
                config=cfg,
                options=options,
                labels=labels,
                internal=bool(body.get("Internal")),
                attachable=bool(body.get("Attachable")),
                ipam_options=ipam_body.get("Options") or {},
            )
            bridge = options.get(_OPT_BRIDGE) or self._user_bridge_name(rec["Id"])
            if len(bridge) > 15:
                raise errors.InvalidArgument(f"bridge name {bridge} is longer than 15 characters")
            if any(self._bridge_of(r) == bridge for r in self._networks.values()):
                raise errors.Conflict(f"bridge name {bridge} is already in use")
            rec["Options"] = {**options, _OPT_BRIDGE: bridge}
            try:
                await asyncio.to_thread(self._bridge_up, rec)
            except BaseException:
                await asyncio.to_thread(self._bridge_down, rec)
                raise
            self._save_network(rec)
        self._emit(rec, "create")
        return {"Id": rec["Id"], "Warning": ""}

    def _user_bridge_name(self, net_id: str) -> str:
        prefix = "dy-" if self._cfg.bridge == "dockyard0" else self._cfg.bridge[:7] + "-"
        return prefix + net_id[: 15 - len(prefix)]

    def _bridge_down(self, rec: dict[str, Any]) -> None:
        self._up.discard(rec["Id"])
        bridge = self._bridge_of(rec)
        if self._iptables is not None:
            cfg = self._ipam_of(rec)
            self._iptables.remove_bridge(
                bridge, str(cfg.subnet), masquerade=self._masq(rec), internal=rec["Internal"]
            )
        netlink.delete_link(bridge)

    def _in_use(self, network_id: str) -> bool:
        return any(ep["address"] for ep in self._endpoint_rows(network_id=network_id))

    async def remove(self, ref: str) -> None:
        rec = self.get(ref)
        if rec["Name"] in PREDEFINED:
            raise errors.Forbidden(f"{rec['Name']} is a pre-defined network and cannot be removed")
        async with self._lock:
            if self._in_use(rec["Id"]):
                raise errors.Forbidden(
                    f"error while removing network: network {rec['Name']} id {rec['Id']} "
                    "has active endpoints"
                )
            await asyncio.to_thread(self._bridge_down, rec)
            with self._db.transaction() as tx:
                tx.execute("DELETE FROM endpoints WHERE network_id=?", (rec["Id"],))
                tx.execute("DELETE FROM networks WHERE id=?", (rec["Id"],))
            self._networks.pop(rec["Id"], None)
        self._emit(rec, "destroy")

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        for key in filters:
            if key not in ("until", "label", "label!"):
                raise errors.InvalidArgument(f"Invalid filter '{key}'")
        deleted = []
        for rec in list(self._networks.values()):
            if rec["Name"] in PREDEFINED or self._in_use(rec["Id"]):
                continue
            if filters.get("label") and not _labels_match(rec["Labels"], filters["label"]):
                continue
            if any(_labels_match(rec["Labels"], [f]) for f in filters.get("label!", [])):
                continue
            with contextlib.suppress(errors.NotFound, errors.Forbidden):
                await self.remove(rec["Id"])
                deleted.append(rec["Name"])
        return {"NetworksDeleted": deleted or None}

    # ---- container hooks ------------------------------------------------------------------

    @staticmethod
    def managed(host_config: dict[str, Any]) -> bool:
        """Whether this container's networking is ours (bridge or a named network)."""
        mode = host_config.get("NetworkMode") or "default"
        return mode not in ("none", "host") and not mode.startswith("container:")

    def _primary(self, host_config: dict[str, Any]) -> dict[str, Any]:
        mode = host_config.get("NetworkMode") or "default"
        return self._default() if mode in ("default", "bridge") else self.get(mode)

    def on_create(
        self,
        cid: str,
        name: str,
        host_config: dict[str, Any],
        networking_config: dict[str, Any] | None,
    ) -> None:
        """Record the endpoints the container asks for (validated, not yet addressed)."""
        self._names[cid] = name
        if not self.managed(host_config):
            return
        endpoints = dict((networking_config or {}).get("EndpointsConfig") or {})
        mode = host_config.get("NetworkMode") or "default"
        rows: list[tuple[str, dict[str, Any]]] = []
        try:
            primary = self._primary(host_config)
        except errors.NotFound:
            return  # Docker reports an unknown network at start
        conf = endpoints.pop(mode, None) or endpoints.pop(primary["Name"], None) or {}
        if mode == "default":
            conf = endpoints.pop("bridge", None) or conf
        rows.append((primary["Id"], conf))
        for ref, conf in endpoints.items():
            rows.append((self.get(ref)["Id"], conf or {}))
        for net_id, conf in rows:
            self._validate_endpoint(self._networks[net_id], conf)
        with self._db.transaction() as tx:
            for net_id, conf in rows:
                tx.execute(
                    "INSERT OR REPLACE INTO endpoints(container_id, network_id, config) "
                    "VALUES (?,?,?)",
                    (cid, net_id, json.dumps(_endpoint_config(conf, name))),
                )

    def _validate_endpoint(self, rec: dict[str, Any], conf: dict[str, Any]) -> None:
        mac = (conf or {}).get("MacAddress") or ""
        if mac and not _MAC.fullmatch(str(mac)):
            raise errors.InvalidArgument(f"invalid MAC address: {mac}")
        ipv4 = ((conf or {}).get("IPAMConfig") or {}).get("IPv4Address")
        if ipv4:
            if not self._is_user(rec):
                raise errors.InvalidArgument(
                    "user specified IP address is supported on user defined networks only"
                )
            cfg = self._ipam_of(rec)
            try:
                addr = ipaddress.IPv4Address(ipv4)
            except ValueError:
                raise errors.InvalidArgument(f"invalid IPv4 address: {ipv4}") from None
            if addr not in cfg.subnet:
                raise errors.InvalidArgument(
                    f"no configured subnet or ip-range contain the IP address {ipv4}"
                )
        if conf.get("Aliases") and not self._is_user(rec):
            raise errors.InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
            )

    def rename(self, cid: str, name: str) -> None:
        """The container got a new name: DNS answers, ``DNSNames`` and endpoint names follow."""
        self._names[cid] = name
        rows = self._endpoint_rows(container_id=cid)
        with self._db.transaction() as tx:
            for ep in rows:
                config = dict(ep["config"])
                config["Name"] = name
                tx.execute(
                    "UPDATE endpoints SET config=? WHERE container_id=? AND network_id=?",
                    (json.dumps(config), cid, ep["network_id"]),
                )

    def on_remove(self, cid: str) -> None:
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM endpoints WHERE container_id=?", (cid,))
            tx.execute("DELETE FROM sandboxes WHERE container_id=?", (cid,))
        self._names.pop(cid, None)

    async def setup(
        self,
        cid: str,
        name: str,
        config: dict[str, Any],
        host_config: dict[str, Any],
    ) -> NetSetup | None:
        """Build the running container's network; None when the container's mode is not ours."""
        if not self.managed(host_config):
            return None
        self._names[cid] = name
        primary = self._primary(host_config)  # NotFound "network n not found"
        rows = self._endpoint_rows(container_id=cid)
        if not any(r["network_id"] == primary["Id"] for r in rows):
            self.on_create(cid, name, host_config, None)
            rows = self._endpoint_rows(container_id=cid)
        rows.sort(key=lambda r: (r["network_id"] != primary["Id"], r["network_id"]))
        netns = self._netns_dir / cid
        sandbox = _Sandbox(netns=netns, upstreams=[str(s) for s in host_config.get("Dns") or []])
        self._sandboxes[cid] = sandbox
        try:
            await asyncio.to_thread(netlink.create_netns, netns)
            for index, row in enumerate(rows):
                if row["network_id"] not in self._networks:
                    continue
                await self._attach(cid, row, f"eth{index}", gateway=index == 0)
                self._emit(self._networks[row["network_id"]], "connect", cid)
            sandbox.ports = await self._publish(cid, sandbox, config, host_config, primary)
            self._save_sandbox(cid, sandbox)
            await self._start_dns_if_needed(cid, sandbox)
        except BaseException:
            await self._teardown(cid, {"netns": str(netns)})
            raise
        return self._net_setup(cid, sandbox)

    def _net_setup(self, cid: str, sandbox: _Sandbox) -> NetSetup:
        hosts = []
        user = False
        for ep in self._endpoint_rows(container_id=cid):
            rec = self._networks.get(ep["network_id"])
            if rec is None or not ep["address"]:
                continue
            user = user or self._is_user(rec)
            hosts.append((ep["address"], ""))
        return NetSetup(
            netns=str(sandbox.netns), hosts=hosts, nameservers=[DNS_ADDRESS] if user else None
        )

    def _save_sandbox(self, cid: str, sandbox: _Sandbox) -> None:
        state = {
            "netns": str(sandbox.netns),
            "ports": [p.to_json() for p in sandbox.ports],
            "upstreams": sandbox.upstreams,
        }
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT OR REPLACE INTO sandboxes(container_id, state) VALUES (?,?)",
                (cid, json.dumps(state)),
            )

    async def _attach(self, cid: str, row: dict[str, Any], ifname: str, *, gateway: bool) -> None:
        rec = self._networks[row["network_id"]]
        await self._ensure_bridge(rec)
        cfg = self._ipam_of(rec)
        requested = (row["config"].get("IPAMConfig") or {}).get("IPv4Address") or None
        async with self._lock:
            used = [
                ipaddress.IPv4Address(ep["address"])
                for ep in self._endpoint_rows(network_id=rec["Id"])
                if ep["address"]
            ]
            addr = ipam.allocate_address(cfg, used, requested)
            state: dict[str, str | int] = {
                "endpoint_id": secrets.token_hex(32),
                "mac": str(row["config"].get("MacAddress") or "").lower() or ipam.mac_for(addr),
                "prefixlen": cfg.subnet.prefixlen,
                "gateway": str(cfg.gateway),
                "ifname": ifname,
                "veth": "dyv" + secrets.token_hex(6),
            }
            with self._db.transaction() as tx:
                tx.execute(
                    "UPDATE endpoints SET address=?, state=? WHERE container_id=? AND network_id=?",
                    (str(addr), json.dumps(state), cid, rec["Id"]),
                )
        netns = self._netns_dir / cid
        try:
            await asyncio.to_thread(
                netlink.add_veth,
                netns,
                str(state["veth"]),
                self._bridge_of(rec),
                ifname,
                self._mtu_of(rec),
            )
            await asyncio.to_thread(
                netlink.configure_container_iface,
                netns,
                ifname,
                str(addr),
                cfg.subnet.prefixlen,
                str(state["mac"]),
                str(cfg.gateway) if gateway else None,
            )
        except BaseException:
            await asyncio.to_thread(self._release_endpoint, {**row, "state": state})
            raise

    def _release_endpoint(self, ep: dict[str, Any]) -> None:
        veth = (ep.get("state") or {}).get("veth")
        if veth:
            with contextlib.suppress(errors.DockyardError):
                netlink.delete_link(veth)
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE endpoints SET address=NULL, state='{}' WHERE container_id=? AND network_id=?",
                (ep["container_id"], ep["network_id"]),
            )

    async def _publish(
        self,
        cid: str,
        sandbox: _Sandbox,
        config: dict[str, Any],
        host_config: dict[str, Any],
        primary: dict[str, Any],
    ) -> list[PortMapping]:
        wanted = ports_from_config(config, host_config)
        if not wanted:
            return []
        ep = next(
            (e for e in self._endpoint_rows(container_id=cid) if e["network_id"] == primary["Id"]),
            None,
        )
        if ep is None or not ep["address"]:
            return []
        mappings: list[PortMapping] = []
        for m in wanted:
            sock = bind_listener(m.proto, m.host_ip, m.host_port)
            proxy = PortProxy(m.proto, sock, (ep["address"], m.container_port))
            sandbox.proxies.append(proxy)
            mapping = PortMapping(
                m.proto, m.container_port, m.host_ip or "0.0.0.0", proxy.host_port,
                ep["address"], self._bridge_of(primary),
            )  # fmt: skip
            mappings.append(mapping)
            if self._cfg.userland_proxy:
                await proxy.start()
            await self._add_rules(mapping)
        sandbox.ports = mappings
        return mappings

    async def _add_rules(self, m: PortMapping) -> None:
        if self._iptables is None or m.host_ip.startswith("127."):
            return
        await asyncio.to_thread(
            self._iptables.add_port,
            m.bridge,
            m.proto,
            m.host_ip,
            m.host_port,
            m.address,
            m.container_port,
        )

    async def _start_dns_if_needed(self, cid: str, sandbox: _Sandbox) -> None:
        if sandbox.dns is not None:
            return
        user = any(
            self._is_user(self._networks[ep["network_id"]])
            for ep in self._endpoint_rows(container_id=cid)
            if ep["address"] and ep["network_id"] in self._networks
        )
        if not user:
            return
        try:
            resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            resolv = ""
        # dockerd's order: the container's --dns, else the daemon's, else the host's resolvers
        chosen = sandbox.upstreams or list(self._cfg.dns)
        if chosen:
            resolv = "".join(f"nameserver {server}\n" for server in chosen)
        server = DNSServer(lambda name: self.lookup(cid, name), host_resolvers(resolv))
        await server.start(sandbox.netns)
        sandbox.dns = server

    def lookup(self, cid: str, name: str) -> list[str] | None:
        """Addresses of ``name`` as seen from ``cid`` (user-defined networks only)."""
        mine = [
            ep["network_id"]
            for ep in self._endpoint_rows(container_id=cid)
            if ep["address"]
            and ep["network_id"] in self._networks
            and self._is_user(self._networks[ep["network_id"]])
        ]
        found: list[str] = []
        for net_id in mine:
            for ep in self._endpoint_rows(network_id=net_id):
                if not ep["address"]:
                    continue
                other = ep["container_id"]
                names = {self._names.get(other, ep["config"].get("Name", "")), other[:12]}
                names.update(a.lower() for a in ep["config"].get("Aliases") or [])
                if name in {n.lower() for n in names if n} and ep["address"] not in found:
                    found.append(ep["address"])
        return found or None

    async def teardown(self, cid: str) -> None:
        rows = self._db.query("SELECT state FROM sandboxes WHERE container_id=?", (cid,))
        state = json.loads(rows[0]["state"]) if rows else {"netns": str(self._netns_dir / cid)}
        await self._teardown(cid, state)

    async def _teardown(self, cid: str, state: dict[str, Any]) -> None:
        """Undo a sandbox: listeners, DNS, rules, veths, handle, addresses. Never raises."""
        sandbox = self._sandboxes.pop(cid, None)
        if sandbox is not None:
            for proxy in sandbox.proxies:
                with contextlib.suppress(Exception):
                    await proxy.close()
            if sandbox.dns is not None:
                with contextlib.suppress(Exception):
                    await sandbox.dns.close()
        ports = [PortMapping.from_json(p) for p in state.get("ports") or []]
        if sandbox is not None:
            ports = sandbox.ports or ports
        if self._iptables is not None:
            for m in ports:
                if not m.host_ip.startswith("127."):
                    with contextlib.suppress(errors.DockyardError):
                        await asyncio.to_thread(
                            self._iptables.remove_port,
                            m.bridge, m.proto, m.host_ip, m.host_port, m.address, m.container_port,
                        )  # fmt: skip
        for ep in self._endpoint_rows(container_id=cid):
            if ep["address"] and ep["network_id"] in self._networks:
                self._emit(self._networks[ep["network_id"]], "disconnect", cid)
            if ep["address"] or ep["state"]:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._release_endpoint, ep)
        netns = Path(state.get("netns") or self._netns_dir / cid)
        await asyncio.to_thread(netlink.remove_netns, netns)
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM sandboxes WHERE container_id=?", (cid,))

    async def _restore(self, cid: str, state: dict[str, Any]) -> None:
        netns = Path(state["netns"])
        if not netns.exists():
            raise errors.NotFound(f"network namespace {netns} is gone")
        sandbox = _Sandbox(netns=netns, upstreams=list(state.get("upstreams") or []))
        self._sandboxes[cid] = sandbox
        for ep in self._endpoint_rows(container_id=cid):
            veth = (ep.get("state") or {}).get("veth")
            if veth and ep["network_id"] in self._networks:
                bridge = self._bridge_of(self._networks[ep["network_id"]])
                await asyncio.to_thread(netlink.enslave, str(veth), bridge)
        for m in [PortMapping.from_json(p) for p in state.get("ports") or []]:
            sock = bind_listener(m.proto, m.host_ip, m.host_port)
            proxy = PortProxy(m.proto, sock, (m.address, m.container_port))
            sandbox.proxies.append(proxy)
            sandbox.ports.append(m)
            if self._cfg.userland_proxy:
                await proxy.start()
            await self._add_rules(m)
        await self._start_dns_if_needed(cid, sandbox)

    # ---- connect / disconnect ---------------------------------------------------------------

    async def connect(
        self, cid: str, name: str, ref: str, endpoint_config: dict[str, Any], running: bool
    ) -> NetSetup | None:
        rec = self.get(ref)
        if rec["Driver"] != "bridge":
            raise errors.Forbidden(
                "container cannot be disconnected from host network or connected to host network"
            )
        rows = self._endpoint_rows(container_id=cid)
        if any(r["network_id"] == rec["Id"] for r in rows):
            raise errors.Forbidden(
                f"endpoint with name {name} already exists in network {rec['Name']}"
            )
        conf = endpoint_config or {}
        self._validate_endpoint(rec, conf)
        self._names[cid] = name
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO endpoints(container_id, network_id, config) VALUES (?,?,?)",
                (cid, rec["Id"], json.dumps(_endpoint_config(conf, name))),
            )
        sandbox = self._sandboxes.get(cid)
        if not running or sandbox is None:
            return None
        row = next(r for r in self._endpoint_rows(container_id=cid) if r["network_id"] == rec["Id"])
        used = await asyncio.to_thread(netlink.container_ifnames, sandbox.netns)
        index = 0
        while f"eth{index}" in used:
            index += 1
        try:
            await self._attach(cid, row, f"eth{index}", gateway=False)
            self._emit(rec, "connect", cid)
            await self._start_dns_if_needed(cid, sandbox)
        except BaseException:
            with self._db.transaction() as tx:
                tx.execute(
                    "DELETE FROM endpoints WHERE container_id=? AND network_id=?", (cid, rec["Id"])
                )
            raise
        return self._net_setup(cid, sandbox)

    async def disconnect(self, cid: str, ref: str, running: bool) -> NetSetup | None:
        rec = self.get(ref)
        rows = [r for r in self._endpoint_rows(container_id=cid) if r["network_id"] == rec["Id"]]
        if not rows:
            raise errors.Forbidden(f"container {cid} is not connected to network {rec['Name']}")
        ep = rows[0]
        sandbox = self._sandboxes.get(cid)
        if running and sandbox is not None and ep["state"].get("ifname"):
            with contextlib.suppress(errors.DockyardError):
                await asyncio.to_thread(
                    netlink.delete_container_iface, sandbox.netns, ep["state"]["ifname"]
                )
        await asyncio.to_thread(self._release_endpoint, ep)
        with self._db.transaction() as tx:
            tx.execute(
                "DELETE FROM endpoints WHERE container_id=? AND network_id=?", (cid, rec["Id"])
            )
        self._emit(rec, "disconnect", cid)
        if sandbox is None:
            return None
        return self._net_setup(cid, sandbox)

    # ---- views ------------------------------------------------------------------------------

    def settings(self, cid: str, config: dict[str, Any], running: bool) -> dict[str, Any]:
        """Docker's NetworkSettings for inspect."""
        networks: dict[str, Any] = {}
        top: dict[str, Any] = {}
        for ep in self._endpoint_rows(container_id=cid):
            rec = self._networks.get(ep["network_id"])
            if rec is None:
                continue
            entry = _endpoint_json(ep, rec, self._names.get(cid, ""), cid)
            networks[rec["Name"]] = entry
            if rec["Name"] == "bridge":
                top = entry
        sandbox = self._sandboxes.get(cid)
        ports: dict[str, Any] = {}
        if running:
            for key in sorted((config.get("ExposedPorts") or {}).keys()):
                ports[key] = None
            for m in sandbox.ports if sandbox else []:
                ports.setdefault(m.key, None)
                ports[m.key] = (ports[m.key] or []) + [
                    {"HostIp": m.host_ip, "HostPort": str(m.host_port)}
                ]
        return {
            "Bridge": "",
            "SandboxID": cid if sandbox else "",
            "SandboxKey": str(sandbox.netns) if sandbox else "",
            "Ports": ports,
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": top.get("EndpointID", ""),
            "Gateway": top.get("Gateway", ""),
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": top.get("IPAddress", ""),
            "IPPrefixLen": top.get("IPPrefixLen", 0),
            "IPv6Gateway": "",
            "MacAddress": top.get("MacAddress", ""),
            "Networks": networks,
        }

    def summary(
        self, cid: str, config: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """``(Ports, Networks)`` of ``GET /containers/json``."""
        sandbox = self._sandboxes.get(cid)
        ports: list[dict[str, Any]] = []
        published = set()
        for m in sandbox.ports if sandbox else []:
            published.add(m.key)
            ports.append(
                {"IP": m.host_ip, "PrivatePort": m.container_port, "PublicPort": m.host_port,
                 "Type": m.proto}
            )  # fmt: skip
        for key in config.get("ExposedPorts") or {}:
            if key not in published:
                port, _, proto = key.partition("/")
                with contextlib.suppress(ValueError):
                    ports.append({"PrivatePort": int(port), "Type": proto or "tcp"})
        networks = {}
        for ep in self._endpoint_rows(container_id=cid):
            rec = self._networks.get(ep["network_id"])
            if rec is not None:
                networks[rec["Name"]] = _endpoint_json(ep, rec, self._names.get(cid, ""), cid)
        return ports, networks


def _endpoint_config(conf: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "IPAMConfig": conf.get("IPAMConfig") or None,
        "Links": conf.get("Links") or None,
        "Aliases": list(conf.get("Aliases") or []) or None,
        "DriverOpts": conf.get("DriverOpts") or None,
        "MacAddress": conf.get("MacAddress") or "",
        "Name": name,
    }


def _endpoint_json(ep: dict[str, Any], rec: dict[str, Any], name: str, cid: str) -> dict[str, Any]:
    st = ep["state"] if ep["address"] else {}
    conf = ep["config"]
    user = rec["Driver"] == "bridge" and rec["Name"] != "bridge"
    aliases = conf.get("Aliases")
    return {
        "IPAMConfig": conf.get("IPAMConfig"),
        "Links": conf.get("Links"),
        "Aliases": aliases,
        "MacAddress": st.get("mac", ""),
        "DriverOpts": conf.get("DriverOpts"),
        "NetworkID": rec["Id"],
        "EndpointID": st.get("endpoint_id", ""),
        "Gateway": st.get("gateway", ""),
        "IPAddress": ep["address"] or "",
        "IPPrefixLen": st.get("prefixlen", 0),
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": ([name, cid[:12], *(aliases or [])] if user and ep["address"] else None),
    }


def _labels_match(labels: dict[str, str], wanted: Iterable[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _host_networks(ours: set[str]) -> list[ipaddress.IPv4Network]:
    """Subnets routed on the host's interfaces other than our bridges (never allocated).

    Read from ``/proc/net/route`` (every address's connected route is there), not netlink, so
    start-up does not load pyroute2.
    """
    out: list[ipaddress.IPv4Network] = []
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[0] in ours:
            continue
        dest, mask = (
            socket.inet_ntoa(struct.pack("<I", int(f, 16))) for f in (fields[1], fields[7])
        )
        if dest == "0.0.0.0":
            continue
        with contextlib.suppress(ValueError):
            out.append(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False))
    return out
