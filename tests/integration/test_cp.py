"""``docker cp``: the archive API (``HEAD``/``GET``/``PUT /containers/{id}/archive``) and
``dockyard cp`` — run with our CLI and with the docker CLI 28.2.2 against the same daemon, on
running, created and exited containers, into volumes and bind mounts, and with hostile tars
sent through the raw API, checking the host filesystem afterwards.

Every test names its objects uniquely and removes them (and its files) also on failure.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.clients import Run, runner
from tests.integration.daemon import DOCKER, DOCKYARD, TestDaemon, _UnixHTTPConnection

pytestmark = pytest.mark.integration

CLIENTS = ["dockyard", "docker"]

# the tree every container of this module starts with
_SETUP = (
    "mkdir -p /data/dir/sub /data/empty && echo A > /data/dir/a && echo B > /data/dir/sub/b"
    " && echo F > /data/file && ln -s dir /data/link && ln -s /data/file /data/abslink"
    " && touch /ready"
)


class Tracker:
    """Containers, volumes and host directories made by a test, removed at its end."""

    def __init__(self, daemon: TestDaemon) -> None:
        self.daemon = daemon
        self.containers: list[str] = []
        self.volumes: list[str] = []
        self.dirs: list[Path] = []

    def name(self, prefix: str) -> str:
        return f"{prefix}-{secrets.token_hex(3)}"

    def container(self, *args: str, start: bool = True, wait_ready: bool = True) -> str:
        name = self.name("cp")
        self.containers.append(name)
        verb = "run" if start else "create"
        extra = ["-d"] if start else []
        r = self.daemon.cli(verb, *extra, "--name", name, *args)
        assert r.returncode == 0, r.stderr
        if start and wait_ready:
            _wait_for(lambda: self.daemon.cli("exec", name, "test", "-e", "/ready").returncode == 0)
        return name

    def volume(self) -> str:
        name = self.name("cpvol")
        self.volumes.append(name)
        return name

    def tmpdir(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix="dy-cp-", dir="/var/tmp"))
        self.dirs.append(path)
        return path

    def cleanup(self) -> None:
        for c in self.containers:
            self.daemon.request("DELETE", f"/containers/{c}?force=1&v=1")
        for v in self.volumes:
            self.daemon.request("DELETE", f"/volumes/{v}?force=1")
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def track(daemon: TestDaemon) -> Iterator[Tracker]:
    t = Tracker(daemon)
    yield t
    t.cleanup()


@pytest.fixture(scope="module")
def box(daemon: TestDaemon) -> Iterator[str]:
    """A running container with the ``_SETUP`` tree, shared by the read-only tests."""
    t = Tracker(daemon)
    try:
        yield t.container("busybox", "sh", "-c", _SETUP + " && exec sleep 3000")
    finally:
        t.cleanup()


@pytest.fixture(params=CLIENTS)
def run(request: pytest.FixtureRequest, daemon: TestDaemon) -> Run:
    return runner(daemon, request.param)


def _wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def _ok(r: Any) -> str:
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return str(r.stdout)


def _err(r: Any) -> str:
    """The CLI's error line (docker's own log noise before it dropped)."""
    assert r.returncode == 1, (r.args, r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if not line.startswith("time=")]
    return "\n".join(lines).replace("dockyard", "docker")


def _raw(d: TestDaemon, which: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """A client run whose stdout stays bytes (a tar)."""
    argv = [DOCKYARD if which == "dockyard" else DOCKER, *args]
    return subprocess.run(argv, env=d.env, capture_output=True, timeout=120)


def _q(path: str) -> str:
    return urllib.parse.quote(path, safe="")


def _head(d: TestDaemon, container: str, path: str) -> tuple[int, dict[str, Any] | None]:
    conn = _UnixHTTPConnection(str(d.sock))
    try:
        conn.request("HEAD", f"/v1.44/containers/{container}/archive?path={_q(path)}")
        resp = conn.getresponse()
        resp.read()
        header = resp.getheader("X-Docker-Container-Path-Stat")
        return resp.status, json.loads(base64.b64decode(header)) if header else None
    finally:
        conn.close()


def _get_tar(d: TestDaemon, container: str, path: str) -> tarfile.TarFile:
    status, body = d.request("GET", f"/containers/{container}/archive?path={_q(path)}")
    assert status == 200, body
    return tarfile.open(fileobj=io.BytesIO(body))


def _put(d: TestDaemon, container: str, path: str, data: bytes, query: str = "") -> tuple[int, Any]:
    return d.request(
        "PUT",
        f"/containers/{container}/archive?path={_q(path)}{query}",
        raw=data,
        headers={"Content-Type": "application/x-tar"},
    )


def _read(d: TestDaemon, container: str, path: str) -> bytes:
    with _get_tar(d, container, path) as tar:
        member = tar.next()
        assert member is not None and member.isfile(), member
        f = tar.extractfile(member)
        assert f is not None
        return f.read()


def _listing(d: TestDaemon, container: str, path: str) -> dict[str, str]:
    """name → kind:content of everything under ``path`` (first element dropped)."""
    out: dict[str, str] = {}
    with _get_tar(d, container, path) as tar:
        for m in tar:
            rel = m.name.split("/", 1)[1] if "/" in m.name else ""
            if m.isdir():
                out[rel] = "dir"
            elif m.issym():
                out[rel] = f"link:{m.linkname}"
            else:
                f = tar.extractfile(m)
                out[rel] = "file:" + (f.read().decode() if f else "")
    return out


def _local_tree(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = f"link:{os.readlink(path)}"
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = "file:" + path.read_text()
    return out


def _tar(*entries: tuple[str, str, str]) -> bytes:
    """A tar of (type, name, data-or-linkname) entries, type in file/dir/symlink/hardlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, value in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == "file":
                data = value.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, value
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, value
            tar.addfile(info)
    return buf.getvalue()


