"""OverlaySnapshotter metadata and mount lists (no mounting, no root)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.mount import Mount
from dockyard.snapshots import Kind, OverlaySnapshotter, disk_usage
from dockyard.store import Database

pytestmark = pytest.mark.unit


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "dockyard.db")
    yield database
    database.close()


@pytest.fixture
def sn(tmp_path: Path, db: Database) -> OverlaySnapshotter:
    return OverlaySnapshotter(tmp_path / "snapshots", db)


def _layer(sn: OverlaySnapshotter, name: str, parent: str | None, files: dict[str, bytes]) -> None:
    sn.prepare(f"extract-{name}", parent)
    upper = sn.upper_dir(f"extract-{name}")
    for rel, data in files.items():
        (upper / rel).parent.mkdir(parents=True, exist_ok=True)
        (upper / rel).write_bytes(data)
    sn.commit(name, f"extract-{name}")


def _opts(m: Mount) -> dict[str, str]:
    return dict(o.split("=", 1) for o in m.options if "=" in o)


def test_prepare_without_parent_is_a_rw_bind(sn: OverlaySnapshotter) -> None:
    mounts = sn.prepare("a", None)
    upper = sn.upper_dir("a")
    assert mounts == [Mount("bind", str(upper), ("rw", "rbind"))]
    assert upper.is_dir() and (upper.parent / "work").is_dir()
    info = sn.stat("a")
    assert info is not None and info.kind is Kind.ACTIVE and info.parent is None
    assert sn.mounts("a") == mounts


def test_commit_and_child_overlay(sn: OverlaySnapshotter) -> None:
    _layer(sn, "L0", None, {"etc/hostname": b"base\n"})
    _layer(sn, "L1", "L0", {"data/x": b"12345"})
    base = sn.stat("L0")
    assert base is not None and base.kind is Kind.COMMITTED and base.size == 5
    assert not (sn.upper_dir("L0").parent / "work").exists()
    assert sn.stat("extract-L0") is None

    mounts = sn.prepare("ctr", "L1")
    assert len(mounts) == 1 and mounts[0].type == "overlay" and mounts[0].source == "overlay"
    opts = _opts(mounts[0])
    assert opts["lowerdir"] == f"{sn.upper_dir('L1')}:{sn.upper_dir('L0')}"  # top first
    assert opts["upperdir"] == str(sn.upper_dir("ctr"))
    assert opts["workdir"] == str(sn.upper_dir("ctr").parent / "work")
    # short numeric directory names keep lowerdir short
    assert all(p.split("/")[-2].isdigit() for p in opts["lowerdir"].split(":"))


def test_views_and_committed_mounts_are_read_only(sn: OverlaySnapshotter) -> None:
    _layer(sn, "L0", None, {"a": b"a"})
    _layer(sn, "L1", "L0", {"b": b"b"})
    assert sn.view("v0", "L0") == [Mount("bind", str(sn.upper_dir("L0")), ("ro", "rbind"))]
    (v1,) = sn.view("v1", "L1")
    assert v1.type == "overlay"
    assert "upperdir" not in _opts(v1) and "workdir" not in _opts(v1)
    assert _opts(v1)["lowerdir"] == f"{sn.upper_dir('L1')}:{sn.upper_dir('L0')}"
    assert sn.mounts("L0") == [Mount("bind", str(sn.upper_dir("L0")), ("ro", "rbind"))]
    assert sn.mounts("L1") == [v1]
    with pytest.raises(InvalidArgument):
        sn.upper_dir("v1")
    with pytest.raises(InvalidArgument, match="not active"):
        sn.commit("x", "v1")


def test_prepare_errors(sn: OverlaySnapshotter) -> None:
    sn.prepare("a", None)
    with pytest.raises(Conflict, match="already exists"):
        sn.prepare("a", None)
    with pytest.raises(NotFound):
        sn.prepare("b", "nope")
    with pytest.raises(InvalidArgument, match="not committed"):
        sn.prepare("b", "a")
    with pytest.raises(InvalidArgument):
        sn.prepare("", None)
    with pytest.raises(NotFound):
        sn.mounts("nope")
    assert [s.key for s in sn.walk()] == ["a"]


def test_commit_errors(sn: OverlaySnapshotter) -> None:
    _layer(sn, "L0", None, {})
    sn.prepare("a", None)
    with pytest.raises(Conflict):
        sn.commit("L0", "a")
    with pytest.raises(NotFound):
        sn.commit("x", "nope")
    with pytest.raises(InvalidArgument, match="not active"):
        sn.commit("x", "L0")
    with pytest.raises(NotFound):
        sn.commit("x", "a", parent="nope")


def test_commit_can_rebase_onto_a_parent(sn: OverlaySnapshotter) -> None:
    # layers are unpacked in parallel without parents, then committed bottom-up
    sn.prepare("extract-1", None)
    sn.prepare("extract-0", None)
    sn.commit("L0", "extract-0")
    sn.commit("L1", "extract-1", parent="L0")
    info = sn.stat("L1")
    assert info is not None and info.parent == "L0"
    assert [s.key for s in sn.chain("L1")] == ["L1", "L0"]


def test_remove_refuses_parents_and_frees_directories(sn: OverlaySnapshotter) -> None:
    _layer(sn, "L0", None, {"f": b"x"})
    sn.prepare("ctr", "L0")
    with pytest.raises(Conflict, match="child"):
        sn.remove("L0")
    ctr_dir = sn.upper_dir("ctr").parent
    sn.remove("ctr")
    assert not ctr_dir.exists()
    l0_dir = sn.upper_dir("L0").parent
    sn.remove("L0")
    assert not l0_dir.exists()
    assert sn.walk() == []
    with pytest.raises(NotFound):
        sn.remove("L0")
    assert sorted(os.listdir(sn.root)) == []


def test_directory_numbers_are_not_clobbered_after_remove(sn: OverlaySnapshotter) -> None:
    _layer(sn, "L0", None, {"keep": b"1"})
    sn.prepare("tmp", None)
    sn.remove("tmp")
    sn.prepare("tmp2", None)  # may reuse the number; must start empty
    assert list(sn.upper_dir("tmp2").iterdir()) == []
    assert (sn.upper_dir("L0") / "keep").read_bytes() == b"1"


def test_cleanup_drops_half_made_layers_and_strays(sn: OverlaySnapshotter) -> None:
    _layer(sn, "L0", None, {"f": b"x"})
    sn.prepare("extract-crashed", "L0")
    sn.prepare("container", "L0")
    stray = sn.root / "999"
    (stray / "diff").mkdir(parents=True)
    (sn.root / ".rm-5-abc").mkdir()
    crashed_dir = sn.upper_dir("extract-crashed").parent
    sn.cleanup()
    assert {s.key for s in sn.walk()} == {"L0", "container"}
    assert not stray.exists() and not crashed_dir.exists()
    assert not (sn.root / ".rm-5-abc").exists()
    assert sn.upper_dir("L0").exists() and sn.upper_dir("container").exists()


def test_usage_and_disk_usage_count_hardlinks_once(sn: OverlaySnapshotter) -> None:
    sn.prepare("a", None)
    upper = sn.upper_dir("a")
    (upper / "f").write_bytes(b"x" * 1000)
    os.link(upper / "f", upper / "g")
    (upper / "d").mkdir()
    (upper / "d" / "h").write_bytes(b"y" * 10)
    os.symlink("f", upper / "s")
    assert disk_usage(upper) == 1000 + 10 + 1
    assert sn.usage("a") == 1011
    sn.commit("A", "a")
    info = sn.stat("A")
    assert info is not None and info.size == 1011 and sn.usage("A") == 1011


def test_metadata_survives_reopen(tmp_path: Path, db: Database, sn: OverlaySnapshotter) -> None:
    _layer(sn, "L0", None, {"f": b"x"})
    db.close()
    db2 = Database(tmp_path / "dockyard.db")
    try:
        again = OverlaySnapshotter(tmp_path / "snapshots", db2)
        assert [s.key for s in again.walk()] == ["L0"]
        assert (again.upper_dir("L0") / "f").read_bytes() == b"x"
    finally:
        db2.close()


# -- mount.py's pure parts: how option words become flags and data ----------------------------


def test_mount_options_split_into_flags_propagation_and_data() -> None:
    from dockyard import mount as m

    flags, propagation, data = m._parse(
        ("ro", "rbind", "nosuid", "rprivate", "lowerdir=/a:/b", "index=off")
    )
    assert flags == m.MS_RDONLY | m.MS_BIND | m.MS_REC | m.MS_NOSUID
    assert propagation == m.MS_PRIVATE | m.MS_REC
    assert data == ["lowerdir=/a:/b", "index=off"]
    flags, _, _ = m._parse(("ro", "rw", "noexec", "exec", "defaults"))
    assert flags == 0


def test_long_overlay_options_are_made_relative() -> None:
    from dockyard import mount as m

    data = [
        "index=off",
        "workdir=/var/lib/x/snapshots/9/work",
        "upperdir=/var/lib/x/snapshots/9/diff",
        "lowerdir=/var/lib/x/snapshots/2/diff:/var/lib/x/snapshots/1/diff",
    ]
    rel, cwd = m._relative_data(data)
    assert cwd == "/var/lib/x/snapshots"
    assert rel == "index=off,workdir=9/work,upperdir=9/diff,lowerdir=2/diff:1/diff"


def test_mountinfo_unescaping() -> None:
    from dockyard import mount as m

    assert m._unescape(r"/mnt/with\040space") == "/mnt/with space"
    assert m._unescape(r"/a\134b") == "/a\\b"
    assert m._unescape("/plain") == "/plain"


@pytest.mark.parametrize(
    "package",
    ["dockyard.oci", "dockyard.content", "dockyard.snapshots", "dockyard.images", "dockyard.mount"],
)
def test_exported_members(package: str) -> None:
    import importlib

    module = importlib.import_module(package)
    exported = set(module.__all__)
    assert all(hasattr(module, name) for name in exported)
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and getattr(v, "__module__", package).startswith(package)
        and not isinstance(v, type(importlib))
        and callable(v)
    }
    assert public <= exported, public - exported
