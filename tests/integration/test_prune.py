"""``image prune`` and ``system prune`` on a real daemon, with our CLI, the docker CLI and the
SDK. Pruning is global, so every test that prunes gets a daemon of its own."""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import pytest

from tests.integration.clients import runner
from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration

_ID = re.compile(r"sha256:[0-9a-f]{64}")


@pytest.fixture(params=["dockyard", "docker"])
def which(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _build(d: TestDaemon, tmp: Path, tag: str, dockerfile: str) -> str:
    ctx = tmp / tag.replace(":", "_")
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    r = d.cli("build", "-q", "-t", tag, str(ctx))
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _image_ids(d: TestDaemon) -> set[str]:
    status, images = d.request("GET", "/images/json?all=1")
    assert status == 200
    return {i["Id"] for i in images}


def _exists(d: TestDaemon, name: str) -> bool:
    return d.request("GET", f"/images/{name}/json")[0] == 200


def _total(stdout: str) -> str:
    last = stdout.splitlines()[-1]
    assert last.startswith("Total reclaimed space: "), stdout
    return last.removeprefix("Total reclaimed space: ")


def test_image_prune_removes_dangling_images_only(
    fresh_daemon: TestDaemon, which: str, tmp_path: Path
) -> None:
    d, run = fresh_daemon, runner(fresh_daemon, which)
    old = _build(d, tmp_path, "pr:1", "FROM busybox\nRUN echo one > /one\n")
    new = _build(d, tmp_path, "pr:1", "FROM busybox\nRUN echo two > /two\n")
    assert old != new and old in _image_ids(d)
    # A three-step build: its RUN step is an untagged intermediate of the final image.
    final = _build(d, tmp_path, "pr:2", "FROM busybox\nRUN echo a > /a\nLABEL step=2\n")
    before = _image_ids(d)
    intermediates = before - {old, new, final, d.request("GET", "/images/busybox/json")[1]["Id"]}
    assert len(intermediates) == 1

    r = run("image", "prune", "-f")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Deleted Images:"
    assert f"deleted: {old}" in lines
    assert lines[-2] == "" and _total(r.stdout) not in ("0B", "")
    assert _image_ids(d) == before - {old}
    assert _exists(d, "pr:1") and _exists(d, "pr:2") and _exists(d, "busybox")
    # The intermediate stayed, so the build cache still works.
    again = d.cli("build", "-t", "pr:2", str(tmp_path / "pr_2"))
    assert again.returncode == 0 and "Using cache" in again.stdout, again.stdout

    r = run("image", "prune", "-f")
    assert r.stdout == "Total reclaimed space: 0B\n"

    # Without its child the intermediate is dangling too, and the image's layers go with it.
    assert d.cli("rmi", "pr:2").returncode == 0
    r = run("image", "prune", "--force")
    assert r.returncode == 0, r.stderr
    assert intermediates <= set(_ID.findall(r.stdout))
    assert _exists(d, "pr:1") and d.cli("run", "--rm", "pr:1", "cat", "/two").stdout == "two\n"


def test_image_prune_all_spares_images_in_use(fresh_daemon: TestDaemon, tmp_path: Path) -> None:
    d = fresh_daemon
    assert d.cli("tag", "busybox", "keep:1").returncode == 0
    assert d.cli("create", "--name", "user", "keep:1", "true").returncode == 0
    _build(d, tmp_path, "lab:1", "FROM busybox\nLABEL purpose=test\n")
    other = _build(d, tmp_path, "other:1", "FROM busybox\nLABEL purpose=other\nRUN echo > /o\n")

    # Images created now are not older than a day.
    r = d.docker("image", "prune", "-a", "-f", "--filter", "until=24h")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Total reclaimed space: 0B\n"

    r = d.docker("image", "prune", "-a", "-f", "--filter", "label=purpose=test")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Deleted Images:\nuntagged: lab:1\ndeleted: sha256:")
    # A config-only image shares every layer with busybox: nothing to reclaim.
    assert _total(r.stdout) == "0B"
    assert not _exists(d, "lab:1") and _exists(d, "other:1")

    r = d.cli("image", "prune", "-a", "-f", "--filter", "label!=purpose=other")
    assert r.stdout == "Total reclaimed space: 0B\n"

    r = d.cli("image", "prune", "-a", "-f")
    assert r.returncode == 0, r.stderr
    assert "untagged: other:1\n" in r.stdout and f"deleted: {other}\n" in r.stdout
    # The LABEL step it was built on went with it, and its own layer.
    assert len(_ID.findall(r.stdout)) >= 3 and _total(r.stdout) != "0B"
    # busybox and keep:1 are used by a (stopped) container: both names stay.
    assert _exists(d, "busybox") and _exists(d, "keep:1")
    assert d.cli("start", "-a", "user").returncode == 0


def test_prune_api_and_sdk(fresh_daemon: TestDaemon, tmp_path: Path) -> None:
    d = fresh_daemon
    query = urllib.parse.quote(json.dumps({"bogus": {"1": True}}))
    assert d.request("POST", f"/images/prune?filters={query}") == (
        400,
        {"message": "Invalid filter 'bogus'"},
    )
    query = urllib.parse.quote(json.dumps({"dangling": {"maybe": True}}))
    assert d.request("POST", f"/images/prune?filters={query}")[0] == 400
    assert d.request("POST", "/images/prune") == (
        200,
        {"ImagesDeleted": None, "SpaceReclaimed": 0},
    )

    docker = pytest.importorskip("docker")
    old = _build(d, tmp_path, "sdk:1", "FROM busybox\nRUN echo 1 > /f\n")
    _build(d, tmp_path, "sdk:1", "FROM busybox\nRUN echo 2 > /f\n")
    client = docker.DockerClient(base_url=d.host, version="1.44")
    try:
        report = client.images.prune(filters={"dangling": True})
        assert {"Deleted": old} in report["ImagesDeleted"]
        assert report["SpaceReclaimed"] > 0
    finally:
        client.close()


@pytest.mark.parametrize(
    "argv",
    [
        ("image", "prune"),
        ("image", "prune", "-a"),
        ("system", "prune"),
        ("system", "prune", "-a", "--volumes", "--filter", "label=a=b", "--filter", "label!=c"),
        ("system", "prune", "--filter", "until=10m"),
    ],
)
def test_prompts_match_docker(daemon: TestDaemon, argv: tuple[str, ...]) -> None:
    for answer in (b"n\n", b"yes\n", b""):
        ours, theirs = daemon.cli(*argv, input=answer), daemon.docker(*argv, input=answer)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout)
        assert ours.returncode == 0 and ours.stdout.endswith(
            "Are you sure you want to continue? [y/N] "
        )
    argv = ("system", "prune", "--volumes", "--filter", "until=1h")
    ours, theirs = daemon.cli(*argv), daemon.docker(*argv)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (1, "")
    assert (
        ours.stderr
        == theirs.stderr
        == 'ERROR: The "until" filter is not supported with "--volumes"\n'
    )


