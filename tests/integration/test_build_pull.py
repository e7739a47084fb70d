"""A build whose base image is not in the store pulls it, as the legacy builder does."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.integration.daemon import TestDaemon
from tests.integration.registries import DOCKYARD_REGISTRY, Registry

pytestmark = pytest.mark.integration


def test_from_a_missing_image_pulls_it(daemon: TestDaemon, tmp_path: Path) -> None:
    if not DOCKYARD_REGISTRY.exists():
        pytest.skip("dockyard-registry is not installed")
    base = Path(tempfile.mkdtemp(prefix="dybp-", dir="/var/tmp"))
    registry = Registry("dockyard", base)
    registry.start()
    ref = f"{registry.host}/base/bb:v1"
    try:
        assert daemon.docker("tag", "busybox", ref).returncode == 0
        assert daemon.docker("push", ref).returncode == 0
        assert daemon.docker("rmi", ref).returncode == 0
        assert daemon.request("GET", f"/images/{ref}/json")[0] == 404
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(
            f'FROM {ref}\nRUN echo pulled-base > /p\nCMD ["cat", "/p"]\n'
        )
        for client in (daemon.docker, daemon.cli):
            status, body = daemon.request("DELETE", f"/images/{ref}?force=1")
            assert status in (200, 404), body
            r = client("build", "-t", "frompulled", str(ctx))
            assert r.returncode == 0, r.stderr
            assert "Pulling from base/bb" in r.stdout and "Downloaded newer image" in r.stdout, (
                r.stdout
            )
            assert daemon.request("GET", f"/images/{ref}/json")[0] == 200
            run = daemon.docker("run", "--rm", "frompulled")
            assert run.stdout == "pulled-base\n"
        (ctx / "Dockerfile.missing").write_text(f"FROM {registry.host}/no/such:1\n")
        missing = daemon.docker(
            "build", "-t", "nobase", "-f", str(ctx / "Dockerfile.missing"), str(ctx)
        )
        assert missing.returncode != 0
        assert "manifest unknown" in missing.stderr or "not found" in missing.stderr
        assert daemon.request("GET", "/images/nobase/json")[0] == 404
    finally:
        daemon.request("DELETE", "/images/frompulled?force=1")
        daemon.request("DELETE", f"/images/{ref}?force=1")
        registry.close()
        shutil.rmtree(base, ignore_errors=True)


def test_dockerfile_from_stdin_with_a_context_dir(daemon: TestDaemon, tmp_path: Path) -> None:
    """``docker build -f - DIR`` sends a context whose last member lacks padding (Go's tar)."""
    (tmp_path / "hello.txt").write_text("hi-from-context\n")
    dockerfile = b'FROM busybox\nCOPY hello.txt /h\nCMD ["cat", "/h"]\n'
    r = daemon.docker("build", "-t", "fromstdin", "-f", "-", str(tmp_path), input=dockerfile)
    assert r.returncode == 0, r.stderr
    try:
        assert daemon.docker("run", "--rm", "fromstdin").stdout == "hi-from-context\n"
    finally:
        daemon.request("DELETE", "/images/fromstdin?force=1")


def test_cache_from_limits_reuse_to_those_images(daemon: TestDaemon, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        f'FROM busybox\nRUN echo cache-from-{tmp_path.name} > /f\nCMD ["cat", "/f"]\n'
    )
    try:
        first = daemon.docker("build", "-t", "cfa", str(tmp_path))
        assert first.returncode == 0, first.stderr
        assert "Using cache" not in first.stdout
        same = daemon.docker("build", "--cache-from", "cfa", "-t", "cfb", str(tmp_path))
        assert same.returncode == 0, same.stderr
        assert same.stdout.count("Using cache") == 2
        other = daemon.docker("build", "--cache-from", "busybox", "-t", "cfc", str(tmp_path))
        assert other.returncode == 0, other.stderr
        assert "Using cache" not in other.stdout
        plain = daemon.docker("build", "-t", "cfd", str(tmp_path))
        assert plain.stdout.count("Using cache") == 2
    finally:
        for tag in ("cfa", "cfb", "cfc", "cfd"):
            daemon.request("DELETE", f"/images/{tag}?force=1")
