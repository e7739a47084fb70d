"""``/_ping``, ``/version``, ``/info``."""

from __future__ import annotations

import os
import platform
import socket
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from dockyard import __version__
from dockyard.daemon.app import API_VERSION, MIN_API_VERSION, SERVICES_KEY, json_response
from dockyard.daemon.services import Services

__all__ = ["add_routes"]


def _services(request: web.Request) -> Services:
    services: Services = request.app[SERVICES_KEY]
    return services


async def ping(request: web.Request) -> web.Response:
    headers = {
        "Cache-Control": "no-cache, no-store, must-revalidate",
        "Pragma": "no-cache",
        "Swarm": "inactive",
    }
    if request.method == "HEAD":
        return web.Response(status=200, headers=headers, content_type="text/plain", charset="utf-8")
    return web.Response(text="OK", headers=headers, content_type="text/plain", charset="utf-8")


def _runc_version(path: str) -> str:
    import subprocess

    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    first = out.splitlines()[0] if out else ""
    return first.split()[-1] if first else ""


async def version(request: web.Request) -> web.Response:
    s = _services(request)
    kernel = platform.release()
    engine = {
        "Name": "Engine",
        "Version": __version__,
        "Details": {
            "ApiVersion": API_VERSION,
            "Arch": "amd64",
            "BuildTime": "",
            "Experimental": "true" if s.config.experimental else "false",
            "GitCommit": "",
            "GoVersion": f"python{platform.python_version()}",
            "KernelVersion": kernel,
            "MinAPIVersion": MIN_API_VERSION,
            "Os": "linux",
        },
    }
    components: list[dict[str, Any]] = [engine]
    runc_version = _runc_version(s.config.runtime)
    if runc_version:
        components.append({"Name": "runc", "Version": runc_version, "Details": {"GitCommit": ""}})
    body: dict[str, Any] = {
        "Platform": {"Name": "Dockyard Engine"},
        "Components": components,
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": f"python{platform.python_version()}",
        "Os": "linux",
        "Arch": "amd64",
        "KernelVersion": kernel,
    }
    if s.config.experimental:
        body["Experimental"] = True  # omitempty in dockerd's types.Version
    body["BuildTime"] = ""
    return json_response(body)


def _os_release() -> tuple[str, str]:
    try:
        data = dict(
            line.split("=", 1)
            for line in Path("/etc/os-release").read_text().splitlines()
            if "=" in line
        )
    except OSError:
        return "Linux", ""
    return data.get("PRETTY_NAME", "Linux").strip('"'), data.get("VERSION_ID", "").strip('"')


def _security_options(s: Services) -> list[str]:
    """dockerd's list: the seccomp profile containers get, and cgroupns on cgroup v2."""
    profile = s.config.seccomp_profile
    out = []
    if profile != "unconfined":
        name = "builtin" if profile in ("", "builtin", "default") else profile
        out.append(f"name=seccomp,profile={name}")
    if _cgroup_version() == "2":
        out.append("name=cgroupns")
    return out


def _cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


