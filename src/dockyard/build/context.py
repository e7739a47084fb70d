"""The build context: a tar stream (plain, gzip, …) unpacked into a private directory.

Every member must stay inside the context root: a name or hard link that climbs out
(``../x``), or a write through a symlink that points out, is an ``InvalidArgument`` and
nothing is kept. Symlinks themselves are kept as they are (COPY copies links, not their
targets); what they point at is resolved later inside the root only.
"""

from __future__ import annotations

import posixpath
import shutil
import tarfile
from pathlib import Path
from typing import BinaryIO

from dockyard.archive import open_decompressed
from dockyard.errors import InvalidArgument

__all__ = ["extract_context"]


def _check_name(name: str) -> None:
    cleaned = posixpath.normpath("/" + name.lstrip("/"))
    rel = posixpath.normpath(name.lstrip("/")) if name.strip("/") else "."
    if rel == ".." or rel.startswith("../") or not cleaned.startswith("/"):
        raise InvalidArgument(f'build context path "{name}" is outside of the context')


def extract_context(src: BinaryIO, dest: Path) -> None:
    """Unpack the context tar ``src`` into the existing empty directory ``dest``.

    ``InvalidArgument`` for a corrupt archive or a path escaping the root; ``dest`` is
    emptied again on failure."""
    try:
        with open_decompressed(src) as plain, tarfile.open(fileobj=plain, mode="r|") as tar:
            for member in tar:
                _check_name(member.name)
                if member.islnk():
                    _check_name(member.linkname)
                try:
                    tar.extract(member, dest, filter="tar")
                except tarfile.FilterError as exc:
                    raise InvalidArgument(
                        f'build context path "{member.name}" is outside of the context: {exc}'
                    ) from None
    except (tarfile.TarError, EOFError) as exc:
        _empty(dest)
        raise InvalidArgument(f"invalid build context: {exc}") from None
    except BaseException:
        _empty(dest)
        raise


def _empty(dest: Path) -> None:
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
