"""Call recordings in: the metadata a phone system sends, checking the audio, and handing the
call to ingest with a transcription job queued in the same commit.

Both call connectors (HTTP upload and the watched folder) come through `ingest_call`, so a
call is checked, de-duplicated and linked one way: by `external_id` when the phone system
gives one (the same id again is the same call), otherwise by the sha256 of the audio.
The `from`/`to` numbers are normalised to E.164 and link the call like email addresses do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from service.audio import AudioInfo, probe
from service.errors import InvalidInput, TooLarge
from service.identifiers import normalise_phone
from service.ingest import Capture, CapturedParticipant, Ingestor
from storage.blobs import sha256_hex
from storage.engine import Database
from storage.jobs import latest_state
from storage.transcripts import transcript_of

LAYOUTS = ("mono", "stereo", "stereo-reversed")
DIRECTIONS = ("in", "out")
TRANSCRIBE = "transcribe"
# job status -> what the API calls it
STATUS_NAMES = {"queued": "queued", "running": "transcribing", "done": "done", "failed": "failed"}


@dataclass(frozen=True)
class CallMetadata:
    """What the phone system says about a recording."""

    external_id: str | None
    direction: str
    from_number: str | None
    to_number: str | None
    started_at: datetime | None
    agent: str | None
    channel_layout: str
    language: str | None
    # the file's name in the watched folder: an erasure removes its copy in processed/
    source_file: str | None = None


@dataclass(frozen=True)
class CallReceipt:
    """The answer to a phone system: where the call is and how far it has got."""

    interaction_id: int
    status: str
    duplicate: bool


def _text(data: Mapping[str, Any], key: str, limit: int = 300) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidInput(f"metadata {key} must be a string", key)
    text = str(value).strip()
    if len(text) > limit:
        raise InvalidInput(f"metadata {key} is longer than {limit} characters", key)
    return text or None


def parse_call_metadata(data: Any, default_layout: str, require_ids: bool = True) -> CallMetadata:
    """Validated call metadata; raises InvalidInput naming the field.

    `require_ids` (HTTP uploads) demands `external_id`, `direction`, `from`, `to` and
    `started_at`; the watched folder takes a recording with any of them missing.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("metadata must be a JSON object", "metadata")
    known = {"external_id", "direction", "from", "to", "started_at", "agent", "channel_layout", "language"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidInput(f"unknown metadata field(s): {', '.join(unknown)}", unknown[0])
    if require_ids:
        missing = [k for k in ("external_id", "direction", "from", "to", "started_at") if not data.get(k)]
        if missing:
            raise InvalidInput(f"metadata lacks {', '.join(missing)}", missing[0])
    direction = _text(data, "direction") or "unknown"
    if direction not in (*DIRECTIONS, "unknown") or (require_ids and direction == "unknown"):
        raise InvalidInput(f"direction must be one of {', '.join(DIRECTIONS)}", "direction")
    layout = _text(data, "channel_layout") or default_layout
    if layout not in LAYOUTS:
        raise InvalidInput(f"channel_layout must be one of {', '.join(LAYOUTS)}", "channel_layout")
    started = _text(data, "started_at")
    started_at = None
    if started is not None:
        try:
            started_at = datetime.fromisoformat(started.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput("started_at must be an ISO 8601 time", "started_at") from None
        if started_at.tzinfo is None:
            raise InvalidInput("started_at needs a time zone (e.g. +02:00 or Z)", "started_at")
    language = _text(data, "language", 16)
    if language is not None and (not language.isalpha() or len(language) > 3) and language != "auto":
        raise InvalidInput("language must be a language code such as fi, sv or en, or auto", "language")
    return CallMetadata(
        external_id=_text(data, "external_id", 200),
        direction=direction,
        from_number=_text(data, "from", 64),
        to_number=_text(data, "to", 64),
        started_at=started_at.astimezone(UTC) if started_at else None,
        agent=_text(data, "agent", 200),
        channel_layout=layout,
        language=language,
    )


def _participant(role: str, number: str | None, region: str) -> CapturedParticipant | None:
    """A phone participant; a number that is not a phone number (an extension, 'anonymous')
    is kept as written but links nobody."""
    if number is None:
        return None
    try:
        return CapturedParticipant(role, "phone", normalise_phone(number, region))
    except InvalidInput:
        return CapturedParticipant(role, "number", number)


def call_capture(
    audio: bytes, info: AudioInfo, meta: CallMetadata, region: str, received_at: datetime
) -> Capture:
    """The capture of one call recording (its transcript comes later, from the job)."""
    participants = [
        p
        for p in (_participant("from", meta.from_number, region), _participant("to", meta.to_number, region))
        if p is not None
    ]
    layout = meta.channel_layout if info.channels >= 2 else "mono"
    notes = []
    if layout != meta.channel_layout:
        notes.append(f"channel_layout {meta.channel_layout} given, but the recording has one channel")
    return Capture(
        channel="call",
        direction=meta.direction,
        occurred_at=meta.started_at or received_at,
        dedup_key=f"call:ext:{meta.external_id}" if meta.external_id else f"call:sha256:{sha256_hex(audio)}",
        raw=audio,
        raw_content_type=info.content_type,
        subject="",
        body="",
        participants=participants,
        parse_errors=notes,
        meta={
            "external_id": meta.external_id,
            "agent": meta.agent,
            "channel_layout": layout,
            "language": meta.language,
            **({"source_file": meta.source_file} if meta.source_file else {}),
            "audio": {
                "format": info.format,
                "codec": info.codec,
                "channels": info.channels,
                "sample_rate": info.sample_rate,
                "duration": round(info.duration, 3),
            },
        },
        jobs=[TRANSCRIBE],
    )


def call_detail(session: Session, interaction_id: int) -> dict[str, Any]:
    """A call's transcription status, the facts of its transcript, and its segments."""
    state = latest_state(session, interaction_id, TRANSCRIBE)
    facts, segments = transcript_of(session, interaction_id)
    transcription: dict[str, Any] = {
        "attempts": state.attempts if state else 0,
        "max_attempts": state.max_attempts if state else None,
        "error": state.error if state and state.status != "done" else None,
    }
    if facts is not None:
        transcription |= {
            "language": facts.language,
            "model": facts.model,
            "model_version": facts.model_version,
            "audio_seconds": round(facts.audio_seconds, 3),
            "processing_seconds": round(facts.processing_seconds, 3),
            "transcribed_at": facts.created_at.isoformat(),
        }
    return {
        "status": STATUS_NAMES[state.status] if state else "queued",
        "transcription": transcription,
        "segments": [
            {
                "start": s.start,
                "end": s.end,
                "speaker": s.speaker,
                "text": s.text,
                "avg_logprob": round(s.avg_logprob, 4),
            }
            for s in segments
        ],
        "audio_url": f"/api/v1/interactions/{interaction_id}/audio",
    }


async def call_status(db: Database, interaction_id: int) -> str:
    """The transcription status of a call: queued, transcribing, done or failed."""
    state = await db.run_read(lambda session: latest_state(session, interaction_id, TRANSCRIBE))
    return STATUS_NAMES[state.status] if state is not None else "queued"


async def ingest_call(
    ingestor: Ingestor,
    executor: Executor,
    audio: bytes,
    meta: CallMetadata,
    region: str,
    max_bytes: int,
) -> CallReceipt:
    """Check a recording, store it durably with a queued transcription, and say where it is.

    The same external id again answers with the call already stored, whatever the audio.
    Raises TooLarge, UnsupportedFormat, Unprocessable (nothing stored) or IngestFailed.
    """
    if len(audio) > max_bytes:
        raise TooLarge(f"the recording is larger than {max_bytes} bytes", "audio")
    received_at = datetime.now(UTC)
    if meta.external_id is not None:
        known = await ingestor.stored(f"call:ext:{meta.external_id}")
        if known is not None:
            return CallReceipt(known, await call_status(ingestor.db, known), True)
    info = await asyncio.get_running_loop().run_in_executor(executor, probe, audio)
    result = await ingestor.ingest(call_capture(audio, info, meta, region, received_at))
    status = await call_status(ingestor.db, result.interaction_id) if result.duplicate else "queued"
    return CallReceipt(result.interaction_id, status, result.duplicate)
