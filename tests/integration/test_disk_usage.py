"""``system df`` counts images, containers, volumes and build cache; ``builder prune`` and
``import`` — through the real docker CLI and the API."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import pytest

from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration


def test_system_df_counts_everything(fresh_daemon: TestDaemon, tmp_path: Path) -> None:
    d = fresh_daemon
    assert d.docker("volume", "create", "dfvol").returncode == 0
    cid = d.docker(
        "run",
        "-d",
        "-v",
        "dfvol:/data",
        "busybox",
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /data/f; sleep 300",
    ).stdout.strip()
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        'FROM busybox\nRUN echo built > /built\nCMD ["cat", "/built"]\n'
    )
    assert d.docker("build", "-q", "-t", "dfbuilt", str(ctx)).returncode == 0
    time.sleep(0.5)
    status, df = d.request("GET", "/system/df")
    assert status == 200
    assert df["LayersSize"] > 1_000_000
    tags = [t for image in df["Images"] for t in image["RepoTags"]]
    assert "busybox:latest" in tags and "dfbuilt:latest" in tags
    busybox = next(i for i in df["Images"] if "busybox:latest" in i["RepoTags"])
    built = next(i for i in df["Images"] if "dfbuilt:latest" in i["RepoTags"])
    assert busybox["Containers"] >= 1
    # dfbuilt is busybox plus one layer: busybox's layers are shared by both (the new layer
    # is shared too, with the build's intermediate image of the CMD step).
    assert busybox["SharedSize"] == busybox["Size"] > 0
    assert busybox["Size"] <= built["SharedSize"] <= built["Size"]
    assert any(c["Id"] == cid and "SizeRw" in c for c in df["Containers"])
    volume = next(v for v in df["Volumes"] if v["Name"] == "dfvol")
    assert volume["UsageData"]["Size"] >= 300_000 and volume["UsageData"]["RefCount"] == 1
    assert len(df["BuildCache"]) >= 1
    table = d.docker("system", "df")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:2] == ["TYPE", "TOTAL"]
    assert any(line.startswith("Local Volumes") for line in lines)
    assert any(line.startswith("Build Cache") for line in lines)
    pruned = d.docker("builder", "prune", "-f")
    assert pruned.returncode == 0, pruned.stderr
    assert d.request("GET", "/system/df")[1]["BuildCache"] == []
    d.docker("rm", "-f", cid)


def test_import_a_rootfs_tarball(daemon: TestDaemon, tmp_path: Path) -> None:
    export = tmp_path / "rootfs.tar"
    cid = daemon.docker("create", "busybox", "true").stdout.strip()
    try:
        assert daemon.docker("export", "-o", str(export), cid).returncode == 0
    finally:
        daemon.docker("rm", "-f", cid)
    with tarfile.open(export) as tar:
        assert "bin/busybox" in tar.getnames()
    r = daemon.docker("import", "-c", 'CMD ["echo", "from-import"]', str(export), "imported:v1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("sha256:")
    run = daemon.docker("run", "--rm", "imported:v1")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "from-import\n"
    inspected = json.loads(daemon.docker("image", "inspect", "imported:v1").stdout)[0]
    assert inspected["Config"]["Cmd"] == ["echo", "from-import"]
    assert len(inspected["RootFS"]["Layers"]) == 1
    daemon.docker("rmi", "imported:v1")


def test_import_refuses_an_escaping_tarball(daemon: TestDaemon) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    before = daemon.request("GET", "/images/json")[1]
    status, body = daemon.request(
        "POST",
        "/images/create?fromSrc=-&repo=bad:1",
        raw=buf.getvalue(),
        headers={"Content-Type": "text/plain"},
    )
    assert status == 400, body
    assert daemon.request("GET", "/images/json")[1] == before
