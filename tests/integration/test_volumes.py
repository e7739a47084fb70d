"""Volumes, bind mounts and tmpfs through a real daemon, runc and conmon — with our CLI and the
docker CLI 28.2.2 (issue 6).

Every test names its objects uniquely and removes them (containers with ``-v``, volumes) also on
failure; tests that prune or restart the daemon get a fresh daemon of their own.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import build_test_images
from tests.integration.clients import Run, runner
from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration

CLIENTS = ["dockyard", "docker"]


class Tracker:
    """Names made by a test, removed at its end whatever happened."""

    def __init__(self, daemon: TestDaemon) -> None:
        self.daemon = daemon
        self.containers: list[str] = []
        self.volumes: list[str] = []

    def name(self, prefix: str, *, container: bool = False) -> str:
        value = f"{prefix}-{secrets.token_hex(3)}"
        (self.containers if container else self.volumes).append(value)
        return value

    def cleanup(self) -> None:
        for c in self.containers:
            self.daemon.request("DELETE", f"/containers/{c}?force=1&v=1")
        for v in self.volumes:
            self.daemon.request("DELETE", f"/volumes/{v}?force=1")


@pytest.fixture
def track(daemon: TestDaemon) -> Iterator[Tracker]:
    t = Tracker(daemon)
    yield t
    t.cleanup()


@pytest.fixture(params=CLIENTS)
def run(request: pytest.FixtureRequest, daemon: TestDaemon) -> Run:
    return runner(daemon, request.param)


def _ok(r: Any) -> str:
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return str(r.stdout)


def _volume_names(d: TestDaemon) -> set[str]:
    status, body = d.request("GET", "/volumes")
    assert status == 200
    return {v["Name"] for v in body["Volumes"]}


def _mounts(d: TestDaemon, container: str) -> list[dict[str, Any]]:
    status, body = d.request("GET", f"/containers/{container}/json")
    assert status == 200, body
    return list(body["Mounts"])


def _host_mounts() -> str:
    with open("/proc/self/mounts") as f:
        return f.read()


# ---- a tiny image with hostile symlinks, an owned directory and a VOLUME -------------------------


def _add(tar: tarfile.TarFile, info: tarfile.TarInfo, data: bytes = b"") -> None:
    info.mtime = 1_700_000_000
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data else None)


def build_volume_image(dest: Path, host_dir: str, tag: str) -> Path:
    """busybox + one layer: ``/hostlink -> <host_dir>``, ``/up -> ../../``, ``/etclink ->
    /etc``, ``/seed`` (uid 1234, gid 5678, mode 0710) holding ``hello`` (0640), and
    ``VOLUME /seed`` in the config."""
    base = build_test_images() / "busybox_latest.tar"
    with tarfile.open(base) as src:
        (manifest,) = json.load(src.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(src.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        base_layer = src.extractfile(manifest["Layers"][0]).read()  # type: ignore[union-attr]
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for name, target in (("hostlink", host_dir), ("up", "../../"), ("etclink", "/etc")):
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            _add(layer, info)
        seed = tarfile.TarInfo("seed")
        seed.type = tarfile.DIRTYPE
        seed.mode, seed.uid, seed.gid = 0o710, 1234, 5678
        _add(layer, seed)
        hello = tarfile.TarInfo("seed/hello")
        hello.mode, hello.uid, hello.gid = 0o640, 1234, 5678
        _add(layer, hello, b"seeded\n")
    layer_bytes = layer_buf.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = dict(config)
    config["rootfs"] = {
        "type": "layers",
        "diff_ids": [*config["rootfs"]["diff_ids"], diff_id],
    }
    inner = dict(config.get("config") or {})
    inner["Volumes"] = {"/seed": {}}
    inner["Cmd"] = ["sh"]
    config["config"] = inner
    config_bytes = json.dumps(config).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    with tarfile.open(dest, "w") as out:
        for name, data in (
            ("base/layer.tar", base_layer),
            ("extra/layer.tar", layer_bytes),
            (config_name, config_bytes),
            (
                "manifest.json",
                json.dumps(
                    [
                        {
                            "Config": config_name,
                            "Layers": ["base/layer.tar", "extra/layer.tar"],
                            "RepoTags": [tag],
                        }
                    ]
                ).encode(),
            ),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return dest


@pytest.fixture(scope="module")
def sentinel_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dy-sentinel-", dir="/var/tmp"))
    (path / "sentinel").write_text("host data\n")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def volimage(daemon: TestDaemon, sentinel_dir: Path) -> str:
    tag = "dyvoltest:latest"
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        daemon.load(build_volume_image(Path(tmp) / "img.tar", str(sentinel_dir), tag))
    return tag


# ---- volume commands -------------------------------------------------------------------------------


def test_volume_commands_match_docker(daemon: TestDaemon, track: Tracker) -> None:
    a, b = track.name("cmpa"), track.name("cmpb")
    for tool, name in ((daemon.docker, a), (daemon.cli, b)):
        out = _ok(tool("volume", "create", "--label", "k=v", "--label", "flag", name))
        assert out == f"{name}\n"
    docker_ls = _ok(daemon.docker("volume", "ls", "--filter", "label=k=v"))
    ours_ls = _ok(daemon.cli("volume", "ls", "--filter", "label=k=v"))
    assert docker_ls == ours_ls
    assert ours_ls.splitlines()[0] == "DRIVER    VOLUME NAME"
    assert f"local     {a}" in ours_ls and f"local     {b}" in ours_ls
    assert _ok(daemon.cli("volume", "ls", "-q", "--filter", f"name={a}")) == f"{a}\n"
    docker_inspect = _ok(daemon.docker("volume", "inspect", a))
    ours_inspect = _ok(daemon.cli("volume", "inspect", a))
    assert docker_inspect == ours_inspect
    shape = json.loads(ours_inspect)[0]
    assert shape["Labels"] == {"flag": "", "k": "v"}
    assert shape["Mountpoint"] == str(daemon.data_root / "volumes" / a / "_data")
    assert shape["Scope"] == "local" and shape["Options"] is None
    fmt = "{{.Name}} {{.Driver}} {{.Labels}}"
    assert _ok(daemon.cli("volume", "inspect", "-f", fmt, b)) == _ok(
        daemon.docker("volume", "inspect", "-f", fmt, b)
    ).replace(a, b)
    for tool in (daemon.docker, daemon.cli):
        r = tool("volume", "inspect", "nosuchvol-dy")
        assert r.returncode == 1
        assert "get nosuchvol-dy: no such volume" in r.stderr
    assert _ok(daemon.cli("volume", "rm", a, b)) == f"{a}\n{b}\n"
    assert not {a, b} & _volume_names(daemon)


def test_volume_create_random_name_and_options(daemon: TestDaemon, track: Tracker) -> None:
    status, body = daemon.request("POST", "/volumes/create", {})
    assert status == 201
    track.volumes.append(body["Name"])
    assert len(body["Name"]) == 64
    assert list(body) == [
        "CreatedAt",
        "Driver",
        "Labels",
        "Mountpoint",
        "Name",
        "Options",
        "Scope",
    ]
    name = track.name("opts")
    out = _ok(
        daemon.cli(
            "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=4m", name
        )
    )
    assert out == f"{name}\n"
    options = daemon.request("GET", f"/volumes/{name}")[1]["Options"]
    assert options == {"device": "tmpfs", "o": "size=4m", "type": "tmpfs"}


# ---- data, copy-up, read-only, tmpfs --------------------------------------------------------------


def test_data_written_by_one_container_is_read_by_the_next(run: Run, track: Tracker) -> None:
    vol = track.name("data")
    _ok(run("run", "--rm", "-v", f"{vol}:/data", "busybox", "sh", "-c", "echo kept > /data/f"))
    assert _ok(run("run", "--rm", "-v", f"{vol}:/data", "busybox", "cat", "/data/f")) == "kept\n"
    mount = f"type=volume,src={vol},dst=/other"
    assert _ok(run("run", "--rm", "--mount", mount, "busybox", "cat", "/other/f")) == "kept\n"


def test_copy_up_from_an_image_directory(run: Run, track: Tracker, daemon: TestDaemon) -> None:
    vol = track.name("copyup")
    out = _ok(run("run", "--rm", "-v", f"{vol}:/etc", "busybox", "ls", "/etc"))
    assert "passwd" in out.split() and "group" in out.split()
    data = daemon.data_root / "volumes" / vol / "_data"
    assert (data / "passwd").read_text().startswith("root:")
    # not copied again into a volume that is no longer empty, and nocopy copies nothing
    nocopy = track.name("nocopy")
    out = _ok(run("run", "--rm", "-v", f"{nocopy}:/etc:nocopy", "busybox", "ls", "-A", "/etc"))
    assert "passwd" not in out.split()
    mount = f"type=volume,src={track.name('nocopy2')},dst=/root,volume-nocopy"
    _ok(run("run", "--rm", "--mount", mount, "busybox", "true"))


def test_copy_up_keeps_owners_and_modes(run: Run, track: Tracker, volimage: str) -> None:
    vol = track.name("owned")
    out = _ok(
        run(
            "run",
            "--rm",
            "-v",
            f"{vol}:/seed",
            volimage,
            "stat",
            "-c",
            "%n %u:%g %a",
            "/seed",
            "/seed/hello",
        )
    )
    assert out == "/seed 1234:5678 710\n/seed/hello 1234:5678 640\n"


def test_image_volume_is_an_anonymous_volume(
    run: Run, track: Tracker, daemon: TestDaemon, volimage: str
) -> None:
    name = track.name("imgvol", container=True)
    _ok(run("run", "--name", name, volimage, "cat", "/seed/hello"))
    (mount,) = _mounts(daemon, name)
    assert mount["Type"] == "volume" and mount["Destination"] == "/seed"
    assert mount["Mode"] == "" and mount["RW"] is True and mount["Driver"] == "local"
    assert len(mount["Name"]) == 64
    labels = daemon.request("GET", f"/volumes/{mount['Name']}")[1]["Labels"]
    assert labels == {"com.docker.volume.anonymous": ""}
    assert (Path(mount["Source"]) / "hello").read_text() == "seeded\n"
    _ok(run("rm", "-v", name))
    assert mount["Name"] not in _volume_names(daemon)


def test_read_only_mounts_refuse_writes(
    run: Run, track: Tracker, tmp_path_factory: pytest.TempPathFactory
) -> None:
    vol = track.name("ro")
    host = tmp_path_factory.mktemp("robind")
    script = (
        "for p in /v /m /h; do touch $p/x 2>/dev/null && echo $p:rw || echo $p:ro; done; "
        "touch /rootfile 2>/dev/null && echo root:rw || echo root:ro; "
        "touch /tmp/ok && echo tmp:rw"
    )
    out = _ok(
        run(
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "-v",
            f"{vol}:/v:ro",
            "--mount",
            f"type=volume,src={vol},dst=/m,readonly",
            "-v",
            f"{host}:/h:ro",
            "busybox",
            "sh",
            "-c",
            script,
        )
    )
    assert out == "/v:ro\n/m:ro\n/h:ro\nroot:ro\ntmp:rw\n"
    assert list(host.iterdir()) == []


def test_tmpfs_is_empty_and_in_memory(run: Run) -> None:
    script = (
        "ls -A /root /t2 | grep -v : ; grep -E ' /(root|t2) ' /proc/mounts; "
        "echo in-memory > /root/f && cat /root/f"
    )
    out = _ok(
        run(
            "run",
            "--rm",
            "--tmpfs",
            "/root:size=2m,mode=700",
            "--mount",
            "type=tmpfs,dst=/t2,tmpfs-size=1m",
            "busybox",
            "sh",
            "-c",
            script,
        )
    )
    lines = [line for line in out.splitlines() if line.strip()]
    root = next(line for line in lines if " /root " in line).split()
    t2 = next(line for line in lines if " /t2 " in line).split()
    assert root[2] == "tmpfs" and "size=2048k" in root[3] and "mode=700" in root[3]
    assert "noexec" in root[3] and "nosuid" in root[3] and "nodev" in root[3]
    assert t2[2] == "tmpfs" and "size=1024k" in t2[3]
    assert lines[-1] == "in-memory"
    assert [line for line in lines if not line.startswith("tmpfs")] == ["in-memory"]


def test_volume_with_driver_options_is_mounted_while_running(
    run: Run, track: Tracker, daemon: TestDaemon
) -> None:
    vol = track.name("tmpfsvol")
    _ok(run("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=3m", vol))
    data = daemon.data_root / "volumes" / vol / "_data"
    name = track.name("optuser", container=True)
    _ok(run("run", "-d", "--name", name, "-v", f"{vol}:/data", "busybox", "sleep", "60"))
    try:
        assert f" {data} tmpfs " in _host_mounts()
        out = _ok(run("exec", name, "sh", "-c", "grep ' /data ' /proc/mounts"))
        assert out.split()[2] == "tmpfs" and "size=3072k" in out
    finally:
        _ok(run("rm", "-f", name))
    assert f" {data} " not in _host_mounts()


# ---- binds -----------------------------------------------------------------------------------------


def test_bind_mounts(run: Run, track: Tracker, tmp_path_factory: pytest.TempPathFactory) -> None:
    host = tmp_path_factory.mktemp("bind")
    (host / "in").write_text("from host\n")
    out = _ok(
        run(
            "run",
            "--rm",
            "-v",
            f"{host}:/h",
            "busybox",
            "sh",
            "-c",
            "cat /h/in; echo back > /h/out",
        )
    )
    assert out == "from host\n"
    assert (host / "out").read_text() == "back\n"
    missing = host / "made" / "by-v"
    _ok(run("run", "--rm", "-v", f"{missing}:/m", "busybox", "true"))
    assert missing.is_dir()  # -v creates a missing source directory
    gone = host / "absent"
    r = run("run", "--rm", "--mount", f"type=bind,src={gone},dst=/x", "busybox", "true")
    assert r.returncode == 125
    assert (
        f'invalid mount config for type "bind": bind source path does not exist: {gone}' in r.stderr
    )
    assert not gone.exists()


def test_inspect_mounts_as_docker_shows_them(
    daemon: TestDaemon, track: Tracker, tmp_path_factory: pytest.TempPathFactory
) -> None:
    host = tmp_path_factory.mktemp("insp")
    vol = track.name("insp")
    shapes = []
    for tool in (daemon.docker, daemon.cli):
        name = track.name("insp", container=True)
        _ok(
            tool(
                "create",
                "--name",
                name,
                "-v",
                f"{vol}:/data",
                "-v",
                f"{host}:/h:ro,z",
                "-v",
                "/anon",
                "--mount",
                "type=tmpfs,dst=/t,tmpfs-size=1m",
                "--mount",
                f"type=bind,src={host},dst=/h2,bind-propagation=rslave",
                "busybox",
                "true",
            )
        )
        info = daemon.request("GET", f"/containers/{name}/json")[1]
        mounts = {m["Destination"]: m for m in info["Mounts"]}
        anon = mounts["/anon"].pop("Name")
        assert mounts["/anon"].pop("Source").endswith(f"/volumes/{anon}/_data")
        # Binds keep the client's order, and the docker CLI sends its -v binds in Go map
        # order (random per run): only the set of them is comparable.
        binds = sorted(info["HostConfig"]["Binds"])
        if tool == daemon.cli:  # ours sends them in command-line order
            assert info["HostConfig"]["Binds"] == [f"{vol}:/data", f"{host}:/h:ro,z"]
        shapes.append((mounts, binds, info["HostConfig"]["Mounts"]))
        summary = daemon.request(
            "GET", f"/containers/json?all=1&filters=%7B%22volume%22%3A%5B%22{vol}%22%5D%7D"
        )[1]
        assert name in {n.lstrip("/") for c in summary for n in c["Names"]}
    assert shapes[0] == shapes[1]
    mounts, binds, api_mounts = shapes[0]
    assert binds == sorted([f"{vol}:/data", f"{host}:/h:ro,z"])
    assert api_mounts[0] == {
        "Type": "tmpfs",
        "Target": "/t",
        "TmpfsOptions": {"SizeBytes": 1048576},
    }
    assert mounts["/data"] == {
        "Type": "volume",
        "Name": vol,
        "Source": str(daemon.data_root / "volumes" / vol / "_data"),
        "Destination": "/data",
        "Driver": "local",
        "Mode": "z",
        "RW": True,
        "Propagation": "",
    }
    assert mounts["/h"] == {
        "Type": "bind",
        "Source": str(host),
        "Destination": "/h",
        "Mode": "ro,z",
        "RW": False,
        "Propagation": "rprivate",
    }
    assert mounts["/anon"] == {
        "Type": "volume",
        "Destination": "/anon",
        "Driver": "local",
        "Mode": "",
        "RW": True,
        "Propagation": "",
    }
    assert mounts["/t"] == {
        "Type": "tmpfs",
        "Source": "",
        "Destination": "/t",
        "Mode": "",
        "RW": True,
        "Propagation": "",
    }
    assert mounts["/h2"]["Propagation"] == "rslave" and mounts["/h2"]["Mode"] == ""


# ---- anonymous volumes, volumes-from, in use ------------------------------------------------------


def test_anonymous_volumes_removed_with_rm_v_and_kept_without(
    run: Run, track: Tracker, daemon: TestDaemon
) -> None:
    named = track.name("keepme")
    kept = track.name("anonkeep", container=True)
    gone = track.name("anongone", container=True)
    for name in (kept, gone):
        _ok(run("create", "--name", name, "-v", "/anon", "-v", f"{named}:/n", "busybox", "true"))
    kept_vol = next(m["Name"] for m in _mounts(daemon, kept) if m["Destination"] == "/anon")
    gone_vol = next(m["Name"] for m in _mounts(daemon, gone) if m["Destination"] == "/anon")
    track.volumes += [kept_vol]
    _ok(run("rm", kept))
    _ok(run("rm", "-v", gone))
    names = _volume_names(daemon)
    assert kept_vol in names and gone_vol not in names
    assert named in names  # named volumes are never removed with a container
    _ok(run("run", "--rm", "-v", "/auto", "busybox", "true"))
    assert _volume_names(daemon) == names  # --rm took its anonymous volume along


def test_volumes_from(run: Run, track: Tracker, daemon: TestDaemon) -> None:
    vol = track.name("shared")
    src = track.name("vfsrc", container=True)
    _ok(
        run(
            "run",
            "--name",
            src,
            "-v",
            "/anon",
            "-v",
            f"{vol}:/named",
            "busybox",
            "sh",
            "-c",
            "echo a > /anon/f; echo n > /named/f",
        )
    )
    out = _ok(
        run(
            "run",
            "--rm",
            "--volumes-from",
            f"{src}:ro",
            "busybox",
            "sh",
            "-c",
            "cat /anon/f /named/f; touch /named/x 2>/dev/null || echo read-only",
        )
    )
    assert out == "a\nn\nread-only\n"
    reader = track.name("vfrw", container=True)
    _ok(run("create", "--name", reader, "--volumes-from", src, "busybox", "true"))
    assert {m["Destination"]: m["RW"] for m in _mounts(daemon, reader)} == {
        "/anon": True,
        "/named": True,
    }
    anon = next(m["Name"] for m in _mounts(daemon, src) if m["Destination"] == "/anon")
    _ok(run("rm", "-v", src))
    assert anon in _volume_names(daemon)  # still used by the reader
    _ok(run("rm", "-v", reader))
    assert anon not in _volume_names(daemon)
    # (through the API: both CLIs take any 404 on create for a missing image and pull)
    status, body = daemon.request(
        "POST",
        "/containers/create",
        {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"VolumesFrom": ["nosuch-dy"]}},
    )
    assert (status, body) == (404, {"message": "No such container: nosuch-dy"})


def test_a_volume_in_use_cannot_be_removed(run: Run, track: Tracker, daemon: TestDaemon) -> None:
    vol = track.name("inuse")
    name = track.name("user", container=True)
    cid = _ok(run("create", "--name", name, "-v", f"{vol}:/d", "busybox", "true")).strip()
    r = run("volume", "rm", vol)
    assert r.returncode == 1
    assert f"remove {vol}: volume is in use - [{cid}]" in r.stderr
    status, body = daemon.request("DELETE", f"/volumes/{vol}?force=1")
    assert status == 409 and body == {"message": f"remove {vol}: volume is in use - [{cid}]"}
    _ok(run("rm", name))
    assert _ok(run("volume", "rm", vol)) == f"{vol}\n"
    status, body = daemon.request("DELETE", f"/volumes/{vol}")
    assert status == 404 and body == {"message": f"get {vol}: no such volume"}


@pytest.mark.parametrize("which", CLIENTS)
def test_prune_removes_only_unused(fresh_daemon: TestDaemon, which: str) -> None:
    d = fresh_daemon
    run = runner(d, which)
    _ok(run("volume", "create", "named-unused"))
    _ok(run("volume", "create", "--label", "keep=1", "named-kept"))
    _ok(run("create", "--name", "holder", "-v", "/held", "-v", "named-used:/u", "busybox", "true"))
    _ok(run("create", "--name", "dropper", "-v", "/dropped", "busybox", "true"))
    held = next(m["Name"] for m in _mounts(d, "holder") if m["Destination"] == "/held")
    dropped = next(m["Name"] for m in _mounts(d, "dropper") if m["Destination"] == "/dropped")
    _ok(run("rm", "dropper"))
    out = _ok(run("volume", "prune", "-f"))
    assert out == f"Deleted Volumes:\n{dropped}\n\nTotal reclaimed space: 0B\n"
    assert _volume_names(d) == {"named-unused", "named-kept", "named-used", held}
    out = _ok(run("volume", "prune", "-a", "-f", "--filter", "label!=keep"))
    assert out.startswith("Deleted Volumes:\nnamed-unused\n\nTotal reclaimed space:")
    assert _volume_names(d) == {"named-kept", "named-used", held}
    prompt = run("volume", "prune", input=b"n\n")
    assert "anonymous local volumes not used by at least one container" in prompt.stdout
    status, body = d.request("POST", "/volumes/prune?filters=%7B%22all%22%3A%5B%221%22%5D%7D")
    assert status == 200 and body["VolumesDeleted"] == ["named-kept"]
    assert _volume_names(d) == {"named-used", held}


# ---- restart ---------------------------------------------------------------------------------------


def test_volumes_survive_daemon_kill9(fresh_daemon: TestDaemon) -> None:
    d = fresh_daemon
    _ok(d.cli("volume", "create", "--label", "a=b", "persist"))
    _ok(d.cli("run", "--rm", "-v", "persist:/d", "busybox", "sh", "-c", "echo survived > /d/f"))
    _ok(d.docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "tmpv"))
    _ok(d.cli("run", "-d", "--name", "runner", "-v", "tmpv:/t", "busybox", "sleep", "120"))
    _ok(d.cli("exec", "runner", "sh", "-c", "echo live > /t/f"))
    _ok(d.cli("create", "--name", "holder", "-v", "/anon", "busybox", "true"))
    anon = _mounts(d, "holder")[0]["Name"]
    d.kill9()
    d.start()
    assert {"persist", "tmpv", anon} <= _volume_names(d)
    assert d.request("GET", "/volumes/persist")[1]["Labels"] == {"a": "b"}
    out = _ok(d.docker("run", "--rm", "-v", "persist:/d", "busybox", "cat", "/d/f"))
    assert out == "survived\n"
    # the running container kept its volume mount; references were rebuilt
    assert _ok(d.cli("exec", "runner", "cat", "/t/f")) == "live\n"
    assert d.request("DELETE", f"/volumes/{anon}")[0] == 409
    assert d.request("DELETE", "/volumes/tmpv")[0] == 409
    _ok(d.cli("rm", "-f", "runner"))
    assert f" {d.data_root / 'volumes' / 'tmpv' / '_data'} " not in _host_mounts()
    _ok(d.cli("rm", "-v", "holder"))
    assert anon not in _volume_names(d)


# ---- security --------------------------------------------------------------------------------------


def test_symlink_targets_never_leave_the_rootfs(
    run: Run, track: Tracker, daemon: TestDaemon, volimage: str, sentinel_dir: Path
) -> None:
    before = sorted(os.listdir(sentinel_dir))
    # /hostlink -> <a real host directory>: the volume lands inside the rootfs, not on the host
    vol = track.name("symabs")
    out = _ok(
        run(
            "run",
            "--rm",
            "-v",
            f"{vol}:/hostlink",
            volimage,
            "sh",
            "-c",
            "echo pwned > /hostlink/written; ls -A /hostlink",
        )
    )
    assert out == "written\n"  # nothing was copied up from the host directory
    assert sorted(os.listdir(sentinel_dir)) == before
    assert (sentinel_dir / "sentinel").read_text() == "host data\n"
    data = daemon.data_root / "volumes" / vol / "_data"
    assert sorted(os.listdir(data)) == ["written"]
    # a bind and a tmpfs through the same link stay inside too
    for flags in (
        ["--tmpfs", "/hostlink"],
        ["--mount", f"type=bind,src={tempfile.gettempdir()},dst=/hostlink/sub,readonly"],
    ):
        _ok(run("run", "--rm", *flags, volimage, "true"))
        assert sorted(os.listdir(sentinel_dir)) == before
    # /etclink -> /etc: the image's /etc, not the host's
    etc = track.name("symetc")
    _ok(run("run", "--rm", "-v", f"{etc}:/etclink", volimage, "true"))
    passwd = (daemon.data_root / "volumes" / etc / "_data" / "passwd").read_text()
    assert passwd == _ok(run("run", "--rm", "busybox", "cat", "/etc/passwd"))
    # /up -> ../../ resolves to the container's root: refused, nothing mounted or written
    up = track.name("symup")
    r = run("run", "--rm", "-v", f"{up}:/up", volimage, "true")
    assert r.returncode != 0
    assert "resolves to the container's root" in r.stderr
    assert os.listdir(daemon.data_root / "volumes" / up / "_data") == []
    assert sorted(os.listdir(sentinel_dir)) == before
    assert str(sentinel_dir) not in _host_mounts()


def test_symlink_inside_a_volume_is_not_followed(
    run: Run, track: Tracker, daemon: TestDaemon, sentinel_dir: Path
) -> None:
    vol = track.name("planted")
    # a container plants a symlink to the host sentinel dir, and to /, inside the volume
    _ok(
        run(
            "run",
            "--rm",
            "-v",
            f"{vol}:/v",
            "busybox",
            "sh",
            "-c",
            f"ln -s {sentinel_dir} /v/link && ln -s / /v/root && mkdir /v/d",
        )
    )
    before = sorted(os.listdir(sentinel_dir))
    # mounting over paths through those links, and reading them, stays in the container
    out = _ok(
        run(
            "run",
            "--rm",
            "-v",
            f"{vol}:/v",
            "--tmpfs",
            "/v/link/t",
            "busybox",
            "sh",
            "-c",
            "ls -A /v/link; cat /v/root/etc/hostname >/dev/null && echo ok",
        )
    )
    assert "sentinel" not in out and out.strip().endswith("ok")
    assert sorted(os.listdir(sentinel_dir)) == before
    assert not (sentinel_dir / "t").exists()
    # removing the volume removes the links, never their targets
    _ok(run("volume", "rm", vol))
    assert (sentinel_dir / "sentinel").read_text() == "host data\n"


# ---- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"Name": "bad name"},
            400,
            'create bad name: "bad name" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path",
        ),
        (
            {"Name": "a"},
            400,
            "create a: volume name is too short, names should be at least two alphanumeric "
            "characters",
        ),
        (
            {"Name": "x1-dy", "Driver": "nosuch"},
            404,
            'create x1-dy: error looking up volume plugin nosuch: plugin "nosuch" not found',
        ),
        (
            {"Name": "x2-dy", "DriverOpts": {"foo": "bar"}},
            400,
            'create x2-dy: invalid option: "foo"',
        ),
    ],
)
def test_bad_volume_create(
    daemon: TestDaemon, body: dict[str, Any], status: int, message: str
) -> None:
    got_status, got = daemon.request("POST", "/volumes/create", body)
    assert (got_status, got) == (status, {"message": message})


def test_bad_volume_filters(daemon: TestDaemon) -> None:
    status, body = daemon.request("GET", "/volumes?filters=%7B%22bogus%22%3A%5B%221%22%5D%7D")
    assert (status, body) == (400, {"message": "Invalid filter 'bogus'"})


@pytest.mark.parametrize(
    ("host_config", "message"),
    [
        ({"Binds": ["v1-dy:/data:foo"]}, "invalid mode: foo"),
        (
            {"Binds": ["v1-dy:relative"]},
            "invalid volume specification: 'v1-dy:relative': invalid mount config for type "
            "\"volume\": invalid mount path: 'relative' mount path must be absolute",
        ),
        (
            {"Mounts": [{"Type": "volume", "Target": "/x", "Bogus": True}]},
            'invalid mount config for type "volume": unknown option Bogus',
        ),
        (
            {"Mounts": [{"Type": "bind", "Source": "/nonexist-dy", "Target": "/x"}]},
            'invalid mount config for type "bind": bind source path does not exist: /nonexist-dy',
        ),
        (
            {"Mounts": [{"Type": "bogus", "Target": "/x"}]},
            'invalid mount config for type "bogus": mount type unknown',
        ),
        ({"Tmpfs": {"/x": "foo=1"}}, 'invalid tmpfs option ["foo" "1"]'),
        ({"Binds": ["a1-dy:/d", "a2-dy:/d"]}, "Duplicate mount point: /d"),
        (
            {"Binds": ["bad name:/x"]},
            'create bad name: "bad name" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path",
        ),
    ],
)
def test_bad_mounts_at_create(
    daemon: TestDaemon, host_config: dict[str, Any], message: str
) -> None:
    before = _volume_names(daemon)
    status, body = daemon.request(
        "POST",
        "/containers/create",
        {"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config},
    )
    assert (status, body) == (400, {"message": message})
    assert _volume_names(daemon) == before  # nothing created on the way


def test_bad_mount_flags_in_both_clis(run: Run) -> None:
    r = run("run", "--rm", "--mount", "type=volume,src=v1,dst=/x,foo=bar", "busybox", "true")
    assert r.returncode == 125
    assert "unexpected key 'foo' in 'foo=bar'" in r.stderr
    r = run("run", "--rm", "-v", "v1-dy:/data:foo", "busybox", "true")
    assert r.returncode == 125 and "invalid mode: foo" in r.stderr
