"""Layers made by running a script over a base layer (nginx over debian), like a RUN step.

The base layer is unpacked into a scratch directory, fingerprinted, and the script runs there
in a chroot inside private mount and PID namespaces with its own /proc; `--kill-child` ends
every process (a daemon a package script might start included) when the step ends or fails.
The new layer is the difference to the base: new and changed paths, and OCI whiteouts
(`.wh.<name>`) for deleted ones.

The chroot gets the few device nodes apt and maintainer scripts use, created in the scratch
tree (the diff never looks inside /dev), and the host's resolv.conf so that apt reaches the
same mirror the base was built from; that file is removed again before the diff.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

from .cache import Layer, LayerCache
from .debian import clean_rootfs, debian_plan
from .dockerarchive import History, ImagePlan
from .host import require_root_tools, run_logged
from .tarlayer import LayerWriter, write_tree
from .tree import diff, extract, fingerprints

__all__ = ["NGINX_SCRIPT", "derived_layer", "nginx_plan"]

_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9))
_DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
)

NGINX_SCRIPT = """\
apt-get update
apt-get install -y --no-install-recommends nginx
apt-get clean
rm -rf /var/lib/apt/lists/*
ln -sf /dev/stdout /var/log/nginx/access.log
ln -sf /dev/stderr /var/log/nginx/error.log
nginx -t
nginx -v
rm -f /run/nginx.pid
"""


def _prepare_chroot(root: Path) -> None:
    dev = root / "dev"
    for name, major, minor in _DEVICES:
        os.mknod(dev / name, stat.S_IFCHR | 0o666, os.makedev(major, minor))
        os.chmod(dev / name, 0o666)
    for name, target in _DEV_LINKS:
        os.symlink(target, dev / name)
    for name in ("pts", "shm"):
        (dev / name).mkdir()
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    if Path("/etc/resolv.conf").exists():
        shutil.copyfile("/etc/resolv.conf", resolv)


def derived_layer(
    cache: LayerCache, label: str, base: Layer, packages: Sequence[str], script: str, why: str
) -> Layer:
    """The layer `script` adds to `base` (cached on base diff ID, packages and script)."""
    inputs = {"kind": "derived", "base": base.diff_id, "packages": list(packages)}
    inputs |= {"script": script}

    def step(scratch: Path, writer: LayerWriter) -> str:
        require_root_tools(label, ["unshare", "chroot"])
        root = scratch / "rootfs"
        extract(base.path, root)
        before = fingerprints(root)
        _prepare_chroot(root)
        argv = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork"]
        argv += ["--kill-child", f"--mount-proc={root / 'proc'}", "--"]
        argv += ["chroot", str(root), "/bin/sh", "-ec", script]
        log = cache.logs / f"{label}.log"
        log.unlink(missing_ok=True)
        run_logged(argv, log, f"{label}: {why}", timeout=3600)
        (root / "etc/resolv.conf").unlink(missing_ok=True)
        clean_rootfs(root, cache.epoch)
        paths, whiteouts = diff(before, root)
        write_tree(writer, root, paths, whiteouts)
        return why

    return cache.get_or_build(label, inputs, step)


def nginx_plan(cache: LayerCache, mirror: str) -> ImagePlan:
    base = debian_plan(cache, mirror)
    layer = derived_layer(
        cache,
        "nginx",
        base.layers[0],
        ["nginx"],
        NGINX_SCRIPT,
        "RUN apt-get install -y --no-install-recommends nginx"
        " && ln -sf /dev/stdout /var/log/nginx/access.log"
        " && ln -sf /dev/stderr /var/log/nginx/error.log",
    )
    cmd = ["nginx", "-g", "daemon off;"]
    return ImagePlan(
        repo="nginx",
        tag="latest",
        layers=(*base.layers, layer),
        history=(
            *base.history,
            History(layer.created_by),
            History("EXPOSE map[80/tcp:{}]", empty_layer=True),
            History("STOPSIGNAL SIGQUIT", empty_layer=True),
            History('CMD ["nginx","-g","daemon off;"]', empty_layer=True),
        ),
        config={
            "Env": base.config["Env"],
            "Cmd": cmd,
            "ExposedPorts": {"80/tcp": {}},
            "StopSignal": "SIGQUIT",
        },
    )
