"""The container lifecycle: create, start, stop, kill, wait, remove, exec — Docker's state machine.

State lives in ``ContainerRecord``s, persisted in one transaction per change. conmon, not
the daemon, watches running containers: the daemon learns of exits from exit files
(``on_exit``), also those that happened while it was down (``recover``).

Locking: one ``asyncio.Lock`` per container serialises start, exit handling and removal, so
an exit that races a start is applied after the start finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal as _signal
from collections.abc import AsyncGenerator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard import errors
from dockyard.containers.archive import FilesystemSpec, filesystem_spec
from dockyard.containers.config import ContainerDefaults, merge_config, validate_host_config
from dockyard.containers.health import HEALTH_STATUSES, ExecProber, HealthMonitor, health_status
from dockyard.containers.hostconfig import (
    DEFAULT_INIT_PATH,
    apply_update,
    check_update,
    device_cgroup_rule,
    devices_from_host_config,
    init_args,
    init_mount,
    merge_ulimits,
    namespace_target,
    update_resources,
    wants_init,
)
from dockyard.containers.logopts import log_limits
from dockyard.containers.mounts import ContainerMounts
from dockyard.containers.names import generate_name, validate_name
from dockyard.containers.networking import NetSetupLike, NetworkManager
from dockyard.containers.ocispec import SpecOptions, build_runtime_spec, host_devices
from dockyard.containers.record import ContainerRecord, ContainerState
from dockyard.containers.securejoin import mkdir_in_root
from dockyard.containers.security import block_io_devices, parse_security_opts
from dockyard.containers.signals import parse_signal
from dockyard.containers.timefmt import now_ns, rfc3339
from dockyard.containers.users import resolve_user
from dockyard.events import EventSink, NullSink
from dockyard.images import Image, ImageService
from dockyard.logs import LogEntry, LogFollower, read_entries
from dockyard.mount import Mount, is_mounted, mount_all, unmount
from dockyard.runtime import AttachStream, ExecProcess, MonitorInfo, OCIRuntimeError, Runtime
from dockyard.snapshots import OverlaySnapshotter
from dockyard.store import Database
from dockyard.volumes import VolumeService

__all__ = ["ContainerService", "ExecRecord"]

log = logging.getLogger(__name__)

_FILTERS = {
    "id",
    "name",
    "label",
    "status",
    "ancestor",
    "exited",
    "before",
    "since",
    "health",
    "network",
    "volume",
    "publish",
    "expose",
    "isolation",
    "is-task",
}
_STATUSES = {"created", "restarting", "running", "removing", "paused", "exited", "dead"}


@dataclass
class ExecRecord:
    id: str
    container_id: str
    config: dict[str, Any]
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    process: ExecProcess | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def inspect(self) -> dict[str, Any]:
        cmd = list(self.config.get("Cmd") or [])
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": bool(self.config.get("Tty")),
                "entrypoint": cmd[0] if cmd else "",
                "arguments": cmd[1:],
                "privileged": bool(self.config.get("Privileged")),
                "user": self.config.get("User") or "",
            },
            "OpenStdin": bool(self.config.get("AttachStdin")),
            "OpenStderr": bool(self.config.get("AttachStderr")),
            "OpenStdout": bool(self.config.get("AttachStdout")),
            "CanRemove": False,
            "ContainerID": self.container_id,
            "DetachKeys": self.config.get("DetachKeys") or "",
            "Pid": self.pid,
        }


class _Waiters:
    """Futures waiting for a container's next exit or its removal."""

    def __init__(self) -> None:
        self.exit: list[asyncio.Future[int]] = []
        self.removed: list[asyncio.Future[int]] = []
        self.attach: list[asyncio.Future[AttachStream | None]] = []


