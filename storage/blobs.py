"""Content-addressed blob stores: raw messages, attachments, audio.

`Blobs` is what the service asks of a store; `BlobStore` (here, on this machine's disk) is the
default and `S3BlobStore` (`storage/s3blobs.py`, an S3-compatible object store) the option
for several machines.

A blob is named by the sha256 of its bytes and lives at `<root>/<first two hex>/<sha256>`.
`put_many` makes a whole batch of blobs durable before the database commit that refers to
them: each new file is created under its final name, then one flush makes the data and the
directory entries of the whole batch durable. On Linux that flush is one `syncfs` (one
journal commit, not one per file: about 3x faster for a batch of 20 small messages on this
machine class); elsewhere each file and folder is fsynced. A name can thus exist before its
content is on disk (a crash between the two leaves a half-written file that no row refers
to, since rows commit after the flush): `put_many` checks the content of every name it
finds, and rewrites one that does not hold its blob. These methods block; call them from an
executor.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from storage.errors import NotFound, Unavailable


def sha256_hex(data: bytes) -> str:
    """The blob name of `data`."""
    return hashlib.sha256(data).hexdigest()


def _syncfs_function() -> Callable[[int], int] | None:
    if not hasattr(os, "O_DIRECTORY"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


class Reader(Protocol):
    """A blob opened for reading: an open file, or an object store's response body."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class Blobs(Protocol):
    """A content-addressed store: a blob is named by the sha256 of its bytes, is whole or
    absent, and is durable once `put_many` returns. Every method blocks (disk or network):
    call them from an executor."""

    def read(self, name: str) -> bytes:
        """The blob's bytes; raises NotFound."""
        ...

    def size(self, name: str) -> int:
        """The blob's length in bytes; raises NotFound."""
        ...

    def open(self, name: str, start: int = 0) -> Reader:
        """A reader of the blob from byte `start` to its end; raises NotFound."""
        ...

    def local_file(self, name: str) -> AbstractContextManager[Path]:
        """A file on this machine holding the blob while the context lasts (for decoders
        that want a path); raises NotFound."""
        ...

    def put_many(self, items: Iterable[bytes]) -> list[str]:
        """Store every item durably and return their names, in order; raises Unavailable."""
        ...

    def delete(self, names: Iterable[str]) -> None:
        """Remove these blobs with no copy left behind (missing ones are ignored)."""
        ...


def valid_name(name: str) -> str:
    """`name` if it can be a blob name (64 lowercase hex digits); raises NotFound otherwise,
    so no caller's string ever becomes a path or an object key."""
    if len(name) != 64 or any(c not in "0123456789abcdef" for c in name):
        raise NotFound("blob", name)
    return name


