"""Images through the daemon: images, inspect, tag, rmi, save, load — both CLIs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.clients import runner
from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration


@pytest.fixture(params=["dockyard", "docker"])
def run(request: pytest.FixtureRequest, daemon: TestDaemon):  # type: ignore[no-untyped-def]
    return runner(daemon, request.param)


def test_images_lists_busybox(run) -> None:  # type: ignore[no-untyped-def]
    r = run("images")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.match(r"REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE", lines[0])
    assert any(re.match(r"busybox\s+latest\s+[0-9a-f]{12}\s", line) for line in lines[1:])


def test_tag_inspect_rmi(run, daemon: TestDaemon) -> None:  # type: ignore[no-untyped-def]
    tag = f"127.0.0.1:5999/mine/bb:t{id(run) % 1000}"
    assert run("tag", "busybox", tag).returncode == 0
    try:
        inspected = json.loads(run("image", "inspect", tag).stdout)[0]
        original = json.loads(run("image", "inspect", "busybox").stdout)[0]
        assert inspected["Id"] == original["Id"]
        assert tag in inspected["RepoTags"] and "busybox:latest" in inspected["RepoTags"]
        assert run("inspect", "--format", "{{.Id}}", tag).stdout.strip() == original["Id"]
    finally:
        rmi = run("rmi", tag)
    assert rmi.returncode == 0, rmi.stderr
    assert f"Untagged: {tag}" in rmi.stdout
    assert "Deleted" not in rmi.stdout  # busybox:latest still references it
    assert daemon.request("GET", "/images/busybox/json")[0] == 200


def test_rmi_in_use_conflicts(run, daemon: TestDaemon) -> None:  # type: ignore[no-untyped-def]
    tag = f"inuse{id(run) % 1000}:1"
    run("tag", "busybox", tag)
    cid = run("create", tag, "true").stdout.strip()
    try:
        r = run("rmi", tag)
        assert r.returncode == 1
        assert (
            "(must force) - container" in r.stderr and "is using its referenced image" in r.stderr
        )
    finally:
        run("rm", "-f", cid)
        run("rmi", tag)


def test_save_load_round_trip(run, daemon: TestDaemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tag = f"roundtrip{id(run) % 1000}:v1"
    run("tag", "busybox", tag)
    image_id = json.loads(run("image", "inspect", tag).stdout)[0]["Id"]
    out = tmp_path / "saved.tar"
    assert run("save", "-o", str(out), tag).returncode == 0
    assert out.stat().st_size > 100_000
    assert run("rmi", tag).returncode == 0
    loaded = run("load", "-i", str(out))
    assert loaded.returncode == 0, loaded.stderr
    assert f"Loaded image: {tag}" in loaded.stdout
    assert json.loads(run("image", "inspect", tag).stdout)[0]["Id"] == image_id
    assert run("run", "--rm", tag, "echo", "from-loaded").stdout == "from-loaded\n"
    run("rmi", tag)


def test_load_oci_layout_and_multi_layer(
    daemon: TestDaemon, test_images: Path, tmp_path: Path
) -> None:
    import tarfile

    layout = tmp_path / "bbm-oci.tar"
    with tarfile.open(layout, "w") as tar:
        for entry in sorted((test_images / "busybox-multi").rglob("*")):
            tar.add(
                entry,
                arcname=str(entry.relative_to(test_images / "busybox-multi")),
                recursive=False,
            )
    r = daemon.cli("load", "-i", str(layout))
    assert r.returncode == 0, r.stderr
    assert "busybox-multi" in r.stdout
    out = daemon.cli("run", "--rm", "busybox-multi", "sh", "-c", "ls /data | sort | tr '\\n' ' '")
    assert out.returncode == 0, out.stderr
    assert "a" in out.stdout.split()
    daemon.request("DELETE", "/images/busybox-multi?force=1")
