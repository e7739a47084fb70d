"""A container's mounts: HostConfig ``Binds``/``Mounts``/``Tmpfs``/``VolumesFrom`` and the
image's ``VOLUME``s → Docker's ``MountPoint`` records (at create) → OCI mounts (at start).

Create time (``ContainerMounts.create``) parses and validates everything with dockerd's
rules and words (``volume/mounts/linux_parser.go``), then creates the volumes it names or
needs (anonymous ones carry the ``com.docker.volume.anonymous`` label) and takes a reference
on each, and stores the records in ``container_mounts``. Nothing is created when any entry
is invalid. Precedence as in dockerd: ``VolumesFrom`` first, then ``Binds`` and ``Mounts``
(a destination used twice is "Duplicate mount point"), then ``Config.Volumes`` for the
destinations still free.

Start time (``setup``) turns the records into OCI mount objects for runc:

- every destination is resolved inside the rootfs with ``secure_join`` (symlinks followed as
  if the rootfs were ``/``) and created there with ``mkdir_in_root``; the resolved in-rootfs
  path is what runc gets, so a destination that is a symlink to ``/etc`` or ``../..`` in
  the image never leads outside the rootfs. A destination resolving to ``/`` is refused.
- volumes with driver options are mounted (``VolumeService.mount``) and a volume that is
  still empty gets the image's content at the destination once (copy-up, unless ``nocopy``);
  copy-up never follows a symlink (``dockyard.volumes.copyup``).
- bind sources are the user's choice: resolved with ``realpath`` on the host; a missing one is
  created for ``-v`` (``Binds``) and an error for ``--mount``.

``release`` (the container stopped) unmounts volumes with driver options that no other
running container uses; ``remove`` drops the references and, when asked, the container's
anonymous volumes that nobody else uses (``docker rm -v``). Named volumes are never removed
with a container.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dockyard import errors
from dockyard.containers.securejoin import mkdir_in_root, secure_join
from dockyard.mount import Mount, is_mounted
from dockyard.store import Database
from dockyard.volumes import ANONYMOUS_LABEL, DEFAULT_DRIVER, VolumeService, validate_name
from dockyard.volumes import copy_up as _copy_up
from dockyard.volumes import is_empty_dir as _is_empty_dir

__all__ = [
    "ContainerMounts",
    "MountPoint",
    "ViewMount",
    "merge_tmpfs_options",
    "parse_bind",
    "parse_mount",
    "parse_tmpfs",
    "parse_volumes_from",
    "validate_host_mounts",
]

log = logging.getLogger(__name__)

_RW_MODES = {"rw", "ro"}
_LABEL_MODES = {"z", "Z"}
_PROPAGATION = {"private", "rprivate", "slave", "rslave", "shared", "rshared"}
_COPY_MODES = {"nocopy"}
_CONSISTENCY = {"consistent", "cached", "delegated"}
_DEFAULT_PROPAGATION = "rprivate"
_TMPFS_DATA = {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"}
# tmpfs flag words → the flag they set or clear (opposites share a key: the last one wins)
_TMPFS_FLAGS = {
    "ro": "rdonly",
    "rw": "rdonly",
    "suid": "nosuid",
    "nosuid": "nosuid",
    "dev": "nodev",
    "nodev": "nodev",
    "exec": "noexec",
    "noexec": "noexec",
    "sync": "sync",
    "async": "sync",
    "dirsync": "dirsync",
    "remount": "remount",
    "mand": "mand",
    "nomand": "mand",
    "atime": "noatime",
    "noatime": "noatime",
    "diratime": "nodiratime",
    "nodiratime": "nodiratime",
    "bind": "bind",
    "rbind": "rbind",
    "relatime": "relatime",
    "norelatime": "relatime",
    "strictatime": "strictatime",
    "nostrictatime": "strictatime",
    "unbindable": "propagation",
    "runbindable": "propagation",
    "private": "propagation",
    "rprivate": "propagation",
    "shared": "propagation",
    "rshared": "propagation",
    "slave": "propagation",
    "rslave": "propagation",
}
_MOUNT_KEYS = {
    "Type",
    "Source",
    "Target",
    "ReadOnly",
    "Consistency",
    "BindOptions",
    "VolumeOptions",
    "TmpfsOptions",
}
_BIND_KEYS = {
    "Propagation",
    "NonRecursive",
    "CreateMountpoint",
    "ReadOnlyNonRecursive",
    "ReadOnlyForceRecursive",
}
_VOLUME_KEYS = {"NoCopy", "Labels", "DriverConfig", "Subpath"}
_TMPFS_KEYS = {"SizeBytes", "Mode", "Options"}
_TMPFS_OPTION_WORDS = {"exec", "noexec"}


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


# --------------------------------------------------------------------------- records


@dataclass
class MountPoint:
    """Docker's MountPoint, plus what the daemon needs to set it up again at each start."""

    type: str  # volume | bind | tmpfs
    destination: str
    source: str = ""  # host path: the bind source, or the volume's _data
    name: str = ""  # volume name
    driver: str = ""
    mode: str = ""  # the options as the user wrote them (``ro,z``), "z" for named volumes
    rw: bool = True
    propagation: str = ""
    named: bool = False  # a volume the user named (never removed with the container)
    copy_data: bool = False  # copy the image's content into the volume at the next start
    recursive: bool = True  # rbind (False: bind, BindOptions.NonRecursive)
    create_source: bool = False  # a missing bind source is created (``-v``) at start
    tmpfs: list[str] = field(default_factory=list)  # tmpfs data options (size=…, mode=…)
    # create-time only: options for a volume this container creates
    volume_options: dict[str, str] = field(default_factory=dict)
    volume_labels: dict[str, str] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The ``Mounts`` entry of inspect and ps (Go's field order, omitempty kept)."""
        out: dict[str, Any] = {"Type": self.type}
        if self.name:
            out["Name"] = self.name
        out["Source"] = self.source
        out["Destination"] = self.destination
        if self.driver:
            out["Driver"] = self.driver
        out["Mode"] = self.mode
        out["RW"] = self.rw
        out["Propagation"] = self.propagation
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("volume_options")
        data.pop("volume_labels")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MountPoint:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class ViewMount:
    """One mount point as ``docker cp`` must see it: its ``destination`` in the container,
    and either a host directory or file to bind there (``source``) or a filesystem to mount
    afresh (``fresh``: a volume with driver options that no running container holds)."""

    destination: str
    rw: bool
    source: str = ""
    is_dir: bool = True
    recursive: bool = True
    fresh: Mount | None = None


# --------------------------------------------------------------------------- parsing


class _MountConfigError(errors.InvalidArgument):
    def __init__(self, mount_type: str, message: str) -> None:
        super().__init__(f"invalid mount config for type {_go_quote(mount_type)}: {message}")


def _valid_mode(mode: str) -> bool:
    if mode == "":
        return True
    counts = {"rw": 0, "label": 0, "prop": 0, "copy": 0, "consistency": 0}
    for option in mode.split(","):
        if option in _RW_MODES:
            counts["rw"] += 1
        elif option in _LABEL_MODES:
            counts["label"] += 1
        elif option in _PROPAGATION:
            counts["prop"] += 1
        elif option in _COPY_MODES:
            counts["copy"] += 1
        elif option in _CONSISTENCY:
            counts["consistency"] += 1
        else:
            return False
    return all(n <= 1 for n in counts.values())


def _read_write(mode: str) -> bool:
    return _valid_mode(mode) and "ro" not in mode.split(",")


def _propagation_of(mode: str) -> str | None:
    for option in mode.split(","):
        if option in _PROPAGATION:
            return option
    return None


def _check_target(mount_type: str, target: str) -> None:
    if not target:
        raise _MountConfigError(mount_type, "field Target must not be empty")
    if posixpath.normpath(target.replace("\\", "/")) == "/":
        raise _MountConfigError(mount_type, "invalid specification: destination can't be '/'")
    if not target.replace("\\", "/").startswith("/"):
        raise _MountConfigError(
            mount_type, f"invalid mount path: '{target}' mount path must be absolute"
        )


def _clean(path: str) -> str:
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def parse_bind(raw: str, volume_driver: str = "") -> MountPoint:
    """One ``Binds`` entry: ``/host:/ctr[:mode]``, ``name:/ctr[:mode]`` or ``/ctr``.

    Raises ``InvalidArgument`` with dockerd's message (``invalid mode: x``, ``invalid volume
    specification: '…'[: reason]``). Bind sources are not checked here: ``-v`` creates them.
    """
    arr = raw.split(":", 3)
    if arr[0] == "":
        raise errors.InvalidArgument(f"invalid volume specification: '{raw}'")
    mode = ""
    source = ""
    if len(arr) == 1:
        target = arr[0]
    elif len(arr) == 2:
        if _valid_mode(arr[1]):
            raise errors.InvalidArgument(f"invalid volume specification: '{raw}'")
        source, target = arr
    elif len(arr) == 3:
        source, target, mode = arr
    else:
        raise errors.InvalidArgument(f"invalid volume specification: '{raw}'")
    if not _valid_mode(mode):
        raise errors.InvalidArgument(f"invalid mode: {mode}")
    mount_type = "bind" if source.startswith("/") else "volume"
    options = mode.split(",") if mode else []
    propagation = _propagation_of(mode)
    try:
        _check_target(mount_type, target)
        if mount_type == "bind" and "nocopy" in options:
            raise _MountConfigError(mount_type, "field VolumeOptions must not be specified")
        if mount_type == "volume" and propagation is not None:
            raise _MountConfigError(mount_type, "field BindOptions must not be specified")
    except errors.InvalidArgument as exc:
        raise errors.InvalidArgument(
            f"invalid volume specification: '{raw}': {exc.message}"
        ) from None
    mp = MountPoint(
        type=mount_type,
        destination=_clean(target),
        mode=mode,
        rw=_read_write(mode),
    )
    if mount_type == "bind":
        mp.source = _clean(source)
        mp.propagation = propagation or _DEFAULT_PROPAGATION
        mp.create_source = True
    else:
        mp.name = source
        mp.named = bool(source)
        mp.driver = volume_driver or DEFAULT_DRIVER
        mp.copy_data = "nocopy" not in options
        if not mp.mode:
            mp.mode = "z"
    return mp


def _typed(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if value is not None and not isinstance(value, kind):
        raise errors.InvalidArgument(f"json: cannot unmarshal into Go struct field Mount.{what}")
    return value


def _object(value: Any, keys: set[str], mount_type: str, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise errors.InvalidArgument(f"json: cannot unmarshal into Go struct field Mount.{what}")
    for key in value:
        if key not in keys:
            raise _MountConfigError(mount_type, f"unknown option {what}.{key}")
    return value


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise errors.InvalidArgument(f"json: cannot unmarshal into Go struct field {what}")
    return dict(value)


def _tmpfs_size(size: int) -> str:
    for suffix, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if size % divisor == 0:
            return f"{size // divisor}{suffix}"
    return str(size)


def parse_mount(spec: Any, *, check_source: bool = True) -> MountPoint:
    """One ``HostConfig.Mounts`` entry (``--mount``) → a MountPoint.

    Raises ``InvalidArgument``: ``invalid mount config for type "T": …`` naming the field or
    option at fault; a bind source that does not exist is an error here (unlike ``-v``).
    """
    if not isinstance(spec, dict):
        raise errors.InvalidArgument("json: cannot unmarshal into Go value of type mount.Mount")
    mount_type = _typed(spec.get("Type"), str, "Type") or ""
    for key in spec:
        if key not in _MOUNT_KEYS:
            raise _MountConfigError(mount_type, f"unknown option {key}")
    source = _typed(spec.get("Source"), str, "Source") or ""
    target = _typed(spec.get("Target"), str, "Target") or ""
    readonly = bool(_typed(spec.get("ReadOnly"), bool, "ReadOnly"))
    _typed(spec.get("Consistency"), str, "Consistency")
    bind_opts = _object(spec.get("BindOptions"), _BIND_KEYS, mount_type, "BindOptions")
    volume_opts = _object(spec.get("VolumeOptions"), _VOLUME_KEYS, mount_type, "VolumeOptions")
    tmpfs_opts = _object(spec.get("TmpfsOptions"), _TMPFS_KEYS, mount_type, "TmpfsOptions")
    _check_target(mount_type, target)
    mp = MountPoint(type=mount_type, destination=_clean(target), rw=not readonly)
    if mount_type == "bind":
        if not source:
            raise _MountConfigError(mount_type, "field Source must not be empty")
        propagation = str((bind_opts or {}).get("Propagation") or "")
        if propagation and propagation not in _PROPAGATION:
            raise _MountConfigError(mount_type, f"invalid propagation mode: {propagation}")
        if volume_opts is not None:
            raise _MountConfigError(mount_type, "field VolumeOptions must not be specified")
        if tmpfs_opts is not None:
            raise _MountConfigError(mount_type, "field TmpfsOptions must not be specified")
        if not source.startswith("/"):
            raise _MountConfigError(
                mount_type, f"invalid mount path: '{source}' mount path must be absolute"
            )
        create = bool((bind_opts or {}).get("CreateMountpoint"))
        if check_source and not create and not os.path.lexists(source):
            raise _MountConfigError(mount_type, f"bind source path does not exist: {source}")
        mp.source = _clean(source)
        mp.propagation = propagation or _DEFAULT_PROPAGATION
        mp.recursive = not (bind_opts or {}).get("NonRecursive")
        mp.create_source = create
    elif mount_type == "volume":
        if bind_opts is not None:
            raise _MountConfigError(mount_type, "field BindOptions must not be specified")
        if tmpfs_opts is not None:
            raise _MountConfigError(mount_type, "field TmpfsOptions must not be specified")
        vopts = volume_opts or {}
        if vopts.get("Subpath"):
            raise _MountConfigError(mount_type, "VolumeOptions.Subpath is not supported")
        if readonly and not source:
            raise _MountConfigError(
                mount_type, "must not set ReadOnly mode when using anonymous volumes"
            )
        driver_config = (
            _object(vopts.get("DriverConfig"), {"Name", "Options"}, mount_type, "DriverConfig")
            or {}
        )
        mp.name = source
        mp.named = bool(source)
        mp.driver = str(driver_config.get("Name") or DEFAULT_DRIVER)
        mp.copy_data = not vopts.get("NoCopy")
        mp.mode = "z"
        mp.volume_options = _str_map(driver_config.get("Options"), "Driver.Options")
        mp.volume_labels = _str_map(vopts.get("Labels"), "VolumeOptions.Labels")
    elif mount_type == "tmpfs":
        if bind_opts is not None:
            raise _MountConfigError(mount_type, "field BindOptions must not be specified")
        if volume_opts is not None:
            raise _MountConfigError(mount_type, "field VolumeOptions must not be specified")
        if source:
            raise _MountConfigError(mount_type, "field Source must not be specified")
        topts = tmpfs_opts or {}
        data: list[str] = ["ro"] if readonly else []
        mode = _typed(topts.get("Mode"), int, "TmpfsOptions.Mode")
        if mode:
            data.append(f"mode={mode:o}")
        size = _typed(topts.get("SizeBytes"), int, "TmpfsOptions.SizeBytes")
        if size:
            if size < 0:
                raise _MountConfigError(mount_type, f"invalid tmpfs size: {size}")
            data.append(f"size={_tmpfs_size(size)}")
        for option in _typed(topts.get("Options"), list, "TmpfsOptions.Options") or []:
            if not isinstance(option, list) or not 1 <= len(option) <= 2:
                raise _MountConfigError(mount_type, "invalid option array length")
            if option[0] not in _TMPFS_OPTION_WORDS:
                raise _MountConfigError(mount_type, f"invalid option: {option[0]}")
            data.append(option[0] if len(option) == 1 else f"{option[0]}={option[1]}")
        mp.tmpfs = data
    else:
        raise _MountConfigError(mount_type, "mount type unknown")
    return mp


def merge_tmpfs_options(options: Iterable[str]) -> list[str]:
    """moby's ``MergeTmpfsOptions``: later flags win over earlier ones and their opposites,
    later ``key=value`` over earlier values of the key. Raises ``InvalidArgument`` (``invalid
    tmpfs option ["foo" "1"]``) for anything that is not a tmpfs option."""
    seen_flags: set[str] = set()
    seen_data: set[str] = set()
    out: list[str] = []
    for option in reversed([o for o in options if o and o != "defaults"]):
        key = _TMPFS_FLAGS.get(option)
        if key is not None:
            if key not in seen_flags:
                out.insert(0, option)
                seen_flags.add(key)
            continue
        parts = option.split("=", 1)
        if len(parts) != 2 or parts[0] not in _TMPFS_DATA:
            quoted = " ".join(_go_quote(p) for p in parts)
            raise errors.InvalidArgument(f"invalid tmpfs option [{quoted}]")
        if parts[0] not in seen_data:
            out.insert(0, option)
            seen_data.add(parts[0])
    return out


def parse_tmpfs(destination: str, data: str) -> list[str]:
    """One ``HostConfig.Tmpfs`` entry → its checked options (not yet merged with defaults)."""
    if not isinstance(data, str):
        raise errors.InvalidArgument("json: cannot unmarshal into Go struct field HostConfig.Tmpfs")
    if posixpath.normpath(destination) == "/":
        raise errors.InvalidArgument("invalid specification: destination can't be '/'")
    if not destination.startswith("/"):
        raise errors.InvalidArgument(
            f"invalid mount path: '{destination}' mount path must be absolute"
        )
    options = [o for o in data.split(",") if o] if data else []
    merge_tmpfs_options(options)
    return options


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """``container[:ro|rw]`` → (container, mode); dockerd's ``ParseVolumesFrom``."""
    if not isinstance(spec, str) or not spec:
        raise errors.InvalidArgument("volumes-from specification cannot be an empty string")
    ref, _, mode = spec.partition(":")
    if not mode:
        return ref, "rw"
    if not _valid_mode(mode) or _propagation_of(mode) is not None or "nocopy" in mode.split(","):
        raise errors.InvalidArgument(f"invalid mode: {mode}")
    return ref, mode


def _string_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.InvalidArgument(
            f"json: cannot unmarshal into Go struct field HostConfig.{what} of type []string"
        )
    return list(value)


def validate_host_mounts(host_config: Mapping[str, Any]) -> None:
    """The checks that need no other object: shapes, modes, targets, tmpfs options.

    Used by ``validate_host_config``; ``ContainerMounts.create`` repeats them in full.
    """
    for raw in _string_list(host_config.get("Binds"), "Binds"):
        parse_bind(raw)
    mounts = host_config.get("Mounts")
    if mounts is not None and not isinstance(mounts, list):
        raise errors.InvalidArgument(
            "json: cannot unmarshal into Go struct field HostConfig.Mounts"
        )
    for spec in mounts or []:
        parse_mount(spec, check_source=False)
    tmpfs = host_config.get("Tmpfs")
    if tmpfs is not None and not isinstance(tmpfs, dict):
        raise errors.InvalidArgument("json: cannot unmarshal into Go struct field HostConfig.Tmpfs")
    for dest, data in (tmpfs or {}).items():
        parse_tmpfs(dest, data)
    for spec in _string_list(host_config.get("VolumesFrom"), "VolumesFrom"):
        parse_volumes_from(spec)


# --------------------------------------------------------------------------- the manager


class ContainerMounts:
    """Every container's mount points, persisted in ``container_mounts``; see the module doc.

    ``volumes`` may be None (a daemon without volumes): then only binds and tmpfs work.
    """

    def __init__(
        self, db: Database, volumes: VolumeService | None, container_ids: Iterable[str]
    ) -> None:
        self._db = db
        self._volumes = volumes
        self._points: dict[str, list[MountPoint]] = {}
        self._active: set[str] = set()
        known = set(container_ids)
        stale: list[str] = []
        for row in db.query("SELECT container_id, mounts, active FROM container_mounts"):
            cid = row["container_id"]
            if cid not in known:
                stale.append(cid)
                continue
            self._points[cid] = [MountPoint.from_dict(m) for m in json.loads(row["mounts"])]
            if row["active"]:
                self._active.add(cid)
        if stale:
            with db.transaction() as tx:
                tx.executemany(
                    "DELETE FROM container_mounts WHERE container_id=?", [(c,) for c in stale]
                )
        if volumes is not None:
            for cid, points in self._points.items():
                for mp in points:
                    if mp.type == "volume" and volumes.exists(mp.name):
                        volumes.acquire(mp.name, cid)
            active_volumes = {
                mp.name for cid in self._active for mp in self._points.get(cid, ()) if mp.name
            }
            for volume in volumes.list_volumes():
                if volume.needs_mount and volume.name not in active_volumes:
                    with contextlib.suppress(errors.DockyardError, OSError):
                        volumes.unmount(volume.name)

    # ---- create -------------------------------------------------------------------------

    def create(
        self,
        cid: str,
        host_config: Mapping[str, Any],
        config: Mapping[str, Any],
        resolve_container: Callable[[str], str],
    ) -> list[MountPoint]:
        """Resolve, validate and record the container's mount points; create and acquire the
        volumes. Raises ``InvalidArgument``/``NotFound`` (and creates nothing) on bad input."""
        tmpfs = host_config.get("Tmpfs") or {}
        if not isinstance(tmpfs, dict):
            raise errors.InvalidArgument(
                "json: cannot unmarshal into Go struct field HostConfig.Tmpfs"
            )
        for dest, data in tmpfs.items():
            parse_tmpfs(dest, data)
        tmpfs_dests = {_clean(d) for d in tmpfs}
        points: dict[str, MountPoint] = {}
        for spec in _string_list(host_config.get("VolumesFrom"), "VolumesFrom"):
            ref, mode = parse_volumes_from(spec)
            source_id = resolve_container(ref)
            for mp in self._points.get(source_id, []):
                if mp.type == "tmpfs":
                    # a tmpfs holds nothing to share (dockerd fails here: "get: no such volume")
                    continue
                points[mp.destination] = MountPoint(
                    type=mp.type,
                    destination=mp.destination,
                    source=mp.source,
                    name=mp.name,
                    driver=mp.driver,
                    rw=mp.rw and _read_write(mode),
                    propagation=mp.propagation,
                    named=mp.named,
                    recursive=mp.recursive,
                    create_source=mp.create_source,
                )
        explicit: set[str] = set()
        volume_driver = str(host_config.get("VolumeDriver") or "")
        for raw in _string_list(host_config.get("Binds"), "Binds"):
            mp = parse_bind(raw, volume_driver)
            if mp.destination in explicit or mp.destination in tmpfs_dests:
                raise errors.InvalidArgument(f"Duplicate mount point: {mp.destination}")
            explicit.add(mp.destination)
            points[mp.destination] = mp
        mounts = host_config.get("Mounts") or []
        if not isinstance(mounts, list):
            raise errors.InvalidArgument(
                "json: cannot unmarshal into Go struct field HostConfig.Mounts"
            )
        for spec in mounts:
            mp = parse_mount(spec)
            if mp.destination in explicit or mp.destination in tmpfs_dests:
                raise errors.InvalidArgument(f"Duplicate mount point: {spec.get('Target')}")
            explicit.add(mp.destination)
            points[mp.destination] = mp
        for dest in sorted((config.get("Volumes") or {}).keys()):
            if not isinstance(dest, str):
                continue
            _check_target("volume", dest)
            cleaned = _clean(dest)
            if cleaned in points or cleaned in tmpfs_dests:
                continue
            points[cleaned] = MountPoint(
                type="volume",
                destination=cleaned,
                driver=volume_driver or DEFAULT_DRIVER,
                copy_data=True,
            )
        result = list(points.values())
        self._create_volumes(cid, result)
        self._points[cid] = result
        try:
            self._save(cid)
        except BaseException:
            self.remove(cid, remove_volumes=True)
            raise
        return result

    def _create_volumes(self, cid: str, points: list[MountPoint]) -> None:
        wanted = [mp for mp in points if mp.type == "volume"]
        if not wanted:
            return
        volumes = self._volumes
        if volumes is None:
            raise errors.InvalidArgument("volumes are not supported by this daemon")
        for mp in wanted:  # check everything before creating anything
            if mp.driver != DEFAULT_DRIVER:
                raise errors.NotFound(
                    f"create {mp.name}: error looking up volume plugin {mp.driver}: "
                    f'plugin "{mp.driver}" not found'
                )
            if mp.name and not volumes.exists(mp.name):
                try:
                    validate_name(mp.name)
                except errors.InvalidArgument as exc:
                    raise errors.InvalidArgument(f"create {mp.name}: {exc.message}") from None
        acquired: list[str] = []
        created: list[str] = []
        try:
            for mp in wanted:
                labels = dict(mp.volume_labels)
                if not mp.name:
                    labels[ANONYMOUS_LABEL] = ""
                existed = bool(mp.name) and volumes.exists(mp.name)
                volume = volumes.create(mp.name, mp.driver, mp.volume_options, labels, ref=cid)
                acquired.append(volume.name)
                if not existed:
                    created.append(volume.name)
                mp.name = volume.name
                mp.source = str(volume.mountpoint)
                mp.driver = volume.driver
        except BaseException:
            for name in acquired:
                volumes.release(name, cid)
            for name in created:
                with contextlib.suppress(errors.DockyardError):
                    volumes.remove(name)
            raise

    def _save(self, cid: str) -> None:
        data = json.dumps([mp.to_dict() for mp in self._points.get(cid, [])])
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO container_mounts(container_id, mounts, active) VALUES (?,?,?) "
                "ON CONFLICT(container_id) DO UPDATE SET mounts=excluded.mounts, "
                "active=excluded.active",
                (cid, data, 1 if cid in self._active else 0),
            )

    # ---- start / stop ------------------------------------------------------------------------

    def setup(
        self, cid: str, rootfs: Path, tmpfs: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Prepare the mounts of a container about to start; return its OCI mount objects.

        Marks the container active first, so ``release`` undoes a half-done setup.
        """
        points = self._points.get(cid, [])
        self._active.add(cid)
        self._save(cid)
        out: list[dict[str, Any]] = []
        changed = False
        for mp in points:
            if mp.type == "volume":
                if self._volumes is None:
                    raise errors.InvalidArgument("volumes are not supported by this daemon")
                volume_dir = self._volumes.mount(mp.name)
                if mp.copy_data:
                    image_dir = secure_join(rootfs, mp.destination)
                    if image_dir != rootfs and _is_empty_dir(volume_dir):
                        _copy_up(image_dir, volume_dir)
                    mp.copy_data = False
                    changed = True
                destination = _prepare_target(rootfs, mp.destination, is_dir=True)
                out.append(_bind_object(destination, str(volume_dir), mp))
                self._volumes.events.emit(
                    "volume",
                    "mount",
                    mp.name,
                    {
                        "driver": mp.driver or "local",
                        "container": cid,
                        "destination": mp.destination,
                        "read/write": "true" if mp.rw else "false",
                        "propagation": mp.propagation,
                    },
                )
            elif mp.type == "bind":
                source = mp.source
                if not os.path.lexists(source):
                    if not mp.create_source:
                        raise _MountConfigError(
                            "bind", f"bind source path does not exist: {source}"
                        )
                    try:
                        os.makedirs(source, 0o755, exist_ok=True)
                    except OSError as exc:
                        raise errors.SystemError(
                            f"error while creating mount source path '{source}': "
                            f"{exc.strerror or exc}"
                        ) from None
                real = os.path.realpath(source)
                if not os.path.exists(real):
                    raise _MountConfigError("bind", f"bind source path does not exist: {source}")
                destination = _prepare_target(rootfs, mp.destination, is_dir=os.path.isdir(real))
                out.append(_bind_object(destination, real, mp))
            elif mp.type == "tmpfs":
                destination = _prepare_target(rootfs, mp.destination, is_dir=True)
                out.append(_tmpfs_object(destination, mp.tmpfs))
        for dest, data in (tmpfs or {}).items():
            destination = _prepare_target(rootfs, _clean(dest), is_dir=True)
            out.append(_tmpfs_object(destination, parse_tmpfs(dest, data)))
        if changed:
            self._save(cid)
        return out

    def release(self, cid: str) -> None:
        """The container stopped (or failed to start): unmount the volumes with driver options
        that no other running container uses."""
        if cid not in self._active:
            return
        self._active.discard(cid)
        with contextlib.suppress(errors.DockyardError):
            self._save(cid)
        if self._volumes is None:
            return
        still_used = {
            mp.name for other in self._active for mp in self._points.get(other, ()) if mp.name
        }
        for mp in self._points.get(cid, []):
            if mp.type != "volume":
                continue
            if mp.name not in still_used:
                try:
                    self._volumes.unmount(mp.name)
                except (errors.DockyardError, OSError) as exc:
                    log.warning("unmounting volume %s failed: %s", mp.name, exc)
            self._volumes.events.emit(
                "volume", "unmount", mp.name, {"driver": mp.driver or "local", "container": cid}
            )

    def remove(self, cid: str, *, remove_volumes: bool) -> None:
        """The container is removed: drop its references, and with ``remove_volumes`` its
        anonymous volumes that no other container uses (``docker rm -v``)."""
        self.release(cid)
        points = self._points.pop(cid, [])
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM container_mounts WHERE container_id=?", (cid,))
        if self._volumes is None:
            return
        for mp in points:
            if mp.type != "volume" or not mp.name:
                continue
            self._volumes.release(mp.name, cid)
            if remove_volumes and not mp.named:
                try:
                    self._volumes.remove(mp.name)
                except errors.Conflict:
                    pass  # another container still uses it: not an error (dockerd)
                except errors.NotFound:
                    pass
                except errors.DockyardError as exc:
                    log.warning("removing volume %s failed: %s", mp.name, exc)

    # ---- views ----------------------------------------------------------------------------

    def inspect(self, cid: str) -> list[dict[str, Any]]:
        return [mp.to_api() for mp in self._points.get(cid, [])]

    def matches_volume(self, cid: str, wanted: Iterable[str]) -> bool:
        """ps ``volume=`` filter: a volume name or a mount destination of the container."""
        values = set(wanted)
        return any(
            mp.name in values or mp.destination in values for mp in self._points.get(cid, [])
        )

    def view_mounts(self, cid: str) -> list[ViewMount]:
        """The volumes and binds to mount over a copy of the container's rootfs so that it
        shows what the container sees (``docker cp``), parents before children. tmpfs points
        are left out: their content exists only inside the running container (as dockerd)."""
        out: list[ViewMount] = []
        for mp in self._points.get(cid, []):
            if mp.type == "volume" and self._volumes is not None and self._volumes.exists(mp.name):
                volume = self._volumes.get(mp.name)
                if volume.needs_mount and not is_mounted(volume.mountpoint):
                    opts = tuple(o for o in volume.options.get("o", "").split(",") if o)
                    fresh = Mount(
                        volume.options.get("type", ""), volume.options.get("device", ""), opts
                    )
                    out.append(ViewMount(mp.destination, mp.rw, fresh=fresh))
                else:
                    out.append(ViewMount(mp.destination, mp.rw, source=str(volume.mountpoint)))
            elif mp.type == "bind":
                real = os.path.realpath(mp.source)
                if os.path.exists(real):  # a missing -v source is made at start, not here
                    out.append(
                        ViewMount(
                            mp.destination,
                            mp.rw,
                            source=real,
                            is_dir=os.path.isdir(real),
                            recursive=mp.recursive,
                        )
                    )
        return sorted(out, key=lambda v: len(v.destination.strip("/").split("/")))


def _prepare_target(rootfs: Path, destination: str, *, is_dir: bool) -> str:
    """Resolve ``destination`` inside ``rootfs``, create it (a directory, or an empty file for
    a file bind), and return the resolved path as the container sees it."""
    resolved = secure_join(rootfs, destination)
    if resolved == rootfs:
        raise errors.InvalidArgument(
            f"invalid mount destination {destination}: it resolves to the container's root"
        )
    inner = "/" + str(resolved.relative_to(rootfs))
    if is_dir:
        mkdir_in_root(rootfs, inner)
        return inner
    parent = posixpath.dirname(inner)
    parent_path = mkdir_in_root(rootfs, parent) if parent != "/" else rootfs
    leaf = parent_path / posixpath.basename(inner)
    try:
        st = os.lstat(leaf)
    except FileNotFoundError:
        fd = os.open(
            leaf, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o755
        )
        os.close(fd)
        return inner
    if stat.S_ISLNK(st.st_mode):  # pragma: no cover - secure_join resolved it
        raise errors.InvalidArgument(f"invalid mount destination {destination}")
    return inner


def _bind_object(destination: str, source: str, mp: MountPoint) -> dict[str, Any]:
    options = ["rbind" if mp.recursive else "bind", mp.propagation or _DEFAULT_PROPAGATION]
    if not mp.rw:
        options.append("ro")
    return {"destination": destination, "type": "bind", "source": source, "options": options}


def _tmpfs_object(destination: str, data: list[str]) -> dict[str, Any]:
    options = merge_tmpfs_options(["noexec", "nosuid", "nodev", _DEFAULT_PROPAGATION, *data])
    return {"destination": destination, "type": "tmpfs", "source": "tmpfs", "options": options}
