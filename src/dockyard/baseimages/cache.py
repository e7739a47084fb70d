"""Layer cache: a layer is rebuilt only when what it is built from changes.

Layout under the cache directory::

    lock                  flock held for a whole build (one builder per cache at a time)
    keys/<key>.json       inputs -> layer record (diff_id, size, created_by, inputs)
    layers/<hex>.tar      layer tars named by diff ID; ones no key refers to are pruned
    debs/                 debootstrap's downloaded .debs (--cache-dir), kept across rebuilds
    logs/<label>.log      output of the last build of each layer
    work/                 scratch space (same file system, so results are renamed in place)

The key is the sha256 of canonical JSON of the layer's inputs (the busybox binary's hash, or
suite + mirror + package list) plus SCRIPT_VERSION and the epoch. Bump SCRIPT_VERSION when a
build step changes what it produces. The Debian keys do not hash the mirror's contents (that
needs the network before we know whether we need it): `--rebuild` picks up new packages.

A cached layer is used only if its size and sha256 still match the record, so a truncated or
edited file in the cache is rebuilt instead of producing an image whose diff IDs lie.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import InvalidArgument

from .tarlayer import LayerWriter
from .workspace import remove_tree, workspace

__all__ = ["SCRIPT_VERSION", "BuildStep", "Layer", "LayerCache", "canonical_json"]

SCRIPT_VERSION = "1"


def canonical_json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Layer:
    """A finished layer tar in the cache."""

    path: Path
    diff_id: str
    size: int
    created_by: str
    cached: bool


BuildStep = Callable[[Path, LayerWriter], str]
"""Fill the writer using the scratch directory; return the history `created_by` text."""


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class LayerCache:
    def __init__(self, root: Path, epoch: int, rebuild: bool = False) -> None:
        self.root = root
        self.epoch = epoch
        self.rebuild = rebuild
        self.work = root / "work"
        self.logs = root / "logs"
        self.debs = root / "debs"
        self._keys = root / "keys"
        self._layers = root / "layers"
        self._this_run: dict[str, Layer] = {}  # so --rebuild builds a shared base only once

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cache for one build; scratch left by a killed build is removed first."""
        try:
            for d in (self.root, self.work, self.logs, self._keys, self._layers):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InvalidArgument(f"cannot use cache directory {self.root}: {e}") from e
        with open(self.root / "lock", "a+b") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"waiting for the lock on {self.root}", file=sys.stderr)
                fcntl.flock(lock, fcntl.LOCK_EX)
            for stale in self.work.iterdir():
                remove_tree(stale)
            yield

    def key(self, inputs: Mapping[str, object]) -> str:
        material = {**inputs, "script_version": SCRIPT_VERSION, "epoch": self.epoch}
        return hashlib.sha256(canonical_json(material)).hexdigest()

    def lookup(self, key: str) -> Layer | None:
        try:
            record = json.loads((self._keys / f"{key}.json").read_bytes())
            diff_id, size = str(record["diff_id"]), int(record["size"])
            created_by = str(record["created_by"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        path = self._layers / f"{diff_id.removeprefix('sha256:')}.tar"
        try:
            if path.stat().st_size != size or _sha256_file(path) != diff_id:
                return None
        except OSError:
            return None
        return Layer(path, diff_id, size, created_by, cached=True)

    def _remove_unreferenced_layers(self) -> None:
        """A rebuild (--rebuild, new packages) replaces a key's layer: drop the old tar."""
        referenced = set()
        for record_path in self._keys.glob("*.json"):
            try:
                diff_id = str(json.loads(record_path.read_bytes())["diff_id"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            referenced.add(f"{diff_id.removeprefix('sha256:')}.tar")
        for tar in self._layers.glob("*.tar"):
            if tar.name not in referenced:
                tar.unlink(missing_ok=True)

    def get_or_build(self, label: str, inputs: Mapping[str, object], step: BuildStep) -> Layer:
        """The cached layer for `inputs`, or build it with `step` and remember it."""
        key = self.key(inputs)
        if (layer := self._this_run.get(key)) is not None:
            return layer
        if not self.rebuild and (layer := self.lookup(key)) is not None:
            self._this_run[key] = layer
            return layer
        started = time.monotonic()
        with workspace(self.work, label) as scratch:
            with LayerWriter(scratch / "layer.tar", self.epoch) as writer:
                created_by = step(scratch, writer)
            path = self._layers / f"{writer.diff_id.removeprefix('sha256:')}.tar"
            os.replace(writer.path, path)
        record = {
            "diff_id": writer.diff_id,
            "size": writer.size,
            "entries": writer.entries,
            "created_by": created_by,
            "inputs": dict(inputs),
            "build_seconds": round(time.monotonic() - started, 2),
        }
        _write_atomic(self._keys / f"{key}.json", canonical_json(record))
        self._remove_unreferenced_layers()
        layer = Layer(path, writer.diff_id, writer.size, created_by, cached=False)
        self._this_run[key] = layer
        return layer
