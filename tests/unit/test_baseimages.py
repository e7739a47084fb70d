"""dockyard.baseimages without root: the busybox image, layer diffs, caching, mirror lookup."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
import time
from pathlib import Path

import pytest

from dockyard.baseimages import BuildOptions, build, select
from dockyard.baseimages.busybox import DEFAULT_BUSYBOX, is_static_elf
from dockyard.baseimages.debian import detect_mirror, slim
from dockyard.baseimages.main import main
from dockyard.baseimages.tarlayer import LayerWriter, write_tree
from dockyard.baseimages.tree import diff, fingerprints
from dockyard.baseimages.workspace import _unescape, mounts_below, workspace
from dockyard.errors import InvalidArgument

pytestmark = pytest.mark.unit

needs_busybox = pytest.mark.skipif(
    not DEFAULT_BUSYBOX.is_file(), reason="needs busybox-static (/bin/busybox)"
)


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def _layer(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def _build_busybox(out: Path, cache: Path) -> str:
    (image,) = build(BuildOptions(out=out, cache_dir=cache, only=("busybox",)))
    assert image.path == out / "busybox.tar"
    assert image.ref == "busybox:latest"
    return image.image_id


@pytest.fixture
def busybox_archive(tmp_path: Path) -> tuple[Path, str]:
    image_id = _build_busybox(tmp_path / "out", tmp_path / "cache")
    return tmp_path / "out" / "busybox.tar", image_id


@needs_busybox
def test_busybox_archive_is_a_docker_save(busybox_archive: tuple[Path, str]) -> None:
    archive, image_id = busybox_archive
    files = _members(archive)
    (manifest,) = json.loads(files["manifest.json"])
    assert manifest["RepoTags"] == ["busybox:latest"]
    assert manifest["Config"] == image_id.removeprefix("sha256:") + ".json"
    assert hashlib.sha256(files[manifest["Config"]]).hexdigest() == manifest["Config"][:-5]
    config = json.loads(files[manifest["Config"]])
    assert config["architecture"] and config["os"] == "linux"
    assert config["config"]["Cmd"] == ["sh"]
    assert config["config"]["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ]
    diff_ids = [
        "sha256:" + hashlib.sha256(files[layer]).hexdigest() for layer in manifest["Layers"]
    ]
    assert config["rootfs"] == {"type": "layers", "diff_ids": diff_ids}
    assert [h.get("empty_layer", False) for h in config["history"]] == [False, True]
    (layer_path,) = manifest["Layers"]
    layer_dir = layer_path.split("/")[0]
    assert files[f"{layer_dir}/VERSION"] == b"1.0"
    assert json.loads(files[f"{layer_dir}/json"])["id"] == layer_dir
    assert json.loads(files["repositories"]) == {"busybox": {"latest": layer_dir}}


@needs_busybox
def test_busybox_layer_contents(busybox_archive: tuple[Path, str]) -> None:
    files = _members(busybox_archive[0])
    (manifest,) = json.loads(files["manifest.json"])
    entries = _layer(files[manifest["Layers"][0]])
    busybox = entries["bin/busybox"]
    assert busybox.isfile() and busybox.mode == 0o755 and busybox.size > 100_000
    for applet in ("bin/sh", "bin/echo", "bin/ls", "usr/bin/env", "sbin/ifconfig"):
        assert entries[applet].issym() and entries[applet].linkname == "/bin/busybox", applet
    assert entries["tmp"].isdir() and entries["tmp"].mode == 0o1777
    assert entries["root"].mode == 0o700
    for d in ("dev", "proc", "sys", "home", "var", "etc", "usr/bin", "usr/sbin"):
        assert entries[d].isdir(), d
    for m in entries.values():
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", ""), m.name
        assert m.mtime == 1704067200, m.name
    with tarfile.open(fileobj=io.BytesIO(files[manifest["Layers"][0]])) as tar:
        passwd = tar.extractfile("etc/passwd").read().decode()  # type: ignore[union-attr]
    assert passwd.startswith("root:x:0:0:root:/root:/bin/sh\n")
    assert "nobody:x:65534:65534:" in passwd
    names = [m for m in entries]
    assert names == sorted(names, key=lambda n: n.split("/")), "entries are in canonical order"


@needs_busybox
def test_busybox_is_deterministic_and_cached(tmp_path: Path) -> None:
    first = _build_busybox(tmp_path / "a", tmp_path / "cache-a")
    second = _build_busybox(tmp_path / "b", tmp_path / "cache-b")
    assert first == second
    assert (tmp_path / "a/busybox.tar").read_bytes() == (tmp_path / "b/busybox.tar").read_bytes()

    started = time.monotonic()
    options = BuildOptions(out=tmp_path / "a", cache_dir=tmp_path / "cache-a", only=("busybox",))
    (again,) = build(options)
    assert time.monotonic() - started < 2
    assert again.cached and again.image_id == first


@needs_busybox
def test_corrupt_cached_layer_is_rebuilt(tmp_path: Path) -> None:
    image_id = _build_busybox(tmp_path / "out", tmp_path / "cache")
    (cached,) = (tmp_path / "cache/layers").iterdir()
    cached.write_bytes(cached.read_bytes()[:-1024])
    options = BuildOptions(out=tmp_path / "out", cache_dir=tmp_path / "cache", only=("busybox",))
    (image,) = build(options)
    assert not image.cached and image.image_id == image_id
    assert list((tmp_path / "cache/work").iterdir()) == []


@needs_busybox
def test_cli_prints_path_ref_and_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    code = main(["build", "--only", "busybox", "--cache-dir", str(cache), str(out)])
    assert code == 0
    path, ref, image_id = capsys.readouterr().out.split()
    assert (path, ref) == (str(out / "busybox.tar"), "busybox:latest")
    assert image_id.startswith("sha256:") and len(image_id) == 71


def test_cli_rejects_unknown_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--only", "alpine", str(tmp_path)]) == 1
    assert "unknown image 'alpine'" in capsys.readouterr().err


def test_select_keeps_catalogue_order() -> None:
    assert select(["nginx", "busybox:latest"]) == ("busybox", "nginx")
    with pytest.raises(InvalidArgument):
        select(["alpine"])


def test_static_elf_detection(tmp_path: Path) -> None:
    if DEFAULT_BUSYBOX.is_file():
        assert is_static_elf(DEFAULT_BUSYBOX.read_bytes())
    assert not is_static_elf(Path("/bin/ls").read_bytes())  # dynamic: has PT_INTERP
    assert not is_static_elf(b"#!/bin/sh\n")


def test_static_busybox_required(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["build", "--only", "busybox", "--busybox", "/bin/ls"]
    assert main([*args, "--cache-dir", str(tmp_path / "c"), str(tmp_path / "o")]) == 1
    assert "not a static ELF" in capsys.readouterr().err


def _tree_layer(
    tmp_path: Path, root: Path, paths: set[str], whiteouts: set[str]
) -> dict[str, tarfile.TarInfo]:
    with LayerWriter(tmp_path / "layer.tar", 1704067200) as writer:
        write_tree(writer, root, paths, whiteouts)
    return _layer((tmp_path / "layer.tar").read_bytes())


def test_diff_finds_changes_and_whiteouts(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for d in ("etc/keep", "etc/gone-dir/sub", "var/lib", "dev"):
        (root / d).mkdir(parents=True)
    (root / "etc/keep/same").write_text("same")
    (root / "etc/keep/edit").write_text("old")
    (root / "etc/keep/rewritten").write_text("identical")
    (root / "etc/gone-file").write_text("x")
    (root / "etc/gone-dir/sub/f").write_text("x")
    (root / "etc/link").symlink_to("keep/same")
    base = fingerprints(root)

    (root / "etc/keep/edit").write_text("new")
    (root / "etc/keep/rewritten").unlink()
    (root / "etc/keep/rewritten").write_text("identical")
    (root / "etc/gone-file").unlink()
    for p in ("etc/gone-dir/sub/f", "etc/gone-dir/sub", "etc/gone-dir"):
        (root / p).unlink() if (root / p).is_file() else (root / p).rmdir()
    (root / "etc/link").unlink()
    (root / "etc/link").symlink_to("keep/edit")
    (root / "var/lib/new").write_text("new")
    os.link(root / "var/lib/new", root / "var/lib/new-hardlink")
    (root / "dev/null-ish").write_text("runtime only")
    os.chmod(root / "etc/keep/same", 0o600)

    paths, whiteouts = diff(base, root)
    assert whiteouts == {"etc/.wh.gone-file", "etc/.wh.gone-dir"}
    assert paths == {
        "etc",
        "etc/keep",
        "etc/keep/edit",
        "etc/keep/same",
        "etc/link",
        "var",
        "var/lib",
        "var/lib/new",
        "var/lib/new-hardlink",
    }
    entries = _tree_layer(tmp_path, root, paths, whiteouts)
    assert entries["etc/.wh.gone-dir"].isfile() and entries["etc/.wh.gone-dir"].size == 0
    assert entries["etc/link"].linkname == "keep/edit"
    assert entries["etc/keep/same"].mode == 0o600
    assert entries["var/lib/new"].isfile()
    assert entries["var/lib/new-hardlink"].islnk()
    assert entries["var/lib/new-hardlink"].linkname == "var/lib/new"


def test_hardlink_to_a_file_outside_the_layer_is_a_copy(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a").write_text("data")
    os.link(root / "a", root / "b")
    entries = _tree_layer(tmp_path, root, {"b"}, set())
    assert entries["b"].isfile() and entries["b"].size == 4


def test_slim_keeps_only_copyright(tmp_path: Path) -> None:
    doc = tmp_path / "usr/share/doc"
    (doc / "bash").mkdir(parents=True)
    (doc / "bash/copyright").write_text("GPL")
    (doc / "bash/changelog.gz").write_text("x")
    (doc / "nocopy").mkdir()
    (doc / "nocopy/README").write_text("x")
    (doc / "alias").symlink_to("bash")
    (tmp_path / "usr/share/man/man1").mkdir(parents=True)
    (tmp_path / "usr/share/man/man1/ls.1.gz").write_text("x")
    slim(tmp_path)
    left = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "usr/share").rglob("*"))
    assert left == [
        "usr/share/doc",
        "usr/share/doc/bash",
        "usr/share/doc/bash/copyright",
        "usr/share/man",
    ]


def test_detect_mirror(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    assert detect_mirror(tmp_path) == "http://deb.debian.org/debian"
    (tmp_path / "sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.local/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://mirror.local/debian-security\nSuites: bookworm-security\n"
    )
    (tmp_path / "sources.list.d/other.list.disabled").write_text(
        "deb http://x/debian bookworm main\n"
    )
    assert detect_mirror(tmp_path) == "http://mirror.local/debian"
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://first.local/debian bookworm main\n"
    )
    assert detect_mirror(tmp_path) == "http://first.local/debian"


def test_workspace_is_removed_on_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), workspace(tmp_path, "job") as scratch:
        (scratch / "file").write_text("x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    assert mounts_below(tmp_path) == []
    assert _unescape(r"/mnt/with\040space") == "/mnt/with space"


def test_mode_bits_survive(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sticky").mkdir(parents=True)
    os.chmod(root / "sticky", 0o1777)
    (root / "suid").write_text("#!/bin/sh\n")
    os.chmod(root / "suid", 0o4755)
    os.mkfifo(root / "fifo")
    entries = _tree_layer(tmp_path, root, {"sticky", "suid", "fifo"}, set())
    assert entries["sticky"].mode == 0o1777
    assert entries["suid"].mode == 0o4755 and stat.S_ISREG(entries["suid"].mode | stat.S_IFREG)
    assert entries["fifo"].isfifo()