# ---- the archive API --------------------------------------------------------------------------


def test_head_reports_go_file_modes_and_link_targets(daemon: TestDaemon, box: str) -> None:
    status, info = _head(daemon, box, "/data/dir")
    assert status == 200 and info is not None
    assert info["name"] == "dir" and info["mode"] == (1 << 31) | 0o755
    assert info["linkTarget"] == "" and info["mtime"].endswith("Z")
    assert list(info) == ["name", "size", "mode", "mtime", "linkTarget"]
    status, info = _head(daemon, box, "/data/file")
    assert info is not None and (info["name"], info["size"], info["mode"]) == ("file", 2, 0o644)
    status, info = _head(daemon, box, "/data/link")
    assert info is not None and info["mode"] == (1 << 27) | 0o777
    assert info["linkTarget"] == "/data/dir"
    status, info = _head(daemon, box, "/data/abslink")
    assert info is not None and info["linkTarget"] == "/data/file"
    # a trailing slash or /. means the directory the link points to
    status, info = _head(daemon, box, "/data/link/")
    assert info is not None and info["name"] == "link" and info["mode"] & (1 << 31)
    status, info = _head(daemon, box, "/data/dir/.")
    assert info is not None and info["name"] == "."
    status, info = _head(daemon, box, "/")
    assert info is not None and info["name"] == "/" and info["mode"] & (1 << 31)
    assert _head(daemon, box, "/nope")[0] == 404
    assert _head(daemon, "nosuchcontainer", "/")[0] == 404


def test_archive_errors_are_dockerds(daemon: TestDaemon, box: str) -> None:
    assert daemon.request("GET", f"/containers/{box}/archive?path=/nope") == (
        404,
        {"message": f"Could not find the file /nope in container {box}"},
    )
    assert daemon.request("GET", f"/containers/{box}/archive") == (
        400,
        {"message": "bad parameter: pathcannot be empty"},
    )
    assert daemon.request("GET", "/containers/nosuchcp/archive?path=/") == (
        404,
        {"message": "No such container: nosuchcp"},
    )
    assert _put(daemon, box, "/nope", _tar(("file", "x", "x"))) == (
        404,
        {"message": f"Could not find the file /nope in container {box}"},
    )
    assert _put(daemon, box, "/data/file", _tar(("file", "x", "x"))) == (
        400,
        {"message": "extraction point is not a directory"},
    )
    status, body = daemon.request("GET", f"/containers/{box}/archive?path=/data/file/")
    assert status == 500 and body["message"] == "lstat /data/file/: not a directory"


