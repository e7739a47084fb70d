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
    "dns",
    "dns-search",
    "dns-opts",
    "mtu",
    "default-shm-size",
    "default-ipc-mode",
    "default-cgroupns-mode",
    "seccomp-profile",
    "labels",
    "storage-driver",
    "experimental",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
}

_IPC_MODES = ("private", "shareable")


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
    log_driver: str = "json-file"
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
    # container defaults (dockerd's --dns, --dns-search, --dns-opt, --default-shm-size,
    # --default-ipc-mode) and the default bridge's --mtu
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opts: list[str] = field(default_factory=list)
    mtu: int = 0
    default_shm_size: int = 64 * 1024 * 1024
    default_ipc_mode: str = "private"
    default_cgroupns_mode: str = field(default_factory=lambda: _cgroupns_default())
    seccomp_profile: str = ""  # "" or "builtin", "unconfined", or a profile file's path
    labels: list[str] = field(default_factory=list)
    storage_driver: str = "overlay2"
    experimental: bool = False
    max_concurrent_downloads: int = 3
    max_concurrent_uploads: int = 5
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
    cfg.log_opts = {str(k): str(v) for k, v in (raw.get("log-opts") or {}).items()}
    cfg.log_driver = str(raw.get("log-driver") or cfg.log_driver)
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
    _load_defaults(cfg, raw, file)
    cfg.extra = {
        k: v
        for k, v in raw.items()
        if k in {"default-address-pools", "iptables", "ip-masq", "userland-proxy"}
    }
    for key, value in overrides.items():
        if value is None or value == []:
            continue
        setattr(cfg, key, value)
    check_config(cfg)
    cfg.data_root = cfg.data_root.absolute()
    cfg.exec_root = cfg.exec_root.absolute()
    return cfg


def _cgroupns_default() -> str:
    """dockerd's default cgroup namespace mode: private on cgroup v2 hosts, host on v1."""
    return "private" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "host"


def _strings(raw: dict[str, Any], key: str, file: Path) -> list[str]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(
            f"unable to configure the Docker daemon with file {file}: {key} must be a list of strings"
        )
    return list(value)


def _load_defaults(cfg: DaemonConfig, raw: dict[str, Any], file: Path) -> None:
    """daemon.json's container defaults and the keys with dockerd's value types."""
    cfg.dns = _strings(raw, "dns", file)
    cfg.dns_search = _strings(raw, "dns-search", file)
    cfg.dns_opts = _strings(raw, "dns-opts", file)
    cfg.labels = _strings(raw, "labels", file)
    if "mtu" in raw:
        cfg.mtu = _integer(raw["mtu"], "mtu", file)
    if "default-shm-size" in raw:
        cfg.default_shm_size = parse_size(str(raw["default-shm-size"]), "default-shm-size")
    cfg.default_ipc_mode = str(raw.get("default-ipc-mode") or cfg.default_ipc_mode)
    cfg.default_cgroupns_mode = str(raw.get("default-cgroupns-mode") or cfg.default_cgroupns_mode)
    cfg.storage_driver = str(raw.get("storage-driver") or cfg.storage_driver)
    cfg.seccomp_profile = str(raw.get("seccomp-profile") or "")
    cfg.experimental = bool(raw.get("experimental", False))
    for key in ("max-concurrent-downloads", "max-concurrent-uploads"):
        if key in raw:
            setattr(cfg, key.replace("-", "_"), _integer(raw[key], key, file))


def _integer(value: Any, key: str, file: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(
            f"unable to configure the Docker daemon with file {file}: {key} must be a number"
        )
    return value


def parse_size(text: str, what: str) -> int:
    """A go-units size (``64m``) of a daemon option."""
    from dockyard.units import ram_in_bytes

    try:
        return ram_in_bytes(text)
    except ValueError as exc:
        raise InvalidArgument(f"invalid {what}: {exc}") from None


def seccomp_profile_json(cfg: DaemonConfig) -> str:
    """``seccomp-profile`` as containers take it: "" (built-in), "unconfined", or the JSON
    of the named file (read at start-up, as dockerd does)."""
    value = cfg.seccomp_profile
    if value in ("", "builtin", "default"):
        return ""
    if value == "unconfined":
        return value
    try:
        text = Path(value).read_text()
    except OSError as exc:
        raise InvalidArgument(
            f"opening seccomp profile ({value}) failed: {(exc.strerror or str(exc)).lower()}"
        ) from None
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"Decoding seccomp profile failed: {exc.msg}") from None
    return text


def check_config(cfg: DaemonConfig) -> None:
    """dockerd's validation of the merged options (flags over daemon.json)."""
    if cfg.default_ipc_mode not in _IPC_MODES:
        raise InvalidArgument(f"invalid default IPC mode: {cfg.default_ipc_mode}")
    if cfg.default_cgroupns_mode not in ("host", "private"):
        raise InvalidArgument(f"invalid default cgroup namespace mode: {cfg.default_cgroupns_mode}")
    if cfg.default_shm_size <= 0:
        raise InvalidArgument(f"invalid default shm size: {cfg.default_shm_size}")
    if cfg.mtu < 0 or (cfg.mtu and cfg.mtu < 68):
        raise InvalidArgument(f"invalid MTU: {cfg.mtu}")
    if cfg.storage_driver not in ("overlay2", "overlay", ""):
        raise InvalidArgument(
            f"error initializing graphdriver: driver not supported: {cfg.storage_driver}"
        )
    if cfg.max_concurrent_downloads < 0:
        raise InvalidArgument(f"invalid max concurrent downloads: {cfg.max_concurrent_downloads}")
    if cfg.max_concurrent_uploads < 0:
        raise InvalidArgument(f"invalid max concurrent uploads: {cfg.max_concurrent_uploads}")
    from dockyard.containers.logopts import merge_log_config

    try:
        merge_log_config(None, cfg.log_driver, cfg.log_opts)
    except InvalidArgument as exc:
        raise InvalidArgument(f"failed to set log opts: {exc.message}") from None
    for label in cfg.labels:
        if "=" not in label:
            raise InvalidArgument(f"bad attribute format: {label}")
