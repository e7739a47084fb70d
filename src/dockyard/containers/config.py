"""From a ``POST /containers/create`` body and an image config to the container's own Config.

Docker's merge rules: the image's Env is the base and the request's entries override by key;
an Entrypoint in the request drops the image's Cmd; an empty Cmd falls back to the image's;
Labels merge with the request winning; with nothing to run, "No command specified".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.containers.health import validate_healthcheck
from dockyard.containers.hostconfig import check_namespace_modes, device_cgroup_rule
from dockyard.containers.logopts import merge_log_config
from dockyard.containers.mounts import validate_host_mounts
from dockyard.containers.ocispec import DEFAULT_SHM_SIZE
from dockyard.containers.security import block_io_devices, check_confinement
from dockyard.errors import InvalidArgument

__all__ = [
    "CONFIG_KEYS",
    "RESTART_POLICIES",
    "ContainerDefaults",
    "merge_config",
    "validate_host_config",
]


@dataclass(frozen=True)
class ContainerDefaults:
    """The daemon's defaults for what a HostConfig leaves unset (daemon.json's
    ``default-shm-size``, ``default-ipc-mode``, ``dns``, ``dns-search``, ``dns-opts``)."""

    shm_size: int = DEFAULT_SHM_SIZE
    ipc_mode: str = "private"
    cgroupns_mode: str = "host"  # dockerd: "private" on cgroup v2 hosts, "host" on v1
    seccomp_profile: str = ""  # "": the built-in profile; "unconfined"; or a profile's JSON
    log_driver: str = "json-file"
    log_opts: Mapping[str, str] = field(default_factory=dict)
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()

    def dns_of(self, host_config: dict[str, Any]) -> dict[str, Any]:
        """``host_config`` with the daemon's DNS settings where it has none (dockerd applies
        them when it writes resolv.conf, so inspect keeps showing the container's own)."""
        out = dict(host_config)
        for key, value in (
            ("Dns", self.dns),
            ("DnsSearch", self.dns_search),
            ("DnsOptions", self.dns_options),
        ):
            if not out.get(key) and value:
                out[key] = list(value)
        return out


CONFIG_KEYS = (
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Image",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "OnBuild",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Healthcheck",
    "ArgsEscaped",
)

RESTART_POLICIES = {"", "no", "always", "unless-stopped", "on-failure"}


