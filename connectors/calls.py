"""Call recordings from the phone system: an HTTP upload and a watched folder.

Both only speak their protocol and hand the recording to `service.calls.ingest_call`, which
checks it, stores it durably with its transcription queued, and de-duplicates it.

- `POST /api/v1/calls` (service token with scope `ingest`, or a staff login), multipart with
  the parts `audio` (the file) and `metadata` (JSON). 202 `{"interaction_id", "status"}`.
- `[calls] watch_dir`: a recording (with an optional same-name `.json` sidecar holding the
  same metadata) is taken once it and its sidecar have kept their size and time for
  `settle_seconds`, then moved to `processed/`; one that cannot be taken goes to `failed/`
  with `<name>.error.txt` saying why. Storage trouble leaves the file where it is for the
  next look. A restart between storing and moving stores nothing twice: the same
  recording again is recognised as the call already stored, and moved on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from service.api.auth import caller
from service.api.params import UnsupportedMediaType
from service.appkeys import EXECUTOR, INGESTOR, SETTINGS
from service.calls import CallMetadata, CallReceipt, ingest_call, parse_call_metadata
from service.errors import IngestFailed, InvalidInput, TooLarge
from storage.errors import StorageError

log = logging.getLogger(__name__)
MAX_METADATA_BYTES = 65_536
_SKIP_SUFFIXES = (".json", ".tmp", ".part", ".partial", ".txt")


async def _read_part(part: BodyPartReader, limit: int, what: str) -> bytes:
    """A part's bytes, refusing (413) as soon as it passes `limit`."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(1 << 16):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the {what} is larger than {limit} bytes", part.name)
        chunks.append(chunk)
    return b"".join(chunks)


def _metadata_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"metadata is not valid JSON: {exc}", "metadata") from None


async def upload_call(request: web.Request) -> web.Response:
    """POST /api/v1/calls: one recording and its metadata from the phone system."""
    who = caller(request)
    who.require_scope("ingest")
    settings = request.app[SETTINGS]
    limit = settings.calls.max_audio_bytes
    if request.content_length is not None and request.content_length > limit + MAX_METADATA_BYTES:
        raise TooLarge(f"the recording is larger than {limit} bytes", "audio")
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("send multipart/form-data with the parts audio and metadata")
    audio: bytes | None = None
    metadata: Any = None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name not in ("audio", "metadata"):
            raise InvalidInput("send exactly the parts audio and metadata", getattr(part, "name", None))
        if part.name == "audio":
            audio = await _read_part(part, limit, "recording")
        else:
            metadata = _metadata_json(await _read_part(part, MAX_METADATA_BYTES, "metadata"))
    if metadata is None:
        raise InvalidInput("the metadata part is missing", "metadata")
    meta = parse_call_metadata(metadata, settings.calls.channel_layout)
    if audio is None:
        raise InvalidInput("the audio part is missing", "audio")
    receipt = await ingest_call(
        request.app[INGESTOR], request.app[EXECUTOR], audio, meta, settings.linking.default_region, limit
    )
    return web.json_response(
        _receipt(receipt), status=202, headers={"Location": f"/api/v1/interactions/{receipt.interaction_id}"}
    )


def _receipt(receipt: CallReceipt) -> dict[str, Any]:
    return {
        "interaction_id": receipt.interaction_id,
        "status": receipt.status,
        "duplicate": receipt.duplicate,
    }


@dataclass
class _Seen:
    signature: tuple[int, ...]
    since: float