async def info(request: web.Request) -> web.Response:
    s = _services(request)
    counts = s.containers.count()
    os_name, os_version = _os_release()
    mem_total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return json_response(
        {
            "ID": s.daemon_id,
            "Containers": counts["total"],
            "ContainersRunning": counts["running"],
            "ContainersPaused": counts["paused"],
            "ContainersStopped": counts["stopped"],
            "Images": s.images.count(),
            "Driver": "overlay2",
            "DriverStatus": [
                ["Backing Filesystem", "extfs"],
                ["Supports d_type", "true"],
                ["Native Overlay Diff", "true"],
            ],
            "Plugins": {
                "Volume": ["local"],
                "Network": ["bridge", "host", "none"],
                "Authorization": None,
                "Log": ["json-file", "k8s-file", "local", "none"],
            },
            "MemoryLimit": True,
            "SwapLimit": True,
            "CpuCfsPeriod": True,
            "CpuCfsQuota": True,
            "CPUShares": True,
            "CPUSet": True,
            "PidsLimit": True,
            "OomKillDisable": True,
            "IPv4Forwarding": True,
            "BridgeNfIptables": True,
            "BridgeNfIp6tables": True,
            "Debug": False,
            "NFd": len(os.listdir("/proc/self/fd")),
            "NGoroutines": 1,
            "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()),
            "LoggingDriver": s.config.log_driver,
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": _cgroup_version(),
            "NEventsListener": 0,
            "KernelVersion": platform.release(),
            "OperatingSystem": os_name,
            "OSVersion": os_version,
            "OSType": "linux",
            "Architecture": platform.machine(),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "AllowNondistributableArtifactsCIDRs": None,
                "AllowNondistributableArtifactsHostnames": None,
                "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                "IndexConfigs": {
                    "docker.io": {
                        "Name": "docker.io",
                        "Mirrors": s.config.registry_mirrors,
                        "Secure": True,
                        "Official": True,
                    }
                },
                "Mirrors": s.config.registry_mirrors,
            },
            "NCPU": os.cpu_count() or 1,
            "MemTotal": mem_total,
            "GenericResources": None,
            "DockerRootDir": str(s.config.data_root),
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": socket.gethostname(),
            "Labels": list(s.config.labels),
            "ExperimentalBuild": s.config.experimental,
            "ServerVersion": __version__,
            "Runtimes": {"runc": {"path": s.config.runtime}},
            "DefaultRuntime": "runc",
            "Swarm": {
                "NodeID": "",
                "NodeAddr": "",
                "LocalNodeState": "inactive",
                "ControlAvailable": False,
                "Error": "",
                "RemoteManagers": None,
            },
            "LiveRestoreEnabled": True,
            "Isolation": "",
            "InitBinary": "docker-init",
            "ContainerdCommit": {"ID": "", "Expected": ""},
            "RuncCommit": {"ID": "", "Expected": ""},
            "InitCommit": {"ID": "", "Expected": ""},
            "SecurityOptions": _security_options(s),
            "Warnings": None,
        }
    )


async def disk_usage(request: web.Request) -> web.Response:
    """``GET /system/df``: images, containers, volumes and build cache, with their sizes."""
    import asyncio

    return json_response(await asyncio.to_thread(_disk_usage, _services(request)))


def _disk_usage(s: Services) -> dict[str, Any]:
    from collections import Counter

    from dockyard.build.cache import BuildCache, entry_record

    images = s.images.list(all=True)
    sizes = {info.key: info.size for info in s.snapshots.walk() if info.kind == "committed"}
    chains = {image["Id"]: set(s.images.layer_chains(image["Id"])) for image in images}
    users = Counter(chain for image_chains in chains.values() for chain in image_chains)
    for image in images:
        image["Containers"] = len(s.containers.users_of_image(image["Id"]))
        # dockerd: the bytes of this image's layers that other images use too; the docker
        # CLI's RECLAIMABLE counts an in-use image's Size - SharedSize as used.
        image["SharedSize"] = sum(sizes.get(c, 0) for c in chains[image["Id"]] if users[c] > 1)
    containers = s.containers.list_all(all=True, limit=-1, size=True, filters={})
    layers = sum(sizes.values())
    volumes = [v.to_api(usage=(size, refs)) for v, size, refs in s.volumes.usage()]
    cache = [entry_record(row) for row in BuildCache(s.db).entries()]
    return {
        "LayersSize": layers,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": cache,
    }


def add_routes(app: web.Application) -> None:
    app.router.add_get("/system/df", disk_usage)
    app.router.add_route("GET", "/_ping", ping)
    app.router.add_route("HEAD", "/_ping", ping)
    app.router.add_get("/version", version)
    app.router.add_get("/info", info)
