"""Image configs and `docker save` archives.

We write the docker-archive format (not an OCI layout) because it is what both `docker load -i`
and `dockyard load -i` take without extra tools::

    manifest.json        [{"Config": "<id>.json", "RepoTags": ["busybox:latest"],
                           "Layers": ["<v1id>/layer.tar", ...]}]
    repositories         {"busybox": {"latest": "<last v1id>"}}
    <id>.json            the image config; <id> = sha256 of these bytes = the image ID
    <v1id>/VERSION       "1.0"
    <v1id>/json          legacy v1 layer metadata
    <v1id>/layer.tar     the uncompressed layer; sha256 = rootfs.diff_ids[i]

v1 layer IDs are derived like Docker does: from the layer's diff ID and its parent's v1 ID, and
for the top layer also the config digest, so equal layers under different parents (or images)
never collide. Everything in the archive is deterministic, so equal inputs give equal bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .cache import Layer, canonical_json

__all__ = ["History", "ImagePlan", "config_bytes", "go_arch", "iso8601", "write_docker_archive"]

_GO_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def go_arch() -> str:
    """The host architecture in OCI/Go spelling: the images hold host binaries."""
    machine = platform.machine()
    return _GO_ARCH.get(machine, machine)


def iso8601(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass(frozen=True)
class History:
    created_by: str
    empty_layer: bool = False


@dataclass(frozen=True)
class ImagePlan:
    """Everything an image is made of: its layers (base first), history and container config."""

    repo: str
    tag: str
    layers: tuple[Layer, ...]
    history: tuple[History, ...]
    config: dict[str, object] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.tag}"


def config_bytes(plan: ImagePlan, epoch: int) -> bytes:
    """The image config JSON (canonical, so its digest - the image ID - is stable)."""
    created = iso8601(epoch)
    history: list[dict[str, object]] = []
    for h in plan.history:
        item: dict[str, object] = {"created": created, "created_by": h.created_by}
        if h.empty_layer:
            item["empty_layer"] = True
        history.append(item)
    config = {
        "architecture": go_arch(),
        "os": "linux",
        "created": created,
        "config": plan.config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in plan.layers]},
        "history": history,
    }
    return canonical_json(config)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _member(name: str, epoch: int, size: int = 0, dir_: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if dir_ else tarfile.REGTYPE
    info.mode = 0o755 if dir_ else 0o644
    info.size = size
    info.mtime = epoch
    return info


def write_docker_archive(dest: Path, plan: ImagePlan, epoch: int) -> str:
    """Write `dest` atomically; return the image ID ("sha256:<hex>")."""
    config = config_bytes(plan, epoch)
    config_hex = _sha256(config)
    created = iso8601(epoch)
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as out:
            with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:

                def add_bytes(name: str, data: bytes) -> None:
                    tar.addfile(_member(name, epoch, len(data)), io.BytesIO(data))

                parent = ""
                v1_ids: list[str] = []
                for i, layer in enumerate(plan.layers):
                    seed: dict[str, str] = {"layer": layer.diff_id, "parent": parent}
                    if i == len(plan.layers) - 1:
                        seed["config"] = "sha256:" + config_hex
                    v1 = _sha256(canonical_json(seed))
                    meta: dict[str, str] = {"id": v1, "created": created, "os": "linux"}
                    if parent:
                        meta["parent"] = parent
                    tar.addfile(_member(v1, epoch, dir_=True))
                    add_bytes(f"{v1}/VERSION", b"1.0")
                    add_bytes(f"{v1}/json", canonical_json(meta))
                    with open(layer.path, "rb") as src:
                        tar.addfile(_member(f"{v1}/layer.tar", epoch, layer.size), src)
                    v1_ids.append(v1)
                    parent = v1
                add_bytes(f"{config_hex}.json", config)
                manifest = [
                    {
                        "Config": f"{config_hex}.json",
                        "RepoTags": [plan.ref],
                        "Layers": [f"{v1}/layer.tar" for v1 in v1_ids],
                    }
                ]
                add_bytes("manifest.json", canonical_json(manifest))
                add_bytes("repositories", canonical_json({plan.repo: {plan.tag: v1_ids[-1]}}))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return "sha256:" + config_hex
