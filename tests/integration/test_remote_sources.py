"""Remote sources the daemon downloads: ``ADD <url>`` in builds and ``docker import <url>``,
with our CLI and the real docker CLI (``DOCKER_BUILDKIT=0``), from an HTTP server the test
runs on 127.0.0.1 (nothing else is contacted)."""

from __future__ import annotations

import email.utils
import http.server
import io
import re
import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.clients import runner
from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration

CLIENTS = ["dockyard", "docker"]
MTIME = 1445412480  # Wed, 21 Oct 2015 07:28:00 GMT
IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")


class FileServer:
    """Serves ``files`` (path → body) on a free loopback port, in a thread; counts GETs."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.hits[path] = server.hits.get(path, 0) + 1
                    body = server.files.get(path)
                    extra = dict(server.headers.get(path, {}))
                if path.startswith("/go/"):
                    self.send_response(302)
                    self.send_header("Location", path[len("/go") :])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if body is None:
                    payload = b"404 page not found\n"
                    self.send_response(404)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def put(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> str:
        with self._lock:
            self.files[path] = body
            self.headers[path] = headers or {}
        return self.base + path

    def count(self, path: str) -> int:
        with self._lock:
            return self.hits.get(path, 0)


@pytest.fixture(scope="module")
def server() -> Iterator[FileServer]:
    s = FileServer()
    s.thread.start()
    try:
        yield s
    finally:
        s.httpd.shutdown()
        s.httpd.server_close()
        s.thread.join(10)


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _inspect(daemon: TestDaemon, name: str) -> dict[str, Any]:
    status, body = daemon.request("GET", f"/images/{name}/json")
    assert status == 200, body
    assert isinstance(body, dict)
    return body


def _leftovers(daemon: TestDaemon) -> tuple[list[Any], list[str]]:
    """Stopped containers, and what builds and imports left in the daemon's work dir."""
    status, containers = daemon.request("GET", "/containers/json?all=1")
    assert status == 200
    tmp = daemon.data_root / "tmp"
    left = sorted(
        p.name for p in tmp.iterdir() if p.name.startswith(("remote-", "import-", "build-", "mnt-"))
    )
    return [c for c in containers if c["State"] != "running"], left


def _dockerfile(tmp_path: Path, text: str) -> Path:
    (tmp_path / "Dockerfile").write_text(text)
    return tmp_path


def _last_error(stderr: str) -> str:
    """The build's error: the last line (the docker CLI warns first that the legacy builder
    is deprecated)."""
    return stderr.strip().splitlines()[-1] if stderr.strip() else ""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- ADD <url> -------------------------------------------------------------------------------


@pytest.mark.parametrize("which", CLIENTS)
def test_add_url_downloads_without_extracting(
    daemon: TestDaemon, server: FileServer, tmp_path: Path, which: str
) -> None:
    run = runner(daemon, which)
    archive = _tar({"inside.txt": b"inside\n"})
    hello = server.put(
        f"/{which}/hello.txt",
        b"hello from the web\n",
        {"Last-Modified": email.utils.formatdate(MTIME, usegmt=True)},
    )
    tarball = server.put(f"/{which}/archive.tar", archive)
    redirected = server.put(f"/{which}/target.bin", b"redirected\n")
    unnamed = server.put(
        f"/{which}/dir/",
        b"named by header\n",
        {"Content-Disposition": 'attachment; filename="cd.txt"'},
    )
    redirect = redirected.replace(f"/{which}/", f"/go/{which}/")
    ctx = _dockerfile(
        tmp_path,
        "FROM busybox\n"
        "WORKDIR /work\n"
        f"ADD {hello} /dest/\n"
        f"ADD {tarball} /x\n"
        f"ADD --chown=1:2 --chmod=0644 {hello} renamed.txt\n"
        f"ADD {redirect} {unnamed} /multi/\n",
    )
    tag = f"remote-add-{which}"
    r = run("build", "-t", tag, str(ctx))
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"Step 3/6 : ADD {hello} /dest/" in r.stdout
        assert f"Successfully tagged {tag}:latest" in r.stdout
        script = (
            "stat -c '%n %a %u:%g %Y %F' /dest/hello.txt /x /work/renamed.txt; "
            "cat /dest/hello.txt /multi/target.bin /multi/cd.txt; tar -tf /x"
        )
        out = run("run", "--rm", tag, "sh", "-c", script)
        assert out.returncode == 0, out.stderr
        assert out.stdout == (
            f"/dest/hello.txt 600 0:0 {MTIME} regular file\n"
            "/x 600 0:0 0 regular file\n"  # not extracted; no Last-Modified: the epoch
            f"/work/renamed.txt 644 1:2 {MTIME} regular file\n"
            "hello from the web\nredirected\nnamed by header\ninside.txt\n"
        )
    finally:
        daemon.cli("rmi", tag)
    containers, left = _leftovers(daemon)
    assert containers == [] and left == []


