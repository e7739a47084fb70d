"""busybox-multi, applied layer by layer and stacked with a real overlayfs mount (root).

The image comes from /work/shared/images/build-test-images (stdlib only, no root for
busybox images), built once into /var/cache/dockyard-test-images and reused.  Its
images.json carries an "expect" list -- files with contents, modes, owners and links,
absences caused by whiteouts and an opaque directory, exact directory listings -- that
a correct layer application must satisfy in the merged view.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.archive import LayerApplyResult, apply_layer
from tests.conftest import TEST_IMAGES, run_image_builder

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (overlay mount, mknod, chown)"),
]

IMAGES = TEST_IMAGES


def _summary_entry(out: Path, short: str) -> dict[str, Any] | None:
    try:
        summary = json.loads((out / "images.json").read_text())
    except (OSError, ValueError):
        return None
    for entry in summary.get("images", {}).values():
        if entry.get("short") == short:
            return dict(entry)
    return None


@pytest.fixture(scope="session")
def busybox_multi() -> dict[str, Any]:
    """images.json's entry for busybox-multi, with "layout" the OCI layout directory."""
    entry = _summary_entry(IMAGES, "busybox-multi")
    if entry is None or not (IMAGES / entry["oci_layout"] / "index.json").is_file():
        run_image_builder(IMAGES, timeout=600)
        entry = _summary_entry(IMAGES, "busybox-multi")
    assert entry is not None and "expect" in entry
    entry["layout"] = IMAGES / entry["oci_layout"]
    return entry


def _blob(layout: Path, digest: str) -> Path:
    algo, hexdigest = digest.split(":", 1)
    return layout / "blobs" / algo / hexdigest


def _json_blob(layout: Path, digest: str) -> dict[str, Any]:
    data = _blob(layout, digest).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return dict(json.loads(data))


@pytest.fixture(scope="module")
def image(busybox_multi: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, config) of busybox-multi from its OCI layout."""
    layout = busybox_multi["layout"]
    index = json.loads((layout / "index.json").read_text())
    (descriptor,) = index["manifests"]
    manifest = _json_blob(layout, descriptor["digest"])
    config = _json_blob(layout, manifest["config"]["digest"])
    return manifest, config


@pytest.fixture(scope="module")
def applied(
    busybox_multi: dict[str, Any],
    image: tuple[dict[str, Any], dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[tuple[Path, LayerApplyResult]]]:
    """Each layer unpacked into its own directory, bottom first."""
    manifest, _ = image
    base = tmp_path_factory.mktemp("busybox-multi-layers")
    out = []
    try:
        for i, layer in enumerate(manifest["layers"]):
            dest = base / f"layer{i}"
            dest.mkdir()
            with _blob(busybox_multi["layout"], layer["digest"]).open("rb") as src:
                out.append((dest, apply_layer(src, dest)))
        yield out
    finally:
        shutil.rmtree(base)


@pytest.fixture
def merged(applied: list[tuple[Path, LayerApplyResult]], tmp_path: Path) -> Iterator[Path]:
    """A read-only overlay of the layers (lowerdir=top:...:bottom), unmounted afterwards."""
    lowers = [str(dest) for dest, _ in reversed(applied)]
    assert not any(":" in p or "," in p for p in lowers)
    target = tmp_path / "merged"
    target.mkdir()
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", "ro,lowerdir=" + ":".join(lowers), target],
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield target
    finally:
        subprocess.run(["umount", target], check=True, capture_output=True, timeout=60)
    assert not os.path.ismount(target)


def test_diff_ids_match_the_image_config(
    applied: list[tuple[Path, LayerApplyResult]],
    image: tuple[dict[str, Any], dict[str, Any]],
    busybox_multi: dict[str, Any],
) -> None:
    _, config = image
    assert [r.diff_id for _, r in applied] == config["rootfs"]["diff_ids"]
    assert [r.diff_id for _, r in applied] == [la["diff_id"] for la in busybox_multi["layers"]]
    assert all(r.size > 0 for _, r in applied)
    assert applied[1][1].size > 1 << 20  # /data/a is 1 MiB


def test_each_layer_dir_holds_overlay_whiteouts(
    applied: list[tuple[Path, LayerApplyResult]],
) -> None:
    top = applied[-1][0]
    for name in ("data/b.txt", "data/gone"):
        st = os.lstat(top / name)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, name
    assert os.getxattr(top / "data/opaque", "trusted.overlay.opaque") == b"y"
    assert not any(n.startswith(".wh.") for _, _, files in os.walk(top) for n in files)
    assert (applied[1][0] / "data/opaque/old-1.txt").is_file()  # still in its own layer


def _check_file(root: Path, path: str, want: dict[str, Any]) -> list[str]:
    """Mismatches of one "files" item of the expect list; unknown keys are mismatches too."""
    full = root / path.lstrip("/")
    st = os.lstat(full)
    bad = []
    for key, value in want.items():
        if key == "sha256":
            ok = hashlib.sha256(full.read_bytes()).hexdigest() == value
        elif key == "size":
            ok = st.st_size == value
        elif key == "symlink":
            ok = stat.S_ISLNK(st.st_mode) and os.readlink(full) == value
        elif key == "hardlink_of":
            other = os.lstat(root / value.lstrip("/"))
            ok = (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino) and st.st_nlink > 1
        elif key == "content":
            ok = full.read_text() == value
        elif key == "mode":
            ok = stat.S_IMODE(st.st_mode) == int(value, 8)
        elif key == "uid":
            ok = st.st_uid == value
        elif key == "gid":
            ok = st.st_gid == value
        else:
            ok = False  # an expectation this test does not know how to check
        if not ok:
            bad.append(f"{path}: {key} (want {value!r})")
    return bad


def test_merged_view_matches_every_expectation(merged: Path, busybox_multi: dict[str, Any]) -> None:
    expect = busybox_multi["expect"]
    assert set(expect) == {"files", "absent", "dir_listing"}
    assert len(expect["files"]) >= 10 and expect["absent"] and expect["dir_listing"]
    bad: list[str] = []
    for path, want in expect["files"].items():
        bad += _check_file(merged, path, want)
    bad += [f"{p}: should be absent" for p in expect["absent"] if os.path.lexists(merged / p[1:])]
    for path, listing in expect["dir_listing"].items():
        got = sorted(os.listdir(merged / path.lstrip("/")))
        if got != listing:
            bad.append(f"{path}: lists {got}, want {listing}")
    assert bad == []


def test_busybox_runs_in_the_merged_tree(merged: Path) -> None:
    assert os.readlink(merged / "bin/sh") == "busybox"
    chroot = shutil.which("chroot")
    if chroot is None:
        pytest.skip("chroot not installed")
    result = subprocess.run(
        [chroot, merged, "/bin/sh", "-c", "cat /etc/motd; ls /data/opaque; ls -l /data/a"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/bin"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["layer 3", "new.txt"]
    assert " 2 root " in lines[2] and "1048576" in lines[2]  # hardlink count and size
