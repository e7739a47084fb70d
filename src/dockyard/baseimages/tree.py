"""Root file system trees on disk: scan, fingerprint, diff against a base, extract.

A derived layer (nginx over debian) is made the way `docker build` makes a RUN layer: run the
step in a copy of the base tree, then record only what changed. A change is found by content,
not by mtime, because dpkg rewrites files with identical content (and then must not produce a
layer entry) and keeps package mtimes (which says nothing about what the base had).

/dev, /proc and /sys are kept as empty directories: their contents belong to the runtime.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PSEUDO_DIRS", "Fingerprint", "diff", "extract", "fingerprint", "fingerprints", "scan"]

PSEUDO_DIRS = frozenset({"dev", "proc", "sys"})


def scan(root: Path) -> dict[str, os.stat_result]:
    """Relative path -> lstat of everything that may go into a layer (root itself excluded).

    Device nodes and sockets are left out; the pseudo file systems are kept empty.
    """
    found: dict[str, os.stat_result] = {}
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        with os.scandir(root / rel_dir if rel_dir else root) as it:
            for entry in it:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                st = entry.stat(follow_symlinks=False)
                mode = st.st_mode
                if stat.S_ISDIR(mode):
                    found[rel] = st
                    if rel not in PSEUDO_DIRS:
                        pending.append(rel)
                elif stat.S_ISREG(mode) or stat.S_ISLNK(mode) or stat.S_ISFIFO(mode):
                    found[rel] = st
    return found


@dataclass(frozen=True)
class Fingerprint:
    """What makes two versions of a path the same object in a layer."""

    kind: str
    mode: int
    uid: int
    gid: int
    content: str  # sha256 of a file, target of a symlink, "" otherwise


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(root: Path, rel: str, st: os.stat_result) -> Fingerprint:
    mode = st.st_mode
    full = root / rel
    if stat.S_ISREG(mode):
        kind, content = "file", _sha256_file(full)
    elif stat.S_ISLNK(mode):
        kind, content = "symlink", os.readlink(full)
    elif stat.S_ISDIR(mode):
        kind, content = "dir", ""
    else:
        kind, content = "fifo", ""
    return Fingerprint(kind, stat.S_IMODE(mode), st.st_uid, st.st_gid, content)


def fingerprints(root: Path) -> dict[str, Fingerprint]:
    return {rel: fingerprint(root, rel, st) for rel, st in scan(root).items()}


def diff(base: dict[str, Fingerprint], root: Path) -> tuple[set[str], set[str]]:
    """Changes of the tree at `root` against `base` -> (paths to write, whiteout paths).

    Paths to write include the parent directories of every change, so that applying the layer
    into an empty directory (as overlay snapshotters do) keeps their modes and owners.
    Deleting a directory gives one whiteout for the directory, none for its contents.
    """
    current = scan(root)
    changed = {
        rel
        for rel, st in current.items()
        if (old := base.get(rel)) is None or fingerprint(root, rel, st) != old
    }
    whiteouts: set[str] = set()
    for rel in base:
        if rel in current:
            continue
        parent, _, name = rel.rpartition("/")
        if parent and (parent not in current or not stat.S_ISDIR(current[parent].st_mode)):
            continue  # the parent's own whiteout or replacement already hides it
        whiteouts.add(f"{parent}/.wh.{name}" if parent else f".wh.{name}")
    paths = set(changed)
    for rel in changed | whiteouts:
        parent = rel.rpartition("/")[0]
        while parent and parent not in paths:
            paths.add(parent)
            parent = parent.rpartition("/")[0]
    return paths, whiteouts


def extract(layer_tar: Path, root: Path) -> None:
    """Unpack one of our own layer tars (trusted: we wrote it) with numeric owners."""
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(layer_tar, "r:") as tar:
        tar.extractall(root, numeric_owner=True, filter="fully_trusted")