@pytest.mark.parametrize("which", CLIENTS)
def test_add_url_error_fails_the_build(
    daemon: TestDaemon, server: FileServer, tmp_path: Path, which: str
) -> None:
    run = runner(daemon, which)
    missing = f"{server.base}/{which}/missing.txt"
    ctx = _dockerfile(tmp_path, f"FROM busybox\nRUN echo before\nADD {missing} /m.txt\n")
    tag = f"remote-404-{which}"
    r = run("build", "-t", tag, str(ctx))
    assert r.returncode == 1, r.stdout + r.stderr
    assert _last_error(r.stderr) == (
        f"ADD failed: failed to GET {missing} with status 404 Not Found: 404 page not found"
    )
    assert daemon.request("GET", f"/images/{tag}/json")[0] == 404
    # no filename for a destination directory; COPY refuses URLs; a dead server
    dead = f"http://127.0.0.1:{_closed_port()}/x.txt"
    cases = {
        f"ADD {server.put('/noname/', b'x')} /d/": (
            f"ADD failed: cannot determine filename for source {server.base}/noname/"
        ),
        f"COPY {server.base}/noname/ /d/": "COPY failed: source can't be a URL for COPY",
        f"ADD {dead} /d/": (
            f'ADD failed: Get "{dead}": dial tcp {dead[7:].split("/")[0]}: connect: connection refused'
        ),
    }
    for line, message in cases.items():
        _dockerfile(tmp_path, f"FROM busybox\n{line}\n")
        r = run("build", "-t", tag, str(ctx))
        assert (r.returncode, _last_error(r.stderr)) == (1, message), r.stdout
    assert daemon.request("GET", f"/images/{tag}/json")[0] == 404
    containers, left = _leftovers(daemon)
    assert containers == [] and left == []


def test_add_url_cache_follows_the_content(
    daemon: TestDaemon, server: FileServer, tmp_path: Path
) -> None:
    url = server.put("/cache/data.txt", b"version 1\n")
    ctx = _dockerfile(
        tmp_path,
        f'FROM busybox\nADD {url} /data.txt\nRUN cat /data.txt > /copy\nCMD ["cat", "/copy"]\n',
    )
    tag = "remote-cache"
    try:
        first = daemon.cli("build", "-t", tag, str(ctx))
        assert first.returncode == 0, first.stderr
        first_id = _inspect(daemon, tag)["Id"]
        # same content: downloaded again (as dockerd does) and every step from the cache
        again = daemon.docker("build", "-t", tag, str(ctx))
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("Using cache") == 3, again.stdout
        assert _inspect(daemon, tag)["Id"] == first_id
        assert server.count("/cache/data.txt") == 2
        # new content on the server: the ADD step and everything after it run again
        server.put("/cache/data.txt", b"version 2\n")
        changed = daemon.cli("build", "-t", tag, str(ctx))
        assert changed.returncode == 0, changed.stderr
        assert changed.stdout.count("Using cache") == 0, changed.stdout
        assert "Running in" in changed.stdout
        assert _inspect(daemon, tag)["Id"] != first_id
        assert server.count("/cache/data.txt") == 3
        out = daemon.docker("run", "--rm", tag)
        assert (out.returncode, out.stdout) == (0, "version 2\n"), out.stderr
    finally:
        daemon.cli("rmi", tag)


