"""A real S3-compatible server for the blob store's tests: moto's server (`moto_server`),
started on loopback in a process of its own and spoken to over HTTP with SigV4, as an S3
service is. Each test gets a fresh bucket with versioning on, the harder case for erasure:
there a plain DELETE keeps the old version behind a delete marker.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from itertools import count
from pathlib import Path
from typing import Any

from tests.postgres import _free_port

ACCESS_KEY = "kirjuri-test"
SECRET_KEY = "kirjuri-test-secret"
REGION = "eu-north-1"


class S3Server:
    """`moto_server` on a free loopback port until `stop()`."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._names = count(1)
        command = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
        self._process = subprocess.Popen(
            [command, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.endpoint, timeout=1).close()
                break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        """A fresh, empty bucket with versioning on."""
        name = f"kirjuri-{next(self._names)}"
        client = self.client()
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def stored(self, bucket: str) -> list[str]:
        """Every key in the bucket that still has a version or a delete marker."""
        listed = self.client().list_object_versions(Bucket=bucket)
        return sorted({v["Key"] for kind in ("Versions", "DeleteMarkers") for v in listed.get(kind, [])})

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)