def test_get_archive_names_entries_after_the_requested_base(daemon: TestDaemon, box: str) -> None:
    with _get_tar(daemon, box, "/data/dir") as tar:
        assert tar.getnames() == ["dir", "dir/a", "dir/sub", "dir/sub/b"]
    with _get_tar(daemon, box, "/data/dir/.") as tar:
        assert tar.getnames() == [".", "./a", "./sub", "./sub/b"]
    with _get_tar(daemon, box, "/data/link") as tar:  # the link itself, not followed
        (m,) = tar.getmembers()
        assert (m.name, m.issym(), m.linkname) == ("link", True, "dir")
    with _get_tar(daemon, box, "/data/link/") as tar:  # through the link, named as asked
        assert tar.getnames() == ["link", "link/a", "link/sub", "link/sub/b"]
    assert _read(daemon, box, "/data/../data/./file") == b"F\n"
    status, body = daemon.request("GET", f"/containers/{box}/archive?path=/data/empty")
    assert status == 200 and len(body) == 1536  # one header, two zero blocks: no 10 KiB record


# ---- the CLI: copying out ---------------------------------------------------------------------


def test_copy_out_follows_dockers_table(daemon: TestDaemon, box: str, track: Tracker) -> None:
    results: dict[str, dict[str, dict[str, str]]] = {}
    for which in CLIENTS:
        tool = runner(daemon, which)
        base = track.tmpdir()
        (base / "existing").mkdir()
        (base / "existing2").mkdir()
        (base / "afile").write_text("old")
        _ok(tool("cp", f"{box}:/data/file", str(base / "newfile")))  # file -> new file
        _ok(tool("cp", f"{box}:/data/file", str(base / "existing")))  # file -> into dir
        _ok(tool("cp", f"{box}:/data/file", str(base / "afile")))  # file -> over file
        _ok(tool("cp", f"{box}:/data/dir", str(base / "newdir")))  # dir -> new dir
        _ok(tool("cp", f"{box}:/data/dir", str(base / "existing")))  # dir -> inside dir
        _ok(tool("cp", f"{box}:/data/dir/.", str(base / "existing2")))  # contents -> dir
        _ok(tool("cp", f"{box}:/data/link", str(base / "lnk")))  # the link itself
        _ok(tool("cp", "-L", f"{box}:/data/abslink", str(base / "followed")))
        assert _err(tool("cp", f"{box}:/data/dir", str(base / "afile"))) == "cannot copy directory"
        assert _err(tool("cp", f"{box}:/data/file", f"{base}/nodir/")) == "no such directory"
        results[which] = {"tree": _local_tree(base)}
    assert results["dockyard"] == results["docker"]
    tree = results["docker"]["tree"]
    assert tree["newfile"] == "file:F\n" and tree["afile"] == "file:F\n"
    assert tree["existing/file"] == "file:F\n" and tree["existing/dir/sub/b"] == "file:B\n"
    assert tree["newdir/a"] == "file:A\n" and tree["existing2/sub/b"] == "file:B\n"
    assert "existing2/dir" not in tree and tree["lnk"] == "link:dir"
    assert tree["followed"] == "file:F\n"


@pytest.mark.parametrize("which", CLIENTS)
def test_copy_out_to_stdout_is_the_raw_tar(which: str, daemon: TestDaemon, box: str) -> None:
    r = _raw(daemon, which, "cp", f"{box}:/data/dir", "-")
    assert r.returncode == 0, r.stderr
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
        assert tar.getnames() == ["dir", "dir/a", "dir/sub", "dir/sub/b"]


# ---- the CLI: copying in ----------------------------------------------------------------------


def test_copy_in_follows_dockers_table(daemon: TestDaemon, track: Tracker) -> None:
    src = track.tmpdir()
    (src / "dir" / "sub").mkdir(parents=True)
    (src / "dir" / "a").write_text("a")
    (src / "dir" / "sub" / "b").write_text("b")
    (src / "file").write_text("f")
    (src / "link").symlink_to("file")
    listings = {}
    for which in CLIENTS:
        tool = runner(daemon, which)
        c = track.container(
            "busybox",
            "sh",
            "-c",
            "mkdir -p /t/ex /t/ex2 && echo old > /t/f && touch /ready && exec sleep 300",
        )
        _ok(tool("cp", str(src / "file"), f"{c}:/t/newfile"))
        _ok(tool("cp", str(src / "file"), f"{c}:/t/ex"))
        _ok(tool("cp", str(src / "file"), f"{c}:/t/f"))
        _ok(tool("cp", str(src / "dir"), f"{c}:/t/newdir"))
        _ok(tool("cp", str(src / "dir"), f"{c}:/t/ex"))
        _ok(tool("cp", str(src / "dir") + "/.", f"{c}:/t/ex2"))
        _ok(tool("cp", str(src / "link"), f"{c}:/t/lnk"))
        _ok(tool("cp", "-L", str(src / "link"), f"{c}:/t/followed"))
        assert _err(tool("cp", str(src / "dir"), f"{c}:/t/f")) == "cannot copy directory"
        assert _err(tool("cp", str(src / "file"), f"{c}:/t/nodir/")) == "no such directory"
        listings[which] = _listing(daemon, c, "/t")
    assert listings["dockyard"] == listings["docker"]
    tree = listings["docker"]
    assert tree["newfile"] == "file:f" and tree["f"] == "file:f" and tree["ex/file"] == "file:f"
    assert tree["newdir/sub/b"] == "file:b" and tree["ex/dir/a"] == "file:a"
    assert tree["ex2/sub/b"] == "file:b" and "ex2/dir" not in tree
    assert tree["lnk"] == "link:file" and tree["followed"] == "file:f"


