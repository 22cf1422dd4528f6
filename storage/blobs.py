"""Content-addressed blob store on disk: raw messages, attachments, audio.

A blob is named by the sha256 of its bytes and lives at `<root>/<first two hex>/<sha256>`.
`put_many` makes blobs durable before the database commit that refers to them: each file is
written to a temporary name, fsynced, renamed into place, and each directory touched is
fsynced once per batch (so a batch of captures costs one directory fsync per shard, not per
file). These methods block; call them from an executor.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from storage.errors import NotFound, Unavailable


def sha256_hex(data: bytes) -> str:
    """The blob name of `data`."""
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Blobs under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        """Where the blob `name` lives (it may not exist)."""
        if len(name) != 64 or any(c not in "0123456789abcdef" for c in name):
            raise NotFound("blob", name)
        return self.root / name[:2] / name

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def read(self, name: str) -> bytes:
        """The blob's bytes; raises NotFound."""
        try:
            return self.path(name).read_bytes()
        except FileNotFoundError:
            raise NotFound("blob", name) from None

    def size(self, name: str) -> int:
        try:
            return self.path(name).stat().st_size
        except FileNotFoundError:
            raise NotFound("blob", name) from None

    def put_many(self, items: Iterable[bytes]) -> list[str]:
        """Store every item durably and return their names, in order.

        Raises Unavailable (nothing referenced yet, so nothing is lost) if the disk fails.
        """
        names: list[str] = []
        dirty_dirs: set[Path] = set()
        try:
            for data in items:
                name = sha256_hex(data)
                names.append(name)
                final = self.path(name)
                if final.exists():
                    continue
                shard = final.parent
                if not shard.exists():
                    shard.mkdir(parents=True, exist_ok=True)
                    dirty_dirs.add(shard.parent)
                tmp = shard / f".{name}.{os.getpid()}.tmp"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    view = memoryview(data)
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, final)
                dirty_dirs.add(shard)
            for directory in sorted(dirty_dirs, key=lambda p: len(p.parts), reverse=True):
                _fsync_dir(directory)
        except OSError as exc:
            raise Unavailable(f"blob store write failed: {exc.strerror}") from exc
        return names

    def put(self, data: bytes) -> str:
        """Store one blob durably; see `put_many`."""
        return self.put_many([data])[0]

    def delete(self, name: str) -> bool:
        """Remove a blob if present; True if it was there."""
        try:
            self.path(name).unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(self.path(name).parent)
        return True


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
