"""The S3 blob store against a real S3-compatible server (moto's, on loopback): blobs named by
content and read back whole, from an offset, and as a local file; every version gone after a
delete in a versioned bucket; a store it cannot reach is an error to try again, not a loss."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from service.blobs import open_blobs
from service.errors import ConfigError
from service.settings import Settings
from storage.errors import NotFound, Unavailable
from storage.s3blobs import S3BlobStore
from tests.conftest import with_s3_blobs
from tests.postgres import _free_port
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server


@pytest.fixture
def store(settings: Settings, s3_server: S3Server) -> tuple[S3BlobStore, str]:
    configured, bucket = with_s3_blobs(settings, s3_server)
    blobs = open_blobs(configured.storage)
    assert isinstance(blobs, S3BlobStore)
    return blobs, bucket


def test_blobs_are_named_by_content_and_read_back_whole(
    store: tuple[S3BlobStore, str], s3_server: S3Server
) -> None:
    blobs, bucket = store
    audio = bytes(range(256)) * 4096  # 1 MiB, more than one read
    names = blobs.put_many([b"first", audio, b"first"])
    assert names[0] == names[2] == hashlib.sha256(b"first").hexdigest()
    assert s3_server.stored(bucket) == sorted(f"blobs/{n}" for n in set(names))
    assert blobs.read(names[1]) == audio
    assert blobs.size(names[1]) == len(audio)
    reader = blobs.open(names[1], 1000)
    assert reader.read(10) == audio[1000:1010]
    reader.close()
    with blobs.local_file(names[1]) as path:
        assert path.read_bytes() == audio
        assert path.parent == blobs.temp_dir  # the data dir, not a shared /tmp
    assert not path.exists()  # the temporary copy goes with the context


def test_delete_leaves_no_version_behind(store: tuple[S3BlobStore, str], s3_server: S3Server) -> None:
    blobs, bucket = store
    kept, erased = blobs.put_many([b"kept", b"erased"])
    blobs.put_many([b"erased"])  # a second PUT of the same content: a second version
    blobs.delete([erased, erased, hashlib.sha256(b"never stored").hexdigest()])
    assert s3_server.stored(bucket) == [f"blobs/{kept}"]
    with pytest.raises(NotFound):
        blobs.read(erased)
    with pytest.raises(NotFound):
        blobs.size(erased)
    with pytest.raises(NotFound):
        blobs.read("../" + kept[3:])  # never a key the caller made up


def test_an_unreachable_store_is_unavailable_not_lost(tmp_path: Path) -> None:
    blobs = S3BlobStore(
        "kirjuri",
        endpoint_url=f"http://127.0.0.1:{_free_port()}",
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
    )
    with pytest.raises(Unavailable):
        blobs.put_many([b"mail"])
    with pytest.raises(Unavailable):
        blobs.read(hashlib.sha256(b"mail").hexdigest())


@pytest.mark.parametrize("url", ["/var/blobs", "s3://", "file:///var/blobs", "s3://bucket/x?y=1"])
def test_a_blob_url_that_is_not_an_s3_bucket_is_a_config_error(settings: Settings, url: str) -> None:
    with pytest.raises(ConfigError, match="s3://bucket"):
        open_blobs(settings.replace("storage", blob_url=url).storage)