def test_copy_in_from_stdin_needs_a_directory(run: Run, daemon: TestDaemon, track: Tracker) -> None:
    c = track.container("busybox", "sh", "-c", _SETUP + " && exec sleep 300")
    data = _tar(("dir", "in", ""), ("file", "in/x", "stdin-data"))
    _ok(run("cp", "-", f"{c}:/data/empty", input=data))
    assert _read(daemon, c, "/data/empty/in/x") == b"stdin-data"
    r = run("cp", "-", f"{c}:/data/file", input=data)
    assert _err(r) == f'destination "{c}:/data/file" must be a directory'


def test_quiet_off_prints_what_was_copied(daemon: TestDaemon, box: str, track: Tracker) -> None:
    base = track.tmpdir()
    (base / "f").write_text("x" * 100)
    lines = {}
    for which in CLIENTS:
        tool = runner(daemon, which)
        out = tool("cp", "-q=false", f"{box}:/data/dir", str(base / which))
        into = tool("cp", "--quiet=false", str(base / "f"), f"{box}:/tmp/q-{which}")
        quiet = tool("cp", f"{box}:/data/file", str(base / "q"))
        lines[which] = [
            (r.returncode, r.stdout, _err_free(r.stderr).replace(which, "WHICH"))
            for r in (out, into, quiet)
        ]
    assert lines["dockyard"] == lines["docker"]
    assert lines["docker"][0][2] == f"Successfully copied 4.1kB to {base}/WHICH\n"
    assert lines["docker"][1][2] == f"Successfully copied 2.05kB to {box}:/tmp/q-WHICH\n"
    assert lines["docker"][2] == (0, "", "")  # no terminal: quiet


def _err_free(stderr: str) -> str:
    return "".join(line + "\n" for line in stderr.splitlines() if not line.startswith("time="))


# ---- errors and exit codes ----------------------------------------------------------------------


def test_errors_and_exit_codes_match_docker(daemon: TestDaemon, box: str, track: Tracker) -> None:
    base = track.tmpdir()
    (base / "file").write_text("f")
    (base / "dir").mkdir()
    cases = [
        ["cp"],
        ["cp", "a", "b"],
        ["cp", "c1:/a", "c2:/b"],
        ["cp", "", "x"],
        ["cp", f"{box}:/nope", str(base / "o")],
        ["cp", "nosuchcp:/etc", str(base / "o")],
        ["cp", str(base / "nope"), f"{box}:/tmp"],
        ["cp", str(base / "file"), f"{box}:/nodir/x"],
        ["cp", f"{box}:/data/file", str(base / "missing/x")],
        ["cp", f"{box}:/data/file", "/dev/null"],
        ["cp", str(base / "file"), f"{box}:/dev/null"],
        ["cp", "-", "nosuchcp:/tmp"],
        ["cp", "--bogus", "a", "b"],
        ["container", "cp", "a"],
    ]
    for case in cases:
        ours, theirs = daemon.cli(*case), daemon.docker(*case)
        assert ours.returncode == theirs.returncode, (case, ours.stderr, theirs.stderr)
        assert ours.stdout == theirs.stdout
        assert _err_free(ours.stderr).replace("dockyard", "docker") == _err_free(theirs.stderr), (
            case
        )
    r = daemon.docker("cp", f"{box}:/nope", str(base / "o"))
    assert (
        r.stderr
        == f"Error response from daemon: Could not find the file /nope in container {box}\n"
    )


# ---- stopped containers, volumes and binds ------------------------------------------------------


