"""Mark-and-sweep GC and upload purging, in-process, on every storage driver."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dockyard.errors import InvalidArgument
from dockyard.registry import gc
from dockyard.registry.storage import paths
from dockyard.registry.storage.driver import StorageDriver, parent
from dockyard.registry.storage.filesystem import FilesystemDriver
from dockyard.registry.storage.inmemory import InMemoryDriver

pytestmark = pytest.mark.unit

T = TypeVar("T")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(params=["inmemory", "filesystem"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> StorageDriver:
    if request.param == "inmemory":
        return InMemoryDriver()
    return FilesystemDriver(tmp_path / "store")


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Store:
    """Writes the layout of storage/paths.py directly, as the registry would."""

    def __init__(self, driver: StorageDriver) -> None:
        self.d = driver

    async def blob(self, repo: str, data: bytes) -> str:
        dg = digest(data)
        await self.d.put_content(paths.blob_data_path(dg), data)
        await self.d.put_content(paths.layer_link_path(repo, dg), dg.encode())
        return dg

    async def manifest(self, repo: str, doc: dict[str, Any], tag: str | None = None) -> str:
        data = json.dumps(doc).encode()
        dg = digest(data)
        await self.d.put_content(paths.blob_data_path(dg), data)
        await self.d.put_content(paths.manifest_revision_link_path(repo, dg), dg.encode())
        subject = doc.get("subject")
        if subject:
            await self.d.put_content(
                paths.referrer_link_path(repo, subject["digest"], dg), dg.encode()
            )
        if tag:
            await self.tag(repo, tag, dg)
        return dg

    async def tag(self, repo: str, tag: str, dg: str) -> None:
        await self.d.put_content(paths.tag_current_link_path(repo, tag), dg.encode())
        await self.d.put_content(paths.tag_index_link_path(repo, tag, dg), dg.encode())

    async def image(
        self, repo: str, layers: list[bytes], tag: str | None = None, **extra: Any
    ) -> tuple[str, list[str]]:
        config = await self.blob(
            repo, json.dumps({"diff_ids": [digest(x) for x in layers]}).encode()
        )
        digests = [await self.blob(repo, layer) for layer in layers]
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config,
                "size": 1,
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": 1}
                for d in digests
            ],
        }
        if "subject" in extra:
            doc["subject"] = extra["subject"]
        return await self.manifest(repo, doc, tag), [config, *digests]

    async def exists(self, path: str) -> bool:
        try:
            await self.d.stat(path)
        except Exception:
            return False
        return True

    async def has_blob(self, dg: str) -> bool:
        return await self.exists(paths.blob_data_path(dg))


def untag_and_delete(
    store: Store, repo: str, tag: str, dg: str
) -> Callable[[], Coroutine[Any, Any, None]]:
    async def go() -> None:
        # What DELETE /v2/<repo>/manifests/<digest> does: drop the revision and the tag.
        await store.d.delete(parent(paths.manifest_revision_link_path(repo, dg)))
        await store.d.delete(paths.tag_root(repo, tag))

    return go


def test_shared_layer_survives_and_unshared_blobs_go(driver: StorageDriver) -> None:
    store = Store(driver)

    async def scenario() -> None:
        keep, keep_blobs = await store.image("lib/a", [b"shared", b"only-a"], tag="v1")
        drop, drop_blobs = await store.image("lib/b", [b"shared", b"only-b"], tag="v1")
        await untag_and_delete(store, "lib/b", "v1", drop)()

        dry = await gc.collect(driver, dry_run=True)
        assert dry.dry_run
        expected = {drop, drop_blobs[0], drop_blobs[2]}  # manifest, config, only-b
        assert set(dry.deleted_blobs) == expected
        assert set(dry.deleted_layer_links) == {
            ("lib/b", d) for d in (drop_blobs[0], drop_blobs[2])
        }
        for dg in expected:
            assert await store.has_blob(dg)  # a dry run changes nothing

        lines: list[str] = []
        real = await gc.collect(driver, dry_run=False, emit=lines.append)
        assert set(real.deleted_blobs) == expected
        assert real.bytes_freed == dry.bytes_freed > len(b"only-b")
        for dg in expected:
            assert not await store.has_blob(dg)
        for dg in [keep, *keep_blobs]:
            assert await store.has_blob(dg)
        # The shared layer's link in lib/b stays: the blob is still there and may be mounted.
        assert await store.exists(paths.layer_link_path("lib/b", drop_blobs[1]))
        assert not await store.exists(paths.layer_link_path("lib/b", drop_blobs[2]))
        assert any("blob eligible for deletion" in line for line in lines)
        again = await gc.collect(driver, dry_run=False)
        assert again.deleted_blobs == [] and again.deleted_layer_links == []

    run(scenario())


def test_index_children_and_referrers_are_marked(driver: StorageDriver) -> None:
    store = Store(driver)

    async def scenario() -> None:
        amd, amd_blobs = await store.image("multi", [b"amd64-layer"])
        arm, arm_blobs = await store.image("multi", [b"arm64-layer"])
        index = await store.manifest(
            "multi",
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {"mediaType": OCI_MANIFEST, "digest": d, "size": 1} for d in (amd, arm)
                ],
            },
            tag="latest",
        )
        sig, sig_blobs = await store.image(
            "multi", [b"signature"], subject={"mediaType": OCI_INDEX, "digest": index, "size": 1}
        )
        orphan, orphan_blobs = await store.image("multi", [b"orphan-layer"])

        kept = await gc.collect(driver, dry_run=False)
        assert kept.deleted_blobs == []  # every revision is a root by default

        result = await gc.collect(driver, dry_run=False, delete_untagged=True)
        assert result.deleted_manifests == [("multi", orphan)]
        assert set(result.deleted_blobs) == {orphan, *orphan_blobs}
        for dg in [index, amd, arm, sig, *amd_blobs, *arm_blobs, *sig_blobs]:
            assert await store.has_blob(dg), dg
        assert not await store.exists(paths.manifest_revision_link_path("multi", orphan))

    run(scenario())


def test_delete_untagged_removes_history_and_referrer_links(driver: StorageDriver) -> None:
    store = Store(driver)

    async def scenario() -> None:
        old, _ = await store.image("app", [b"v1"], tag="latest")
        new, _ = await store.image("app", [b"v2"])
        await store.tag("app", "latest", new)  # latest moved on; old stays in the tag history
        note, _ = await store.image(
            "app", [b"note"], subject={"mediaType": OCI_MANIFEST, "digest": old, "size": 1}
        )

        result = await gc.collect(driver, dry_run=False, delete_untagged=True)
        assert set(result.deleted_manifests) == {("app", old), ("app", note)}
        assert not await store.exists(paths.tag_index_link_path("app", "latest", old))
        assert await store.exists(paths.tag_index_link_path("app", "latest", new))
        assert not await store.exists(paths.referrer_link_path("app", old, note))
        assert await store.has_blob(new) and not await store.has_blob(old)

    run(scenario())


def test_unparseable_manifest_stops_before_deleting(driver: StorageDriver) -> None:
    store = Store(driver)

    async def scenario() -> None:
        junk = await store.blob("x", b"unreferenced")
        bad = b"{not json"
        dg = digest(bad)
        await driver.put_content(paths.blob_data_path(dg), bad)
        await driver.put_content(paths.manifest_revision_link_path("x", dg), dg.encode())
        with pytest.raises(gc.GCError, match="not valid JSON"):
            await gc.collect(driver, dry_run=False)
        assert await store.has_blob(junk)

    run(scenario())


def test_missing_manifest_data_is_reported_not_fatal(driver: StorageDriver) -> None:
    store = Store(driver)

    async def scenario() -> None:
        ghost = "sha256:" + "ab" * 32
        await driver.put_content(paths.manifest_revision_link_path("x", ghost), ghost.encode())
        await store.image("x", [b"ok"], tag="t")
        result = await gc.collect(driver, dry_run=False)
        assert result.missing_manifests == [("x", ghost)]
        assert result.deleted_blobs == []

    run(scenario())


def test_schema1_and_artifact_references() -> None:
    assert gc.references({"schemaVersion": 1, "fsLayers": [{"blobSum": "sha256:a"}, {"x": 1}]}) == [
        "sha256:a"
    ]
    assert gc.references(
        {"blobs": [{"digest": "sha256:b"}], "subject": {"digest": "sha256:c"}}
    ) == ["sha256:c", "sha256:b"]
    assert gc.references({"config": "nonsense", "layers": "nope"}) == []


def test_repositories_are_found_at_any_depth(driver: StorageDriver) -> None:
    store = Store(driver)

    async def scenario() -> None:
        assert await gc.repositories(driver) == []
        await store.blob("a", b"1")
        await store.blob("a/b/c", b"2")
        await store.image("z/y", [b"3"], tag="t")
        assert await gc.repositories(driver) == ["a", "a/b/c", "z/y"]

    run(scenario())


def test_purge_uploads_by_age(driver: StorageDriver) -> None:
    now = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.UTC)
    old_id = "00000000-0000-4000-8000-000000000001"
    new_id = "00000000-0000-4000-8000-000000000002"
    odd_id = "00000000-0000-4000-8000-000000000003"

    async def scenario() -> None:
        for uid, started in (
            (old_id, now - datetime.timedelta(days=8)),
            (new_id, now - datetime.timedelta(hours=1)),
        ):
            await driver.put_content(paths.upload_data_path("r", uid), b"partial")
            stamp = started.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
            await driver.put_content(paths.upload_startedat_path("r", uid), stamp)
        await driver.put_content(paths.upload_data_path("r", odd_id), b"no startedat")

        dry = await gc.purge_uploads(driver, dry_run=True, now=now.timestamp())
        assert dry.purged_uploads == [("r", old_id)]
        assert await Store(driver).exists(paths.upload_data_path("r", old_id))

        result = await gc.purge_uploads(
            driver, older_than=datetime.timedelta(hours=24), now=now.timestamp()
        )
        assert result.purged_uploads == [("r", old_id)]
        assert not await Store(driver).exists(paths.upload_root("r", old_id))
        assert await Store(driver).exists(paths.upload_root("r", new_id))
        # Without startedat the directory's age decides: just written, so it stays.
        assert await Store(driver).exists(paths.upload_root("r", odd_id))
        later = now.timestamp() + 30 * 86400
        result = await gc.purge_uploads(driver, older_than=datetime.timedelta(hours=24), now=later)
        assert {u for _, u in result.purged_uploads} == {new_id, odd_id}

    run(scenario())


@pytest.mark.parametrize(
    "text,seconds",
    [("168h", 168 * 3600), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("500ms", 0.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert gc.parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "168", "h", "1d", "1h 30m", "-1h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument):
        gc.parse_duration(text)


def test_main_gc_on_a_filesystem_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dockyard.registry.config import parse_config

    root = tmp_path / "store"
    driver = FilesystemDriver(root)
    store = Store(driver)
    stale = "00000000-0000-4000-8000-0000000000aa"

    async def setup() -> tuple[str, list[str]]:
        kept = await store.image("keep", [b"k"], tag="v1")
        await store.blob("junk", b"unreferenced")
        await driver.put_content(paths.upload_data_path("junk", stale), b"x")
        await driver.put_content(
            paths.upload_startedat_path("junk", stale), b"2001-01-01T00:00:00Z"
        )
        return kept

    kept, kept_blobs = run(setup())
    junk = digest(b"unreferenced")
    raw = {"storage": {"filesystem": {"rootdirectory": str(root)}}}
    assert gc.main_gc(parse_config(raw), dry_run=True) == 0
    out = capsys.readouterr().out
    assert f"blob eligible for deletion: {junk}" in out
    assert "junk: upload eligible for deletion" in out
    assert "1 blobs, 0 manifests, 1 layer links, 1 uploads eligible for deletion" in out
    assert run(store.has_blob(junk))

    off = {"storage": {**raw["storage"], "maintenance": {"uploadpurging": {"enabled": False}}}}
    assert gc.main_gc(parse_config(off), dry_run=False) == 0
    assert "0 uploads deleted" in capsys.readouterr().out
    assert not run(store.has_blob(junk))
    assert all(run(store.has_blob(d)) for d in [kept, *kept_blobs])
    assert run(store.exists(paths.upload_root("junk", stale)))

    assert gc.main_gc(parse_config(raw), dry_run=False) == 0
    assert not run(store.exists(paths.upload_root("junk", stale)))

    bad = {"storage": {**raw["storage"], "maintenance": {"uploadpurging": {"age": "a week"}}}}
    assert gc.main_gc(parse_config(bad), dry_run=False) == 1
    assert "invalid duration" in capsys.readouterr().err
