"""``run``/``create`` flags → the ``POST /containers/create`` body the docker CLI sends.

Pure (the only I/O is reading ``--env-file``), so every flag is table-tested. Key order and
Go's JSON habits are kept: struct fields in declaration order, ``omitempty`` fields only when
set, map keys sorted, and every ``HostConfig`` key docker always sends. Bad values raise
``InvalidArgument`` with docker's wording.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Sequence

from dockyard.errors import InvalidArgument

TYPE_CHECKING = False  # not typing's: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "CreateOptions",
    "build_create_body",
    "env_value",
    "parse_bytes",
    "parse_duration",
    "parse_env_file",
    "parse_mount_flag",
    "parse_ports",
    "parse_restart",
    "parse_ulimit",
]


class CreateOptions:
    """Everything ``run``/``create`` can put in a create body (docker's flag names).

    A plain class with class-level defaults rather than a dataclass: ``dataclasses`` imports
    ``inspect``, which alone costs more start-up time than this whole module.
    """

    image: str
    command: Sequence[str] = ()
    interactive: bool = False
    tty: bool = False
    detach: bool = False
    auto_remove: bool = False
    env: Sequence[str] = ()
    env_files: Sequence[str] = ()
    workdir: str = ""
    user: str = ""
    entrypoint: str | None = None
    hostname: str = ""
    labels: Sequence[str] = ()
    network: str = "default"
    network_aliases: Sequence[str] = ()
    ip: str = ""
    restart: str = "no"
    console_size: tuple[int, int] = (0, 0)
    publish: Sequence[str] = ()
    publish_all: bool = False
    expose: Sequence[str] = ()
    volumes: Sequence[str] = ()
    mounts: Sequence[str] = ()
    volumes_from: Sequence[str] = ()
    privileged: bool = False
    cap_add: Sequence[str] = ()
    cap_drop: Sequence[str] = ()
    memory: str = ""
    cpus: str = ""
    add_hosts: Sequence[str] = ()
    tmpfs: Sequence[str] = ()
    init: bool = False
    stop_signal: str = ""
    stop_timeout: int | None = None
    read_only: bool = False
    dns: Sequence[str] = ()
    dns_search: Sequence[str] = ()
    dns_options: Sequence[str] = ()
    shm_size: str = ""
    ulimits: Sequence[str] = ()
    sysctls: Sequence[str] = ()
    log_driver: str = ""
    log_opts: Sequence[str] = ()
    health_cmd: str = ""
    health_interval: str = ""
    health_timeout: str = ""
    health_start_period: str = ""
    health_start_interval: str = ""
    health_retries: int = 0
    no_healthcheck: bool = False
    memory_swap: str = ""
    memory_reservation: str = ""
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    blkio_weight: int = 0
    pids_limit: int | None = None
    devices: Sequence[str] = ()
    device_cgroup_rules: Sequence[str] = ()
    pid: str = ""
    ipc: str = ""
    uts: str = ""
    group_add: Sequence[str] = ()
    security_opts: Sequence[str] = ()
    oom_score_adj: int = 0
    oom_kill_disable: bool = False
    memory_swappiness: int = -1
    cgroupns: str = ""
    cgroup_parent: str = ""
    domainname: str = ""
    mac_address: str = ""
    label_files: Sequence[str] = ()
    annotations: Sequence[str] = ()
    runtime: str = ""
    volume_driver: str = ""
    blkio_weight_devices: Sequence[str] = ()
    device_read_bps: Sequence[str] = ()
    device_write_bps: Sequence[str] = ()
    device_read_iops: Sequence[str] = ()
    device_write_iops: Sequence[str] = ()
    cidfile: str = ""
    attach: Sequence[str] = ()
    extra: dict[str, Any]

    def __init__(self, image: str, **options: Any) -> None:
        self.image = image
        self.extra = dict(options.pop("extra", None) or {})
        cls = type(self)
        for key, value in options.items():
            if key.startswith("_") or not hasattr(cls, key):
                raise TypeError(f"CreateOptions got an unexpected option {key!r}")
            setattr(self, key, value)


_HOST_CONFIG_TEMPLATE: tuple[tuple[str, Any], ...] = (
    ("Binds", None),
    ("ContainerIDFile", ""),
    ("LogConfig", {"Type": "", "Config": {}}),
    ("NetworkMode", "default"),
    ("PortBindings", {}),
    ("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0}),
    ("AutoRemove", False),
    ("VolumeDriver", ""),
    ("VolumesFrom", None),
    ("ConsoleSize", [0, 0]),
    ("CapAdd", None),
    ("CapDrop", None),
    ("CgroupnsMode", ""),
    ("Dns", []),
    ("DnsOptions", []),
    ("DnsSearch", []),
    ("ExtraHosts", None),
    ("GroupAdd", None),
    ("IpcMode", ""),
    ("Cgroup", ""),
    ("Links", None),
    ("OomScoreAdj", 0),
    ("PidMode", ""),
    ("Privileged", False),
    ("PublishAllPorts", False),
    ("ReadonlyRootfs", False),
    ("SecurityOpt", None),
    ("Tmpfs", None),  # omitempty
    ("UTSMode", ""),
    ("UsernsMode", ""),
    ("ShmSize", 0),
    ("Sysctls", None),  # omitempty
    ("Isolation", ""),
    ("CpuShares", 0),
    ("Memory", 0),
    ("NanoCpus", 0),
    ("CgroupParent", ""),
    ("BlkioWeight", 0),
    ("BlkioWeightDevice", []),
    ("BlkioDeviceReadBps", []),
    ("BlkioDeviceWriteBps", []),
    ("BlkioDeviceReadIOps", []),
    ("BlkioDeviceWriteIOps", []),
    ("CpuPeriod", 0),
    ("CpuQuota", 0),
    ("CpuRealtimePeriod", 0),
    ("CpuRealtimeRuntime", 0),
    ("CpusetCpus", ""),
    ("CpusetMems", ""),
    ("Devices", []),
    ("DeviceCgroupRules", None),
    ("DeviceRequests", None),
    ("MemoryReservation", 0),
    ("MemorySwap", 0),
    ("MemorySwappiness", -1),
    ("OomKillDisable", False),
    ("PidsLimit", 0),
    ("Ulimits", []),
    ("CpuCount", 0),
    ("CpuPercent", 0),
    ("IOMaximumIOps", 0),
    ("IOMaximumBandwidth", 0),
    ("Mounts", None),  # omitempty
    ("MaskedPaths", None),
    ("ReadonlyPaths", None),
    ("Init", None),  # omitempty
)
_OMITEMPTY_HOST = frozenset(["Tmpfs", "Sysctls", "Mounts", "Init"])

_EMPTY_ENDPOINT: tuple[tuple[str, Any], ...] = (
    ("IPAMConfig", None),
    ("Links", None),
    ("Aliases", None),
    ("MacAddress", ""),
    ("DriverOpts", None),
    ("GwPriority", 0),
    ("NetworkID", ""),
    ("EndpointID", ""),
    ("Gateway", ""),
    ("IPAddress", ""),
    ("IPPrefixLen", 0),
    ("IPv6Gateway", ""),
    ("GlobalIPv6Address", ""),
    ("GlobalIPv6PrefixLen", 0),
    ("DNSNames", None),
)

_WHITESPACE = " \t"


# --------------------------------------------------------------------------- env, labels


def parse_env_file(path: str, lookup: Callable[[str], str | None] | None = None) -> list[str]:
    """docker's env-file format: ``K=V`` lines (value verbatim), ``K`` passes the local value,
    blank lines and ``#`` comments skipped."""
    get = lookup if lookup is not None else os.environ.get
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise InvalidArgument(f"open {path}: {reason}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"env file {path} contains invalid utf8 bytes") from exc
    text = text.removeprefix("\ufeff")
    lines: list[str] = []
    for line in text.splitlines():
        line = line.lstrip(_WHITESPACE)
        if not line or line.startswith("#"):
            continue
        variable, sep, value = line.partition("=")
        variable = variable.lstrip(_WHITESPACE)
        if any(c in variable for c in _WHITESPACE):
            raise InvalidArgument(f"variable '{variable}' contains whitespaces")
        if not variable:
            raise InvalidArgument(f"no variable name on line '{line}'")
        if sep:
            lines.append(f"{variable}={value}")
        else:
            found = get(line)
            if found is not None:
                lines.append(f"{variable.strip()}={found}")
    return lines


def env_value(item: str) -> str:
    """``-e K=V`` as is; ``-e K`` takes the local value when set (docker's ValidateEnv)."""
    key, sep, _ = item.partition("=")
    if not key:
        raise InvalidArgument(f"invalid environment variable: {item}")
    if sep:
        return item
    found = os.environ.get(key)
    return f"{key}={found}" if found is not None else item


def parse_label_file(path: str) -> list[str]:
    """docker's label-file: ``K=V`` lines; comments and lines without ``=`` are skipped."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError as exc:
        raise InvalidArgument(f"open {path}: {(exc.strerror or str(exc)).lower()}") from exc
    out = []
    for line in text.removeprefix("\ufeff").splitlines():
        line = line.lstrip(_WHITESPACE)
        if line and not line.startswith("#") and "=" in line:
            out.append(line)
    return out


def parse_security_opts(values: Sequence[str]) -> tuple[list[str], bool]:
    """docker's parseSecurityOpts and parseSystemPaths: a ``seccomp=<file>`` is sent as the
    file's compact JSON; ``systempaths=unconfined`` leaves SecurityOpt and unmasks /proc."""
    import json

    out: list[str] = []
    unconfined_paths = False
    for opt in values:
        opt = opt.strip()
        if opt != "no-new-privileges" and "=" not in opt and ":" not in opt:
            raise InvalidArgument(f'Invalid --security-opt: "{opt}"')
        if opt == "systempaths=unconfined":
            unconfined_paths = True
            continue
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        if key == "seccomp" and sep and value not in ("unconfined", "builtin"):
            try:
                with open(value, "rb") as fh:
                    raw = fh.read()
            except OSError as exc:
                reason = (exc.strerror or str(exc)).lower()
                raise InvalidArgument(
                    f"opening seccomp profile ({value}) failed: open {value}: {reason}"
                ) from exc
            try:
                compact = json.dumps(json.loads(raw), separators=(",", ":"))
            except ValueError as exc:
                raise InvalidArgument(
                    f"compacting json for seccomp profile ({value}) failed: {exc}"
                ) from exc
            out.append(f"seccomp={compact}")
        else:
            out.append(opt)
    return out, unconfined_paths


def _throttle(spec: str, *, rate_is_bytes: bool) -> dict[str, Any]:
    """``/dev/sda:1mb`` (``--device-read-bps``) or ``/dev/sda:100`` (iops) → {Path, Rate}."""
    path, sep, value = spec.rpartition(":")
    if not sep or not path.startswith("/dev/"):
        raise InvalidArgument(f"bad format: {spec}")
    if rate_is_bytes:
        from dockyard.units import ram_in_bytes

        try:
            rate = ram_in_bytes(value)
        except ValueError:
            raise InvalidArgument(
                f"invalid rate for device: {spec}. The correct format is <device-path>:<number>"
                "[<unit>]. Number must be a positive integer. Unit is optional and can be kb, "
                "mb, or gb"
            ) from None
    else:
        if not value.isdigit():
            raise InvalidArgument(
                f"invalid rate for device: {spec}. The correct format is <device-path>:<number>."
                " Number must be a positive integer"
            )
        rate = int(value)
    return {"Path": path, "Rate": rate}


def _weight_device(spec: str) -> dict[str, Any]:
    path, sep, value = spec.rpartition(":")
    if not sep or not path.startswith("/dev/"):
        raise InvalidArgument(f"bad format: {spec}")
    if not value.isdigit() or not (10 <= int(value) <= 1000 or int(value) == 0):
        raise InvalidArgument(f"invalid weight for device: {spec}")
    return {"Path": path, "Weight": int(value)}


def _kv_map(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------- values


def parse_restart(policy: str) -> dict[str, Any]:
    """``no``, ``always``, ``unless-stopped``, ``on-failure[:N]`` → a RestartPolicy."""
    if not policy:
        return {"Name": "", "MaximumRetryCount": 0}
    name, sep, count = policy.partition(":")
    if sep and not name:
        raise InvalidArgument("invalid restart policy format: no policy provided before colon")
    retries = 0
    if count:
        try:
            retries = int(count)
        except ValueError as exc:
            raise InvalidArgument(
                "invalid restart policy format: maximum retry count must be an integer"
            ) from exc
    return {"Name": name, "MaximumRetryCount": retries}


def parse_bytes(text: str) -> int:
    """go-units ``RAMInBytes``: ``64m`` → 67108864 (binary units, case-insensitive)."""
    from dockyard.units import ram_in_bytes

    try:
        return ram_in_bytes(text)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


def _parse_cpus(text: str) -> int:
    try:
        value = float(text)
    except ValueError as exc:
        raise InvalidArgument(
            f'invalid argument "{text}" for "--cpus" flag: failed to parse'
        ) from exc
    return round(value * 1e9)


def parse_memory_swap(text: str) -> int:
    """go-units ``MemSwapBytes``: ``-1`` is unlimited, else a size."""
    return -1 if text.strip() == "-1" else parse_bytes(text)


_DEVICE_PERMS = re.compile(r"^[rwm]{1,3}$")


def parse_device(text: str) -> dict[str, str]:
    """docker's ``parseDevice``: ``src[:dst][:perms]`` → a HostConfig.Devices entry."""
    parts = text.split(":")
    src, dst, perms = parts[0], "", "rwm"
    if len(parts) == 3:
        dst, perms = parts[1], parts[2]
    elif len(parts) == 2:
        if _DEVICE_PERMS.match(parts[1]):
            perms = parts[1]
        else:
            dst = parts[1]
    elif len(parts) != 1:
        raise InvalidArgument(f"invalid device specification: {text}")
    if not _DEVICE_PERMS.match(perms):
        raise InvalidArgument(f"invalid device mode: {perms}")
    dst = dst or src
    if not dst.startswith("/"):
        raise InvalidArgument(f"bad format for path: {dst}")
    return {"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms}


def parse_ulimit(text: str) -> dict[str, Any]:
    """``nofile=100:200`` → ``{"Name": "nofile", "Hard": 200, "Soft": 100}``."""
    name, sep, limits = text.partition("=")
    if not sep or not name:
        raise InvalidArgument(f"invalid ulimit argument: {text}")
    soft_text, _, hard_text = limits.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if hard_text else soft
    except ValueError as exc:
        raise InvalidArgument(f"invalid ulimit argument: {text}") from exc
    if soft > hard:
        raise InvalidArgument(
            f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )
    return {"Name": name, "Hard": hard, "Soft": soft}


def _cap(name: str) -> str:
    upper = name.upper()
    if upper == "ALL" or upper.startswith("CAP_"):
        return upper
    return "CAP_" + upper


def _port_range(text: str, spec: str) -> list[int]:
    start, sep, end = text.partition("-")
    try:
        first = int(start)
        last = int(end) if sep else first
    except ValueError as exc:
        raise InvalidArgument(f"invalid containerPort: {spec}") from exc
    if not (0 < first <= last < 65536):
        raise InvalidArgument(f"invalid range specified for container port: {spec}")
    return list(range(first, last + 1))


def parse_ports(
    specs: Sequence[str], expose: Sequence[str] = ()
) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """``-p`` and ``--expose`` → (ExposedPorts, PortBindings), like ``nat.ParsePortSpecs``.

    Forms: ``80``, ``8080:80``, ``127.0.0.1:8080:80``, ``127.0.0.1::80``, ``[::1]:80:80``,
    ranges ``7000-7001:7000-7001``, and a ``/udp`` or ``/sctp`` suffix.
    """
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in specs:
        rest, _, proto = spec.rpartition("/") if "/" in spec else (spec, "", "tcp")
        proto = proto.lower() or "tcp"
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidArgument(f"invalid proto: {proto}")
        host_ip = ""
        if rest.startswith("["):
            end = rest.find("]")
            if end < 0:
                raise InvalidArgument(f"invalid IP address: {spec}")
            host_ip, rest = rest[1:end], rest[end + 2 :]
            parts = rest.split(":")
            host_port, container = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
        else:
            parts = rest.split(":")
            if len(parts) == 1:
                host_port, container = "", parts[0]
            elif len(parts) == 2:
                host_port, container = parts
            elif len(parts) == 3:
                host_ip, host_port, container = parts
            else:
                raise InvalidArgument(f"invalid port format: {spec}")
        ports = _port_range(container, spec)
        host_ports: list[str]
        if host_port and "-" in host_port:
            first_s, _, last_s = host_port.partition("-")
            try:
                first, last = int(first_s), int(last_s)
            except ValueError as exc:
                raise InvalidArgument(f"invalid hostPort: {host_port}") from exc
            if last - first + 1 == len(ports):
                host_ports = [str(p) for p in range(first, last + 1)]
            elif len(ports) == 1:
                host_ports = [host_port]
            else:
                raise InvalidArgument(
                    f"invalid ranges specified for container and host Ports: {container} and "
                    f"{host_port}"
                )
        else:
            if host_port and not host_port.isdigit():
                raise InvalidArgument(f"invalid hostPort: {host_port}")
            if host_port and len(ports) > 1:
                raise InvalidArgument(
                    f"invalid ranges specified for container and host Ports: {container} and "
                    f"{host_port}"
                )
            host_ports = [host_port] * len(ports)
        for port, hport in zip(ports, host_ports, strict=True):
            key = f"{port}/{proto}"
            exposed[key] = {}
            bindings.setdefault(key, []).append({"HostIp": host_ip, "HostPort": hport})
    for spec in expose:
        text, _, proto = spec.partition("/")
        for port in _port_range(text, spec):
            exposed[f"{port}/{proto or 'tcp'}"] = {}
    return dict(sorted(exposed.items())), dict(sorted(bindings.items()))


# --------------------------------------------------------------------------- body


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return list(value)
    return value


def build_create_body(opts: CreateOptions) -> dict[str, Any]:
    """The create body the docker CLI would send for these flags (key order included)."""
    env_list: list[str] = []
    for path in opts.env_files:
        env_list.extend(parse_env_file(path))
    env_list.extend(env_value(e) for e in opts.env)
    restart_policy = parse_restart(opts.restart)
    if opts.auto_remove and restart_policy["Name"] not in ("", "no"):
        raise InvalidArgument("conflicting options: cannot specify both --restart and --rm")
    exposed, bindings = parse_ports(opts.publish, opts.expose)
    network = opts.network or "default"
    attach_stdin = opts.interactive and not opts.detach
    attach_stdout = attach_stderr = not opts.detach
    if opts.attach:
        streams = {a.lower() for a in opts.attach}
        for stream in streams:
            if stream not in ("stdin", "stdout", "stderr"):
                raise InvalidArgument(
                    f'invalid argument "{stream}" for "-a, --attach" flag: valid streams '
                    "are STDIN, STDOUT and STDERR"
                )
        attach_stdin = "stdin" in streams
        attach_stdout = "stdout" in streams
        attach_stderr = "stderr" in streams
    if opts.mac_address and not re.fullmatch(
        r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}", opts.mac_address
    ):
        raise InvalidArgument(f"{opts.mac_address} is not a valid mac address")
    labels = [line for path in opts.label_files for line in parse_label_file(path)]
    labels.extend(opts.labels)

    host: dict[str, Any] = {k: _copy(v) for k, v in _HOST_CONFIG_TEMPLATE}
    binds, anonymous = _split_volumes(opts.volumes)
    host["Binds"] = binds or None
    host["VolumesFrom"] = list(opts.volumes_from) or None
    if opts.mounts:
        host["Mounts"] = [parse_mount_flag(m) for m in opts.mounts]
    if opts.log_driver or opts.log_opts:
        host["LogConfig"] = {"Type": opts.log_driver, "Config": _kv_map(opts.log_opts)}
    host["NetworkMode"] = network
    host["PortBindings"] = bindings
    host["RestartPolicy"] = restart_policy
    host["AutoRemove"] = opts.auto_remove
    host["ConsoleSize"] = [opts.console_size[0], opts.console_size[1]]
    host["CapAdd"] = [_cap(c) for c in opts.cap_add] or None
    host["CapDrop"] = [_cap(c) for c in opts.cap_drop] or None
    host["Dns"] = list(opts.dns)
    host["DnsOptions"] = list(opts.dns_options)
    host["DnsSearch"] = list(opts.dns_search)
    host["ExtraHosts"] = list(opts.add_hosts) or None
    host["Privileged"] = opts.privileged
    host["PublishAllPorts"] = opts.publish_all
    host["ReadonlyRootfs"] = opts.read_only
    if opts.tmpfs:
        host["Tmpfs"] = dict(sorted(_tmpfs(t) for t in opts.tmpfs))
    if opts.shm_size:
        host["ShmSize"] = parse_bytes(opts.shm_size)
    if opts.sysctls:
        host["Sysctls"] = _kv_map(opts.sysctls)
    if opts.memory:
        host["Memory"] = parse_bytes(opts.memory)
    if opts.cpus:
        host["NanoCpus"] = _parse_cpus(opts.cpus)
    host["Ulimits"] = [parse_ulimit(u) for u in opts.ulimits]
    if opts.init:
        host["Init"] = True
    if opts.memory_swap:
        host["MemorySwap"] = parse_memory_swap(opts.memory_swap)
    if opts.memory_reservation:
        host["MemoryReservation"] = parse_bytes(opts.memory_reservation)
    host["CpuShares"] = opts.cpu_shares
    host["CpuPeriod"] = opts.cpu_period
    host["CpuQuota"] = opts.cpu_quota
    host["CpusetCpus"] = opts.cpuset_cpus
    host["CpusetMems"] = opts.cpuset_mems
    host["BlkioWeight"] = opts.blkio_weight
    if opts.pids_limit is not None:
        host["PidsLimit"] = opts.pids_limit
    host["Devices"] = [parse_device(d) for d in opts.devices]
    host["DeviceCgroupRules"] = list(opts.device_cgroup_rules) or None
    host["PidMode"] = opts.pid
    host["IpcMode"] = opts.ipc
    host["UTSMode"] = opts.uts
    host["GroupAdd"] = list(opts.group_add) or None
    security, unconfined_paths = parse_security_opts(opts.security_opts)
    host["SecurityOpt"] = security or None
    if unconfined_paths:
        host["MaskedPaths"] = []
        host["ReadonlyPaths"] = []
    host["OomScoreAdj"] = opts.oom_score_adj
    host["OomKillDisable"] = opts.oom_kill_disable
    if opts.memory_swappiness != -1 and not 0 <= opts.memory_swappiness <= 100:
        raise InvalidArgument(
            f"invalid value: {opts.memory_swappiness}. Valid memory swappiness range is 0-100"
        )
    host["MemorySwappiness"] = opts.memory_swappiness
    if opts.cgroupns not in ("", "host", "private"):
        raise InvalidArgument("--cgroupns: invalid CGROUP mode")
    host["CgroupnsMode"] = opts.cgroupns
    host["CgroupParent"] = opts.cgroup_parent
    host["VolumeDriver"] = opts.volume_driver
    host["ContainerIDFile"] = opts.cidfile
    if opts.runtime:
        host["Runtime"] = opts.runtime
    host["BlkioWeightDevice"] = [_weight_device(d) for d in opts.blkio_weight_devices]
    host["BlkioDeviceReadBps"] = [_throttle(d, rate_is_bytes=True) for d in opts.device_read_bps]
    host["BlkioDeviceWriteBps"] = [_throttle(d, rate_is_bytes=True) for d in opts.device_write_bps]
    host["BlkioDeviceReadIOps"] = [_throttle(d, rate_is_bytes=False) for d in opts.device_read_iops]
    host["BlkioDeviceWriteIOps"] = [
        _throttle(d, rate_is_bytes=False) for d in opts.device_write_iops
    ]
    if opts.annotations:
        host["Annotations"] = _kv_map(opts.annotations)
    host.update(opts.extra)
    host = {k: v for k, v in host.items() if not (k in _OMITEMPTY_HOST and v is None)}

    endpoints: dict[str, Any] = {}
    if network == "default":
        endpoints["default"] = {k: _copy(v) for k, v in _EMPTY_ENDPOINT}
        endpoints["default"]["MacAddress"] = opts.mac_address
    elif opts.network_aliases or opts.ip or opts.mac_address:
        endpoint = {k: _copy(v) for k, v in _EMPTY_ENDPOINT}
        if opts.network_aliases:
            endpoint["Aliases"] = list(opts.network_aliases)
        if opts.ip:
            endpoint["IPAMConfig"] = {"IPv4Address": opts.ip}
        endpoint["MacAddress"] = opts.mac_address
        endpoints[network] = endpoint
    body: dict[str, Any] = {
        "Hostname": opts.hostname,
        "Domainname": opts.domainname,
        "User": opts.user,
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
    }
    if exposed:
        body["ExposedPorts"] = exposed
    body.update(
        {
            "Tty": opts.tty,
            "OpenStdin": opts.interactive,
            "StdinOnce": attach_stdin,
            "Env": env_list or None,
            "Cmd": list(opts.command) or None,
        }
    )
    healthcheck = _healthcheck(opts)
    if healthcheck is not None:
        body["Healthcheck"] = healthcheck
    body.update(
        {
            "Image": opts.image,
            "Volumes": {dest: {} for dest in sorted(anonymous)},
            "WorkingDir": opts.workdir,
            "Entrypoint": None if opts.entrypoint is None else [opts.entrypoint],
            "OnBuild": None,
            "Labels": _kv_map(labels),
        }
    )
    if opts.stop_signal:
        body["StopSignal"] = opts.stop_signal
    if opts.stop_timeout is not None:
        body["StopTimeout"] = opts.stop_timeout
    body["HostConfig"] = host
    body["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    return body


_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds (``1s``, ``1.5m``, ``1h30m``, ``-2s``,
    ``0``); ``InvalidArgument`` with Go's message otherwise."""
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    rest = text
    negative = rest[:1] == "-"
    if rest[:1] in ("-", "+"):
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise InvalidArgument(f"time: invalid duration {quoted}")
    total = 0
    while rest:
        m = _DURATION_PART.match(rest)
        assert m is not None
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise InvalidArgument(f"time: invalid duration {quoted}")
        if not unit:
            raise InvalidArgument(f"time: missing unit in duration {quoted}")
        scale = _DURATION_UNITS.get(unit)
        if scale is None:
            raise InvalidArgument(f'time: unknown unit "{unit}" in duration {quoted}')
        value = int(whole or "0") * scale
        if frac:
            value += int(frac) * scale // 10 ** len(frac)
        total += value
        rest = rest[m.end() :]
    return -total if negative else total


def _duration_flag(name: str, text: str) -> int:
    try:
        return parse_duration(text)
    except InvalidArgument as exc:
        raise InvalidArgument(
            f'invalid argument "{text}" for "--{name}" flag: {exc.message}'
        ) from None


def _healthcheck(opts: CreateOptions) -> dict[str, Any] | None:
    """``Config.Healthcheck`` as the docker CLI sends it: ``{"Test":["NONE"]}`` for
    ``--no-healthcheck``, else only the fields given (durations in ns), or nothing."""
    durations = {
        "Interval": _duration_flag("health-interval", opts.health_interval)
        if opts.health_interval
        else 0,
        "Timeout": _duration_flag("health-timeout", opts.health_timeout)
        if opts.health_timeout
        else 0,
        "StartPeriod": _duration_flag("health-start-period", opts.health_start_period)
        if opts.health_start_period
        else 0,
        "StartInterval": _duration_flag("health-start-interval", opts.health_start_interval)
        if opts.health_start_interval
        else 0,
    }
    retries = int(opts.health_retries or 0)
    have = bool(opts.health_cmd) or retries != 0 or any(durations.values())
    if opts.no_healthcheck:
        if have:
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not have:
        return None
    for key, flag in (
        ("Interval", "health-interval"),
        ("Timeout", "health-timeout"),
    ):
        if durations[key] < 0:
            raise InvalidArgument(f"--{flag} cannot be negative")
    if retries < 0:
        raise InvalidArgument("--health-retries cannot be negative")
    for key, flag in (
        ("StartPeriod", "health-start-period"),
        ("StartInterval", "health-start-interval"),
    ):
        if durations[key] < 0:
            raise InvalidArgument(f"--{flag} cannot be negative")
    check: dict[str, Any] = {}
    if opts.health_cmd:
        check["Test"] = ["CMD-SHELL", opts.health_cmd]
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        if durations[key]:
            check[key] = durations[key]
    if retries:
        check["Retries"] = retries
    return check


def _tmpfs(spec: str) -> tuple[str, str]:
    path, _, options = spec.partition(":")
    return path, options


# --------------------------------------------------------------------------- volumes, --mount


def _split_volumes(specs: Sequence[str]) -> tuple[list[str], set[str]]:
    """``-v`` values → (``Binds``, ``Config.Volumes`` keys), as the docker CLI splits them: a bare
    container path is an anonymous volume; a relative ``./host`` path becomes absolute."""
    binds: list[str] = []
    anonymous: set[str] = set()
    for spec in specs:
        if not spec:
            raise InvalidArgument("invalid empty volume spec")
        if ":" not in spec:
            anonymous.add(spec)
            continue
        host, _, rest = spec.partition(":")
        if host.startswith("."):
            host = os.path.abspath(host)
        binds.append(f"{host}:{rest}")
    return binds, anonymous


_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _go_bool(value: str) -> bool | None:
    if value in _GO_TRUE:
        return True
    if value in _GO_FALSE:
        return False
    return None


def parse_mount_flag(value: str) -> dict[str, Any]:
    """One ``--mount`` value → a ``HostConfig.Mounts`` entry, as docker CLI's ``MountOpt``
    builds it (Go field order, omitempty). Raises ``InvalidArgument`` with the CLI's words,
    prefixed ``invalid argument "…" for "--mount" flag: ``."""
    try:
        return _parse_mount_flag(value)
    except InvalidArgument as exc:
        raise InvalidArgument(
            f'invalid argument "{value}" for "--mount" flag: {exc.message}'
        ) from None


def _parse_mount_flag(value: str) -> dict[str, Any]:
    try:
        fields = next(csv.reader([value]), [])
    except csv.Error as exc:
        raise InvalidArgument(str(exc)) from None
    mount: dict[str, Any] = {"Type": "volume"}
    source = target = consistency = ""
    readonly = False
    bind: dict[str, Any] | None = None
    volume: dict[str, Any] | None = None
    tmpfs: dict[str, Any] | None = None

    def volume_opts() -> dict[str, Any]:
        nonlocal volume
        if volume is None:
            volume = {"NoCopy": False, "Labels": {}, "Subpath": "", "DriverConfig": {}}
        return volume

    def bind_opts() -> dict[str, Any]:
        nonlocal bind
        if bind is None:
            bind = {"Propagation": "", "NonRecursive": False, "CreateMountpoint": False}
        return bind

    def tmpfs_opts() -> dict[str, Any]:
        nonlocal tmpfs
        if tmpfs is None:
            tmpfs = {"SizeBytes": 0, "Mode": 0}
        return tmpfs

    for field_ in fields:
        key, sep, val = field_.partition("=")
        key = key.lower()
        if not sep:
            if key in ("readonly", "ro"):
                readonly = True
            elif key == "volume-nocopy":
                volume_opts()["NoCopy"] = True
            elif key == "bind-nonrecursive":
                bind_opts()["NonRecursive"] = True
            else:
                raise InvalidArgument(f"invalid field '{field_}' must be a key=value pair")
            continue
        if key == "type":
            mount["Type"] = val.lower()
        elif key in ("source", "src"):
            source = val
            if val == "." or val.startswith("./"):
                source = os.path.abspath(val)
        elif key in ("target", "dst", "destination"):
            target = val
        elif key in ("readonly", "ro"):
            parsed = _go_bool(val)
            if parsed is None:
                raise InvalidArgument(f"invalid value for {key}: {val}")
            readonly = parsed
        elif key == "consistency":
            consistency = val.lower()
        elif key == "bind-propagation":
            bind_opts()["Propagation"] = val.lower()
        elif key == "bind-nonrecursive":
            parsed = _go_bool(val)
            if parsed is None:
                raise InvalidArgument(f"invalid value for {key}: {val}")
            bind_opts()["NonRecursive"] = parsed
        elif key == "volume-subpath":
            volume_opts()["Subpath"] = val
        elif key == "volume-nocopy":
            parsed = _go_bool(val)
            if parsed is None:
                raise InvalidArgument(f"invalid value for volume-nocopy: {val}")
            volume_opts()["NoCopy"] = parsed
        elif key == "volume-driver":
            volume_opts()["DriverConfig"]["Name"] = val
        elif key == "volume-opt":
            k, _, v = val.partition("=")
            if k:
                volume_opts()["DriverConfig"].setdefault("Options", {})[k] = v
        elif key == "volume-label":
            k, _, v = val.partition("=")
            if k:
                volume_opts()["Labels"][k] = v
        elif key == "tmpfs-size":
            try:
                tmpfs_opts()["SizeBytes"] = parse_bytes(val)
            except InvalidArgument:
                raise InvalidArgument(f"invalid value for {key}: {val}") from None
        elif key == "tmpfs-mode":
            try:
                tmpfs_opts()["Mode"] = int(val, 8)
            except ValueError:
                raise InvalidArgument(f"invalid value for {key}: {val}") from None
        else:
            raise InvalidArgument(f"unexpected key '{key}' in '{field_}'")
    kind = mount["Type"]
    if not kind:
        raise InvalidArgument("type is required")
    if not target:
        raise InvalidArgument("target is required")
    if volume is not None and kind != "volume":
        raise InvalidArgument(f"cannot mix 'volume-*' options with mount type '{kind}'")
    if bind is not None and kind != "bind":
        raise InvalidArgument(f"cannot mix 'bind-*' options with mount type '{kind}'")
    if tmpfs is not None and kind != "tmpfs":
        raise InvalidArgument(f"cannot mix 'tmpfs-*' options with mount type '{kind}'")
    if source:
        mount["Source"] = source
    mount["Target"] = target
    if readonly:
        mount["ReadOnly"] = True
    if consistency:
        mount["Consistency"] = consistency
    if bind is not None:
        mount["BindOptions"] = {k: v for k, v in bind.items() if v}
    if volume is not None:
        out: dict[str, Any] = {}
        if volume["NoCopy"]:
            out["NoCopy"] = True
        if volume["Labels"]:
            out["Labels"] = dict(sorted(volume["Labels"].items()))
        if volume["Subpath"]:
            out["Subpath"] = volume["Subpath"]
        driver = volume["DriverConfig"]
        if "Options" in driver:
            driver["Options"] = dict(sorted(driver["Options"].items()))
        out["DriverConfig"] = driver
        mount["VolumeOptions"] = out
    if tmpfs is not None:
        mount["TmpfsOptions"] = {k: v for k, v in tmpfs.items() if v}
    return mount