@pytest.mark.parametrize("which", CLIENTS)
def test_copy_in_and_out_of_stopped_containers(
    which: str, daemon: TestDaemon, track: Tracker
) -> None:
    tool = runner(daemon, which)
    base = track.tmpdir()
    (base / "msg").write_text("hello from the host\n")
    created = track.container("busybox", "cat", "/msg", start=False)
    _ok(tool("cp", str(base / "msg"), f"{created}:/msg"))
    _ok(tool("cp", f"{created}:/etc/passwd", str(base / "passwd")))
    assert (base / "passwd").read_text().startswith("root:")
    _ok(daemon.cli("start", "-a", created))
    assert _ok(daemon.cli("logs", created)) == "hello from the host\n"
    # now exited: still readable and writable
    _ok(tool("cp", f"{created}:/msg", str(base / "back")))
    assert (base / "back").read_text() == "hello from the host\n"
    _ok(tool("cp", str(base / "back"), f"{created}:/again"))
    assert _read(daemon, created, "/again") == b"hello from the host\n"
    scratch = (
        daemon.data_root
        / "containers"
        / _ok(daemon.cli("inspect", "-f", "{{.Id}}", created)).strip()
    )
    _wait_for(lambda: not list(scratch.glob(".cp-*")))  # the view's mount point is removed


@pytest.mark.parametrize("running", [True, False])
def test_copies_land_in_volumes_and_binds(
    running: bool, daemon: TestDaemon, track: Tracker
) -> None:
    vol = track.volume()
    host = track.tmpdir()
    (host / "from-host").write_text("bind content\n")
    src = track.tmpdir()
    (src / "f").write_text("payload\n")
    c = track.container(
        "-v",
        f"{vol}:/vol",
        "-v",
        f"{host}:/bind",
        "busybox",
        "sh",
        "-c",
        "touch /ready; exec sleep 300",
        start=running,
    )
    if not running:
        _ok(daemon.cli("start", c))
        _ok(daemon.cli("stop", "-t", "0", c))
    for which in CLIENTS:
        tool = runner(daemon, which)
        _ok(tool("cp", str(src / "f"), f"{c}:/vol/in-{which}"))
        _ok(tool("cp", str(src / "f"), f"{c}:/bind/in-{which}"))
        _ok(tool("cp", f"{c}:/bind/from-host", str(src / f"out-{which}")))
        assert (src / f"out-{which}").read_text() == "bind content\n"
        assert (host / f"in-{which}").read_text() == "payload\n"
        data = daemon.data_root / "volumes" / vol / "_data" / f"in-{which}"
        assert data.read_text() == "payload\n"
    upper = Path(_ok(daemon.cli("inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", c)).strip())
    assert (
        not (upper / "vol" / "in-docker").exists() and not (upper / "bind" / "in-docker").exists()
    )
    if running:
        out = _ok(daemon.cli("exec", c, "cat", "/vol/in-dockyard", "/bind/in-docker"))
        assert out == "payload\npayload\n"


def test_read_only_mounts_and_rootfs_refuse_copies(daemon: TestDaemon, track: Tracker) -> None:
    vol = track.volume()
    host = track.tmpdir()
    src = track.tmpdir()
    (src / "f").write_text("x")
    c = track.container(
        "--read-only",
        "-v",
        f"{host}:/robind:ro",
        "-v",
        f"{vol}:/vol",
        "busybox",
        "sleep",
        "300",
        wait_ready=False,
    )
    for which in CLIENTS:
        tool = runner(daemon, which)
        r = tool("cp", str(src / "f"), f"{c}:/robind/f")
        assert _err(r) == "Error response from daemon: mounted volume is marked read-only"
        r = tool("cp", str(src / "f"), f"{c}:/f")
        assert _err(r) == "Error response from daemon: container rootfs is marked read-only"
        _ok(tool("cp", str(src / "f"), f"{c}:/vol/f-{which}"))
    assert list(host.iterdir()) == []
    assert _put(daemon, c, "/robind", _tar(("file", "x", "x")))[0] == 403
    # a tar cannot go around the check through a link: the view mounts them read-only
    status, _ = _put(daemon, c, "/vol", _tar(("symlink", "up", "/robind"), ("file", "up/x", "x")))
    assert status == 500 and list(host.iterdir()) == []


