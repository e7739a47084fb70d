"""``garbage-collect`` end to end, against dockyard-registry and the CNCF registry alike.

Two images that share their first layer are pushed with skopeo (busybox and busybox-multi of
the test images), one is deleted through the API, and the collector runs: dry first (it lists
what it would delete and deletes nothing), then for real (exactly the unshared blobs of the
deleted image go; the other image still pulls with the same digest).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.registry.interop_helpers import (
    KINDS,
    Clients,
    oci_layout_manifest,
    running_registry,
    sha256,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dy-gc-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _image(test_images: Path, short: str) -> dict[str, Any]:
    doc = json.loads((test_images / "images.json").read_text())
    found = next(v for v in doc["images"].values() if v["short"] == short)
    layout = test_images / found["oci_layout"]
    blobs = {f"sha256:{p.name}" for p in (layout / "blobs/sha256").iterdir()}
    return {**found, "layout": layout, "blobs": blobs}


@pytest.mark.parametrize("kind", KINDS)
def test_gc_removes_only_the_deleted_images_unshared_blobs(
    kind: str, workdir: Path, test_images: Path
) -> None:
    keep = _image(test_images, "busybox")
    drop = _image(test_images, "busybox-multi")
    shared = keep["blobs"] & drop["blobs"]
    assert shared, "the test images should share their base layer"
    clients = Clients()
    try:
        with running_registry(kind, workdir / "registry") as registry:
            host = registry.host
            keep_ref, drop_ref = f"docker://{host}/gc/keep:v1", f"docker://{host}/gc/drop:v1"
            clients.skopeo_copy(f"oci:{keep['layout']}:latest", keep_ref)
            clients.skopeo_copy(f"oci:{drop['layout']}:latest", drop_ref)
            assert registry.blobs() == keep["blobs"] | drop["blobs"]
            clients.skopeo("delete", "--tls-verify=false", drop_ref)

            # The registry stays up, idle, as distribution's docs allow for the filesystem.
            dry = subprocess.run(
                registry.gc_argv(dry_run=True), capture_output=True, text=True, timeout=60
            )
            assert dry.returncode == 0, dry.stderr
            unshared = drop["blobs"] - keep["blobs"]
            for digest in unshared:
                assert f"blob eligible for deletion: {digest}" in dry.stdout
            for digest in keep["blobs"]:
                assert f"eligible for deletion: {digest}" not in dry.stdout
            assert registry.blobs() == keep["blobs"] | drop["blobs"]

            real = subprocess.run(
                registry.gc_argv(dry_run=False), capture_output=True, text=True, timeout=60
            )
            assert real.returncode == 0, real.stderr
            assert registry.blobs() == keep["blobs"]
            # A collected blob is gone from the deleted image's repository, for clients.
            for digest in unshared:
                head = clients.curl("HEAD", registry.url(f"/v2/gc/drop/blobs/{digest}"))
                assert head.status == 404, digest
            layers = registry.root / "docker/registry/v2/repositories/gc/drop/_layers/sha256"
            linked = {f"sha256:{p.name}" for p in layers.iterdir()}
            if kind == "dockyard":
                # Difference: like distribution 3.x we also delete the repository's links to the
                # collected blobs (the shared layer's link stays). distribution 2.8 leaves them
                # on disk; harmless there too, since a link without data answers 404.
                assert linked <= shared
            else:
                assert linked == drop["blobs"] - {drop["manifest_digest"]}

            out = workdir / "pulled"
            clients.skopeo_copy(keep_ref, f"oci:{out}:latest")
            assert oci_layout_manifest(out) == keep["manifest_digest"]
            assert sha256(clients.raw_manifest(keep_ref)) == keep["manifest_digest"]
            gone = clients.skopeo("inspect", "--raw", "--tls-verify=false", drop_ref, check=False)
            assert gone.returncode != 0 and "manifest unknown" in gone.stderr
    finally:
        clients.close()
