"""The composition root: the one place where concrete stores and subsystems are wired together."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.containers.config import ContainerDefaults
from dockyard.containers.service import ContainerService
from dockyard.content import ContentStore
from dockyard.daemon.config import DaemonConfig, seccomp_profile_json
from dockyard.distribution import BlobMetadata, EndpointConfig, Registries
from dockyard.events import EventBus
from dockyard.images import ImageService
from dockyard.networks import NetworkConfig, NetworkService
from dockyard.networks.ipam import parse_pools
from dockyard.runtime import Runtime
from dockyard.snapshots import OverlaySnapshotter
from dockyard.store import Database
from dockyard.volumes import VolumeService

__all__ = ["Services", "build_services"]


@dataclass
class Services:
    config: DaemonConfig
    db: Database
    content: ContentStore
    snapshots: OverlaySnapshotter
    images: ImageService
    runtime: Runtime
    containers: ContainerService
    networks: NetworkService
    registries: Registries
    volumes: VolumeService
    events: EventBus = field(default_factory=EventBus)
    started_at: float = field(default_factory=time.time)
    daemon_id: str = ""


def _daemon_id(data_root: Path) -> str:
    path = data_root / "engine-id"
    if path.exists():
        return path.read_text().strip()
    import uuid

    value = str(uuid.uuid4())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value)
    tmp.replace(path)
    return value


def build_services(config: DaemonConfig) -> Services:
    root = config.data_root
    root.mkdir(parents=True, exist_ok=True, mode=0o710)
    config.exec_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(root / "dockyard.db")
    content = ContentStore(root / "content")
    content.clean_ingests()
    events = EventBus()
    snapshots = OverlaySnapshotter(root / "snapshots", db)
    images = ImageService(db, content, snapshots, events=events)
    runtime = Runtime(
        config.exec_root,
        runc=config.runtime,
        conmon=config.conmon,
        cgroup_parent=config.cgroup_parent,
    )
    networks = NetworkService(
        db,
        NetworkConfig(
            exec_root=config.exec_root,
            bridge=config.bridge,
            bip=config.bip,
            pools=parse_pools(config.default_address_pools),
            iptables=config.iptables,
            ip_masq=config.ip_masq,
            userland_proxy=config.userland_proxy,
            mtu=config.mtu or 1500,
            dns=tuple(config.dns),
        ),
        events=events,
    )
    volumes = VolumeService(db, root / "volumes", events=events)
    containers = ContainerService(
        networks=networks,
        volumes=volumes,
        events=events,
        db=db,
        images=images,
        snapshotter=snapshots,
        runtime=runtime,
        root=root / "containers",
        cgroup_parent=config.cgroup_parent,
        default_ulimits=config.default_ulimits,
        init_path=config.init_path,
        init_default=config.init,
        defaults=ContainerDefaults(
            shm_size=config.default_shm_size,
            ipc_mode=config.default_ipc_mode,
            cgroupns_mode=config.default_cgroupns_mode,
            seccomp_profile=seccomp_profile_json(config),
            log_driver=config.log_driver,
            log_opts=dict(config.log_opts),
            dns=tuple(config.dns),
            dns_search=tuple(config.dns_search),
            dns_options=tuple(config.dns_opts),
        ),
    )
    snapshots.cleanup()
    registries = Registries(
        images,
        content,
        BlobMetadata(db),
        endpoints=EndpointConfig(config.registry_mirrors, config.insecure_registries),
        max_downloads=config.max_concurrent_downloads or 3,
        max_uploads=config.max_concurrent_uploads or 5,
    )
    return Services(
        config=config,
        db=db,
        content=content,
        snapshots=snapshots,
        images=images,
        runtime=runtime,
        containers=containers,
        networks=networks,
        registries=registries,
        volumes=volumes,
        events=events,
        daemon_id=_daemon_id(root),
    )
