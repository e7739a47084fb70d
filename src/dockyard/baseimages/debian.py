"""debian:bookworm-slim from the configured Debian mirror, with debootstrap.

Users have no internet, only the apt mirror the machine already uses, so the mirror defaults
to the first Debian URI in the apt sources. The result is slimmed the way the official image
is (docs, man pages, locales, apt lists and caches removed; dpkg told to keep them out of
later installs too) and cleaned of what makes two builds differ: logs, host files copied in by
debootstrap (hostname, resolv.conf), caches and password-change dates.

debootstrap runs in private mount and PID namespaces (`unshare --mount --pid --fork
--kill-child`): the /proc and /sys it mounts in the target disappear with it, and interrupting
the build kills every process it started.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from pathlib import Path

from dockyard.errors import SystemError

from .cache import Layer, LayerCache
from .dockerarchive import History, ImagePlan
from .host import BUILD_PATH, require_root_tools, run_logged
from .tarlayer import LayerWriter, write_tree
from .tree import scan
from .workspace import mounts_below

__all__ = [
    "DEFAULT_MIRROR",
    "SUITE",
    "clean_rootfs",
    "debian_layer",
    "debian_plan",
    "detect_mirror",
]

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# Directories emptied like the official slim image; copyright files stay (licences).
SLIM_DIRS = (
    "usr/share/doc",
    "usr/share/groff",
    "usr/share/info",
    "usr/share/linda",
    "usr/share/lintian/overrides",
    "usr/share/locale",
    "usr/share/man",
)

APT_DPKG_CONFIG = {
    "etc/apt/apt.conf.d/docker-autoremove-suggests": (
        'Apt::AutoRemove::SuggestsImportant "false";\n'
    ),
    "etc/apt/apt.conf.d/docker-clean": 'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n',
    "etc/apt/apt.conf.d/docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "etc/apt/apt.conf.d/docker-no-languages": 'Acquire::Languages "none";\n',
    "etc/dpkg/dpkg.cfg.d/docker": "".join(f"path-exclude /{d}/*\n" for d in SLIM_DIRS)
    + "path-include /usr/share/doc/*/copyright\n",
}
# Package scripts must not start services while an image is built (docker's mkimage did this).
POLICY_RC_D = "#!/bin/sh\nexit 101\n"

# Build-time noise: files whose content depends on the build host or the build time.
NOISE = (
    "etc/hostname",
    "etc/resolv.conf",
    "etc/machine-id",
    "var/log/bootstrap.log",
    "var/cache/ldconfig/aux-cache",
)
NOISE_GLOBS = (
    "var/cache/apt/*.bin",
    "var/cache/apt/archives/*.deb",
    "var/cache/apt/archives/partial/*",
    "var/lib/apt/lists/*",
    "var/cache/debconf/*-old",
    "var/lib/dpkg/*-old",
    "tmp/*",
    "var/tmp/*",
    "root/.*_history",
)


def _sources_entries(text: str, deb822: bool) -> list[tuple[str, list[str]]]:
    """(URI, suites) of every enabled `deb` source in a sources file."""
    found: list[tuple[str, list[str]]] = []
    if not deb822:
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if not words or words[0] != "deb":
                continue
            words = words[1:]
            if words and words[0].startswith("["):
                while words and not words[0].endswith("]"):
                    words.pop(0)
                words = words[1:]
            if len(words) >= 2:
                found.append((words[0], [words[1]]))
        return found
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        last = ""
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and last:
                fields[last] += " " + line.strip()
            elif ":" in line:
                name, value = line.split(":", 1)
                last = name.strip().lower()
                fields[last] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
            found += [(uri, fields.get("suites", "").split()) for uri in fields["uris"].split()]
    return found


def detect_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """First Debian archive URI apt uses (preferring one that serves bookworm)."""
    entries: list[tuple[str, list[str]]] = []
    files = [(apt_dir / "sources.list", False)]
    files += [(p, False) for p in sorted((apt_dir / "sources.list.d").glob("*.list"))]
    files += [(p, True) for p in sorted((apt_dir / "sources.list.d").glob("*.sources"))]
    for path, deb822 in files:
        try:
            entries += _sources_entries(path.read_text(), deb822)
        except (OSError, KeyError):
            continue
    archive = [
        (uri.rstrip("/"), suites)
        for uri, suites in entries
        if uri.startswith(("http://", "https://", "file:/"))
        and "security" not in uri
        and "ports" not in uri
    ]
    for uri, suites in archive:
        if SUITE in suites:
            return uri
    return archive[0][0] if archive else DEFAULT_MIRROR


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def slim(root: Path) -> None:
    """Empty the SLIM_DIRS, keeping usr/share/doc/<package>/copyright."""
    for rel in SLIM_DIRS:
        top = root / rel
        if not top.is_dir():
            continue
        for child in top.iterdir():
            if rel == "usr/share/doc" and child.is_dir() and not child.is_symlink():
                for item in child.iterdir():
                    if item.name != "copyright" or not item.is_file() or item.is_symlink():
                        _remove(item)
                if not any(child.iterdir()):
                    child.rmdir()
            else:
                _remove(child)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.write_text(text)
    os.chown(path, 0, 0)
    os.chmod(path, mode)


def _pin_shadow_dates(root: Path, epoch: int) -> None:
    """`passwd` records today as the last password change: use the build epoch's day."""
    day = str(epoch // 86400)
    for rel in ("etc/shadow", "etc/shadow-"):
        path = root / rel
        if path.is_symlink() or not path.is_file():
            continue
        lines = []
        for line in path.read_text().splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit():
                fields[2] = day
            lines.append(":".join(fields))
        mode = path.stat().st_mode & 0o7777
        path.write_text("".join(f"{line}\n" for line in lines))
        os.chmod(path, mode)


def clean_rootfs(root: Path, epoch: int) -> None:
    """Remove caches, logs and host-specific files so that layers are small and repeatable."""
    for rel in NOISE:
        (root / rel).unlink(missing_ok=True)
    for pattern in NOISE_GLOBS:
        parent, _, name_glob = pattern.rpartition("/")
        try:
            names = os.listdir(root / parent)
        except OSError:
            continue
        for name in fnmatch.filter(names, name_glob):
            _remove(root / parent / name)
    for dirpath, _, filenames in os.walk(root / "var/log"):
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink() or not path.is_file():
                continue
            if name.endswith((".gz", ".xz")):
                path.unlink()
            elif path.stat().st_size:
                os.truncate(path, 0)
    _pin_shadow_dates(root, epoch)


def debian_layer(cache: LayerCache, mirror: str) -> Layer:
    inputs = {"kind": "debian", "suite": SUITE, "variant": "minbase", "mirror": mirror}

    def step(scratch: Path, writer: LayerWriter) -> str:
        require_root_tools("debian", ["debootstrap", "unshare", "chroot"])
        root = scratch / "rootfs"
        cache.debs.mkdir(parents=True, exist_ok=True)
        argv = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork"]
        argv += ["--kill-child", "--mount-proc", "--", "debootstrap", "--variant=minbase"]
        argv += [f"--cache-dir={cache.debs.resolve()}", SUITE, str(root), mirror]
        log = cache.logs / "debian.log"
        log.unlink(missing_ok=True)
        run_logged(argv, log, "debootstrap", timeout=3600)
        if mounts_below(root):
            raise SystemError(f"debootstrap left mounts below {root}")
        _remove(root / "debootstrap")
        slim(root)
        for rel, text in APT_DPKG_CONFIG.items():
            _write(root / rel, text)
        _write(root / "usr/sbin/policy-rc.d", POLICY_RC_D, 0o755)
        clean_rootfs(root, cache.epoch)
        write_tree(writer, root, scan(root))
        return f"debootstrap --variant=minbase {SUITE} / {mirror} # slimmed"

    return cache.get_or_build("debian", inputs, step)


def debian_plan(cache: LayerCache, mirror: str) -> ImagePlan:
    layer = debian_layer(cache, mirror)
    return ImagePlan(
        repo="debian",
        tag=f"{SUITE}-slim",
        layers=(layer,),
        history=(History(layer.created_by), History('CMD ["bash"]', empty_layer=True)),
        config={"Env": [f"PATH={BUILD_PATH}"], "Cmd": ["bash"]},
    )