class CallFolder:
    """The watched folder: polls, waits for files to settle, ingests, and files them away."""

    def __init__(self, app: web.Application, watch_dir: str) -> None:
        self.app = app
        self.folder = folder = Path(watch_dir).expanduser()
        self.processed = folder / "processed"
        self.failed = folder / "failed"
        self._seen: dict[str, _Seen] = {}

    def _prepare(self) -> None:
        for path in (self.folder, self.processed, self.failed):
            path.mkdir(parents=True, exist_ok=True)

    def _scan(self) -> list[tuple[Path, Path | None, tuple[int, ...]]]:
        """Candidate recordings with their sidecar and a signature of their size and time."""
        found: list[tuple[Path, Path | None, tuple[int, ...]]] = []
        for entry in os.scandir(self.folder):
            name = entry.name
            if name.startswith(".") or not entry.is_file() or name.lower().endswith(_SKIP_SUFFIXES):
                continue
            path = Path(entry.path)
            stat = entry.stat()
            signature: tuple[int, ...] = (stat.st_size, stat.st_mtime_ns)
            sidecar: Path | None = path.with_suffix(".json")
            if sidecar is not None and sidecar.exists():
                side = sidecar.stat()
                signature += (side.st_size, side.st_mtime_ns)
            else:
                sidecar = None
            found.append((path, sidecar, signature))
        return sorted(found, key=lambda f: (f[2][1], f[0].name))

    async def run(self) -> None:
        """Poll until cancelled."""
        loop = asyncio.get_running_loop()
        settings = self.app[SETTINGS].calls
        await loop.run_in_executor(self.app[EXECUTOR], self._prepare)
        while True:
            try:
                await self.poll(settle=settings.settle_seconds)
            except OSError as exc:
                log.error("the watched call folder cannot be read: %s", exc.strerror)
            await asyncio.sleep(settings.poll_seconds)

    async def poll(self, settle: float) -> int:
        """One look at the folder; ingests what has settled and returns how many were taken."""
        loop = asyncio.get_running_loop()
        executor = self.app[EXECUTOR]
        now = time.monotonic()
        candidates = await loop.run_in_executor(executor, self._scan)
        present = {str(path) for path, _, _ in candidates}
        self._seen = {k: v for k, v in self._seen.items() if k in present}
        taken = 0
        for path, sidecar, signature in candidates:
            seen = self._seen.get(str(path))
            if seen is None or seen.signature != signature:
                self._seen[str(path)] = _Seen(signature, now)
                if settle > 0:
                    continue
            elif now - seen.since < settle:
                continue
            if await self._take(path, sidecar):
                taken += 1
                self._seen.pop(str(path), None)
        return taken

    async def _take(self, path: Path, sidecar: Path | None) -> bool:
        """Ingest one settled recording; True once it has left the folder."""
        loop = asyncio.get_running_loop()
        executor = self.app[EXECUTOR]
        settings = self.app[SETTINGS]
        try:
            audio, meta = await loop.run_in_executor(executor, self._read, path, sidecar)
            receipt = await ingest_call(
                self.app[INGESTOR],
                executor,
                audio,
                meta,
                settings.linking.default_region,
                settings.calls.max_audio_bytes,
            )
        except (IngestFailed, StorageError):
            # file names often carry callers' numbers: they stay out of the log
            log.warning("could not store a recording from the watched folder yet; it stays for the next look")
            return False
        except InvalidInput as exc:
            await loop.run_in_executor(executor, self._move, path, sidecar, self.failed, str(exc))
            log.warning("moved a recording to failed/ (the reason is beside it in .error.txt)")
            return True
        await loop.run_in_executor(executor, self._move, path, sidecar, self.processed, None)
        log.info(
            "took a recording from the watched folder as interaction %d%s",
            receipt.interaction_id,
            " (already stored)" if receipt.duplicate else "",
        )
        return True

    def _read(self, path: Path, sidecar: Path | None) -> tuple[bytes, CallMetadata]:
        limit = self.app[SETTINGS].calls.max_audio_bytes
        if path.stat().st_size > limit:
            raise TooLarge(f"the recording is larger than {limit} bytes", "audio")
        data: Any = {}
        if sidecar is not None:
            raw = sidecar.read_bytes()
            if len(raw) > MAX_METADATA_BYTES:
                raise TooLarge(f"the sidecar is larger than {MAX_METADATA_BYTES} bytes", "metadata")
            data = _metadata_json(raw)
        meta = parse_call_metadata(data, self.app[SETTINGS].calls.channel_layout, require_ids=False)
        meta = dataclasses.replace(meta, source_file=path.name)
        if meta.started_at is None:
            meta = dataclasses.replace(meta, started_at=datetime.fromtimestamp(path.stat().st_mtime, UTC))
        return path.read_bytes(), meta

    def _move(self, path: Path, sidecar: Path | None, into: Path, error: str | None) -> None:
        target = _free_name(into, path.name)
        if error is not None:
            (into / f"{target.name}.error.txt").write_text(error + "\n", encoding="utf-8")
        if sidecar is not None and sidecar.exists():
            os.replace(sidecar, target.with_suffix(".json"))
        os.replace(path, target)


def _free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/stem-N.suffix` when that is taken."""
    target = folder / name
    n = 1
    while target.exists() or target.with_suffix(".json").exists():
        stem, suffix = os.path.splitext(name)
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    return target


async def call_folder(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the watched folder's poller, while the app runs."""
    folder = CallFolder(app, app[SETTINGS].calls.watch_dir)
    task = asyncio.create_task(folder.run(), name="call-folder")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup(app: web.Application) -> None:
    """Entry point `kirjuri.connectors: calls`: the upload route, and the folder when configured."""
    app.router.add_post("/api/v1/calls", upload_call)
    if app[SETTINGS].calls.watch_dir:
        app.cleanup_ctx.append(call_folder)
