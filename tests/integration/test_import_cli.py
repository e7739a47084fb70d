"""``import``: a container exported with our CLI comes back as a one-layer image through our
CLI and the real docker CLI (file, stdin, ``-c``, ``-m``); bad input fails like docker's."""

from __future__ import annotations

import re
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.clients import runner
from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration

CLIENTS = ["dockyard", "docker"]
IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}\n")


@pytest.fixture(scope="module")
def rootfs(daemon: TestDaemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """busybox plus ``/marker``, exported with our CLI."""
    out = tmp_path_factory.mktemp("import") / "rootfs.tar"
    name = "imp-src"
    r = daemon.cli("run", "--name", name, "busybox", "sh", "-c", "echo marked > /marker")
    assert r.returncode == 0, r.stderr
    try:
        r = daemon.cli("export", "-o", str(out), name)
        assert r.returncode == 0, r.stderr
    finally:
        daemon.cli("rm", "-f", name)
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert "marker" in names and "bin/busybox" in names
    yield out


def _inspect(daemon: TestDaemon, name: str) -> dict[str, Any]:
    status, body = daemon.request("GET", f"/images/{name}/json")
    assert status == 200, body
    assert isinstance(body, dict)
    return body


def _image_ids(daemon: TestDaemon) -> list[str]:
    status, body = daemon.request("GET", "/images/json?all=1")
    assert status == 200, body
    return sorted(str(i["Id"]) for i in body)


def _leftovers(daemon: TestDaemon) -> list[str]:
    tmp = daemon.data_root / "tmp"
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("import-"))


@pytest.mark.parametrize("which", CLIENTS)
def test_import_file_with_change_and_message(daemon: TestDaemon, rootfs: Path, which: str) -> None:
    run = runner(daemon, which)
    tag = f"imp-file-{which}:v1"
    r = run(
        "import",
        "-c",
        'CMD ["/bin/echo","hi"]',
        "-m",
        f"imported by {which}",
        "--platform",
        "linux/amd64",
        str(rootfs),
        tag,
    )
    try:
        assert r.returncode == 0, r.stderr
        assert IMAGE_ID.fullmatch(r.stdout), r.stdout
        assert r.stderr == ""
        image = _inspect(daemon, tag)
        assert image["Id"] == r.stdout.strip()
        assert image["Config"]["Cmd"] == ["/bin/echo", "hi"]
        assert len(image["RootFS"]["Layers"]) == 1
        status, history = daemon.request("GET", f"/images/{tag}/history")
        assert status == 200, history
        assert history[0]["Comment"] == f"imported by {which}"
        out = run("run", "--rm", tag)
        assert (out.returncode, out.stdout) == (0, "hi\n"), out.stderr
        out = run("run", "--rm", tag, "cat", "/marker")
        assert (out.returncode, out.stdout) == (0, "marked\n"), out.stderr
    finally:
        daemon.cli("rmi", tag)


@pytest.mark.parametrize("which", CLIENTS)
def test_import_from_stdin(daemon: TestDaemon, rootfs: Path, which: str) -> None:
    run = runner(daemon, which)
    tag = f"imp-stdin-{which}"
    r = run("image", "import", "-c", "ENV WHO=stdin", "-", tag, input=rootfs.read_bytes())
    try:
        assert r.returncode == 0, r.stderr
        assert IMAGE_ID.fullmatch(r.stdout), r.stdout
        image = _inspect(daemon, f"{tag}:latest")
        assert image["Id"] == r.stdout.strip()
        assert "WHO=stdin" in image["Config"]["Env"]
        out = run("run", "--rm", tag, "sh", "-c", 'echo "$WHO"; cat /marker')
        assert (out.returncode, out.stdout) == (0, "stdin\nmarked\n"), out.stderr
    finally:
        daemon.cli("rmi", tag)


@pytest.mark.parametrize("which", CLIENTS)
def test_import_without_a_name_prints_the_id(daemon: TestDaemon, rootfs: Path, which: str) -> None:
    r = runner(daemon, which)("import", str(rootfs))
    assert r.returncode == 0, r.stderr
    assert IMAGE_ID.fullmatch(r.stdout), r.stdout
    image_id = r.stdout.strip()
    try:
        assert _inspect(daemon, image_id)["RepoTags"] == []
    finally:
        daemon.cli("rmi", image_id)


def test_import_rejects_a_non_tar_file(daemon: TestDaemon, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("this is not a tar archive\n" * 40)
    before = _image_ids(daemon)
    results = {
        which: runner(daemon, which)("import", str(bogus), "imp-bad:v1") for which in CLIENTS
    }
    for which, r in results.items():
        assert r.returncode == 1, (which, r.stdout, r.stderr)
        assert r.stdout == "", (which, r.stdout)
        assert r.stderr.startswith("Error response from daemon: "), (which, r.stderr)
        assert "tar" in r.stderr, (which, r.stderr)
    assert results["dockyard"].stderr == results["docker"].stderr
    assert _image_ids(daemon) == before
    assert daemon.request("GET", "/images/imp-bad:v1/json")[0] == 404
    assert _leftovers(daemon) == []


@pytest.mark.parametrize("which", CLIENTS)
def test_import_local_errors_match_docker(daemon: TestDaemon, tmp_path: Path, which: str) -> None:
    run = runner(daemon, which)
    prog = "dockyard" if which == "dockyard" else "docker"
    before = _image_ids(daemon)
    missing = tmp_path / "missing.tar"
    r = run("import", str(missing))
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"open {missing}: no such file or directory\n"
    r = run("import", str(missing), "Bad:Name")  # the file is opened first
    assert r.stderr == f"open {missing}: no such file or directory\n"
    r = run("import", "/dev/null", "Bad:Name")
    assert r.returncode == 1
    assert r.stderr == (
        "invalid reference format: repository name (library/Bad) must be lowercase\n"
    )
    r = run("import")
    assert r.returncode == 1
    assert r.stderr.startswith(f"{prog}: '{prog} import' requires at least 1 argument\n")
    assert _image_ids(daemon) == before


def test_import_from_an_unreachable_url_fails_like_docker(daemon: TestDaemon) -> None:
    """The CLI sends ``fromSrc=URL`` without a body and the daemon fetches it (see
    test_remote_sources.py); a closed loopback port is Go's ``connection refused``."""
    before = _image_ids(daemon)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/rootfs.tar"
    results = {which: runner(daemon, which)("import", url, "imp-url") for which in CLIENTS}
    for which, r in results.items():
        assert (r.returncode, r.stdout) == (1, ""), (which, r.stdout, r.stderr)
        assert r.stderr == (
            f'Error response from daemon: Get "{url}": dial tcp 127.0.0.1:{port}:'
            " connect: connection refused\n"
        ), which
    assert _image_ids(daemon) == before
    assert _leftovers(daemon) == []