def test_archive_mode_sets_owners(daemon: TestDaemon, track: Tracker) -> None:
    src = track.tmpdir()
    (src / "f").write_text("owned")
    os.chown(src / "f", 4321, 4321)
    c = track.container(
        "--user",
        "1000:1001",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/ready; sleep 300",
        wait_ready=False,
    )
    owners = {}
    for which in CLIENTS:
        tool = runner(daemon, which)
        _ok(tool("cp", str(src / "f"), f"{c}:/tmp/plain-{which}"))
        _ok(tool("cp", "-a", str(src / "f"), f"{c}:/tmp/archive-{which}"))
        with _get_tar(daemon, c, "/tmp") as tar:
            ids = {m.name: (m.uid, m.gid) for m in tar}
        owners[which] = (ids[f"tmp/plain-{which}"], ids[f"tmp/archive-{which}"])
    assert owners["dockyard"] == owners["docker"] == ((4321, 4321), (1000, 1001))


# ---- hostile tars -------------------------------------------------------------------------------


@pytest.fixture
def sentinel(track: Tracker) -> Path:
    """A host directory that nothing sent to a container may reach."""
    path = track.tmpdir()
    (path / "keep").write_text("host file\n")
    return path


def _untouched(sentinel: Path) -> None:
    assert sorted(p.name for p in sentinel.iterdir()) == ["keep"]
    assert (sentinel / "keep").read_text() == "host file\n"
    assert os.stat(sentinel / "keep").st_nlink == 1


def test_hostile_tars_stay_inside_the_container(
    daemon: TestDaemon, track: Tracker, sentinel: Path
) -> None:
    c = track.container("busybox", "sh", "-c", "mkdir -p /dest && touch /ready && exec sleep 300")
    ups = "../" * 30
    target = str(sentinel).lstrip("/")
    cases: list[tuple[bytes, int, str]] = [
        (_tar(("file", f"{ups}{target}/dotdot", "x")), 500, "is outside of"),
        (_tar(("file", f"/{ups}{target}/rooted", "x")), 200, ""),
        (_tar(("file", f"{sentinel}/absolute", "x")), 200, ""),
        (_tar(("symlink", "rel", f"{ups}{target}")), 500, "invalid symlink"),
        (_tar(("symlink", "abs", str(sentinel)), ("file", "abs/through-abs", "x")), 200, ""),
        (_tar(("hardlink", "hl", f"{ups}{target}/keep")), 500, "invalid hardlink"),
        (_tar(("hardlink", "hl2", f"{sentinel}/keep")), 404, "Could not find the file"),
        (
            _tar(
                ("dir", "d", ""), ("symlink", "d/up", "/"), ("file", f"d/up/{target}/via-root", "x")
            ),
            200,
            "",
        ),
    ]
    for data, status, message in cases:
        got, body = _put(daemon, c, "/dest", data)
        assert got == status, (data[:300], body)
        if message:
            assert message in body["message"]
        _untouched(sentinel)
    # what was allowed landed inside the container
    listing = _listing(daemon, c, "/dest")
    assert listing[f"{target}/rooted"] == "file:x" and listing[f"{target}/absolute"] == "file:x"
    assert listing["abs"] == f"link:{sentinel}"
    assert _read(daemon, c, f"{sentinel}/through-abs") == b"x"
    assert _read(daemon, c, f"{sentinel}/via-root") == b"x"


def test_symlinks_in_the_container_cannot_lead_out(
    daemon: TestDaemon, track: Tracker, sentinel: Path
) -> None:
    """The container points paths at the host directory; copies still land inside it."""
    setup = (
        f"ln -s {sentinel} /out && ln -s ../../../../../../../..{sentinel} /rel "
        f"&& mkdir -p /d && ln -s {sentinel}/keep /d/keeplink && touch /ready"
    )
    c = track.container("busybox", "sh", "-c", setup + " && exec sleep 300")
    src = track.tmpdir()
    (src / "f").write_text("x")
    for which in CLIENTS:
        tool = runner(daemon, which)
        r = tool("cp", f"{c}:/out/keep", str(src / "leak"))  # the host's file is not there
        assert r.returncode == 1 and not (src / "leak").exists()
        assert f"Could not find the file /out/keep in container {c}" in r.stderr
        r = tool("cp", f"{c}:/d/keeplink/", str(src / "leak"))
        assert r.returncode == 1 and not (src / "leak").exists()
        # /out/ leads to a directory that does not exist in the container
        assert _err(tool("cp", str(src / "f"), f"{c}:/out/")) == "no such directory"
    _ok(daemon.cli("exec", c, "mkdir", "-p", str(sentinel)))
    for which in CLIENTS:
        tool = runner(daemon, which)
        _ok(tool("cp", str(src / "f"), f"{c}:/out/in-{which}"))
        _ok(tool("cp", str(src / "f"), f"{c}:/rel/rel-{which}"))
        _ok(tool("cp", str(src / "f"), f"{c}:/d/keeplink"))  # written where the link points
        out = _ok(daemon.cli("exec", c, "cat", f"{sentinel}/in-{which}", f"{sentinel}/rel-{which}"))
        assert out == "xx"
        _untouched(sentinel)
    assert _ok(daemon.cli("exec", c, "cat", f"{sentinel}/keep")) == "x"
    _untouched(sentinel)


