"""busybox:latest from Debian's busybox-static, without root.

The layer is planned in memory (tarlayer.Entry) and written with tarfile, so no file in it has
to exist on disk with root ownership: the build runs as any user and in well under a second.
The only input is the busybox binary, so its sha256 is the cache key.

The binary must be static: the image has no libc, and a dynamic busybox would fail with a
confusing "no such file or directory" (the missing ELF interpreter) at `docker run`.
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
from pathlib import Path

from dockyard.errors import InvalidArgument, SystemError

from .cache import Layer, LayerCache
from .dockerarchive import History, ImagePlan
from .host import BUILD_PATH
from .tarlayer import Entry, LayerWriter, write_entries

__all__ = ["DEFAULT_BUSYBOX", "busybox_plan", "layer_entries"]

DEFAULT_BUSYBOX = Path("/bin/busybox")  # from the busybox-static package

_PT_INTERP = 3

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "nobody:x:65534:65534:nobody:/home:/bin/false\n"
)
GROUP = "root:x:0:\ndaemon:x:1:\nnobody:x:65534:\n"
SHADOW = "root:*::0:::::\ndaemon:*::0:::::\nnobody:*::0:::::\n"


def is_static_elf(data: bytes) -> bool:
    """True for an ELF executable without a PT_INTERP program header (no dynamic loader)."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return False
    endian = "<" if data[5] == 1 else ">"
    if data[4] == 2:  # ELFCLASS64
        (phoff,) = struct.unpack_from(endian + "Q", data, 32)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 54)
    else:
        (phoff,) = struct.unpack_from(endian + "I", data, 28)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 42)
    for i in range(phnum):
        (p_type,) = struct.unpack_from(endian + "I", data, phoff + i * phentsize)
        if p_type == _PT_INTERP:
            return False
    return True


def applet_paths(binary: Path) -> list[str]:
    """Install paths of every applet, from `busybox --list-full` (e.g. "usr/bin/[")."""
    try:
        out = subprocess.run(
            [str(binary), "--list-full"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise SystemError(f"{binary} --list-full failed: {e}") from e
    paths = {line.strip().lstrip("/") for line in out.splitlines() if line.strip()}
    paths.discard("bin/busybox")
    if "bin/sh" not in paths:
        raise SystemError(f"{binary} has no sh applet; cannot make a busybox image")
    return sorted(paths)


def layer_entries(binary_data: bytes, applets: list[str]) -> list[Entry]:
    dirs = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555}
    dirs |= {"root": 0o700, "sys": 0o555, "tmp": 0o1777, "usr": 0o755, "var": 0o755}
    for applet in applets:
        parent = applet.rpartition("/")[0]
        while parent:
            dirs.setdefault(parent, 0o755)
            parent = parent.rpartition("/")[0]
    entries = [Entry(path, "dir", mode) for path, mode in dirs.items()]
    entries.append(Entry("bin/busybox", "file", 0o755, data=binary_data))
    entries += [Entry(a, "symlink", 0o777, target="/bin/busybox") for a in applets]
    entries += [
        Entry("etc/passwd", "file", 0o644, data=PASSWD.encode()),
        Entry("etc/group", "file", 0o644, data=GROUP.encode()),
        Entry("etc/shadow", "file", 0o600, data=SHADOW.encode()),
        # Mount targets for the engine's files, present so that --read-only works too.
        Entry("etc/hosts", "file", 0o644),
        Entry("etc/hostname", "file", 0o644),
        Entry("etc/resolv.conf", "file", 0o644),
    ]
    return entries


def busybox_layer(cache: LayerCache, binary: Path) -> Layer:
    try:
        data = binary.read_bytes()
    except OSError as e:
        raise InvalidArgument(
            f"busybox binary {binary}: {e.strerror} (apt-get install busybox-static)"
        ) from e
    if not is_static_elf(data):
        raise InvalidArgument(
            f"{binary} is not a static ELF executable (apt-get install busybox-static)"
        )
    digest = hashlib.sha256(data).hexdigest()

    def step(scratch: Path, writer: LayerWriter) -> str:
        applets = applet_paths(binary)
        write_entries(writer, layer_entries(data, applets))
        return f"ADD busybox {digest[:12]} ({len(applets)} applets) / # dockyard-base-images"

    return cache.get_or_build("busybox", {"kind": "busybox", "busybox": digest}, step)


def busybox_plan(cache: LayerCache, binary: Path) -> ImagePlan:
    layer = busybox_layer(cache, binary)
    return ImagePlan(
        repo="busybox",
        tag="latest",
        layers=(layer,),
        history=(History(layer.created_by), History('CMD ["sh"]', empty_layer=True)),
        config={"Env": [f"PATH={BUILD_PATH}"], "Cmd": ["sh"]},
    )
