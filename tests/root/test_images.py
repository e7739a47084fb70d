"""ImageService against real test images: load (docker-archive and OCI layout), list,
inspect, resolve, tag, save → load, delete semantics, and loads that must store nothing.

Loading needs no root (layers are unpacked into plain directories); only the test that
mounts an image's layers does.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dockyard.content import ContentStore
from dockyard.errors import Conflict, InvalidArgument, NotFound, SystemError
from dockyard.images import ImageService
from dockyard.mount import is_mounted, mount_all, unmount_all
from dockyard.snapshots import OverlaySnapshotter
from dockyard.store import Database
from tests.conftest import TEST_IMAGES, run_image_builder

SHARED_OUT = TEST_IMAGES

BUSYBOX_ID = "sha256:6fc5bf6b4077214baf497240008ceaf652d31db8efe4c278cae7f2be9dde8d04"
MULTI_ID = "sha256:ff5a91d0ecbbfefa5d57c5ad45e30a60c1c714c4d2ad97c461cb798a7ed48d0d"
BUSYBOX_DIFF = "sha256:fd3b0a9d710714bfa3cc0da9882538da047cecf27078685b2b3f2384bc57d427"

NO_USERS: Any = lambda _id: []  # noqa: E731


# -- fixtures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSet:
    dir: Path
    info: dict[str, Any]

    def docker_archive(self, short: str) -> Path:
        return self.dir / f"{short}_latest.tar"

    def oci_archive(self, short: str) -> Path:
        return self.dir / f"{short}_oci.tar"


def _copy_consistent(src: Path, dest: Path) -> bool:
    """Copy the outputs we use; False if another session was rewriting them meanwhile."""
    try:
        info = json.loads((src / "images.json").read_text())
        for short in ("busybox", "busybox-multi"):
            shutil.copy2(src / f"{short}_latest.tar", dest / f"{short}_latest.tar")
            shutil.copytree(src / short, dest / short, dirs_exist_ok=True)
            for blob in (dest / short / "blobs" / "sha256").iterdir():
                if hashlib.sha256(blob.read_bytes()).hexdigest() != blob.name:
                    return False
            with tarfile.open(dest / f"{short}_latest.tar") as tar:
                json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        (dest / "images.json").write_text(json.dumps(info))
    except (OSError, ValueError, tarfile.TarError, KeyError):
        return False
    return True


@pytest.fixture(scope="session")
def test_images(tmp_path_factory: pytest.TempPathFactory) -> ImageSet:
    """busybox and busybox-multi, built by the shared tool (cached: near-instant) and
    copied here, because other sessions may rewrite the shared output directory."""
    dest = tmp_path_factory.mktemp("test-images")
    for _ in range(3):
        try:
            run_image_builder(SHARED_OUT, timeout=900)
        except (OSError, subprocess.SubprocessError):
            continue
        if _copy_consistent(SHARED_OUT, dest):
            break
    else:  # a private build: same inputs, same layer cache, nobody else writes it
        private = tmp_path_factory.mktemp("test-images-build")
        run_image_builder(private, timeout=900)
        assert _copy_consistent(private, dest)
    for short in ("busybox", "busybox-multi"):
        with tarfile.open(dest / f"{short}_oci.tar", "w") as tar:
            for entry in sorted((dest / short).iterdir()):
                tar.add(entry, arcname=entry.name)
    return ImageSet(dest, json.loads((dest / "images.json").read_text()))


@dataclass
class Engine:
    root: Path
    db: Database
    content: ContentStore
    snapshots: OverlaySnapshotter
    images: ImageService

    def load(self, path: Path, **kw: Any) -> list[str]:
        with open(path, "rb") as f:
            return self.images.load(f, **kw)

    def state(self) -> tuple[int, list[str], list[str], list[str], list[str]]:
        """Everything a failed load must leave as it was."""
        return (
            self.images.count(),
            sorted(s.key for s in self.snapshots.walk()),
            self.content.walk(),
            sorted(os.listdir(self.root / "content" / "ingest")),
            sorted(os.listdir(self.root / "snapshots")),
        )


def _engine(root: Path) -> Engine:
    db = Database(root / "dockyard.db")
    content = ContentStore(root / "content")
    snapshots = OverlaySnapshotter(root / "snapshots", db)
    return Engine(root, db, content, snapshots, ImageService(db, content, snapshots))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = _engine(tmp_path / "engine")
    yield e
    e.db.close()


EMPTY = (0, [], [], [], [])


# -- load ------------------------------------------------------------------------------------


def test_load_docker_archive(engine: Engine, test_images: ImageSet) -> None:
    progress: list[dict[str, Any]] = []
    messages = engine.load(test_images.docker_archive("busybox"), progress=progress.append)
    assert messages == ["Loaded image: busybox:latest"]
    assert progress, "Loading layer progress expected"
    assert all(m["status"] == "Loading layer" and m["id"] == BUSYBOX_DIFF[7:19] for m in progress)
    last = progress[-1]["progressDetail"]
    assert last["current"] == last["total"] > 0

    image = engine.images.resolve("busybox")
    assert image.id == BUSYBOX_ID
    assert image.repo_tags == ["busybox:latest"] and image.repo_digests == []
    assert image.chain_id == BUSYBOX_DIFF
    assert image.created == 1704067200 and image.size > 1_000_000
    assert engine.images.rootfs_parent(image) == BUSYBOX_DIFF
    assert [s.key for s in engine.snapshots.walk()] == [BUSYBOX_DIFF]
    assert (engine.snapshots.upper_dir(BUSYBOX_DIFF) / "bin" / "busybox").is_file()
    # config, layer and a manifest naming them are kept for save and push
    assert engine.content.has(BUSYBOX_ID)
    assert len(engine.content.walk()) == 3
    assert os.listdir(engine.root / "content" / "ingest") == []


def test_load_oci_layout(engine: Engine, test_images: ImageSet) -> None:
    messages = engine.load(test_images.oci_archive("busybox"))
    assert messages == ["Loaded image: busybox:latest"]
    image = engine.images.resolve("busybox:latest")
    assert image.id == BUSYBOX_ID  # same image whichever format it came in
    manifest = test_images.info["images"]["busybox:latest"]["manifest_digest"]
    assert image.repo_digests == [f"busybox@{manifest}"]
    assert engine.images.resolve(f"busybox@{manifest}").id == BUSYBOX_ID
    assert engine.content.has(manifest)
    # the docker-archive of the same image adds nothing new but its name is kept
    assert engine.load(test_images.docker_archive("busybox")) == ["Loaded image: busybox:latest"]
    assert engine.images.count() == 1


def test_load_two_images_sharing_a_layer(engine: Engine, test_images: ImageSet) -> None:
    engine.load(test_images.docker_archive("busybox"))
    progress: list[dict[str, Any]] = []
    engine.load(test_images.oci_archive("busybox-multi"), progress=progress.append)
    # the shared base layer is not unpacked again
    assert BUSYBOX_DIFF[7:19] not in {m["id"] for m in progress}
    keys = [s.key for s in engine.snapshots.walk()]
    assert len(keys) == 3 and keys[0] == BUSYBOX_DIFF
    multi = engine.images.resolve("busybox-multi")
    assert multi.id == MULTI_ID
    chain = engine.snapshots.chain(multi.chain_id or "")
    assert {s.key for s in chain} == set(keys)
    assert chain[-1].key == BUSYBOX_DIFF and chain[0].key == multi.chain_id


def test_concurrent_loads_of_the_same_image(engine: Engine, test_images: ImageSet) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def load() -> None:
        try:
            barrier.wait()
            engine.load(test_images.docker_archive("busybox-multi"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert engine.images.count() == 1
    assert len(engine.snapshots.walk()) == 3
    assert all(s.kind == "committed" for s in engine.snapshots.walk())
    assert os.listdir(engine.root / "content" / "ingest") == []


# -- resolve / list / inspect ------------------------------------------------------------------


def test_resolve(engine: Engine, test_images: ImageSet) -> None:
    engine.load(test_images.docker_archive("busybox"))
    hex_id = BUSYBOX_ID[7:]
    for name in (
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        "docker.io/library/busybox:latest",
        "library/busybox",
        BUSYBOX_ID,
        hex_id,
        hex_id[:12],
        hex_id[:1],
        "sha256:" + hex_id[:5],
    ):
        assert engine.images.resolve(name).id == BUSYBOX_ID, name
    with pytest.raises(NotFound, match=r"^No such image: busybox:1$"):
        engine.images.resolve("busybox:1")
    with pytest.raises(NotFound, match=r"^No such image: nosuch:latest$"):
        engine.images.resolve("nosuch")
    with pytest.raises(NotFound, match=r"^No such image: 127.0.0.1:5000/x:latest$"):
        engine.images.resolve("127.0.0.1:5000/x")
    with pytest.raises(NotFound, match=f"No such image: sha256:{'0' * 64}"):
        engine.images.resolve("0" * 64)
    with pytest.raises(NotFound):
        engine.images.resolve("0123")  # no such prefix
    with pytest.raises(InvalidArgument):
        engine.images.resolve("Busybox")


def test_resolve_by_short_prefixes(engine: Engine, test_images: ImageSet) -> None:
    engine.load(test_images.docker_archive("busybox"))
    engine.load(test_images.docker_archive("busybox-multi"))
    assert engine.images.resolve(MULTI_ID[7:8]).id == MULTI_ID
    assert engine.images.resolve(BUSYBOX_ID[7:8]).id == BUSYBOX_ID
    with pytest.raises(InvalidArgument):
        engine.images.resolve("sha256:")


def test_list_is_image_summary(engine: Engine, test_images: ImageSet) -> None:
    assert engine.images.list() == []
    engine.load(test_images.docker_archive("busybox"))
    engine.load(test_images.docker_archive("busybox-multi"))
    summaries = engine.images.list()
    assert [s["Id"] for s in summaries] == sorted([BUSYBOX_ID, MULTI_ID], reverse=True)
    bb = next(s for s in summaries if s["Id"] == BUSYBOX_ID)
    assert bb == {
        "Id": BUSYBOX_ID,
        "ParentId": "",
        "RepoTags": ["busybox:latest"],
        "RepoDigests": [],
        "Created": 1704067200,
        "Size": bb["Size"],
        "SharedSize": -1,
        "Labels": {},
        "Containers": -1,
    }
    assert bb["Size"] == engine.images.resolve("busybox").size > 0


def test_list_filters(engine: Engine, test_images: ImageSet) -> None:
    engine.load(test_images.docker_archive("busybox"))
    engine.load(test_images.docker_archive("busybox-multi"))
    engine.images.tag("busybox", "127.0.0.1:5000/team/app", "v1")

    def ids(**filters: list[str]) -> list[str]:
        return sorted(s["Id"] for s in engine.images.list(filters=filters))

    assert ids(reference=["busybox"]) == [BUSYBOX_ID]
    assert ids(reference=["busybox*"]) == sorted([BUSYBOX_ID, MULTI_ID])
    assert ids(reference=["busybox:lat*"]) == [BUSYBOX_ID]
    assert ids(reference=["*/team/*"]) == [BUSYBOX_ID]
    assert ids(reference=["team/*"]) == []
    (only,) = engine.images.list(filters={"reference": ["127.0.0.1:5000/team/app:*"]})
    assert only["RepoTags"] == ["127.0.0.1:5000/team/app:v1"]  # only the matching names
    assert ids(dangling=["true"]) == []
    assert ids(dangling=["false"]) == sorted([BUSYBOX_ID, MULTI_ID])
    assert ids(label=["maintainer"]) == []
    assert ids(before=["busybox"]) == [] and ids(since=["busybox"]) == []  # same created
    assert ids(until=["2024-01-01T00:00:01Z"]) == sorted([BUSYBOX_ID, MULTI_ID])
    assert ids(until=["2023-12-31T00:00:00Z"]) == []
    with pytest.raises(InvalidArgument, match="Invalid filter 'bogus'"):
        engine.images.list(filters={"bogus": ["1"]})
    with pytest.raises(InvalidArgument, match="Invalid filter 'dangling=maybe'"):
        engine.images.list(filters={"dangling": ["maybe"]})
    with pytest.raises(NotFound):
        engine.images.list(filters={"before": ["nosuch"]})
    engine.images.delete("busybox-multi", users=NO_USERS)
    engine.load(test_images.docker_archive("busybox-multi"))
    engine.images.tag("busybox", "busybox-multi", None)  # busybox-multi's image is dangling
    assert ids(dangling=["true"]) == [MULTI_ID]


def test_inspect(engine: Engine, test_images: ImageSet) -> None:
    engine.load(test_images.docker_archive("busybox-multi"))
    out = engine.images.inspect("busybox-multi")
    assert out["Id"] == MULTI_ID
    assert out["RepoTags"] == ["busybox-multi:latest"] and out["RepoDigests"] == []
    assert out["Parent"] == "" and out["Comment"] == "" and out["DockerVersion"] == ""
    assert out["Created"] == "2024-01-01T00:00:00Z"
    assert out["Architecture"] == "amd64" and out["Os"] == "linux"
    assert out["Config"]["Cmd"] == ["sh"] and out["Config"]["Entrypoint"] is None
    assert out["Config"]["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ]
    layers = out["RootFS"]["Layers"]
    assert out["RootFS"]["Type"] == "layers" and len(layers) == 3 and layers[0] == BUSYBOX_DIFF
    assert out["Size"] == engine.images.resolve(MULTI_ID).size
    gd = out["GraphDriver"]
    assert gd["Name"] == "overlay2"
    assert Path(gd["Data"]["UpperDir"]).is_dir()
    assert len(gd["Data"]["LowerDir"].split(":")) == 2
    assert out["Metadata"] == {"LastTagTime": "0001-01-01T00:00:00Z"}
    with pytest.raises(NotFound, match="No such image: nosuch:1"):
        engine.images.inspect("nosuch:1")


# -- tag --------------------------------------------------------------------------------------


def test_tag(engine: Engine, test_images: ImageSet) -> None:
    engine.load(test_images.docker_archive("busybox"))
    engine.images.tag("busybox", "docker.io/library/tt", "1")  # what the docker CLI sends
    engine.images.tag(BUSYBOX_ID[7:19], "tt", None)
    engine.images.tag("busybox", "127.0.0.1:5000/busybox", "")
    image = engine.images.resolve("tt:1")
    assert image.id == BUSYBOX_ID
    assert image.repo_tags == [
        "127.0.0.1:5000/busybox:latest",
        "busybox:latest",
        "tt:1",
        "tt:latest",
    ]
    assert engine.images.resolve("tt").id == BUSYBOX_ID
    assert engine.images.inspect("tt")["Metadata"]["LastTagTime"].endswith("Z")
    assert engine.images.inspect("tt")["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z"
    for repo, tag in (("Bad", None), ("tt", "bad tag"), ("tt@sha256:" + "a" * 64, None), ("", "x")):
        with pytest.raises(InvalidArgument):
            engine.images.tag("busybox", repo, tag)
    with pytest.raises(InvalidArgument):
        engine.images.tag("busybox", "sha256", "abc")
    with pytest.raises(NotFound):
        engine.images.tag("nosuch", "tt", "2")


def test_tag_moves_a_name_between_images(engine: Engine, test_images: ImageSet) -> None:
    engine.load(test_images.docker_archive("busybox"))
    engine.load(test_images.docker_archive("busybox-multi"))
    engine.images.tag("busybox-multi", "busybox", "latest")
    assert engine.images.resolve("busybox").id == MULTI_ID
    assert engine.images.resolve(BUSYBOX_ID).repo_tags == []
    # loading the archive moves it back and says so, like dockerd
    messages = engine.load(test_images.docker_archive("busybox"))
    assert messages == [
        f"The image busybox:latest already exists, renaming the old one with ID {MULTI_ID}"
        " to empty string",
        "Loaded image: busybox:latest",
    ]


# -- save -------------------------------------------------------------------------------------


def _save(engine: Engine, names: list[str]) -> bytes:
    buf = io.BytesIO()
    engine.images.save(names, buf)
    return buf.getvalue()


def test_save_load_round_trip(tmp_path: Path, engine: Engine, test_images: ImageSet) -> None:
    engine.load(test_images.oci_archive("busybox"))  # stored layer is gzip: save inflates it
    engine.load(test_images.docker_archive("busybox-multi"))
    engine.images.tag("busybox", "tt", "1")
    data = _save(engine, ["busybox", "tt:1", "busybox-multi:latest"])
    assert data == _save(engine, ["busybox", "tt:1", "busybox-multi:latest"])  # reproducible

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        repositories = json.load(tar.extractfile("repositories"))  # type: ignore[arg-type]
        legacy = [n for n in names if n.endswith("/layer.tar")]
        assert all(tar.getmember(n).issym() for n in legacy)
        assert len(legacy) == 4  # busybox top + 3 layers of busybox-multi
    assert {"oci-layout", "index.json", "manifest.json", "repositories"} <= names
    assert f"{BUSYBOX_ID[7:]}.json" in names and f"blobs/sha256/{BUSYBOX_ID[7:]}" in names
    assert f"blobs/sha256/{BUSYBOX_DIFF[7:]}" in names  # uncompressed, named by diff ID
    assert {m["Config"] for m in manifest} == {
        f"blobs/sha256/{BUSYBOX_ID[7:]}",
        f"blobs/sha256/{MULTI_ID[7:]}",
    }
    bb = next(m for m in manifest if BUSYBOX_ID[7:] in m["Config"])
    assert sorted(bb["RepoTags"]) == ["busybox:latest", "tt:1"]
    assert set(repositories) == {"busybox", "tt", "busybox-multi"}
    refs = {m["annotations"]["io.containerd.image.name"] for m in index["manifests"]}
    assert refs == {
        "docker.io/library/busybox:latest",
        "docker.io/library/tt:1",
        "docker.io/library/busybox-multi:latest",
    }

    # docker-archive view (manifest.json) into a fresh engine
    other = _engine(tmp_path / "other")
    try:
        messages = other.images.load(io.BytesIO(data))
        assert sorted(messages) == sorted(
            [
                "Loaded image: busybox:latest",
                "Loaded image: tt:1",
                "Loaded image: busybox-multi:latest",
            ]
        )
        assert other.images.resolve("tt:1").id == BUSYBOX_ID
        assert other.images.resolve("busybox-multi").id == MULTI_ID
        assert _save(other, ["busybox", "tt:1", "busybox-multi:latest"]) == data
    finally:
        other.db.close()

    # OCI-layout view of the same tarball (what skopeo/containerd read)
    oci_only = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data)) as src,
        tarfile.open(fileobj=oci_only, mode="w") as dst,
    ):
        for member in src.getmembers():
            if member.name.startswith("blobs") or member.name in ("oci-layout", "index.json"):
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    oci_only.seek(0)
    third = _engine(tmp_path / "third")
    try:
        third.images.load(oci_only)
        assert third.images.resolve("tt:1").id == BUSYBOX_ID
        assert third.images.resolve("busybox-multi").id == MULTI_ID
    finally:
        third.db.close()


def test_save_by_id_and_repository(engine: Engine, test_images: ImageSet) -> None:
    engine.load(test_images.docker_archive("busybox"))
    engine.images.tag("busybox", "busybox", "other")
    by_id = _save(engine, [BUSYBOX_ID[7:19]])
    with tarfile.open(fileobj=io.BytesIO(by_id)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert "repositories" not in tar.getnames()
    assert manifest[0]["RepoTags"] is None
    with tarfile.open(fileobj=io.BytesIO(_save(engine, ["busybox"]))) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert sorted(manifest[0]["RepoTags"]) == ["busybox:latest", "busybox:other"]
    engine.images.delete("busybox:latest", users=NO_USERS)
    engine.images.delete("busybox:other", users=NO_USERS)
    assert engine.images.load(io.BytesIO(by_id)) == [f"Loaded image ID: {BUSYBOX_ID}"]
    with pytest.raises(NotFound, match="No such image"):
        _save(engine, ["nosuch:1"])
    with pytest.raises(NotFound, match="No such image"):
        _save(engine, ["busybox"])  # no tags left in the repository, not an ID


def test_save_regenerates_layers_from_snapshots(engine: Engine, test_images: ImageSet) -> None:
    engine.load(test_images.docker_archive("busybox"))
    engine.load(test_images.docker_archive("busybox-multi"))
    before = _save(engine, ["busybox"])
    for digest in engine.content.walk():  # lose every layer blob: only snapshots remain
        if engine.content.size(digest) > 4096:
            engine.content.delete(digest)
    # the busybox layer is reproducible from its unpacked files (deterministic writer)
    assert _save(engine, ["busybox"]) == before
    # a layer whose tar cannot be reproduced exactly (its whiteout entries) is refused,
    # not written with a diff ID the config does not name
    with pytest.raises(SystemError, match="cannot be reproduced"):
        _save(engine, ["busybox-multi"])


# -- delete -----------------------------------------------------------------------------------


def test_delete_by_tag_untags_while_other_tags_remain(
    engine: Engine, test_images: ImageSet
) -> None:
    engine.load(test_images.docker_archive("busybox"))
    engine.images.tag("busybox", "tt", "1")
    assert engine.images.delete("busybox", users=NO_USERS) == [{"Untagged": "busybox:latest"}]
    assert engine.images.resolve("tt:1").repo_tags == ["tt:1"]
    assert engine.images.delete("tt:1", users=NO_USERS) == [
        {"Untagged": "tt:1"},
        {"Deleted": BUSYBOX_ID},
        {"Deleted": BUSYBOX_DIFF},
    ]
    assert engine.state() == EMPTY


def test_delete_oci_loaded_image_untags_its_digest_too(
    engine: Engine, test_images: ImageSet
) -> None:
    engine.load(test_images.oci_archive("busybox"))
    manifest = test_images.info["images"]["busybox:latest"]["manifest_digest"]
    records = engine.images.delete("busybox", users=NO_USERS)
    assert records == [
        {"Untagged": "busybox:latest"},
        {"Untagged": f"busybox@{manifest}"},
        {"Deleted": BUSYBOX_ID},
        {"Deleted": BUSYBOX_DIFF},
    ]
    assert engine.state() == EMPTY


def test_delete_by_id(engine: Engine, test_images: ImageSet) -> None:
    engine.load(test_images.docker_archive("busybox"))
    engine.images.tag("busybox", "tt", "1")
    with pytest.raises(
        Conflict,
        match=rf"^conflict: unable to delete {BUSYBOX_ID[7:19]} \(must be forced\) - image is"
        " referenced in multiple repositories$",
    ):
        engine.images.delete(BUSYBOX_ID[7:19], users=NO_USERS)
    records = engine.images.delete(BUSYBOX_ID[7:19], force=True, users=NO_USERS)
    assert records == [
        {"Untagged": "busybox:latest"},
        {"Untagged": "tt:1"},
        {"Deleted": BUSYBOX_ID},
        {"Deleted": BUSYBOX_DIFF},
    ]
    assert engine.state() == EMPTY
    with pytest.raises(NotFound, match="No such image"):
        engine.images.delete(BUSYBOX_ID, users=NO_USERS)


def test_delete_by_id_with_a_single_tag(engine: Engine, test_images: ImageSet) -> None:
    engine.load(test_images.docker_archive("busybox"))
    records = engine.images.delete(BUSYBOX_ID, users=NO_USERS)
    assert records[0] == {"Untagged": "busybox:latest"} and {"Deleted": BUSYBOX_ID} in records


def test_delete_in_use(engine: Engine, test_images: ImageSet) -> None:
    engine.load(test_images.docker_archive("busybox"))
    cid = "c" * 64
    users: Any = lambda image_id: [cid] if image_id == BUSYBOX_ID else []  # noqa: E731
    with pytest.raises(
        Conflict,
        match=r'^conflict: unable to remove repository reference "busybox" \(must force\)'
        rf" - container {cid[:12]} is using its referenced image {BUSYBOX_ID[7:19]}$",
    ):
        engine.images.delete("busybox", users=users)
    engine.images.tag("busybox", "tt", None)
    # a name that is not the last one: untagged, with force, even while in use
    assert engine.images.delete("tt", force=True, users=users) == [{"Untagged": "tt:latest"}]
    # running: the last name goes, the image stays (cannot be forced)
    records = engine.images.delete("busybox", force=True, users=users, running=users)
    assert records == [{"Untagged": "busybox:latest"}]
    assert engine.images.resolve(BUSYBOX_ID).repo_tags == []
    with pytest.raises(
        Conflict,
        match=rf"^conflict: unable to delete {BUSYBOX_ID[7:19]} \(cannot be forced\) - image is"
        f" being used by running container {cid[:12]}$",
    ):
        engine.images.delete(BUSYBOX_ID, force=True, users=users, running=users)
    with pytest.raises(
        Conflict,
        match=rf"^conflict: unable to delete {BUSYBOX_ID[7:19]} \(must be forced\) - image is"
        f" being used by stopped container {cid[:12]}$",
    ):
        engine.images.delete(BUSYBOX_ID, users=users)
    # a stopped container's rw layer sits on the image's top layer: forcing deletes the
    # image, but the layer it stands on stays until the container goes
    engine.snapshots.prepare(cid, BUSYBOX_DIFF)
    records = engine.images.delete(BUSYBOX_ID, force=True, users=users)
    assert records == [{"Deleted": BUSYBOX_ID}]
    assert engine.snapshots.stat(BUSYBOX_DIFF) is not None
    engine.snapshots.remove(cid)


def test_shared_layers_survive_deleting_one_image(engine: Engine, test_images: ImageSet) -> None:
    engine.load(test_images.docker_archive("busybox"))
    engine.load(test_images.docker_archive("busybox-multi"))
    busybox_blobs = set(engine.content.walk())
    records = engine.images.delete("busybox-multi", users=NO_USERS)
    deleted = [r["Deleted"] for r in records if "Deleted" in r]
    assert deleted[0] == MULTI_ID and len(deleted) == 3  # image + its two own layers
    assert BUSYBOX_DIFF not in deleted
    assert [s.key for s in engine.snapshots.walk()] == [BUSYBOX_DIFF]
    assert engine.images.resolve("busybox").id == BUSYBOX_ID
    assert set(engine.content.walk()) < busybox_blobs
    assert engine.content.has(BUSYBOX_ID)
    engine.images.delete("busybox", users=NO_USERS)
    assert engine.state() == EMPTY


# -- loads that must store nothing ----------------------------------------------------------------


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def _member_offset(data: bytes, suffix: str) -> tuple[int, int]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            if m.name.endswith(suffix) and m.isfile():
                return m.offset_data, m.size
    raise AssertionError(suffix)


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.3, 0.5, 0.9, None])
def test_truncated_tarball_stores_nothing(
    engine: Engine, test_images: ImageSet, fraction: float | None
) -> None:
    engine.load(test_images.docker_archive("busybox"))
    before = engine.state()
    data = test_images.docker_archive("busybox-multi").read_bytes()
    if fraction is None:  # inside the last file (the padding after it is not data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            last = [m for m in tar.getmembers() if m.isfile()][-1]
        cut = last.offset_data + last.size // 2
    else:
        cut = int(len(data) * fraction)
    with pytest.raises(InvalidArgument):
        engine.images.load(io.BytesIO(data[:cut]))
    assert engine.state() == before


def test_truncated_layer_in_oci_layout_stores_nothing(
    engine: Engine, test_images: ImageSet
) -> None:
    data = test_images.oci_archive("busybox-multi").read_bytes()
    with pytest.raises(InvalidArgument):
        engine.images.load(io.BytesIO(data[: len(data) // 2]))
    assert engine.state() == EMPTY


@pytest.mark.parametrize("where", [0.1, 0.5, 0.99])
def test_corrupt_layer_stores_nothing(engine: Engine, test_images: ImageSet, where: float) -> None:
    engine.load(test_images.docker_archive("busybox"))
    before = engine.state()
    data = test_images.docker_archive("busybox-multi").read_bytes()
    # the biggest layer of busybox-multi (1 MiB of /data/a), which busybox lacks
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = max(
            (m for m in tar.getmembers() if m.name.endswith("layer.tar")), key=lambda m: m.size
        )
        if member.size > 2_000_000:  # that is the shared busybox layer: take the next
            member = sorted(
                (m for m in tar.getmembers() if m.name.endswith("layer.tar")),
                key=lambda m: m.size,
            )[-2]
    corrupt = _flip(data, member.offset_data + int(member.size * where))
    with pytest.raises(InvalidArgument):
        engine.images.load(io.BytesIO(corrupt))
    assert engine.state() == before


def test_corrupt_shared_layer_is_refused_even_when_present(
    engine: Engine, test_images: ImageSet
) -> None:
    """A layer that is already unpacked is still verified against the config."""
    engine.load(test_images.docker_archive("busybox"))
    before = engine.state()
    data = test_images.docker_archive("busybox-multi").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:  # the biggest: the busybox layer
        biggest = max((m for m in tar.getmembers() if m.isfile()), key=lambda m: m.size)
    corrupt = _flip(data, biggest.offset_data + biggest.size // 2)
    with pytest.raises(InvalidArgument, match=r"invalid diffID|invalid layer"):
        engine.images.load(io.BytesIO(corrupt))
    assert engine.state() == before


def test_corrupt_gzip_blob_in_oci_layout_stores_nothing(
    engine: Engine, test_images: ImageSet
) -> None:
    data = test_images.oci_archive("busybox").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        biggest = max((m for m in tar.getmembers() if m.isfile()), key=lambda m: m.size)
    with pytest.raises(InvalidArgument, match="digest"):
        engine.images.load(io.BytesIO(_flip(data, biggest.offset_data + 1000)))
    assert engine.state() == EMPTY


def test_config_digest_is_verified(engine: Engine, test_images: ImageSet) -> None:
    data = test_images.docker_archive("busybox").read_bytes()
    offset, _ = _member_offset(data, f"{BUSYBOX_ID[7:]}.json")
    # change a byte of the JSON that keeps it valid JSON: a digit in the created time
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        raw = tar.extractfile(f"{BUSYBOX_ID[7:]}.json").read()  # type: ignore[union-attr]
    pos = raw.index(b"2024-01-01")
    corrupt = data[: offset + pos] + b"2023" + data[offset + pos + 4 :]
    with pytest.raises(InvalidArgument, match="digest"):
        engine.images.load(io.BytesIO(corrupt))
    assert engine.state() == EMPTY


@pytest.mark.parametrize(
    "payload",
    [b"", b"not a tar at all" * 100, b"\x1f\x8b\x08\x00garbage"],
)
def test_not_an_archive(engine: Engine, payload: bytes) -> None:
    with pytest.raises(InvalidArgument):
        engine.images.load(io.BytesIO(payload))
    assert engine.state() == EMPTY


def _tar(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def test_hostile_archive_paths_stay_inside(engine: Engine, tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text("[]")
    data = _tar(
        {"../../escape": b"x", "/abs": b"y"},
        links={"manifest.json": str(secret)},  # absolute: resolved inside the archive
    )
    with pytest.raises(InvalidArgument):
        engine.images.load(io.BytesIO(data))
    assert not (tmp_path / "escape").exists()
    assert engine.state() == EMPTY
    data = _tar({"manifest.json": b'[{"Config":"../../../../etc/passwd","Layers":[]}]'})
    with pytest.raises(InvalidArgument):
        engine.images.load(io.BytesIO(data))
    assert engine.state() == EMPTY


def test_layer_count_must_match_config(engine: Engine, test_images: ImageSet) -> None:
    data = test_images.docker_archive("busybox").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        files = {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }
    manifest = json.loads(files["manifest.json"])
    manifest[0]["Layers"] = manifest[0]["Layers"] * 2
    files["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(InvalidArgument, match="layers length mismatch"):
        engine.images.load(io.BytesIO(_tar(files)))
    assert engine.state() == EMPTY


def test_gzipped_outer_tarball_and_gzipped_layers(engine: Engine, test_images: ImageSet) -> None:
    import gzip

    data = test_images.docker_archive("busybox").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        files = {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }
    for name in files:
        if name.endswith("layer.tar"):
            files[name] = gzip.compress(files[name], mtime=0)
    assert engine.images.load(io.BytesIO(gzip.compress(_tar(files)))) == [
        "Loaded image: busybox:latest"
    ]
    assert engine.images.resolve("busybox").id == BUSYBOX_ID


# -- the unpacked layers really are the image (needs root to mount) -------------------------------


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="mount(2) needs root")
def test_unpacked_layers_mount_as_the_image(
    engine: Engine, test_images: ImageSet, tmp_path: Path
) -> None:
    engine.load(test_images.docker_archive("busybox"))
    engine.load(test_images.oci_archive("busybox-multi"))
    image = engine.images.resolve("busybox-multi")
    target = tmp_path / "rootfs"
    target.mkdir()
    mounts = engine.snapshots.view("view-test", image.chain_id or "")
    mount_all(mounts, target)
    try:
        expect = test_images.info["images"]["busybox-multi:latest"]["expect"]
        for rel in expect["absent"]:
            assert not os.path.lexists(target / rel.lstrip("/")), rel
        for rel, names in expect["dir_listing"].items():
            assert sorted(os.listdir(target / rel.lstrip("/"))) == sorted(names)
        for rel, want in expect["files"].items():
            p = target / rel.lstrip("/")
            st = os.lstat(p)
            if "sha256" in want:
                assert hashlib.sha256(p.read_bytes()).hexdigest() == want["sha256"]
            if "content" in want:
                assert p.read_text() == want["content"]
            if "symlink" in want:
                assert os.readlink(p) == want["symlink"]
            if "hardlink_of" in want:
                assert st.st_ino == os.lstat(target / want["hardlink_of"].lstrip("/")).st_ino
            if "mode" in want:
                assert stat.S_IMODE(st.st_mode) == int(want["mode"], 8), rel
            if "uid" in want:
                assert (st.st_uid, st.st_gid) == (want["uid"], want["gid"])
        assert (target / "bin" / "busybox").is_file()
    finally:
        unmount_all(target, detach=True)
        engine.snapshots.remove("view-test")
    assert not is_mounted(target)


def _oci_files(test_images: ImageSet, short: str) -> dict[str, bytes]:
    root = test_images.dir / short
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_oci_layout_with_a_multi_platform_index(engine: Engine, test_images: ImageSet) -> None:
    files = _oci_files(test_images, "busybox")
    index = json.loads(files["index.json"])
    (amd64,) = index["manifests"]
    arm64 = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + "a" * 64,  # not in the layout: never read
        "size": 1,
        "platform": {"architecture": "arm64", "os": "linux"},
    }
    nested = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [arm64, {k: v for k, v in amd64.items() if k != "annotations"}],
    }
    nested_bytes = json.dumps(nested).encode()
    nested_digest = "sha256:" + hashlib.sha256(nested_bytes).hexdigest()
    files[f"blobs/sha256/{nested_digest[7:]}"] = nested_bytes
    index["manifests"] = [
        {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": nested_digest,
            "size": len(nested_bytes),
            "annotations": {"io.containerd.image.name": "docker.io/library/multi:1"},
        }
    ]
    files["index.json"] = json.dumps(index).encode()
    assert engine.images.load(io.BytesIO(_tar(files))) == ["Loaded image: multi:1"]
    image = engine.images.resolve("multi:1")
    assert image.id == BUSYBOX_ID
    assert image.repo_digests == [f"multi@{nested_digest}"]  # the digest that was pulled


def test_oci_layout_named_by_a_bare_tag_loads_untagged(
    engine: Engine, test_images: ImageSet
) -> None:
    files = _oci_files(test_images, "busybox")
    index = json.loads(files["index.json"])
    index["manifests"][0]["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    files["index.json"] = json.dumps(index).encode()
    assert engine.images.load(io.BytesIO(_tar(files))) == [f"Loaded image ID: {BUSYBOX_ID}"]
    assert engine.images.resolve(BUSYBOX_ID).repo_tags == []
    # a full reference in ref.name names it (skopeo copy … oci-archive:x.tar:name:tag)
    index["manifests"][0]["annotations"] = {"org.opencontainers.image.ref.name": "bb:2"}
    files["index.json"] = json.dumps(index).encode()
    assert engine.images.load(io.BytesIO(_tar(files))) == ["Loaded image: bb:2"]


def test_oci_layout_for_another_platform_is_refused(engine: Engine, test_images: ImageSet) -> None:
    files = _oci_files(test_images, "busybox")
    index = json.loads(files["index.json"])
    index["manifests"][0]["platform"] = {"architecture": "s390x", "os": "linux"}
    files["index.json"] = json.dumps(index).encode()
    with pytest.raises(InvalidArgument, match="linux/amd64"):
        engine.images.load(io.BytesIO(_tar(files)))
    assert engine.state() == EMPTY