class ContainerService:
    def __init__(
        self,
        *,
        db: Database,
        images: ImageService,
        snapshotter: OverlaySnapshotter,
        runtime: Runtime,
        root: Path,
        cgroup_parent: str = "/dockyard",
        runtime_name: str = "runc",
        networks: NetworkManager | None = None,
        volumes: VolumeService | None = None,
        default_ulimits: dict[str, Any] | None = None,
        init_path: str = DEFAULT_INIT_PATH,
        init_default: bool = False,
        events: EventSink | None = None,
        defaults: ContainerDefaults | None = None,
    ) -> None:
        self._db = db
        self._defaults = defaults or ContainerDefaults()
        self._events: EventSink = events or NullSink()
        self._default_ulimits = dict(default_ulimits or {})
        self._init_path = init_path or DEFAULT_INIT_PATH
        self._init_default = init_default
        self._images = images
        self._snapshots = snapshotter
        self._runtime = runtime
        self._root = root
        self._cgroup_parent = cgroup_parent.rstrip("/")
        self._runtime_name = runtime_name
        self._records: dict[str, ContainerRecord] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, _Waiters] = {}
        self._execs: dict[str, ExecRecord] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._removing: set[str] = set()
        self._net = networks
        self._netinfo: dict[str, NetSetupLike] = {}
        root.mkdir(parents=True, exist_ok=True)
        for row in db.query("SELECT record FROM containers"):
            record = ContainerRecord.from_json(row["record"])
            self._records[record.id] = record
        self._mounts = ContainerMounts(db, volumes, self._records)
        self._health = HealthMonitor(
            ExecProber(self),
            on_change=lambda record, status: self.emit(record, f"health_status: {status}"),
        )

    def emit(self, record: ContainerRecord, action: str, **extra: str) -> None:
        """A container event with dockerd's attributes: labels, ``image``, ``name``, extras."""
        attributes = {str(k): str(v) for k, v in (record.config.get("Labels") or {}).items()}
        attributes["image"] = str(record.config.get("Image") or "")
        attributes["name"] = record.name
        attributes.update(extra)
        self._events.emit("container", action, record.id, attributes)

    # ---- lookup -------------------------------------------------------------------------

    def get(self, ref: str) -> ContainerRecord:
        """By full ID, name (with or without ``/``), or unique ID prefix — like dockerd."""
        if ref in self._records:
            return self._records[ref]
        name = ref.lstrip("/")
        for record in self._records.values():
            if record.name == name:
                return record
        if ref:
            matches = [r for r in self._records.values() if r.id.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise errors.InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise errors.NotFound(f"No such container: {ref}")

    def users_of_image(self, image_id: str) -> list[str]:
        return [r.id for r in self._records.values() if r.image_id == image_id]

    def running_users_of_image(self, image_id: str) -> list[str]:
        return [r.id for r in self._records.values() if r.image_id == image_id and r.state.running]

    def count(self) -> dict[str, int]:
        states = [r.state.status for r in self._records.values()]
        return {
            "total": len(states),
            "running": sum(s in ("running", "restarting") for s in states),
            "paused": states.count("paused"),
            "stopped": sum(s not in ("running", "restarting", "paused") for s in states),
        }

    async def shutdown(self) -> None:
        """Daemon shutdown: stop the health checks (containers keep running)."""
        await self._health.close()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _lock(self, cid: str) -> asyncio.Lock:
        return self._locks.setdefault(cid, asyncio.Lock())

    def _waiters_for(self, cid: str) -> _Waiters:
        return self._waiters.setdefault(cid, _Waiters())

    def bundle(self, record: ContainerRecord) -> Path:
        return self._root / record.id

    def check_logs_readable(self, record: ContainerRecord) -> None:
        """dockerd's answer for a driver that keeps nothing (``--log-driver none``)."""
        if _log_driver(record) == "none":
            raise errors.Unsupported("configured logging driver does not support reading")

    def log_path(self, record: ContainerRecord) -> Path:
        """Where the monitor writes the container's output (``/dev/null`` for ``none``)."""
        if _log_driver(record) == "none":
            return Path("/dev/null")
        return self._root / record.id / "container.log"

    @contextlib.asynccontextmanager
    async def filesystem(self, ref: str) -> AsyncGenerator[FilesystemSpec, None]:
        """What makes up the container's files for ``docker cp`` (``containers.archive``),
        held under the container's lock: it cannot start, stop or go away meanwhile."""
        record = self.get(ref)
        async with self._lock(record.id):
            if record.id not in self._records:
                raise errors.NotFound(f"No such container: {ref}")
            rootfs = self.bundle(record) / "rootfs"
            live = record.state.running and is_mounted(rootfs)
            yield filesystem_spec(
                record,
                self.bundle(record),
                live_rootfs=rootfs if live else None,
                snapshot=() if live else tuple(self._snapshots.mounts(record.id)),
                mounts=self._mounts.view_mounts(record.id),
            )

    def _save(self, record: ContainerRecord) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO containers(id, name, image_id, record, created) VALUES (?,?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET name=excluded.name, record=excluded.record",
                (record.id, record.name, record.image_id, record.to_json(), record.created),
            )

    # ---- create -------------------------------------------------------------------------

    def create(self, body: dict[str, Any], name: str | None) -> tuple[str, list[str]]:
        if not isinstance(body, dict):
            raise errors.InvalidArgument("invalid JSON: the request body must be an object")
        image_ref = body.get("Image") or ""
        if not isinstance(image_ref, str) or not image_ref:
            raise errors.InvalidArgument("Config cannot be empty in order to create a container")
        image = self._images.resolve(image_ref)
        cid = secrets.token_hex(32)
        config = merge_config(body, image.config, cid)
        host_config = validate_host_config(body.get("HostConfig") or {}, self._defaults)
        if name:
            name = validate_name(name)
            for other in self._records.values():
                if other.name == name:
                    raise errors.Conflict(
                        f'Conflict. The container name "/{name}" is already in use by container '
                        f'"{other.id}". You have to remove (or rename) that container to be able '
                        "to reuse that name."
                    )
        else:
            taken = {r.name for r in self._records.values()}
            name = generate_name()
            retry = 0
            while name in taken:
                retry += 1
                name = generate_name(retry=retry)
        record = ContainerRecord(
            id=cid,
            name=name,
            created=now_ns(),
            image_id=image.id,
            config=config,
            host_config=host_config,
        )
        bundle = self.bundle(record)
        bundle.mkdir(parents=True)
        try:
            self._mounts.create(cid, host_config, config, lambda ref: self.get(ref).id)
            if self._net is not None:
                self._net.on_create(cid, name, host_config, _networking_of(body, host_config))
            self._snapshots.prepare(cid, self._images.rootfs_parent(image))
            self._save(record)
        except BaseException:
            self._mounts.remove(cid, remove_volumes=True)
            if self._net is not None:
                self._net.on_remove(cid)
            with contextlib.suppress(errors.DockyardError):
                self._snapshots.remove(cid)
            shutil.rmtree(bundle, ignore_errors=True)
            raise
        self._records[cid] = record
        self.emit(record, "create")
        return cid, []

    # ---- start --------------------------------------------------------------------------

    async def start(self, ref: str) -> None:
        record = self.get(ref)
        async with self._lock(record.id):
            if record.state.status == "paused":
                raise errors.Conflict("cannot start a paused container, try unpause instead")
            if record.state.running:
                raise errors.NotModified("container already started")
            if record.state.status == "removing":
                raise errors.Conflict(
                    f"container {record.id} is marked for removal and cannot be started"
                )
            record.stopped_by_user = False
            try:
                await self._start_locked(record)
            except BaseException:
                if record.host_config.get("AutoRemove"):
                    self.spawn(self._remove_quietly(record.id))
                raise

    def _network_mode(self, record: ContainerRecord) -> str:
        mode = record.host_config.get("NetworkMode") or "default"
        if mode in ("default", "bridge"):
            return "private"
        if mode in ("none", "host"):
            return mode
        if mode.startswith("container:"):
            other = self.get(mode.split(":", 1)[1])
            if not other.state.running:
                raise errors.Conflict(f"cannot join network of a non running container: {other.id}")
            return f"netns:/proc/{other.state.pid}/ns/net"
        if self._net is not None:
            return "private"  # a named network: the network service resolves it at start
        raise errors.NotFound(f"network {mode} not found")

    def _write_etc_files(self, record: ContainerRecord, network_mode: str) -> list[dict[str, Any]]:
        bundle = self.bundle(record)
        hostname = record.config.get("Hostname") or record.id[:12]
        if network_mode == "host":
            hostname = os.uname().nodename
        hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        net = self._netinfo.get(record.id)
        if net is not None and net.hosts:
            for addr, _ in net.hosts:
                hosts += f"{addr}\t{hostname}\n"
        elif network_mode != "host":
            hosts += f"127.0.1.1\t{hostname}\n"
        extra_hosts = self._extra_hosts(record)
        hosts += extra_hosts
        if network_mode == "host":
            try:
                own = Path("/etc/hosts").read_text()
                hosts = own + ("\n" if own and not own.endswith("\n") else "") + extra_hosts
            except OSError:
                pass
        dns_config = self._defaults.dns_of(record.host_config)
        if net is not None and net.nameservers:
            resolv = _resolv_conf({**dns_config, "Dns": net.nameservers}, network_mode)
        else:
            resolv = _resolv_conf(dns_config, network_mode)
        files = {"hostname": hostname + "\n", "hosts": hosts, "resolv.conf": resolv}
        mounts = []
        for fname, content in files.items():
            path = bundle / fname
            _atomic_write(path, content.encode())
            mounts.append(
                {
                    "destination": f"/etc/{fname}",
                    "type": "bind",
                    "source": str(path),
                    "options": ["rbind", "rprivate"]
                    + (["ro"] if record.host_config.get("ReadonlyRootfs") else []),
                }
            )
        return mounts

    async def _start_locked(self, record: ContainerRecord) -> None:
        try:
            await self._start_container(record)
        except BaseException:
            if self._net is not None:
                await self._net.teardown(record.id)
            raise
        finally:
            self._netinfo.pop(record.id, None)

    async def _start_container(self, record: ContainerRecord) -> None:
        network_mode = self._network_mode(record)
        if self._net is not None and network_mode == "private":
            try:
                net = await self._net.setup(
                    record.id, record.name, record.config, record.host_config
                )
            except errors.DockyardError as exc:
                self._fail_start(record, self.bundle(record) / "rootfs", exc.message)
                raise
            if net is not None:
                self._netinfo[record.id] = net
                network_mode = f"netns:{net.netns}"
        bundle = self.bundle(record)
        rootfs = bundle / "rootfs"
        rootfs.mkdir(exist_ok=True)
        if not is_mounted(rootfs):
            mount_all(self._snapshots.mounts(record.id), rootfs)
        try:
            spec = self._build_spec(record, rootfs, network_mode)
            _atomic_write(bundle / "config.json", json.dumps(spec).encode())
            for stale in ("attach", "ctl", "winsz", "pidfile", "conmon.pid", "oci-log"):
                with contextlib.suppress(FileNotFoundError):
                    (bundle / stale).unlink()
            self._runtime.remove_exit_file(record.id)
            log_config = record.host_config.get("LogConfig") or {}
            limits = log_limits(log_config.get("Config") or {}, str(log_config.get("Type") or ""))
            info = await self._runtime.create(
                record.id,
                bundle,
                tty=bool(record.config.get("Tty")),
                stdin=bool(record.config.get("OpenStdin")),
                stdin_once=bool(record.config.get("StdinOnce")),
                log_path=self.log_path(record),
                log_size_max=limits.size_max,
                log_max_files=limits.max_files,
            )
        except OCIRuntimeError as exc:
            self._fail_start(record, rootfs, exc.message)
            raise errors.InvalidArgument(
                f"failed to create task for container: failed to create shim task: "
                f"OCI runtime create failed: {exc.message.strip()}: unknown"
            ) from None
        except BaseException as exc:
            message = exc.message if isinstance(exc, errors.DockyardError) else str(exc)
            self._fail_start(record, rootfs, message)
            raise
        # Attach clients that arrived before start connect now, before the process runs.
        waiters = self._waiters_for(record.id)
        pending, waiters.attach = waiters.attach, []
        for fut in pending:
            if fut.done():
                continue
            try:
                fut.set_result(await self._runtime.attach(bundle))
            except OSError:
                fut.set_result(None)
        try:
            await self._runtime.start(record.id)
        except OCIRuntimeError as exc:
            await self._runtime.delete(record.id, force=True)
            self._fail_start(record, rootfs, exc.message)
            raise errors.InvalidArgument(
                f"OCI runtime start failed: {exc.message.strip()}: unknown"
            ) from None
        record.monitor = {
            "monitor_pid": info.monitor_pid,
            "monitor_start_time": info.monitor_start_time,
            "container_pid": info.container_pid,
        }
        record.state = ContainerState(
            status="running",
            pid=info.container_pid,
            started_at=now_ns(),
            exit_code=0,
        )
        self._save(record)
        self.emit(record, "start")
        self._health.start(record)

    def _fail_start(self, record: ContainerRecord, rootfs: Path, message: str) -> None:
        with contextlib.suppress(OSError, errors.DockyardError):
            unmount(rootfs)
        self._unmount_shm(record)
        self._mounts.release(record.id)
        lowered = message.lower()
        code = 128
        if "executable file not found" in lowered or "no such file or directory" in lowered:
            code = 127
        elif "permission denied" in lowered:
            code = 126
        record.state.error = message.strip()
        record.state.exit_code = code
        if record.state.status != "created":
            record.state.status = "exited"
        record.state.finished_at = record.state.finished_at or 0
        self._save(record)
        for fut in self._waiters_for(record.id).attach:
            if not fut.done():
                fut.set_result(None)
        self._waiters_for(record.id).attach = []
        self.emit(record, "die", exitCode=str(code), execDuration="0")
        self._resolve_exit_waiters(record.id, code)

    def _build_spec(
        self, record: ContainerRecord, rootfs: Path, network_mode: str
    ) -> dict[str, Any]:
        config = record.config
        hc = record.host_config
        uid, gid, groups = resolve_user(rootfs, config.get("User") or "")
        cwd = config.get("WorkingDir") or "/"
        if not cwd.startswith("/"):
            raise errors.InvalidArgument(
                f"the working directory '{cwd}' is invalid, it needs to be an absolute path"
            )
        if cwd != "/":
            # Like moby's SetupWorkingDirectory: created (root-owned) when missing.
            mkdir_in_root(rootfs, cwd)
        env = list(config.get("Env") or [])
        if not any(e.startswith("HOSTNAME=") for e in env):
            env.insert(0, f"HOSTNAME={config.get('Hostname') or record.id[:12]}")
        if not any(e.startswith("PATH=") for e in env):
            env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        if config.get("Tty") and not any(e.startswith("TERM=") for e in env):
            env.append("TERM=xterm")
        args = list(record.argv)
        extra_mounts = self._write_etc_files(record, network_mode) + self._mounts.setup(
            record.id, rootfs, hc.get("Tmpfs")
        )
        if wants_init(hc, self._init_default):
            args = init_args(args)
            extra_mounts.append(init_mount(self._init_path))
        ipc_mode = self._namespace_mode(hc, "IpcMode", "ipc", "IPC")
        shm_source: Path | None = None
        if ipc_mode == "shareable":
            shm_source = self._mount_shm(record)
        elif ipc_mode.startswith("ns:"):
            donor = self.get(str(namespace_target(str(hc.get("IpcMode")))))
            shm_source = self.bundle(donor) / "shm"
        if shm_source is not None:
            # moby: a shareable container's /dev/shm is a tmpfs mounted on the host, bound
            # into it and into every container that joins its IPC namespace.
            extra_mounts.append(
                {
                    "destination": "/dev/shm",
                    "type": "bind",
                    "source": str(shm_source),
                    "options": ["rbind", "rprivate"],
                }
            )
        security = parse_security_opts(hc.get("SecurityOpt"))
        devices, device_access = devices_from_host_config(hc.get("Devices"))
        if hc.get("Privileged"):
            devices = host_devices() + devices
        return build_runtime_spec(
            SpecOptions(
                rootfs=rootfs,
                args=args,
                env=env,
                cwd=cwd,
                uid=uid,
                gid=gid,
                additional_gids=groups
                + [int(g) for g in hc.get("GroupAdd") or [] if str(g).isdigit()],
                hostname=config.get("Hostname") or record.id[:12] if network_mode != "host" else "",
                tty=bool(config.get("Tty")),
                open_stdin=bool(config.get("OpenStdin")),
                network_mode=network_mode,
                pid_mode=self._namespace_mode(hc, "PidMode", "pid", "PID"),
                ipc_mode=ipc_mode,
                uts_mode=str(hc.get("UTSMode") or "private"),
                devices=devices,
                device_access=device_access,
                device_cgroup_rules=[
                    device_cgroup_rule(r) for r in hc.get("DeviceCgroupRules") or []
                ],
                rlimits=merge_ulimits(hc.get("Ulimits"), self._default_ulimits),
                cap_add=list(hc.get("CapAdd") or []),
                cap_drop=list(hc.get("CapDrop") or []),
                privileged=bool(hc.get("Privileged")),
                readonly_rootfs=bool(hc.get("ReadonlyRootfs")),
                shm_size=int(hc.get("ShmSize") or 0) or self._defaults.shm_size,
                no_new_privileges=security.no_new_privileges,
                seccomp_profile=security.seccomp_profile or self._default_seccomp(),
                writable_cgroups=security.writable_cgroups,
                masked_paths=_optional_list(hc.get("MaskedPaths")),
                readonly_paths=_optional_list(hc.get("ReadonlyPaths")),
                oom_score_adj=int(hc.get("OomScoreAdj") or 0),
                cgroupns_private=hc.get("CgroupnsMode") == "private",
                memory_swappiness=_swappiness(hc.get("MemorySwappiness")),
                oom_kill_disable=bool(hc.get("OomKillDisable")),
                block_io=block_io_devices(hc),
                extra_mounts=extra_mounts,
                cgroups_path=f"{self._cgroup_parent_of(hc)}/{record.id}",
                memory=int(hc.get("Memory") or 0),
                memory_swap=int(hc.get("MemorySwap") or 0),
                memory_reservation=int(hc.get("MemoryReservation") or 0),
                nano_cpus=int(hc.get("NanoCpus") or 0),
                cpu_shares=int(hc.get("CpuShares") or 0),
                cpu_period=int(hc.get("CpuPeriod") or 0),
                cpu_quota=int(hc.get("CpuQuota") or 0),
                cpuset_cpus=str(hc.get("CpusetCpus") or ""),
                cpuset_mems=str(hc.get("CpusetMems") or ""),
                blkio_weight=int(hc.get("BlkioWeight") or 0),
                pids_limit=int(hc.get("PidsLimit") or 0),
                annotations={
                    **{str(k): str(v) for k, v in (hc.get("Annotations") or {}).items()},
                    "org.opencontainers.image.stopSignal": config.get("StopSignal") or "SIGTERM",
                },
                domainname=str(config.get("Domainname") or ""),
                sysctls=dict(hc.get("Sysctls") or {}),
            )
        )

    def _default_seccomp(self) -> str:
        """The profile of a container that names none: daemon.json's, else the built-in."""
        if self._defaults.seccomp_profile:
            return self._defaults.seccomp_profile
        global _BUILTIN_SECCOMP
        if _BUILTIN_SECCOMP is None:
            from dockyard.containers.seccomp_default import DEFAULT_PROFILE

            _BUILTIN_SECCOMP = json.dumps(DEFAULT_PROFILE)
        return _BUILTIN_SECCOMP

    def _cgroup_parent_of(self, hc: dict[str, Any]) -> str:
        """``--cgroup-parent`` (made absolute, as dockerd's cgroupfs driver does) or ours."""
        own = str(hc.get("CgroupParent") or "").strip("/")
        return f"/{own}" if own else self._cgroup_parent

    def _mount_shm(self, record: ContainerRecord) -> Path:
        """The host tmpfs a shareable container's ``/dev/shm`` is (``ShmSize``, 64 MiB)."""
        shm = self.bundle(record) / "shm"
        shm.mkdir(exist_ok=True)
        if not is_mounted(shm):
            size = int(record.host_config.get("ShmSize") or 0) or self._defaults.shm_size
            options = ("nosuid", "noexec", "nodev", "mode=1777", f"size={size}")
            mount_all([Mount(type="tmpfs", source="shm", options=options)], shm)
        return shm

    def _unmount_shm(self, record: ContainerRecord) -> None:
        shm = self.bundle(record) / "shm"
        if is_mounted(shm):
            with contextlib.suppress(OSError, errors.DockyardError):
                unmount(shm, detach=True)

    def _namespace_mode(self, hc: dict[str, Any], key: str, ns: str, label: str) -> str:
        """PidMode/IpcMode → a ``SpecOptions`` mode; ``container:<ref>`` becomes the path of
        that running container's namespace (``Conflict`` when it is not running)."""
        mode = str(hc.get(key) or "private")
        ref = namespace_target(mode)
        if ref is None:
            return mode
        try:
            other = self.get(ref)
        except errors.NotFound as exc:
            raise errors.InvalidArgument(exc.message) from None
        if not other.state.running:
            raise errors.Conflict(f"cannot join {label} of a non running container: {other.id}")
        if ns == "ipc" and other.host_config.get("IpcMode") not in ("shareable", "host"):
            raise errors.InvalidArgument(
                f"container {other.id}: non-shareable IPC "
                "(hint: use IpcMode:shareable for the donor container)"
            )
        if ns == "ipc" and other.host_config.get("IpcMode") == "host":
            return "host"
        return f"ns:/proc/{other.state.pid}/ns/{ns}"

    # ---- update -------------------------------------------------------------------------

    async def update(self, ref: str, body: dict[str, Any]) -> list[str]:
        """``POST /containers/{id}/update``: new resources and restart policy, applied with
        ``runc update`` when running and kept in the record. Errors are dockerd's, prefixed
        "Cannot update container <id>: " (``Conflict`` for conflicting options,
        ``SystemError`` when runc refuses); the record is unchanged on error."""
        check_update(body)
        record = self.get(ref)
        async with self._lock(record.id):
            if record.state.status in ("removing", "dead"):
                raise errors.InvalidArgument(
                    f"Cannot update container {record.id}: container is marked for removal "
                    'and cannot be "update"'
                )
            try:
                new_hc = apply_update(record.host_config, body)
            except errors.DockyardError as exc:
                raise type(exc)(f"Cannot update container {record.id}: {exc.message}") from None
            if record.state.running and record.state.status != "restarting":
                path = self.bundle(record) / "update.json"
                _atomic_write(path, json.dumps(update_resources(new_hc)).encode())
                try:
                    await self._runtime.update(record.id, path)
                except (OCIRuntimeError, errors.DockyardError) as exc:
                    raise errors.SystemError(
                        f"Cannot update container {record.id}: {exc.message.strip()}"
                    ) from None
                finally:
                    with contextlib.suppress(OSError):
                        path.unlink()
            record.host_config = new_hc
            self._save(record)
        self.emit(record, "update")
        return []

    # ---- exits --------------------------------------------------------------------------

    async def on_exit(self, cid: str, code: int, finished_at: float) -> None:
        """conmon wrote an exit file: record the exit, release the rootfs, apply policies."""
        record = self._records.get(cid)
        if record is None:
            self._runtime.remove_exit_file(cid)
            return
        async with self._lock(cid):
            if not record.state.running:
                self._runtime.remove_exit_file(cid)
                return
            self._health.stop(cid)
            await self._runtime.delete(cid, force=True)
            with contextlib.suppress(OSError, errors.DockyardError):
                unmount(self.bundle(record) / "rootfs")
            self._unmount_shm(record)
            self._mounts.release(cid)
            if self._net is not None:
                await self._net.teardown(cid)
            oom = (self.bundle(record) / "oom").exists()
            record.state = ContainerState(
                status="exited",
                pid=0,
                exit_code=code,
                started_at=record.state.started_at,
                finished_at=int(finished_at * 1e9),
                oom_killed=oom,
            )
            record.monitor = None
            self._save(record)
            self._runtime.remove_exit_file(cid)
            ran = max(0, record.state.finished_at - record.state.started_at) // 1_000_000_000
            self.emit(record, "die", exitCode=str(code), execDuration=str(ran))
        self._resolve_exit_waiters(cid, code)
        if record.host_config.get("AutoRemove"):
            await self._remove_quietly(cid)
        elif self._should_restart(record):
            self.spawn(self._restart_later(record))

    def _should_restart(self, record: ContainerRecord) -> bool:
        policy = record.host_config.get("RestartPolicy") or {}
        name = policy.get("Name", "no")
        if record.stopped_by_user or name in ("", "no"):
            return False
        if name == "on-failure":
            limit = int(policy.get("MaximumRetryCount") or 0)
            return record.state.exit_code != 0 and (limit == 0 or record.restart_count < limit)
        return name in ("always", "unless-stopped")

    async def _restart_later(self, record: ContainerRecord) -> None:
        delay = min(0.1 * (2**record.restart_count), 60.0)
        await asyncio.sleep(delay)
        if record.id not in self._records or record.stopped_by_user:
            return
        record.restart_count += 1
        with contextlib.suppress(errors.DockyardError):
            await self.start(record.id)

    def _resolve_exit_waiters(self, cid: str, code: int) -> None:
        waiters = self._waiters_for(cid)
        pending, waiters.exit = waiters.exit, []
        for fut in pending:
            if not fut.done():
                fut.set_result(code)

    async def recover(self) -> None:
        """Start-up reconciliation: apply exits that happened while the daemon was down."""
        for record in list(self._records.values()):
            if record.state.status == "removing":
                await self._remove_quietly(record.id)
                continue
            if not record.state.running:
                rootfs = self.bundle(record) / "rootfs"
                if is_mounted(rootfs):
                    with contextlib.suppress(OSError, errors.DockyardError):
                        unmount(rootfs)
                continue
            exit_info = self._runtime.read_exit_file(record.id)
            if exit_info is not None:
                await self.on_exit(record.id, exit_info[0], exit_info[1])
                continue
            monitor = record.monitor
            if monitor and self._runtime.monitor_alive(MonitorInfo(**monitor)):
                await self._sync_paused(record)
                self._health.start(record)
                continue
            # The monitor is gone without an exit file: the container cannot be watched.
            state = await self._runtime.state(record.id)
            if state is not None and state.get("status") == "running":
                with contextlib.suppress(errors.DockyardError):
                    await self._runtime.kill(record.id, _signal.SIGKILL, all_procs=True)
            await self.on_exit(record.id, 255 if state is None else 137, _now_s())

    # ---- stop, kill, restart, wait -------------------------------------------------------

    async def kill(self, ref: str, signal: str | int | None) -> None:
        record = self.get(ref)
        number = parse_signal(signal)
        if not record.state.running:
            raise errors.Conflict(
                f"Cannot kill container: {ref}: Container {record.id} is not running"
            )
        if number in (_signal.SIGKILL, _signal.SIGTERM, _signal.SIGINT):
            record.stopped_by_user = record.stopped_by_user or number == _signal.SIGKILL
        self.emit(record, "kill", signal=str(int(number)))
        try:
            await self._runtime.kill(record.id, number)
        except errors.DockyardError as exc:
            if record.state.running:
                raise errors.Conflict(f"Cannot kill container: {ref}: {exc.message}") from None
        stop_signal = record.config.get("StopSignal")
        if not stop_signal or number in (_signal.SIGKILL, parse_signal(stop_signal)):
            await self._thaw(record)

    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        record = self.get(ref)
        if not record.state.running:
            raise errors.NotModified("container already stopped")
        await self._stop(record, timeout, signal)
        self.emit(record, "stop")

    async def _stop(self, record: ContainerRecord, timeout: int | None, signal: str | None) -> None:
        record.stopped_by_user = True
        number = parse_signal(signal or record.config.get("StopSignal"), default=_signal.SIGTERM)
        if timeout is None:
            timeout = record.config.get("StopTimeout")
            if timeout is None:
                timeout = 10
        exited = self._exit_future(record.id)
        self.emit(record, "kill", signal=str(int(number)))
        with contextlib.suppress(errors.DockyardError):
            await self._runtime.kill(record.id, number)
        await self._thaw(record)
        if timeout < 0:
            await exited
            return
        try:
            await asyncio.wait_for(asyncio.shield(exited), timeout)
            return
        except TimeoutError:
            pass
        await self._kill_and_wait(
            record,
            exited,
            f"cannot stop container: {record.id}: tried to kill container, but did not receive an exit event",
        )

    async def _kill_and_wait(
        self, record: ContainerRecord, exited: asyncio.Future[int], failure: str
    ) -> None:
        """SIGKILL every process of the container and wait for conmon to report the exit."""
        self.emit(record, "kill", signal=str(int(_signal.SIGKILL)))
        with contextlib.suppress(errors.DockyardError):
            await self._runtime.kill(record.id, _signal.SIGKILL, all_procs=True)
        await self._thaw(record)
        try:
            await asyncio.wait_for(exited, 30)
        except TimeoutError:
            raise errors.SystemError(failure) from None

    def _exit_future(self, cid: str) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters_for(cid).exit.append(fut)
        return fut

    async def restart(
        self, ref: str, timeout: int | None = None, signal: str | None = None
    ) -> None:
        with contextlib.suppress(errors.NotModified):
            await self.stop(ref, timeout, signal)
        record = self.get(ref)
        record.restart_count = 0
        with contextlib.suppress(errors.NotModified):
            await self.start(record.id)
        self.emit(record, "restart")

    def wait_future(self, ref: str, condition: str) -> asyncio.Future[int]:
        """A future of the exit code for ``condition`` (not-running | next-exit | removed)."""
        record = self.get(ref)
        loop = asyncio.get_running_loop()
        if condition in ("", "not-running"):
            if not record.state.running:
                fut: asyncio.Future[int] = loop.create_future()
                fut.set_result(record.state.exit_code)
                return fut
            return self._exit_future(record.id)
        if condition == "next-exit":
            return self._exit_future(record.id)
        if condition == "removed":
            fut = loop.create_future()
            self._waiters_for(record.id).removed.append(fut)
            return fut
        raise errors.InvalidArgument(f'invalid condition: "{condition}"')

    # ---- pause, unpause, rename ------------------------------------------------------------

    async def pause(self, ref: str) -> None:
        """Freeze the container (runc pause); dockerd's checks and messages."""
        record = self.get(ref)
        async with self._lock(record.id):
            if not record.state.running:
                raise errors.Conflict(f"Container {record.id} is not running")
            if record.state.status == "paused":
                raise errors.Conflict(f"Container {record.id} is already paused")
            if record.state.status == "restarting":
                raise errors.Conflict(
                    f"Container {record.id} is restarting, wait until the container is running"
                )
            try:
                await self._runtime.pause(record.id)
            except errors.DockyardError as exc:
                raise errors.SystemError(
                    f"Cannot pause container {record.id}: {exc.message}"
                ) from None
            record.state.status = "paused"
            self._save(record)
        self.emit(record, "pause")

    async def unpause(self, ref: str) -> None:
        """Thaw a paused container. Not paused is a plain error in dockerd (HTTP 500)."""
        record = self.get(ref)
        async with self._lock(record.id):
            if record.state.status != "paused":
                raise errors.SystemError(f"Container {record.id} is not paused")
            try:
                await self._runtime.resume(record.id)
            except errors.DockyardError as exc:
                raise errors.SystemError(
                    f"Cannot unpause container {record.id}: {exc.message}"
                ) from None
            record.state.status = "running"
            self._save(record)
        self.emit(record, "unpause")

    async def _thaw(self, record: ContainerRecord) -> None:
        """After a stop signal to a paused container, resume it so the signal is delivered
        (dockerd's killWithSignal); the container is running again."""
        if record.state.status != "paused":
            return
        with contextlib.suppress(errors.DockyardError):
            await self._runtime.resume(record.id)
        if record.state.status == "paused":
            record.state.status = "running"
            self._save(record)

    async def _sync_paused(self, record: ContainerRecord) -> None:
        """Start-up: a live container is paused exactly when runc says so."""
        try:
            state = await self._runtime.state(record.id)
        except errors.DockyardError:
            return
        status = (state or {}).get("status")
        if status == "paused" and record.state.status == "running":
            record.state.status = "paused"
            self._save(record)
        elif status == "running" and record.state.status == "paused":
            record.state.status = "running"
            self._save(record)

    async def rename(self, ref: str, new_name: str) -> None:
        """dockerd's ContainerRename: validation and conflicts, then the networks' names."""
        if not ref or not new_name:
            raise errors.InvalidArgument("Neither old nor new names may be empty")
        record = self.get(ref)
        async with self._lock(record.id):
            wanted = new_name if new_name.startswith("/") else "/" + new_name
            if wanted == f"/{record.name}":
                raise errors.InvalidArgument(
                    "Renaming a container with the same name as its current name"
                )
            try:
                name = validate_name(wanted)
            except errors.InvalidArgument as exc:
                raise errors.InvalidArgument(
                    f"Error when allocating new name: {exc.message}"
                ) from None
            for other in self._records.values():
                if other.name == name and other.id != record.id:
                    raise errors.Conflict(
                        f'Error when allocating new name: Conflict. The container name "/{name}" '
                        f'is already in use by container "{other.id}". You have to remove (or '
                        "rename) that container to be able to reuse that name."
                    )
            old_name = record.name
            record.name = name
            self._save(record)
            if self._net is not None:
                self._net.rename(record.id, name)
        self.emit(record, "rename", oldName=f"/{old_name}")

    # ---- remove / prune ---------------------------------------------------------------------

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        record = self.get(ref)
        if record.state.running:
            if not force:
                unpause = "Unpause and then stop" if record.state.status == "paused" else "Stop"
                raise errors.Conflict(
                    f"You cannot remove a {record.state.status} container {record.id}. "
                    f"{unpause} the container before attempting removal or force remove"
                )
            record.stopped_by_user = True
            await self._kill_and_wait(
                record,
                self._exit_future(record.id),
                f"could not kill running container {record.id}, cannot remove",
            )
        await self._remove(record, volumes=volumes)

    async def _remove(self, record: ContainerRecord, *, volumes: bool = False) -> None:
        async with self._lock(record.id):
            if record.id not in self._records:
                return
            if record.state.status == "removing" and record.id in self._removing:
                return
            self._removing.add(record.id)
            try:
                record.state.status = (
                    "removing" if not record.state.running else record.state.status
                )
                bundle = self.bundle(record)
                await self._runtime.delete(record.id, force=True)
                with contextlib.suppress(OSError, errors.DockyardError):
                    unmount(bundle / "rootfs")
                self._unmount_shm(record)
                with contextlib.suppress(errors.NotFound):
                    self._snapshots.remove(record.id)
                shutil.rmtree(bundle, ignore_errors=True)
                self._runtime.remove_exit_file(record.id)
                self._mounts.remove(
                    record.id,
                    remove_volumes=volumes or bool(record.host_config.get("AutoRemove")),
                )
                if self._net is not None:
                    await self._net.teardown(record.id)
                    self._net.on_remove(record.id)
                with self._db.transaction() as tx:
                    tx.execute("DELETE FROM containers WHERE id=?", (record.id,))
                self._records.pop(record.id, None)
                for exec_id in [e.id for e in self._execs.values() if e.container_id == record.id]:
                    self._execs.pop(exec_id, None)
            finally:
                self._removing.discard(record.id)
        self.emit(record, "destroy")
        waiters = self._waiters.pop(record.id, _Waiters())
        for fut in waiters.exit + waiters.removed:
            if not fut.done():
                fut.set_result(record.state.exit_code)
        for afut in waiters.attach:
            if not afut.done():
                afut.set_result(None)
        self._locks.pop(record.id, None)

    async def _remove_quietly(self, cid: str) -> None:
        record = self._records.get(cid)
        if record is None:
            return
        try:
            await self._remove(record)
        except Exception:
            log.exception("removing container %s failed", cid)

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        for key in filters:
            if key not in ("until", "label", "label!"):
                raise errors.InvalidArgument(f"Invalid filter '{key}'")
        deleted: list[str] = []
        reclaimed = 0
        for record in list(self._records.values()):
            if record.state.running:
                continue
            if not _labels_match(record.config.get("Labels") or {}, filters.get("label", [])):
                continue
            if any(
                _labels_match(record.config.get("Labels") or {}, [f])
                for f in filters.get("label!", [])
            ):
                continue
            if "until" in filters and record.created / 1e9 > _parse_until(filters["until"][0]):
                continue
            reclaimed += self._rw_size(record)
            await self._remove(record)
            deleted.append(record.id)
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def _rw_size(self, record: ContainerRecord) -> int:
        try:
            upper = self._snapshots.upper_dir(record.id)
        except errors.DockyardError:
            return 0
        return _du(upper)

    # ---- attach, logs, resize -------------------------------------------------------------

    async def attach_stream(self, ref: str) -> AttachStream | None:
        """Connect to the container's output; for a created container, wait for its start.

        None when the container will not produce output (exited, removed, failed to start).
        """
        record = self.get(ref)
        self.emit(record, "attach")
        if record.state.running:
            try:
                return await self._runtime.attach(self.bundle(record))
            except OSError:
                return None
        if record.state.status != "created" and record.state.status != "exited":
            return None
        fut: asyncio.Future[AttachStream | None] = asyncio.get_running_loop().create_future()
        self._waiters_for(record.id).attach.append(fut)
        return await fut

    def cancel_attach_waits(self, ref: str, fut: asyncio.Future[Any]) -> None:
        with contextlib.suppress(errors.NotFound, ValueError):
            self._waiters_for(self.get(ref).id).attach.remove(fut)

    def resize(self, ref: str, height: int, width: int) -> None:
        record = self.get(ref)
        if not record.state.running:
            raise errors.Conflict(f"Container {record.id} is not running")
        if record.config.get("Tty"):
            self._runtime.resize(self.bundle(record), height, width)
        self.emit(record, "resize", height=str(height), width=str(width))

    async def logs(
        self,
        ref: str,
        *,
        stdout: bool,
        stderr: bool,
        follow: bool,
        tail: int,
        since_ns: int,
        until_ns: int,
    ) -> AsyncGenerator[LogEntry, None]:
        record = self.get(ref)
        self.check_logs_readable(record)
        streams = frozenset(({1} if stdout else set()) | ({2} if stderr else set()))
        path = self.log_path(record)
        follower = LogFollower(path) if follow else None
        try:
            for entry in read_entries(
                path, since_ns=since_ns, until_ns=until_ns, tail=tail, streams=streams
            ):
                yield entry
            if follower is None:
                return
            while True:
                running = record.state.running and record.id in self._records
                for entry in follower.poll():
                    if entry.stream not in streams or (since_ns and entry.time_ns < since_ns):
                        continue
                    if until_ns and entry.time_ns > until_ns:
                        return
                    yield entry
                if not running:
                    return
                await asyncio.sleep(0.1)
        finally:
            if follower is not None:
                follower.close()

    # ---- exec ---------------------------------------------------------------------------

    def exec_create(self, ref: str, body: dict[str, Any]) -> str:
        record = self.get(ref)
        if not isinstance(body, dict):
            raise errors.InvalidArgument("invalid JSON body")
        if not record.state.running:
            raise errors.Conflict(f"Container {record.id} is not running")
        if record.state.status == "paused":
            raise errors.Conflict(f"Container {ref} is paused, unpause the container before exec")
        cmd = body.get("Cmd")
        if not cmd or not isinstance(cmd, list):
            raise errors.InvalidArgument("No exec command specified")
        exec_id = secrets.token_hex(32)
        self._execs[exec_id] = ExecRecord(id=exec_id, container_id=record.id, config=dict(body))
        self.emit(record, f"exec_create: {' '.join(map(str, cmd))}", execID=exec_id)
        return exec_id

    def exec_get(self, exec_id: str) -> ExecRecord:
        try:
            return self._execs[exec_id]
        except KeyError:
            raise errors.NotFound(f"No such exec instance: {exec_id}") from None

    async def exec_start(
        self, exec_id: str, *, tty: bool | None, height: int = 0, width: int = 0
    ) -> ExecRecord:
        rec = self.exec_get(exec_id)
        if rec.running or rec.exit_code is not None:
            raise errors.Conflict(f"Error: Exec command {exec_id} has already run")
        record = self.get(rec.container_id)
        if not record.state.running:
            raise errors.Conflict(f"Container {record.id} is not running")
        if record.state.status == "paused":
            raise errors.Conflict(
                f"Container {record.id} is paused, unpause the container before exec"
            )
        cfg = rec.config
        use_tty = bool(cfg.get("Tty")) if tty is None else tty
        bundle = self.bundle(record)
        spec = json.loads((bundle / "config.json").read_text())
        process = dict(spec["process"])
        process["args"] = list(cfg["Cmd"])
        process["terminal"] = use_tty
        env = list(process.get("env") or [])
        for item in cfg.get("Env") or []:
            key = item.split("=", 1)[0]
            env = [e for e in env if e.split("=", 1)[0] != key] + [item]
        process["env"] = env
        if cfg.get("WorkingDir"):
            process["cwd"] = cfg["WorkingDir"]
        if cfg.get("User"):
            uid, gid, groups = resolve_user(bundle / "rootfs", cfg["User"])
            process["user"] = {"uid": uid, "gid": gid, "additionalGids": groups}
        if cfg.get("Privileged"):
            caps = process.get("capabilities") or {}
            process["capabilities"] = caps
        process.pop("consoleSize", None)
        session = self._root / record.id / "exec" / exec_id[:12]
        rec.running = True
        try:
            proc = await self._runtime.exec(
                record.id,
                session,
                process,
                tty=use_tty,
                stdin=bool(cfg.get("AttachStdin")),
                height=height,
                width=width,
            )
        except OCIRuntimeError as exc:
            rec.running = False
            lowered = exc.message.lower()
            rec.exit_code = 127 if ("no such file" in lowered or "not found" in lowered) else 126
            rec.done.set()
            raise
        rec.process = proc
        rec.pid = proc.pid
        self.emit(record, f"exec_start: {' '.join(map(str, cfg['Cmd']))}", execID=exec_id)
        return rec

    async def exec_finish(self, rec: ExecRecord) -> int:
        """Wait for an exec to end and record its exit code (before its stream is closed)."""
        assert rec.process is not None
        try:
            code = await rec.process.wait()
        finally:
            rec.running = False
        rec.exit_code = code
        rec.done.set()
        record = self._records.get(rec.container_id)
        if record is not None:
            self.emit(record, "exec_die", execID=rec.id, exitCode=str(code))
        return code

    def exec_forget(self, exec_id: str) -> None:
        """Drop a finished exec's record (health probes; dockerd garbage-collects them)."""
        self._execs.pop(exec_id, None)

    def exec_resize(self, exec_id: str, height: int, width: int) -> None:
        rec = self.exec_get(exec_id)
        if rec.process is None or not rec.running:
            raise errors.Conflict(f"Exec {exec_id} is not running")
        if rec.config.get("Tty"):
            rec.process.resize(height, width)

    # ---- views --------------------------------------------------------------------------

    def list_all(
        self, *, all: bool, limit: int, size: bool, filters: dict[str, list[str]]
    ) -> list[dict[str, Any]]:
        for key in filters:
            if key not in _FILTERS:
                raise errors.InvalidArgument(f"Invalid filter '{key}'")
        for status in filters.get("status", []):
            if status not in _STATUSES:
                raise errors.InvalidArgument(f"Invalid filter 'status={status}'")
        for value in filters.get("health", []):
            if value not in HEALTH_STATUSES:
                raise errors.InvalidArgument(f"Unrecognised filter value for health: {value}")
        records = sorted(self._records.values(), key=lambda r: r.created, reverse=True)
        if not all and not filters.get("status") and not filters.get("exited"):
            records = [r for r in records if r.state.running]
        records = [r for r in records if self._match(r, filters)]
        if limit > 0:
            records = records[:limit]
        return [self.summary(r, size=size) for r in records]

    def _match(self, r: ContainerRecord, filters: dict[str, list[str]]) -> bool:
        if filters.get("id") and not any(r.id.startswith(v) for v in filters["id"]):
            return False
        if filters.get("volume") and not self._mounts.matches_volume(r.id, filters["volume"]):
            return False
        if filters.get("name") and not any(_name_match(r.name, v) for v in filters["name"]):
            return False
        if filters.get("label") and not _labels_match(
            r.config.get("Labels") or {}, filters["label"]
        ):
            return False
        if filters.get("status") and r.state.status not in filters["status"]:
            return False
        if filters.get("health") and health_status(r.health) not in filters["health"]:
            return False
        if filters.get("exited"):
            if r.state.status != "exited":
                return False
            try:
                codes = {int(v) for v in filters["exited"]}
            except ValueError:
                raise errors.InvalidArgument(
                    f"Invalid filter 'exited={filters['exited'][0]}'"
                ) from None
            if r.state.exit_code not in codes:
                return False
        if filters.get("ancestor"):
            ok = False
            for value in filters["ancestor"]:
                try:
                    image = self._images.resolve(value)
                except errors.DockyardError:
                    continue
                if image.id == r.image_id:
                    ok = True
            if not ok:
                return False
        if filters.get("before") and not r.created < self.get(filters["before"][0]).created:
            return False
        since = filters.get("since")
        return not since or r.created > self.get(since[0]).created

    def _image_name(self, record: ContainerRecord) -> str:
        return str(record.config.get("Image") or record.image_id)

    def summary(self, r: ContainerRecord, *, size: bool = False) -> dict[str, Any]:
        mode = r.host_config.get("NetworkMode") or "default"
        out: dict[str, Any] = {
            "Id": r.id,
            "Names": [f"/{r.name}"],
            "Image": self._image_name(r),
            "ImageID": r.image_id,
            "Command": _command_string(r.argv),
            "Created": r.created // 1_000_000_000,
            "Ports": [],
            "Labels": r.config.get("Labels") or {},
            "State": r.state.status,
            "Status": r.status_text(),
            "HostConfig": {"NetworkMode": mode},
            "NetworkSettings": {"Networks": {}},
            "Mounts": self._mounts.inspect(r.id),
        }
        if self._net is not None:
            out["Ports"], out["NetworkSettings"]["Networks"] = self._net.summary(r.id, r.config)
        if size:
            out["SizeRw"] = self._rw_size(r)
            try:
                image = self._images.resolve(r.image_id)
                out["SizeRootFs"] = image.size + out["SizeRw"]
            except errors.DockyardError:
                out["SizeRootFs"] = out["SizeRw"]
        return out

    def inspect(self, ref: str, *, size: bool = False) -> dict[str, Any]:
        r = self.get(ref)
        bundle = self.bundle(r)
        hc = dict(r.host_config)
        hc.setdefault("Runtime", self._runtime_name)
        out: dict[str, Any] = {
            "Id": r.id,
            "Created": rfc3339(r.created),
            "Path": r.path,
            "Args": r.args,
            "State": r.state_json(),
            "Image": r.image_id,
            "ResolvConfPath": str(bundle / "resolv.conf"),
            "HostnamePath": str(bundle / "hostname"),
            "HostsPath": str(bundle / "hosts"),
            "LogPath": "" if _log_driver(r) == "none" else str(self.log_path(r)),
            "Name": f"/{r.name}",
            "RestartCount": r.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": [e.id for e in self._execs.values() if e.container_id == r.id] or None,
            "HostConfig": hc,
            "GraphDriver": {"Name": "overlay2", "Data": self._graph_data(r)},
            "Mounts": self._mounts.inspect(r.id),
            "Config": r.config,
            "NetworkSettings": {
                "Bridge": "",
                "SandboxID": "",
                "SandboxKey": "",
                "Ports": {},
                "HairpinMode": False,
                "LinkLocalIPv6Address": "",
                "LinkLocalIPv6PrefixLen": 0,
                "SecondaryIPAddresses": None,
                "SecondaryIPv6Addresses": None,
                "EndpointID": "",
                "Gateway": "",
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "IPAddress": "",
                "IPPrefixLen": 0,
                "IPv6Gateway": "",
                "MacAddress": "",
                "Networks": {},
            },
        }
        if self._net is not None:
            out["NetworkSettings"] = self._net.settings(r.id, r.config, r.state.running)
        if size:
            out["SizeRw"] = self._rw_size(r)
        return out

    def running_names(self) -> dict[str, str]:
        """Container id → name of the containers recorded as running (for start-up recovery)."""
        return {r.id: r.name for r in self._records.values() if r.state.running}

    # ---- networks ---------------------------------------------------------------------------

    async def network_connect(self, ref: str, network: str, endpoint: dict[str, Any]) -> None:
        record = self.get(ref)
        if self._net is None:
            raise errors.Unavailable("networking is not available")
        if not self._net.managed(record.host_config):
            raise errors.Forbidden(
                "container cannot be disconnected from host network or connected to host network"
            )
        async with self._lock(record.id):
            net = await self._net.connect(
                record.id, record.name, network, endpoint or {}, record.state.running
            )
            if net is not None:
                self._rewrite_hosts(record, net)

    async def network_disconnect(self, ref: str, network: str, force: bool = False) -> None:
        record = self.get(ref)
        if self._net is None:
            raise errors.Unavailable("networking is not available")
        async with self._lock(record.id):
            net = await self._net.disconnect(record.id, network, record.state.running)
            if net is not None:
                self._rewrite_hosts(record, net)

    def _extra_hosts(self, record: ContainerRecord) -> str:
        """``--add-host`` lines: ``name:ip`` or ``name=ip`` (IPv6 addresses keep their
        colons), ``host-gateway`` as the default bridge's gateway, as dockerd writes them."""
        lines = ""
        for extra in record.host_config.get("ExtraHosts") or []:
            host, sep, addr = str(extra).partition("=")
            if not sep:
                host, _, addr = str(extra).partition(":")
            if addr == "host-gateway":
                if self._net is None:
                    raise errors.InvalidArgument("unable to derive the IP value for host-gateway")
                addr = self._net.host_gateway()
            lines += f"{addr.strip('[]')}\t{host}\n"
        return lines

    def _rewrite_hosts(self, record: ContainerRecord, net: NetSetupLike) -> None:
        """Rewrite /etc/hosts in place: the container sees the bind-mounted inode."""
        hostname = record.config.get("Hostname") or record.id[:12]
        hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        for addr, _ in net.hosts:
            hosts += f"{addr}\t{hostname}\n"
        hosts += self._extra_hosts(record)
        files = {"hosts": hosts}
        if net.nameservers:
            files["resolv.conf"] = _resolv_conf(
                {**self._defaults.dns_of(record.host_config), "Dns": net.nameservers}, "private"
            )
        for fname, content in files.items():
            with contextlib.suppress(OSError), open(self.bundle(record) / fname, "r+") as f:
                f.truncate(0)
                f.write(content)

    def _graph_data(self, r: ContainerRecord) -> dict[str, str]:
        try:
            upper = self._snapshots.upper_dir(r.id)
        except errors.DockyardError:
            return {}
        return {
            "UpperDir": str(upper),
            "WorkDir": str(upper.parent / "work"),
            "MergedDir": str(self.bundle(r) / "rootfs"),
        }

    def image_of(self, record: ContainerRecord) -> Image:
        return self._images.resolve(record.image_id)


def _command_string(argv: list[str]) -> str:
    def quote(arg: str) -> str:
        if arg and all(c.isalnum() or c in "-_./=:,@%+" for c in arg):
            return arg
        return "'" + arg.replace("'", "'\"'\"'") + "'"

    return " ".join(quote(a) for a in argv)


def _name_match(name: str, pattern: str) -> bool:
    import re

    try:
        return re.search(pattern.lstrip("/"), name) is not None
    except re.error:
        return pattern.lstrip("/") in name


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels:
            return False
        if sep and labels[key] != value:
            return False
    return True


def _parse_until(value: str) -> float:
    from dockyard.containers.filters import parse_time

    return parse_time(value)


def _du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def _now_s() -> float:
    import time

    return time.time()


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically. No fsync: these files are rewritten at every start."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


_BUILTIN_SECCOMP: str | None = None


def _log_driver(record: ContainerRecord) -> str:
    return str((record.host_config.get("LogConfig") or {}).get("Type") or "json-file")


def _networking_of(body: dict[str, Any], host_config: dict[str, Any]) -> dict[str, Any] | None:
    """NetworkingConfig, with the deprecated container-level ``MacAddress`` (API < 1.44, the
    docker SDK's ``mac_address``) moved to the primary endpoint, as dockerd does."""
    networking = body.get("NetworkingConfig")
    mac = body.get("MacAddress")
    if not mac:
        return networking
    endpoints = dict((networking or {}).get("EndpointsConfig") or {})
    mode = str(host_config.get("NetworkMode") or "default")
    primary = dict(endpoints.get(mode) or {})
    primary["MacAddress"] = primary.get("MacAddress") or mac
    endpoints[mode] = primary
    return {**(networking or {}), "EndpointsConfig": endpoints}


def _optional_list(value: Any) -> list[str] | None:
    """HostConfig.MaskedPaths/ReadonlyPaths: null keeps the defaults, [] unmasks all."""
    return None if value is None else [str(v) for v in value]


def _swappiness(value: Any) -> int:
    return -1 if value is None else int(value)


def _resolv_conf(host_config: dict[str, Any], network_mode: str) -> str:
    try:
        host = Path("/etc/resolv.conf").read_text()
    except OSError:
        host = ""
    if network_mode == "host" and not (host_config.get("Dns") or host_config.get("DnsSearch")):
        return host
    lines = []
    servers = list(host_config.get("Dns") or [])
    search = list(host_config.get("DnsSearch") or [])
    options = list(host_config.get("DnsOptions") or [])
    for line in host.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1 and not host_config.get("Dns"):
            if not fields[1].startswith("127.") and fields[1] != "::1":
                servers.append(fields[1])
        elif fields[0] in ("search", "domain") and not search:
            search = fields[1:]
        elif fields[0] == "options" and not options:
            options = fields[1:]
    if not servers:
        servers = ["8.8.8.8", "8.8.4.4"]
    for s in servers:
        lines.append(f"nameserver {s}")
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"