def _list_of_str(value: Any, field: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(
            f"json: cannot unmarshal {type(value).__name__} into Go struct field Config.{field} of type []string"
        )
    return list(value)


def _merge_env(base: list[str], override: list[str]) -> list[str]:
    out: dict[str, str] = {}
    order: list[str] = []
    for item in [*base, *override]:
        key = item.split("=", 1)[0]
        if key not in out:
            order.append(key)
        out[key] = item
    return [out[k] for k in order]


def merge_config(
    body: dict[str, Any], image_config: dict[str, Any], container_id: str
) -> dict[str, Any]:
    """The container's Config: request fields over the image's ``config`` section."""
    img = image_config.get("config") or {}
    env = _merge_env(
        _list_of_str(img.get("Env"), "Env") or [], _list_of_str(body.get("Env"), "Env") or []
    )
    entrypoint = _list_of_str(body.get("Entrypoint"), "Entrypoint")
    cmd = _list_of_str(body.get("Cmd"), "Cmd")
    if entrypoint is not None and entrypoint != []:
        final_entrypoint: list[str] | None = entrypoint
        final_cmd = cmd
    elif entrypoint == []:
        # An explicit empty entrypoint (``--entrypoint ""``) clears the image's.
        final_entrypoint = None
        final_cmd = cmd
    else:
        final_entrypoint = _list_of_str(img.get("Entrypoint"), "Entrypoint")
        final_cmd = cmd if cmd else _list_of_str(img.get("Cmd"), "Cmd")
    if not (final_entrypoint or final_cmd):
        raise InvalidArgument("No command specified")
    labels = dict(img.get("Labels") or {})
    labels.update(body.get("Labels") or {})
    exposed = dict(img.get("ExposedPorts") or {})
    exposed.update(body.get("ExposedPorts") or {})
    volumes = dict(img.get("Volumes") or {})
    volumes.update(body.get("Volumes") or {})
    config: dict[str, Any] = {
        "Hostname": body.get("Hostname") or container_id[:12],
        "Domainname": body.get("Domainname") or "",
        "User": body.get("User") or img.get("User") or "",
        "AttachStdin": bool(body.get("AttachStdin")),
        "AttachStdout": bool(body.get("AttachStdout")),
        "AttachStderr": bool(body.get("AttachStderr")),
        "Tty": bool(body.get("Tty")),
        "OpenStdin": bool(body.get("OpenStdin")),
        "StdinOnce": bool(body.get("StdinOnce")),
        "Env": env,
        "Cmd": final_cmd,
        "Image": body.get("Image", ""),
        "Volumes": volumes or None,
        "WorkingDir": body.get("WorkingDir") or img.get("WorkingDir") or "",
        "Entrypoint": final_entrypoint,
        "OnBuild": body.get("OnBuild"),
        "Labels": labels,
    }
    if exposed:
        config["ExposedPorts"] = exposed
    stop_signal = body.get("StopSignal") or img.get("StopSignal")
    if stop_signal:
        config["StopSignal"] = stop_signal
    if body.get("StopTimeout") is not None:
        config["StopTimeout"] = body["StopTimeout"]
    healthcheck = _merge_healthcheck(body.get("Healthcheck"), img.get("Healthcheck"))
    if healthcheck:
        config["Healthcheck"] = healthcheck
    shell = _list_of_str(body.get("Shell"), "Shell") or _list_of_str(img.get("Shell"), "Shell")
    if shell:
        config["Shell"] = shell
    return config


def _merge_healthcheck(user: Any, image: Any) -> dict[str, Any] | None:
    """moby's merge: the request's Healthcheck, its unset (zero) fields from the image's."""
    validate_healthcheck(user)
    if user is None:
        return dict(image) if isinstance(image, dict) else None
    merged = dict(user)
    if isinstance(image, dict):
        for key in ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
            if not merged.get(key) and image.get(key):
                merged[key] = image[key]
    return merged


def _check_extra_host(value: str) -> None:
    """dockerd's ``ValidateExtraHost`` at create: ``name:ip``, ``name=ip`` or host-gateway."""
    import ipaddress

    name, sep, address = value.partition("=")
    if not sep:
        name, sep, address = value.partition(":")
    if not sep or not name:
        raise InvalidArgument(f'bad format for add-host: "{value}"')
    if address != "host-gateway":
        try:
            ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            raise InvalidArgument(f'invalid IP address in add-host: "{address}"') from None


def validate_host_config(
    host_config: dict[str, Any], defaults: ContainerDefaults = ContainerDefaults()
) -> dict[str, Any]:
    """Defaults and the checks dockerd makes at create time."""
    if not isinstance(host_config, dict):
        raise InvalidArgument(
            "json: cannot unmarshal into Go struct field of type container.HostConfig"
        )
    hc = dict(host_config)
    policy = hc.get("RestartPolicy") or {}
    name = policy.get("Name", "") or ""
    if name not in RESTART_POLICIES:
        raise InvalidArgument(f"invalid restart policy '{name}'")
    if name in ("always", "unless-stopped") and hc.get("AutoRemove"):
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    if name != "on-failure" and policy.get("MaximumRetryCount"):
        raise InvalidArgument(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        )
    hc["RestartPolicy"] = {
        "Name": name or "no",
        "MaximumRetryCount": int(policy.get("MaximumRetryCount") or 0),
    }
    mode = hc.get("NetworkMode") or "default"
    hc["NetworkMode"] = mode
    log_config = hc.get("LogConfig") or {}
    hc["LogConfig"] = merge_log_config(log_config, defaults.log_driver, defaults.log_opts)
    validate_host_mounts(hc)
    check_namespace_modes(hc)
    check_confinement(hc)
    for extra in hc.get("ExtraHosts") or []:
        _check_extra_host(str(extra))
    runtime = hc.get("Runtime") or ""
    if runtime not in ("", "runc"):
        raise InvalidArgument(f"unknown or invalid runtime name: {runtime}")
    block_io_devices(hc)  # the devices must exist at create, as dockerd checks
    # docker 20+: "private" unless asked or daemon.json's default-ipc-mode says otherwise
    hc["IpcMode"] = hc.get("IpcMode") or defaults.ipc_mode
    shm = hc.get("ShmSize") or 0
    if not isinstance(shm, int) or isinstance(shm, bool) or shm < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    hc["ShmSize"] = shm or defaults.shm_size
    hc["CgroupnsMode"] = hc.get("CgroupnsMode") or defaults.cgroupns_mode
    for rule in hc.get("DeviceCgroupRules") or []:
        device_cgroup_rule(str(rule))
    return hc
