"""``dockyard-registry`` configuration: a YAML or TOML file shaped like distribution's.

YAML (``.yml``/``.yaml``, or any other suffix)::

    log:
      level: info                      # debug | info | warning | error
    storage:
      filesystem:
        rootdirectory: /var/lib/dockyard-registry
      # inmemory: {}                   # instead of filesystem: state dies with the process
      delete:
        enabled: true                  # DELETE of manifests, tags and blobs (default false)
      maintenance:
        readonly:
          enabled: false               # refuse every write with 405 UNSUPPORTED
        uploadpurging:                 # read by garbage-collect
          enabled: true
          age: 168h
    http:
      addr: 127.0.0.1:5000             # host:port; ":5000" listens on every address
      tls:
        certificate: /etc/dockyard-registry/cert.pem
        key: /etc/dockyard-registry/key.pem
      ratelimit:                       # per client address; absent = unlimited
        rate: 50                       # requests per second
        burst: 100
    auth:                              # handed as is to dockyard.registry.auth.build
      htpasswd: {realm: dockyard, path: /etc/dockyard-registry/htpasswd}
    readonly: false                    # shorthand for storage.maintenance.readonly.enabled

TOML (``.toml``) has the same tree (``[storage.filesystem]``, ``rootdirectory = "..."``, ...).
Command-line flags override the file: ``--addr``, ``--root`` (selects the filesystem driver),
``--log-level``. Errors name the key at fault and raise ``InvalidArgument``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dockyard.errors import InvalidArgument

__all__ = [
    "DEFAULT_ADDR",
    "DEFAULT_ROOT",
    "RateLimit",
    "RegistryConfig",
    "TLSConfig",
    "load_config",
    "parse_addr",
    "parse_config",
]

DEFAULT_ROOT = Path("/var/lib/dockyard-registry")
DEFAULT_ADDR = "127.0.0.1:5000"
_LOG_LEVELS = {"debug", "info", "warn", "warning", "error", "critical"}


@dataclass(frozen=True)
class TLSConfig:
    certificate: Path
    key: Path


@dataclass(frozen=True)
class RateLimit:
    rate: float  # tokens per second
    burst: int


@dataclass(frozen=True)
class RegistryConfig:
    """Everything ``serve`` needs; ``raw`` keeps the whole parsed file for the auth hook and
    for ``garbage-collect`` (``storage.maintenance.uploadpurging`` ...)."""

    storage: str = "filesystem"  # "filesystem" | "inmemory"
    root: Path = DEFAULT_ROOT
    addr: str = DEFAULT_ADDR
    tls: TLSConfig | None = None
    delete_enabled: bool = False
    readonly: bool = False
    log_level: str = "info"
    ratelimit: RateLimit | None = None
    auth: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    def with_overrides(
        self,
        *,
        addr: str | None = None,
        root: Path | None = None,
        log_level: str | None = None,
    ) -> RegistryConfig:
        cfg = self
        if addr is not None:
            parse_addr(addr)
            cfg = replace(cfg, addr=addr)
        if root is not None:
            cfg = replace(cfg, storage="filesystem", root=Path(root))
        if log_level is not None:
            cfg = replace(cfg, log_level=_log_level(log_level, "--log-level"))
        return cfg


def parse_addr(addr: str) -> tuple[str | None, int]:
    """``host:port`` → (host, port); an empty host means every address (``None``)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InvalidArgument(f"http.addr: expected host:port, got {addr!r}")
    host = host.strip("[]")
    return (host or None), int(port)


def _section(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{where}{key}: expected a mapping")
    return value


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidArgument(f"{where}: expected true or false")


def _log_level(value: Any, where: str) -> str:
    if not isinstance(value, str) or value.lower() not in _LOG_LEVELS:
        raise InvalidArgument(f"{where}: expected one of debug, info, warning, error")
    level = value.lower()
    return "warning" if level == "warn" else level


def parse_config(data: Mapping[str, Any]) -> RegistryConfig:
    if not isinstance(data, Mapping):
        raise InvalidArgument("config: expected a mapping at the top level")
    storage = _section(data, "storage", "")
    drivers = [k for k in storage if k in ("filesystem", "inmemory")]
    unknown = [
        k
        for k in storage
        if k not in ("filesystem", "inmemory", "delete", "maintenance", "cache", "redirect")
    ]
    if unknown:
        raise InvalidArgument(f"storage.{unknown[0]}: unsupported storage driver or option")
    if len(drivers) > 1:
        raise InvalidArgument("storage: configure exactly one of filesystem, inmemory")
    driver = drivers[0] if drivers else "filesystem"
    root = DEFAULT_ROOT
    if driver == "filesystem":
        fs = _section(storage, "filesystem", "storage.")
        rootdir = fs.get("rootdirectory")
        if rootdir is not None:
            if not isinstance(rootdir, str) or not rootdir:
                raise InvalidArgument("storage.filesystem.rootdirectory: expected a path")
            root = Path(rootdir)
    delete = _section(storage, "delete", "storage.")
    delete_enabled = _bool(delete.get("enabled", False), "storage.delete.enabled")
    maintenance = _section(storage, "maintenance", "storage.")
    readonly_section = _section(maintenance, "readonly", "storage.maintenance.")
    readonly = _bool(readonly_section.get("enabled", False), "storage.maintenance.readonly.enabled")
    if "readonly" in data:
        readonly = readonly or _bool(data["readonly"], "readonly")

    http = _section(data, "http", "")
    addr = http.get("addr", DEFAULT_ADDR)
    if not isinstance(addr, str):
        raise InvalidArgument("http.addr: expected host:port")
    parse_addr(addr)
    tls = None
    tls_section = _section(http, "tls", "http.")
    if tls_section:
        cert, key = tls_section.get("certificate"), tls_section.get("key")
        if not isinstance(cert, str) or not isinstance(key, str):
            raise InvalidArgument("http.tls: both certificate and key are needed")
        tls = TLSConfig(Path(cert), Path(key))
    ratelimit = None
    rl = _section(http, "ratelimit", "http.")
    if rl:
        rate, burst = rl.get("rate"), rl.get("burst", rl.get("rate"))
        if not isinstance(rate, int | float) or isinstance(rate, bool) or rate <= 0:
            raise InvalidArgument("http.ratelimit.rate: expected a positive number")
        if not isinstance(burst, int | float) or isinstance(burst, bool) or burst < 1:
            raise InvalidArgument("http.ratelimit.burst: expected a positive integer")
        ratelimit = RateLimit(float(rate), int(burst))

    log = _section(data, "log", "")
    log_level = _log_level(log.get("level", "info"), "log.level")

    auth = data.get("auth")
    if auth is not None and not isinstance(auth, Mapping):
        raise InvalidArgument("auth: expected a mapping")
    return RegistryConfig(
        storage=driver,
        root=root,
        addr=addr,
        tls=tls,
        delete_enabled=delete_enabled,
        readonly=readonly,
        log_level=log_level,
        ratelimit=ratelimit,
        auth=auth or None,
        raw=data,
    )


def load_config(path: Path | None) -> RegistryConfig:
    """Parse the file at ``path`` (TOML by ``.toml`` suffix, YAML otherwise); defaults
    without one."""
    if path is None:
        return RegistryConfig()
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidArgument(f"cannot read config {path}: {exc.strerror}") from None
    data: Any
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidArgument(f"{path}: {exc}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgument(f"{path}: {exc}") from None
    if data is None:
        data = {}
    return parse_config(data)
