"""Daemon configuration: ``daemon.json`` (Docker's key names) overlaid by command-line flags."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.runtime.conmon import default_monitor

__all__ = ["DEFAULT_CONFIG_FILE", "DEFAULT_HOST", "DaemonConfig", "load_config"]

DEFAULT_CONFIG_FILE = Path("/etc/dockyard/daemon.json")
DEFAULT_HOST = "unix:///run/dockyard/dockyard.sock"

_KNOWN_KEYS = {
    "data-root",
    "exec-root",
    "hosts",
    "pidfile",
    "runtimes",
    "default-runtime",
    "bip",
    "bridge",
    "registry-mirrors",
    "insecure-registries",
    "log-driver",
    "log-opts",
    "log-level",
    "default-address-pools",
    "live-restore",
    "debug",
    "cgroup-parent",
    "iptables",
    "ip-masq",
    "userland-proxy",
    "group",
    "monitor",
    "default-ulimits",
    "init",
    "init-path",
}


@dataclass
class DaemonConfig:
    data_root: Path = Path("/var/lib/dockyard")
    exec_root: Path = Path("/run/dockyard")
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_HOST])
    pidfile: Path | None = None
    runtime: str = "/usr/sbin/runc"
    # Per-container monitor: dockyard-monitor when installed, else conmon. daemon.json
    # "monitor" or --monitor override it (either binary takes the same command line).
    conmon: str = field(default_factory=default_monitor)
    cgroup_parent: str = "/dockyard"
    group: str = "dockyard"
    log_level: str = "info"
    log_opts: dict[str, str] = field(default_factory=dict)
    registry_mirrors: list[str] = field(default_factory=list)
    insecure_registries: list[str] = field(default_factory=list)
    bridge: str = "dockyard0"
    bip: str = ""
    iptables: bool = True
    ip_masq: bool = True
    userland_proxy: bool = True
    default_address_pools: list[dict[str, Any]] = field(default_factory=list)
    live_restore: bool = False
    default_ulimits: dict[str, Any] = field(default_factory=dict)  # {"nofile": {Name,Soft,Hard}}
    init: bool = False
    init_path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def unix_socket_paths(self) -> list[Path]:
        paths = []
        for host in self.hosts:
            if not host.startswith("unix://"):
                raise InvalidArgument(f"unsupported host {host!r}: only unix:// sockets are served")
            paths.append(Path(host[len("unix://") :]))
        return paths


def load_config(path: Path | None, overrides: dict[str, Any]) -> DaemonConfig:
    """Read ``path`` (missing default file is fine) and apply flag ``overrides`` on top."""
    raw: dict[str, Any] = {}
    file = path or DEFAULT_CONFIG_FILE
    if file.exists():
        try:
            raw = json.loads(file.read_text())
        except json.JSONDecodeError as exc:
            raise InvalidArgument(
                f"unable to configure the Docker daemon with file {file}: {exc}"
            ) from exc
        if not isinstance(raw, dict):
            raise InvalidArgument(
                f"unable to configure the Docker daemon with file {file}: not an object"
            )
        unknown = sorted(set(raw) - _KNOWN_KEYS)
        if unknown:
            raise InvalidArgument(
                f"the following directives don't match any configuration option: {', '.join(unknown)}"
            )
    elif path is not None:
        raise InvalidArgument(f"open {path}: no such file or directory")
    cfg = DaemonConfig()
    if "data-root" in raw:
        cfg.data_root = Path(raw["data-root"])
    if "exec-root" in raw:
        cfg.exec_root = Path(raw["exec-root"])
    if raw.get("hosts"):
        cfg.hosts = list(raw["hosts"])
    if raw.get("pidfile"):
        cfg.pidfile = Path(raw["pidfile"])
    runtimes = raw.get("runtimes") or {}
    default_runtime = raw.get("default-runtime")
    if default_runtime and default_runtime in runtimes:
        cfg.runtime = runtimes[default_runtime].get("path", cfg.runtime)
    cfg.log_opts = dict(raw.get("log-opts") or {})
    cfg.log_level = raw.get("log-level", cfg.log_level)
    cfg.registry_mirrors = list(raw.get("registry-mirrors") or [])
    cfg.insecure_registries = list(raw.get("insecure-registries") or [])
    cfg.bridge = raw.get("bridge", cfg.bridge)
    cfg.bip = raw.get("bip", cfg.bip)
    cfg.iptables = bool(raw.get("iptables", True))
    cfg.ip_masq = bool(raw.get("ip-masq", True))
    cfg.userland_proxy = bool(raw.get("userland-proxy", True))
    cfg.default_address_pools = list(raw.get("default-address-pools") or [])
    cfg.live_restore = bool(raw.get("live-restore", False))
    cfg.cgroup_parent = raw.get("cgroup-parent", cfg.cgroup_parent)
    cfg.group = raw.get("group", cfg.group)
    ulimits = raw.get("default-ulimits") or {}
    if not isinstance(ulimits, dict) or not all(isinstance(v, dict) for v in ulimits.values()):
        raise InvalidArgument(
            f"unable to configure the Docker daemon with file {file}: "
            "default-ulimits must map names to {Name, Soft, Hard}"
        )
    cfg.default_ulimits = dict(ulimits)
    cfg.init = bool(raw.get("init", False))
    cfg.init_path = str(raw.get("init-path") or "")
    if raw.get("monitor"):
        if not isinstance(raw["monitor"], str):
            raise InvalidArgument(
                f"unable to configure the Docker daemon with file {file}: monitor must be a path"
            )
        cfg.conmon = raw["monitor"]
    cfg.extra = {
        k: v
        for k, v in raw.items()
        if k in {"default-address-pools", "iptables", "ip-masq", "userland-proxy"}
    }
    for key, value in overrides.items():
        if value is None or value == []:
            continue
        setattr(cfg, key, value)
    cfg.data_root = cfg.data_root.absolute()
    cfg.exec_root = cfg.exec_root.absolute()
    return cfg