def test_system_prune(fresh_daemon: TestDaemon, which: str, tmp_path: Path) -> None:
    d, run = fresh_daemon, runner(fresh_daemon, which)
    stopped = run("run", "--name", "stopped", "busybox", "true")
    assert stopped.returncode == 0, stopped.stderr
    with_volume = d.cli("run", "--name", "withvol", "-v", "/data", "busybox", "true")
    assert with_volume.returncode == 0, with_volume.stderr
    volume = d.request("GET", "/containers/withvol/json")[1]["Mounts"][0]["Name"]
    alive = d.cli("run", "-d", "--name", "alive", "busybox", "sleep", "300").stdout.strip()
    assert d.cli("network", "create", "prn").returncode == 0
    old = _build(d, tmp_path, "sp:1", "FROM busybox\nRUN echo 1 > /f\n")
    _build(d, tmp_path, "sp:1", "FROM busybox\nRUN echo 2 > /f\n")
    ids = {
        name: d.request("GET", f"/containers/{name}/json")[1]["Id"]
        for name in ("stopped", "withvol")
    }

    r = run("system", "prune", "-f", "--volumes")
    assert r.returncode == 0, r.stderr
    sections = [block.splitlines() for block in r.stdout.split("\n\n")]
    titles = [lines[0] for lines in sections]
    assert titles == [
        "Deleted Containers:",
        "Deleted Networks:",
        "Deleted Volumes:",
        "Deleted Images:",
        "Deleted build cache objects:",
        f"Total reclaimed space: {_total(r.stdout)}",
    ]
    assert set(sections[0][1:]) == set(ids.values())
    assert sections[1][1:] == ["prn"]
    assert sections[2][1:] == [volume]
    assert f"deleted: {old}" in sections[3]
    assert _total(r.stdout) != "0B"
    assert d.request("GET", f"/containers/{alive}/json")[0] == 200
    assert _exists(d, "busybox") and _exists(d, "sp:1")
    assert d.request("GET", "/networks/bridge")[0] == 200

    assert d.cli("rm", "-f", alive).returncode == 0
    r = run("system", "prune", "-a", "-f")
    assert r.returncode == 0, r.stderr
    assert "untagged: busybox:latest\n" in r.stdout and "untagged: sp:1\n" in r.stdout
    assert _image_ids(d) == set()


def _cache_ids(d: TestDaemon) -> list[str]:
    status, df = d.request("GET", "/system/df")
    assert status == 200
    return [entry["ID"] for entry in df["BuildCache"] or []]


def test_builder_prune_filters_and_keep_storage(
    fresh_daemon: TestDaemon, which: str, tmp_path: Path
) -> None:
    d, run = fresh_daemon, runner(fresh_daemon, which)
    _build(d, tmp_path, "bc:1", "FROM busybox\nRUN echo a > /a\nENV X=1\n")
    ids = _cache_ids(d)
    assert len(ids) == 2, ids
    # everything is newer than an hour ago: an until filter keeps it all
    r = run("builder", "prune", "-f", "--filter", "until=1h")
    assert r.returncode == 0 and _total(r.stdout) == "0B", r.stderr
    assert _cache_ids(d) == ids
    r = run("builder", "prune", "-f", "--keep-storage", "1GB")
    assert r.returncode == 0 and _cache_ids(d) == ids  # the entries' own size (0) fits
    r = run("builder", "prune", "-f", "--filter", f"id={ids[0]}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == ["Deleted build cache objects:", ids[0]]
    assert _cache_ids(d) == ids[1:]
    r = run("builder", "prune", "-f", "--filter", "color=red")
    assert r.returncode == 1 and '"color" filter not supported' in r.stderr, r.stderr
    r = run("builder", "prune", "-f", "--filter", "id=a", "--filter", "id=b")
    assert r.returncode == 1 and "filters expect only one value" in r.stderr, r.stderr
    assert _cache_ids(d) == ids[1:]
    r = run("builder", "prune", "-a", "-f")
    assert r.returncode == 0 and _cache_ids(d) == []
    assert _exists(d, "bc:1")  # the images stay
