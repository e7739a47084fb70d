"""``docker commit`` and ``docker export``: a container's rw layer as an image, its merged
rootfs as a tar.

`commit_container` takes the container's upper dir as one new layer on its image, with
the container's config (or the caller's), ``changes`` applied as Dockerfile instructions
(CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL), as
dockerd does. `export_rootfs` writes the merged filesystem, mounting it read-only for
the duration when the container is not running.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from dockyard.archive import write_tree
from dockyard.build.parser import ShellLex, parse, parse_key_values
from dockyard.containers.record import ContainerRecord
from dockyard.errors import DockyardError, InvalidArgument
from dockyard.images.service import Image, ImageService
from dockyard.mount import mount_all, unmount
from dockyard.oci.descriptor import Platform
from dockyard.snapshots.overlay import OverlaySnapshotter

__all__ = ["apply_changes", "commit_container", "export_rootfs", "import_rootfs"]

_CHANGEABLE = frozenset(
    {
        "cmd",
        "entrypoint",
        "env",
        "expose",
        "label",
        "onbuild",
        "user",
        "volume",
        "workdir",
        "stopsignal",
    }
)
_RUNTIME_KEYS = (
    "Hostname",
    "Domainname",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Image",
)


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Apply ``--change`` instructions to an image config (a copy). ``InvalidArgument``
    for an instruction ``commit`` does not take."""
    out: dict[str, Any] = json.loads(json.dumps(config))
    lex = ShellLex()
    for text in changes:
        for ins in parse(text).instructions:
            if ins.cmd not in _CHANGEABLE:
                raise InvalidArgument(f"{ins.cmd.upper()} is not a valid change command")
            env = dict(e.partition("=")[::2] for e in out.get("Env") or [])
            shell = out.get("Shell") or ["/bin/sh", "-c"]
            if ins.cmd in ("cmd", "entrypoint"):
                key = "Cmd" if ins.cmd == "cmd" else "Entrypoint"
                out[key] = list(ins.words) if ins.json else [*shell, ins.args]
            elif ins.cmd == "env":
                for k, v in parse_key_values(ins, lex, env):
                    out["Env"] = [e for e in out.get("Env") or [] if e.partition("=")[0] != k]
                    out["Env"].append(f"{k}={v}")
            elif ins.cmd == "label":
                labels = dict(out.get("Labels") or {})
                labels.update(parse_key_values(ins, lex, env))
                out["Labels"] = labels
            elif ins.cmd == "expose":
                ports = dict(out.get("ExposedPorts") or {})
                for word in lex.process_words(ins.args, env):
                    port, _, proto = word.partition("/")
                    ports[f"{port}/{proto or 'tcp'}"] = {}
                out["ExposedPorts"] = ports
            elif ins.cmd == "volume":
                vols = dict(out.get("Volumes") or {})
                words = list(ins.words) if ins.json else lex.process_words(ins.args, env)
                vols.update({w: {} for w in words})
                out["Volumes"] = vols
            elif ins.cmd == "onbuild":
                out["OnBuild"] = [*(out.get("OnBuild") or []), ins.args]
            else:
                key = {"user": "User", "workdir": "WorkingDir", "stopsignal": "StopSignal"}[ins.cmd]
                out[key] = lex.process_word(ins.args, env)
    return out


def commit_container(
    images: ImageService,
    snapshots: OverlaySnapshotter,
    record: ContainerRecord,
    *,
    overrides: dict[str, Any] | None = None,
    changes: list[str] | None = None,
    tags: list[str] | None = None,
    author: str = "",
    comment: str = "",
) -> Image:
    """``POST /commit``: a new image from the container's rw layer."""
    image = images.resolve(record.image_id)
    config = {k: v for k, v in record.config.items() if k not in _RUNTIME_KEYS}
    for key, value in (overrides or {}).items():
        if value not in (None, "", [], {}) and key not in _RUNTIME_KEYS:
            config[key] = value
    config = apply_changes(config, changes or [])
    history: dict[str, Any] = {"created_by": " ".join(record.argv)}
    if comment:
        history["comment"] = comment
    if author:
        history["author"] = author
    extra: dict[str, Any] = {}
    if author:
        extra["author"] = author
    if comment:
        extra["comment"] = comment
    return images.commit(
        image, snapshots.upper_dir(record.id), config, history, tags=tags or [], extra=extra
    )


def export_rootfs(
    snapshots: OverlaySnapshotter, record: ContainerRecord, bundle: Path, out: BinaryIO, work: Path
) -> None:
    """Write the container's merged rootfs to ``out`` as a plain tar."""
    rootfs = bundle / "rootfs"
    if record.state.running and os.path.ismount(rootfs):
        write_tree(rootfs, out)
        return
    key = f"export-{uuid.uuid4().hex[:12]}"
    target = Path(tempfile.mkdtemp(dir=work, prefix="export-"))
    try:
        info = snapshots.stat(record.id)
        if info is None:
            raise InvalidArgument(f"container {record.id} has no filesystem")
        mounts = snapshots.mounts(record.id)
        mount_all(mounts, target)
        try:
            write_tree(target, out)
        finally:
            unmount(target)
    finally:
        with contextlib.suppress(OSError):
            target.rmdir()
        with contextlib.suppress(DockyardError):
            if snapshots.stat(key) is not None:
                snapshots.remove(key)


def import_rootfs(
    images: ImageService,
    source: BinaryIO,
    work_dir: Path,
    *,
    tag: str | None,
    changes: list[str],
    message: str = "",
    platform: Platform | None = None,
) -> Image:
    """``docker import``: a rootfs tarball (any compression) as a one-layer image.

    The tar is applied with the same hostile-input checks as any layer, into a scratch
    directory that is removed afterwards whatever happens. ``message`` is the image's and
    its history entry's comment; ``platform`` its ``os``/``architecture``/``variant`` (None:
    the engine's own platform).
    """
    from dockyard.archive import apply_layer

    work_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=work_dir, prefix="import-"))
    try:
        diff = scratch / "diff"
        diff.mkdir()
        apply_layer(source, diff)
        config = apply_changes({}, changes)
        comment = message or "Imported from -"
        history = {"created_by": "", "comment": comment}
        extra: dict[str, Any] = {"comment": comment}
        if platform is not None:
            extra["architecture"] = platform.architecture
            extra["os"] = platform.os
            if platform.variant:
                extra["variant"] = platform.variant
        return images.commit(None, diff, config, history, tags=[tag] if tag else (), extra=extra)
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
