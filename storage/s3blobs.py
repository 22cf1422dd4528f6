"""Blobs in an S3-compatible object store, for Kirjuri processes on several machines.

With the filesystem store, every API, SMTP and worker process must see one folder (a shared
filesystem); with this one they share a bucket instead: AWS S3 in an EU region, or MinIO,
Ceph RGW or Garage run by the company. Objects are keyed `<prefix><sha256>`, like the files
of `BlobStore`. An S3 PUT answers 200 only once the object is stored durably, which is the
promise `put_many` makes before the database commit that refers to the blob.

Erasure must leave no copy: in a bucket with versioning on, an ordinary DELETE only hides the
object behind a delete marker, so `delete` removes every version and marker of the key.
boto3 is an optional dependency (`kirjuri[s3]`); its client is thread-safe, and these
methods block, so call them from an executor like the filesystem store's.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from storage.blobs import Reader, sha256_hex, valid_name
from storage.errors import NotFound, Unavailable

CHUNK = 1 << 20


class S3BlobStore:
    """Blobs in one bucket, under an optional key prefix."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        temp_dir: Path | None = None,
    ) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise Unavailable("the S3 blob store needs boto3: pip install 'kirjuri[s3]'") from exc
        self.bucket = bucket
        self.prefix = prefix
        self.temp_dir = temp_dir
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=16,
                # checksums only where S3 requires them: stores other than AWS reject some
                # of the newer default ones
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def key(self, name: str) -> str:
        """The object key of blob `name`."""
        return self.prefix + valid_name(name)

    def read(self, name: str) -> bytes:
        reader = self.open(name)
        try:
            return reader.read()
        finally:
            reader.close()

    def size(self, name: str) -> int:
        with self._errors(name):
            head = self._client.head_object(Bucket=self.bucket, Key=self.key(name))
        return int(head["ContentLength"])

    def open(self, name: str, start: int = 0) -> Reader:
        extra = {"Range": f"bytes={start}-"} if start else {}
        with self._errors(name):
            answer = self._client.get_object(Bucket=self.bucket, Key=self.key(name), **extra)
        body: Reader = answer["Body"]
        return body

    @contextmanager
    def local_file(self, name: str) -> Iterator[Path]:
        """A temporary copy, removed when the context ends (a decoder wants a path)."""
        if self.temp_dir is not None:
            self.temp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix="kirjuri-blob-", dir=self.temp_dir) as copy:
            reader = self.open(name)
            try:
                while chunk := reader.read(CHUNK):
                    copy.write(chunk)
            finally:
                reader.close()
            copy.flush()
            yield Path(copy.name)

    def put_many(self, items: Iterable[bytes]) -> list[str]:
        names: list[str] = []
        done: set[str] = set()
        for data in items:
            name = sha256_hex(data)
            names.append(name)
            if name in done:
                continue
            with self._errors(name):
                self._client.put_object(Bucket=self.bucket, Key=self.key(name), Body=data)
            done.add(name)
        return names

    def delete(self, names: Iterable[str]) -> None:
        """Remove every version and delete marker of these blobs' keys (in an unversioned
        bucket, the one object), so no earlier copy stays behind in the bucket. The versions
        are listed by a few threads at once and deleted 1,000 to a request."""
        keys = sorted({self.key(name) for name in names})
        with ThreadPoolExecutor(8, thread_name_prefix="s3-delete") as pool:
            versions = [v for found in pool.map(self._versions, keys) for v in found]
        for at in range(0, len(versions), 1000):
            with self._errors("*"):
                answer = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": versions[at : at + 1000], "Quiet": True}
                )
            if answer.get("Errors"):
                raise Unavailable(f"blob store delete failed: {answer['Errors'][0].get('Code')}")

    def _versions(self, key: str) -> list[dict[str, str]]:
        """Every version and delete marker of exactly this key."""
        with self._errors(key):
            listed = self._client.list_object_versions(Bucket=self.bucket, Prefix=key)
        return [
            {"Key": key, "VersionId": v["VersionId"]}
            for kind in ("Versions", "DeleteMarkers")
            for v in listed.get(kind, [])
            if v["Key"] == key
        ]

    @contextmanager
    def _errors(self, name: str) -> Iterator[None]:
        """S3's answers as Kirjuri's storage errors: no such key is NotFound, anything else
        (refused credentials, an unreachable endpoint) is Unavailable, to be tried again."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"NoSuchKey", "404", "NotFound"}:
                raise NotFound("blob", name) from None
            raise Unavailable(f"blob store answered {code or 'an error'}") from exc
        except BotoCoreError as exc:
            raise Unavailable(f"blob store unreachable: {type(exc).__name__}") from exc