class BlobStore:
    """Blobs under one root folder on this machine's disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._syncfs = _syncfs_function()

    def path(self, name: str) -> Path:
        """Where the blob `name` lives (it may not exist)."""
        valid_name(name)
        return self.root / name[:2] / name

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

    def open(self, name: str, start: int = 0) -> Reader:
        try:
            handle = open(self.path(name), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise NotFound("blob", name) from None
        handle.seek(start)
        return handle

    @contextmanager
    def local_file(self, name: str) -> Iterator[Path]:
        path = self.path(name)
        if not path.is_file():
            raise NotFound("blob", name)
        yield path

    def put_many(self, items: Iterable[bytes]) -> list[str]:
        """Store every item durably and return their names, in order.

        New blobs are created under their final names and made durable by one flush, data and
        directory entries together. A name that exists already is checked against its content
        (a crash may have left the file half written, or another process may be writing it
        this moment) and is flushed with the rest; one that does not hold its content is
        written again under a temporary name, fsynced and renamed over it. So every name
        returned holds its whole blob on disk.
        Raises Unavailable (nothing refers to the blobs yet, so nothing is lost) if the disk
        fails; the files this call created are removed then.
        """
        names: list[str] = []
        seen: set[Path] = set()
        created: dict[Path, int] = {}  # path -> inode, to remove only our own after a failure
        redo: dict[Path, bytes] = {}
        try:
            for data in items:
                name = sha256_hex(data)
                names.append(name)
                final = self.path(name)
                if final in seen:
                    continue
                seen.add(final)
                inode = _create(final, data)
                if inode is not None:
                    created[final] = inode
                elif not _holds(final, name):
                    redo[final] = data
            if seen:
                self._flush(seen - redo.keys())
            for final, data in redo.items():
                _replace(final, data)
        except OSError as exc:
            for path, inode in created.items():
                with contextlib.suppress(OSError):
                    if path.stat().st_ino == inode:
                        path.unlink()
            raise Unavailable(f"blob store write failed: {exc.strerror}") from exc
        return names

    def delete(self, names: Iterable[str]) -> None:
        """Remove these blobs (missing ones are ignored) and make the removal durable.

        The removal is made durable by fsyncing the folders it touched, not with `syncfs`:
        that would also wait for every other file's unwritten data on the filesystem, which
        after a large write elsewhere took 1.7 s where the folders took 10 ms. Many blobs (an
        erasure) are removed by a few threads, each with shard folders of its own: one
        unlink waits on the disk's journal about 0.2 ms, and 10,000 of them in one thread
        took 2.0 s where four threads took 1.0 s.
        """
        by_folder: dict[Path, list[Path]] = {}
        for name in names:
            path = self.path(name)
            by_folder.setdefault(path.parent, []).append(path)
        folders = sorted(by_folder)
        if len(by_folder) < DELETE_THREADS * 4:
            _unlink_all([(folder, by_folder[folder]) for folder in folders])
            return
        groups = [[(f, by_folder[f]) for f in folders[i::DELETE_THREADS]] for i in range(DELETE_THREADS)]
        with ThreadPoolExecutor(DELETE_THREADS, thread_name_prefix="blob-delete") as pool:
            for done in [pool.submit(_unlink_all, group) for group in groups]:
                done.result()

    def _flush(self, paths: Iterable[Path]) -> None:
        """Make the data and directory entries of these paths durable."""
        if self._syncfs is not None:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
            try:
                if self._syncfs(fd) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, os.strerror(errno))
            finally:
                os.close(fd)
            return
        paths = list(paths)
        for path in paths:
            _fsync_file(path)
        for directory in sorted({p.parent for p in paths} | {self.root}):
            _fsync_dir(directory)


DELETE_THREADS = 4
FLUSHED_PIECE = 1 << 20  # a larger blob is written and flushed a mebibyte at a time
_fdatasync = getattr(os, "fdatasync", os.fsync)  # (macOS has only fsync)


def _create(final: Path, data: bytes) -> int | None:
    """Write `data` to a new file at `final`; its inode, or None if the name exists.

    A small blob is left for the batch's flush. A large one (an attachment or recording of
    megabytes) is flushed piece by piece as it is written: a flush of the file system (the
    small mail's `syncfs`, in this process or another) then never waits for megabytes of it.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(final, flags, 0o600)
    except FileExistsError:
        return None
    except FileNotFoundError:  # the shard folder's first blob
        final.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(final, flags, 0o600)
    try:
        try:
            view = memoryview(data)
            for start in range(0, len(view), FLUSHED_PIECE):
                piece = view[start : start + FLUSHED_PIECE]
                while piece:
                    piece = piece[os.write(fd, piece) :]
                if len(view) > FLUSHED_PIECE:
                    _fdatasync(fd)
            return os.fstat(fd).st_ino
        finally:
            os.close(fd)
    except OSError:
        final.unlink(missing_ok=True)
        raise


def _replace(final: Path, data: bytes) -> None:
    """Put whole `data` at `final`, where a file stands that does not hold it."""
    tmp = final.parent / f".{final.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(final.parent)


def _holds(path: Path, name: str) -> bool:
    """Whether the file at `path` holds exactly the blob `name` (read and hashed)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        return False
    return digest.hexdigest() == name


def _unlink_all(folders: list[tuple[Path, list[Path]]]) -> None:
    """Unlink each folder's files, then fsync the folder."""
    for folder, paths in folders:
        for path in paths:
            path.unlink(missing_ok=True)
        if folder.is_dir():
            _fsync_dir(folder)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
