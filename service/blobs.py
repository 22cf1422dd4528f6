"""Which blob store the configuration names: the folder under the data dir, or an S3 bucket.

The one place that reads `[storage] blob_url`, so the server, the CLI's commands and the
benchmarks all open the same store.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from service.errors import ConfigError
from service.settings import StorageSettings
from storage.blobs import Blobs, BlobStore


def open_blobs(settings: StorageSettings) -> Blobs:
    """The configured store; raises ConfigError for a `blob_url` that is not `s3://bucket/…`."""
    if not settings.blob_url:
        return BlobStore(settings.blob_dir)
    parts = urlsplit(settings.blob_url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"[storage] blob_url {settings.blob_url!r}: write it as s3://bucket/prefix/ (or leave it "
            "empty for the folder under data_dir)"
        )
    from storage.s3blobs import S3BlobStore

    prefix = parts.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return S3BlobStore(
        parts.netloc,
        prefix,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key.reveal(),
        temp_dir=settings.data_path,
    )
