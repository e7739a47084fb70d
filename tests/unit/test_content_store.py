"""ContentStore: verified ingest, atomic commit, no leftovers on failure."""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

import pytest

from dockyard.content import ContentStore
from dockyard.errors import InvalidArgument, NotFound

pytestmark = pytest.mark.unit


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "content")


def _ingests(store: ContentStore) -> list[Path]:
    return list((store.root / "ingest").iterdir())


def test_write_blob_round_trip(store: ContentStore) -> None:
    data = b"hello content"
    digest = store.write_blob(data)
    assert digest == _digest(data)
    assert store.has(digest)
    assert store.size(digest) == len(data)
    assert store.path(digest) == store.root / "blobs" / "sha256" / digest[7:]
    with store.open(digest) as f:
        assert f.read() == data
    assert store.walk() == [digest]
    assert store.write_blob(data, expected=digest) == digest  # idempotent
    assert _ingests(store) == []


def test_write_blob_mismatch_stores_nothing(store: ContentStore) -> None:
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        store.write_blob(b"abc", expected=_digest(b"abd"))
    assert store.walk() == []
    assert _ingests(store) == []


def test_ingest_verifies_digest_and_size(store: ContentStore) -> None:
    data = b"x" * (3 << 20) + b"tail"
    digest = store.ingest(io.BytesIO(data), _digest(data), len(data))
    assert digest == _digest(data)
    assert store.size(digest) == len(data)
    assert oct(store.path(digest).stat().st_mode & 0o777) == oct(0o644)


@pytest.mark.parametrize(
    ("expected", "size", "message"),
    [
        (_digest(b"other"), None, "digest mismatch"),
        (None, 3, "size mismatch"),
        (None, 100, "size mismatch"),
    ],
)
def test_ingest_mismatch_leaves_nothing(
    store: ContentStore, expected: str | None, size: int | None, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        store.ingest(io.BytesIO(b"some data"), expected, size)
    assert store.walk() == []
    assert _ingests(store) == []


def test_ingest_source_failure_removes_temp(store: ContentStore) -> None:
    class Broken(io.RawIOBase):
        calls = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
            self.calls += 1
            if self.calls > 2:
                raise ConnectionResetError("peer went away")
            b[:4] = b"data"
            return 4

    with pytest.raises(ConnectionResetError):
        store.ingest(io.BufferedReader(Broken(), 4))  # type: ignore[arg-type]
    assert store.walk() == []
    assert _ingests(store) == []


def test_ingest_is_idempotent_without_reading(store: ContentStore) -> None:
    data = b"already here"
    digest = store.write_blob(data)
    src = io.BytesIO(b"not even the same bytes")
    assert store.ingest(src, digest) == digest
    assert src.tell() == 0
    with store.open(digest) as f:
        assert f.read() == data


def test_concurrent_ingest_of_the_same_blob(store: ContentStore) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    digest = _digest(data)
    barrier = threading.Barrier(8)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker(expected: str | None) -> None:
        try:
            barrier.wait()
            results.append(store.ingest(io.BytesIO(data), expected))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(digest if i % 2 else None,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [digest] * 8
    with store.open(digest) as f:
        assert hashlib.sha256(f.read()).hexdigest() == digest[7:]
    assert store.walk() == [digest]
    assert _ingests(store) == []


def test_missing_and_malformed_digests(store: ContentStore) -> None:
    missing = _digest(b"missing")
    assert not store.has(missing)
    with pytest.raises(NotFound):
        store.path(missing)
    with pytest.raises(NotFound):
        store.open(missing)
    with pytest.raises(NotFound):
        store.size(missing)
    with pytest.raises(NotFound):
        store.delete(missing)
    for bad in ("sha256:abc", "md5:" + "0" * 32, "sha256:../../etc/passwd", "SHA256:" + "a" * 64):
        with pytest.raises(InvalidArgument):
            store.has(bad)


def test_delete(store: ContentStore) -> None:
    digest = store.write_blob(b"bye")
    store.delete(digest)
    assert not store.has(digest)
    assert store.walk() == []


def test_clean_ingests_removes_partial_writes(store: ContentStore) -> None:
    ingest = store.root / "ingest"
    (ingest / "blob-partial").write_bytes(b"half")
    (ingest / "load-dir" / "nested").mkdir(parents=True)
    (ingest / "load-dir" / "nested" / "f").write_bytes(b"x")
    kept = store.write_blob(b"kept")
    store.clean_ingests()
    assert _ingests(store) == []
    assert store.walk() == [kept]


def test_tempdir_is_removed(store: ContentStore) -> None:
    with store.tempdir("work-") as d:
        assert d.parent == store.root / "ingest"
        (d / "file").write_bytes(b"scratch")
    assert not d.exists()
    with pytest.raises(RuntimeError), store.tempdir() as d2:
        raise RuntimeError("boom")
    assert not d2.exists()


def test_ingest_file_adopts_without_copying(store: ContentStore) -> None:
    with store.tempdir("load-") as d:
        src = d / "layer.tar"
        data = b"layer bytes" * 1000
        src.write_bytes(data)
        digest = store.ingest_file(src, _digest(data), len(data))
        assert digest == _digest(data)
        assert store.path(digest).stat().st_ino == src.stat().st_ino  # linked, not copied
        assert store.ingest_file(src) == digest  # idempotent
        bad = d / "bad"
        bad.write_bytes(b"other")
        with pytest.raises(InvalidArgument, match="digest mismatch"):
            store.ingest_file(bad, _digest(b"expected"))
        with pytest.raises(InvalidArgument, match="size mismatch"):
            store.ingest_file(bad, None, 3)
    with store.open(digest) as f:  # survives the scratch directory
        assert f.read() == data
    assert store.walk() == [digest]
    assert _ingests(store) == []