# -- docker import <url> ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def rootfs(daemon: TestDaemon, server: FileServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """busybox plus ``/marker``, exported with our CLI and served as ``/rootfs.tar``."""
    out = tmp_path_factory.mktemp("remote-import") / "rootfs.tar"
    name = "remote-imp-src"
    r = daemon.cli("run", "--name", name, "busybox", "sh", "-c", "echo marked > /marker")
    assert r.returncode == 0, r.stderr
    try:
        r = daemon.cli("export", "-o", str(out), name)
        assert r.returncode == 0, r.stderr
    finally:
        daemon.cli("rm", "-f", name)
    return server.put("/rootfs.tar", out.read_bytes())


@pytest.mark.parametrize("which", CLIENTS)
def test_import_from_url_then_run(daemon: TestDaemon, rootfs: str, which: str) -> None:
    run = runner(daemon, which)
    tag = f"remote-imp-{which}:v1"
    r = run("import", "-c", 'CMD ["cat", "/marker"]', rootfs, tag)
    try:
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == f"Downloading from {rootfs}", r.stdout
        assert IMAGE_ID.fullmatch(lines[-1]), r.stdout
        image = _inspect(daemon, tag)
        assert image["Id"] == lines[-1]
        assert image["Comment"] == f"Imported from {rootfs}"
        assert (image["Os"], image["Architecture"]) == ("linux", "amd64")
        assert len(image["RootFS"]["Layers"]) == 1
        out = run("run", "--rm", tag)
        assert (out.returncode, out.stdout) == (0, "marked\n"), out.stderr
    finally:
        daemon.cli("rmi", tag)
    containers, left = _leftovers(daemon)
    assert containers == [] and left == []


@pytest.mark.parametrize("which", CLIENTS)
def test_import_from_url_with_platform(daemon: TestDaemon, rootfs: str, which: str) -> None:
    run = runner(daemon, which)
    tag = f"remote-imp-arm-{which}"
    r = run("import", "--platform", "linux/arm/v7", "-m", "for arm", rootfs, tag)
    try:
        assert r.returncode == 0, r.stderr
        image = _inspect(daemon, tag)
        assert (image["Os"], image["Architecture"], image.get("Variant")) == (
            "linux",
            "arm",
            "v7",
        )
        assert image["Comment"] == "for arm"
    finally:
        daemon.cli("rmi", tag)
    r = run("import", "--platform", "windows/amd64", rootfs, tag)
    assert r.returncode == 1
    assert r.stderr == "Error response from daemon: operating system is not supported\n"


def test_import_url_without_scheme_over_the_api(daemon: TestDaemon, rootfs: str) -> None:
    bare = rootfs.removeprefix("http://")
    status, out = daemon.request(
        "POST", f"/images/create?fromSrc={bare}&repo=remote-imp-bare&tag=t", raw=b""
    )
    try:
        assert status == 200, out
        assert out[0] == {"status": f"Downloading from {rootfs}"}
        assert out[-2] == {}  # the progress reader's closing new line, as dockerd's
        assert IMAGE_ID.fullmatch(out[-1]["status"]), out
        assert _inspect(daemon, "remote-imp-bare:t")["Id"] == out[-1]["status"]
    finally:
        daemon.cli("rmi", "remote-imp-bare:t")


def test_import_url_errors_match_docker(
    daemon: TestDaemon, server: FileServer, tmp_path: Path
) -> None:
    status, before = daemon.request("GET", "/images/json?all=1")
    assert status == 200
    missing = f"{server.base}/missing-rootfs.tar"
    notar = server.put("/notes.txt", b"this is not a tar archive\n" * 40)
    results = {which: runner(daemon, which)("import", missing, "imp-404") for which in CLIENTS}
    for which, r in results.items():
        assert (r.returncode, r.stdout) == (1, ""), which
        assert r.stderr == (
            f"Error response from daemon: failed to GET {missing} with status 404 Not Found:"
            " 404 page not found\n"
        ), which
    results = {which: runner(daemon, which)("import", notar, "imp-notar") for which in CLIENTS}
    for which, r in results.items():
        assert r.returncode == 1, (which, r.stdout, r.stderr)
        assert r.stdout.startswith(f"Downloading from {notar}\n"), which
        assert "tar" in r.stderr, (which, r.stderr)
    assert results["dockyard"].stderr == results["docker"].stderr
    status, after = daemon.request("GET", "/images/json?all=1")
    assert sorted(i["Id"] for i in after) == sorted(i["Id"] for i in before)
    _containers, left = _leftovers(daemon)
    assert left == []