def test_get_never_reads_host_files_through_links(
    daemon: TestDaemon, track: Tracker, sentinel: Path
) -> None:
    c = track.container(
        "busybox",
        "sh",
        "-c",
        f"mkdir /x && ln -s {sentinel} /x/lnk && ln -s / /x/root && touch /ready && exec sleep 300",
    )
    with _get_tar(daemon, c, "/x") as tar:
        assert {m.name: m.linkname for m in tar} == {"x": "", "x/lnk": str(sentinel), "x/root": "/"}
    assert (
        daemon.request("GET", f"/containers/{c}/archive?path={_q(str(sentinel) + '/keep')}")[0]
        == 404
    )
    # through the link to "/": the container's file, not the host's
    assert _read(daemon, c, "/x/root/etc/passwd") != Path("/etc/passwd").read_bytes()


def test_local_extraction_refuses_links_from_a_hostile_tar(track: Tracker, sentinel: Path) -> None:
    """What the CLI unpacks locally (a daemon's tar) cannot go through symlinks either."""
    from dockyard.archive.rooted import ExtractOptions, Root, extract

    dest = track.tmpdir()
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        options = ExtractOptions(no_overwrite_dir_non_dir=True, lchown=False, follow_symlinks=False)
        data = _tar(("symlink", "l", str(sentinel)), ("file", "l/evil", "x"))
        with pytest.raises(Exception, match="not a directory"):
            extract(Root(fd), (), io.BytesIO(data), options, shown=str(dest))
    finally:
        os.close(fd)
    _untouched(sentinel)
    assert stat.S_ISLNK(os.lstat(dest / "l").st_mode)


def test_no_mounts_or_namespaces_are_left_behind(daemon: TestDaemon, box: str) -> None:
    for _ in range(3):
        assert _head(daemon, box, "/data")[0] == 200
        assert daemon.request("GET", f"/containers/{box}/archive?path=/data")[0] == 200
    assert daemon.proc is not None
    pid = daemon.proc.pid
    assert ".cp-" not in Path(f"/proc/{pid}/mountinfo").read_text()
    assert ".cp-" not in Path("/proc/self/mountinfo").read_text()
    main_ns = os.readlink(f"/proc/{pid}/ns/mnt")

    def one_namespace() -> bool:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                if os.readlink(f"/proc/{pid}/task/{task}/ns/mnt") != main_ns:
                    return False
            except FileNotFoundError:
                continue  # a thread that just ended
        return True

    _wait_for(one_namespace)  # every view thread, with its private mounts, has ended


def test_big_files_stream_both_ways(daemon: TestDaemon, box: str, track: Tracker) -> None:
    base = track.tmpdir()
    blob = os.urandom(8 << 20)
    (base / "big").write_bytes(blob)
    for which in CLIENTS:  # refused before it was read: the client still hears why
        r = runner(daemon, which)("cp", str(base / "big"), f"{box}:/nodir/big")
        assert (
            _err(r)
            == f"Error response from daemon: Could not find the file /nodir in container {box}"
        )
    _ok(daemon.cli("cp", str(base / "big"), f"{box}:/tmp/big"))
    _ok(daemon.docker("cp", f"{box}:/tmp/big", str(base / "back")))
    assert (base / "back").read_bytes() == blob
    conn = _UnixHTTPConnection(str(daemon.sock))
    try:  # a client that goes away mid-stream does not wedge the container
        conn.request("GET", f"/containers/{box}/archive?path=/tmp/big")
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read(4096)
    finally:
        conn.close()
    _wait_for(lambda: _head(daemon, box, "/tmp/big")[0] == 200)
