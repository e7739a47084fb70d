"""debian:bookworm-slim and nginx:latest from the Debian mirror (root: debootstrap, chroot).

The layer cache is the system one (/var/cache/dockyard-base), so only the first run on a
machine pays for debootstrap; archives and unpacked trees go to tmp_path and are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.baseimages import BuildOptions, build
from dockyard.baseimages.workspace import mounts_below, remove_tree

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("debootstrap") is None, reason="needs debootstrap"),
]

CACHE = Path("/var/cache/dockyard-base")


def _load(archive: Path) -> tuple[dict[str, object], list[bytes]]:
    """(config, [layer tar bytes]) of a docker-archive, checking diff IDs on the way."""
    with tarfile.open(archive) as tar:

        def read(name: str) -> bytes:
            f = tar.extractfile(name)
            assert f is not None
            return f.read()

        (manifest,) = json.loads(read("manifest.json"))
        config = json.loads(read(manifest["Config"]))
        layers = [read(name) for name in manifest["Layers"]]
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    assert config["rootfs"]["diff_ids"] == diff_ids
    return config, layers


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    out = tmp_path_factory.mktemp("base-images")
    try:
        built = build(BuildOptions(out=out, cache_dir=CACHE, only=("debian", "nginx")))
        yield {image.name: image.path for image in built}
    finally:
        shutil.rmtree(out)  # ~170 MB of archives: not left for pytest's tmp retention


@pytest.fixture
def rootfs(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "rootfs"
    yield root
    remove_tree(root)


def test_debian_layer(images: dict[str, Path]) -> None:
    config, (layer,) = _load(images["debian"])
    assert config["config"] == {  # type: ignore[comparison-overlap]
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["bash"],
    }
    assert 40e6 < len(layer) < 150e6, f"debian layer is {len(layer) / 1e6:.0f} MB"
    tar_path = images["debian"].with_suffix(".layer.tar")
    tar_path.write_bytes(layer)
    try:
        with tarfile.open(tar_path) as tar:
            members = {m.name: m for m in tar.getmembers()}
            os_release = tar.extractfile("usr/lib/os-release")
            assert os_release is not None
            assert "VERSION_CODENAME=bookworm" in os_release.read().decode()
    finally:
        tar_path.unlink()
    assert members["bin"].issym() and members["bin"].linkname == "usr/bin"
    assert members["usr/bin/bash"].isfile() and members["usr/bin/bash"].mode & 0o111
    assert members["etc/os-release"].issym()
    docs = [n for n, m in members.items() if n.startswith("usr/share/doc/") and not m.isdir()]
    assert docs and all(n.endswith("/copyright") for n in docs), "only licences stay in doc"
    assert not [n for n in members if n.startswith(("usr/share/man/", "usr/share/locale/"))]
    assert not [n for n in members if n.startswith(("var/lib/apt/lists/", "dev/", "proc/"))]
    assert not [n for n in members if n.endswith(".deb") or n.startswith("var/cache/apt/pkg")]
    for gone in ("etc/hostname", "etc/resolv.conf", "var/log/bootstrap.log"):
        assert gone not in members
    assert all(m.size == 0 for n, m in members.items() if n.startswith("var/log/") and m.isfile())
    assert not [m.name for m in members.values() if m.ischr() or m.isblk()]


def test_debian_rootfs_runs_bash(images: dict[str, Path], rootfs: Path) -> None:
    _, (layer,) = _load(images["debian"])
    rootfs.mkdir()
    layer_tar = rootfs.parent / "layer.tar"
    layer_tar.write_bytes(layer)
    try:
        with tarfile.open(layer_tar) as tar:
            tar.extractall(rootfs, numeric_owner=True, filter="fully_trusted")
    finally:
        layer_tar.unlink()
    result = subprocess.run(
        ["chroot", str(rootfs), "bash", "-c", "echo ok"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr


def test_nginx_image(images: dict[str, Path]) -> None:
    config, layers = _load(images["nginx"])
    _, (debian_layer,) = _load(images["debian"])
    assert len(layers) == 2 and layers[0] == debian_layer
    inner = config["config"]
    assert inner == {  # type: ignore[comparison-overlap]
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": ["nginx", "-g", "daemon off;"],
        "ExposedPorts": {"80/tcp": {}},
        "StopSignal": "SIGQUIT",
    }
    nginx_tar = images["nginx"].with_suffix(".layer.tar")
    nginx_tar.write_bytes(layers[1])
    try:
        with tarfile.open(nginx_tar) as tar:
            members = {m.name: m for m in tar.getmembers()}
    finally:
        nginx_tar.unlink()
    assert members["usr/sbin/nginx"].isfile()
    assert members["var/log/nginx/access.log"].linkname == "/dev/stdout"
    assert members["var/log/nginx/error.log"].linkname == "/dev/stderr"
    assert "etc/resolv.conf" not in members
    assert not [n for n in members if n.startswith(("var/lib/apt/lists/", "dev/", "proc/"))]
    assert len(layers[1]) < 40e6, "the nginx layer holds the difference only"


def test_no_mounts_or_scratch_left(images: dict[str, Path]) -> None:
    assert mounts_below(CACHE) == []
    assert list((CACHE / "work").iterdir()) == []
