"""The blob store: content-addressed, whole or absent, and clean after a failure."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from storage.blobs import BlobStore
from storage.errors import NotFound, Unavailable


def test_blobs_are_named_by_content_and_read_back_whole(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    names = store.put_many([b"first", b"second", b"first"])
    assert names[0] == names[2] == hashlib.sha256(b"first").hexdigest()
    assert store.read(names[1]) == b"second"
    assert store.put_many([b"second"]) == [names[1]]  # stored once
    files = sorted(p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file())
    assert files == sorted({names[0], names[1]})  # no temporary files left behind


def test_a_failed_batch_leaves_no_partial_files(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    bad = hashlib.sha256(b"blocked").hexdigest()
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / bad[:2]).write_bytes(b"a file where a folder should be")
    with pytest.raises(Unavailable):
        store.put_many([b"fine", b"blocked"])
    leftovers = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file() and p.name != bad[:2]]
    assert leftovers == []


@pytest.mark.parametrize("name", ["../../etc/passwd", "x" * 64, ""])
def test_names_that_are_not_sha256_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(NotFound):
        BlobStore(tmp_path).read(name)


def test_deleting_many_blobs_removes_exactly_those(tmp_path: Path) -> None:
    """An erasure's many blobs are removed by several threads, a shard folder each."""
    store = BlobStore(tmp_path / "blobs")
    names = store.put_many([f"mail {n}".encode() for n in range(300)])
    assert len({n[:2] for n in names[:200]}) > 16  # enough shard folders for the threads
    store.delete(names[:200] + [hashlib.sha256(b"never stored").hexdigest()])
    left = sorted(p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file())
    assert left == sorted(names[200:])


def test_a_half_written_blob_left_by_a_crash_is_written_again_whole(tmp_path: Path) -> None:
    """New blobs are created under their final names before the flush, so a crash can leave
    one half written; storing that content again must not trust the name alone."""
    store = BlobStore(tmp_path / "blobs")
    data = b"the whole message " * 100
    name = hashlib.sha256(data).hexdigest()
    path = store.path(name)
    path.parent.mkdir(parents=True)
    path.write_bytes(data[:50])  # as a crash before the flush may leave it
    assert store.put_many([data]) == [name]
    assert store.read(name) == data
    files = [p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert files == [name]  # no temporary file left beside it


def test_a_whole_blob_stored_again_is_kept_as_it_is(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    (name,) = store.put_many([b"an attachment sent twice"])
    before = store.path(name).stat()
    assert store.put_many([b"an attachment sent twice", b"another"])[0] == name
    after = store.path(name).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
