"""Transcribing calls in the background: workers that take jobs off the durable queue, run
Whisper in processes of their own, and store speaker-labelled segments.

Each of `[transcription] workers` async workers claims one job at a time and hands the
recording's path to a process pool (spawned, one process per worker, niced so recognition
yields the cores to the SMTP and HTTP servers; the model is loaded once per process). The
event loop only waits. While a job runs its lease is renewed; a process that dies fails
the attempt and the pool is rebuilt; a job left running by a process that died is put back
in the queue at the next start. A job that fails `max_attempts` times is `failed`, its last
error shown on the call. A stereo call is transcribed channel by channel: the left channel
is the agent and the right the customer (`stereo`), or the other way (`stereo-reversed`);
the segments are merged in time order. A mono call's speakers are `unknown`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.audio import SAMPLE_RATE, decode
from service.calls import TRANSCRIBE
from service.errors import ConfigError
from service.processes import die_with_parent
from service.queue import DETECT, WEBHOOKS, Wakes, next_jobs
from service.settings import TranscriptionSettings
from service.transcriber import BACKENDS, Transcriber, build_transcriber
from storage.blobs import Blobs
from storage.engine import Database
from storage.interactions import Interaction
from storage.jobs import (
    ClaimedJob,
    enqueue,
    fail,
    finish,
    release,
    release_orphans,
    renew,
    worker_name,
)
from storage.search import replace_body_text
from storage.transcripts import SegmentRow, TranscriptRow, replace_transcript
from storage.webhooks import NewEvent, add_events

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
SPEAKERS = {"stereo": ("agent", "customer"), "stereo-reversed": ("customer", "agent")}


@dataclass(frozen=True)
class CallAudio:
    """What a worker process needs to transcribe one call."""

    path: str
    layout: str
    language: str | None


def transcribe_recording(transcriber: Transcriber, call: CallAudio) -> TranscriptRow:
    """The transcript of one recording: each channel on its own for stereo, merged in time."""
    started = time.perf_counter()
    speakers = SPEAKERS.get(call.layout, ("unknown",))
    channels = decode(Path(call.path), split_channels=len(speakers) == 2)
    if len(channels) == 1:
        speakers = ("unknown",)
    segments: list[SegmentRow] = []
    spoken: dict[str, float] = {}
    for samples, speaker in zip(channels, speakers, strict=True):
        result = transcriber.transcribe(samples, call.language)
        segments.extend(SegmentRow(s.start, s.end, speaker, s.text, s.avg_logprob) for s in result.segments)
        if result.language:
            spoken[result.language] = (
                spoken.get(result.language, 0.0) + sum(s.end - s.start for s in result.segments) + 0.001
            )
    segments.sort(key=lambda s: (s.start, s.end, s.speaker))
    language = max(spoken, key=spoken.__getitem__) if spoken else (call.language or "")
    return TranscriptRow(
        language=language,
        model=transcriber.name,
        model_version=transcriber.version,
        audio_seconds=len(channels[0]) / SAMPLE_RATE,
        processing_seconds=time.perf_counter() - started,
        segments=segments,
    )


def transcript_text(segments: Sequence[SegmentRow]) -> str:
    """A transcript as the interaction's text: one `speaker: words` line per segment."""
    return "\n".join(f"{s.speaker}: {s.text}" for s in segments)


# The model of this worker process, loaded by its first job. Worker processes are Kirjuri's
# own (spawned by TranscriptionService); nothing else in them shares this.
_loaded: dict[str, Transcriber] = {}


def _transcribe_in_worker(settings: TranscriptionSettings, data_dir: str, call: CallAudio) -> TranscriptRow:
    key = f"{settings!r} {data_dir}"
    if key not in _loaded:
        os.nice(10)  # recognition takes what the servers leave
        _loaded.clear()
        _loaded[key] = build_transcriber(settings, Path(data_dir))
    return transcribe_recording(_loaded[key], call)


def check_settings(settings: TranscriptionSettings) -> None:
    """Fail at start, not at the first call, on settings that cannot work."""
    if settings.backend not in BACKENDS:
        raise ConfigError(f"[transcription] backend must be one of {', '.join(BACKENDS)}")
    if settings.workers < 0:
        raise ConfigError("[transcription] workers must be 0 or more")
    if min(settings.cpu_threads, settings.max_attempts, settings.beam_size) < 1:
        raise ConfigError("[transcription] cpu_threads, beam_size and max_attempts must be at least 1")
    if settings.backend == "faster-whisper" and settings.model:
        if not (Path(settings.model).expanduser() / "model.bin").is_file():
            raise ConfigError(f"[transcription] model: {settings.model} holds no CTranslate2 model.bin")


def _call_audio(session: Session, interaction_id: int) -> tuple[str | None, dict[str, Any]]:
    row = session.execute(
        select(Interaction.raw_blob, Interaction.meta).where(Interaction.id == interaction_id)
    ).first()
    return (row.raw_blob, row.meta) if row is not None else (None, {})


class TranscriptionService:
    """The transcription workers of one process. Start `run()` as a task; cancel it to stop."""

    def __init__(
        self,
        db: Database,
        blobs: Blobs,
        settings: TranscriptionSettings,
        data_dir: Path,
        wakes: Wakes,
        poll_seconds: float = 1.0,
        sweep_seconds: float = LEASE.total_seconds() / 5,
    ) -> None:
        check_settings(settings)
        self.sweep_seconds = sweep_seconds
        self.db = db
        self.blobs = blobs
        self.settings = settings
        self.data_dir = data_dir
        self.wakes = wakes
        self.poll_seconds = poll_seconds
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=max(1, self.settings.workers),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=die_with_parent,
                initargs=(os.getpid(),),
            )
        return self._pool

    def close(self) -> None:
        """Stop the worker processes (a recognition in progress is abandoned, its job requeued)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def run(self) -> None:
        await self._release_orphans()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._sweep())
            for n in range(self.settings.workers):
                group.create_task(self._worker(worker_name(f"transcribe-{n}")))

    async def _release_orphans(self) -> None:
        released = await self.db.run_write(release_orphans)
        if released:
            log.warning("requeued %d transcription job(s) left running by a stopped process", released)
            self.wakes.wake([TRANSCRIBE])

    async def _sweep(self) -> None:
        """Every `sweep_seconds`, put back in the queue the jobs of workers that died, here
        (their process is gone) or on another machine (their lease ran out)."""
        while True:
            await asyncio.sleep(self.sweep_seconds)
            await self._release_orphans()

    async def _worker(self, name: str) -> None:
        wake = self.wakes[TRANSCRIBE]
        while True:
            (job,) = await next_jobs(self.db, [TRANSCRIBE], name, LEASE, wake, self.poll_seconds)
            await self._run(job, name)

    async def _run(self, job: ClaimedJob, name: str) -> None:
        try:
            result = await self._transcribe(job, name)
        except asyncio.CancelledError:
            await asyncio.shield(self.db.run_write(lambda session: release(session, job.id)))
            raise
        except Exception as exc:  # noqa: BLE001 - any failure is this job's, recorded on it
            if isinstance(exc, BrokenProcessPool):
                self._pool = None  # a worker process died: start afresh for the next job
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            retry = timedelta(seconds=self.settings.retry_seconds * 2 ** (job.attempt - 1))
            status = await self.db.run_write(lambda session: fail(session, job.id, message, retry))
            log.warning(
                "transcription of interaction %d failed (attempt %d of %d, now %s): %s",
                job.interaction_id,
                job.attempt,
                job.max_attempts,
                status,
                type(exc).__name__,
            )
            return
        await self.db.run_write(lambda session: self._store(session, job, result))
        self.wakes.wake([DETECT, WEBHOOKS])  # what _store queued
        log.info(
            "transcribed interaction %d: %.1f s of audio in %.1f s (%d segments)",
            job.interaction_id,
            result.audio_seconds,
            result.processing_seconds,
            len(result.segments),
        )

    async def _transcribe(self, job: ClaimedJob, name: str) -> TranscriptRow:
        blob, meta = await self.db.run_read(lambda session: _call_audio(session, job.interaction_id))
        if blob is None:
            raise FileNotFoundError("the call has no stored recording")
        loop = asyncio.get_running_loop()
        # the decoder wants a path: the blob's file, or a temporary copy from an object store
        with contextlib.ExitStack() as held:
            path = await loop.run_in_executor(None, held.enter_context, self.blobs.local_file(blob))
            call = CallAudio(
                path=str(path),
                layout=str(meta.get("channel_layout") or "mono"),
                language=_language(meta.get("language"), self.settings),
            )
            future = loop.run_in_executor(
                self._get_pool(), _transcribe_in_worker, self.settings, str(self.data_dir), call
            )
            while True:
                done, _ = await asyncio.wait({future}, timeout=LEASE.total_seconds() / 3)
                if done:
                    return future.result()
                await self.db.run_write(lambda session: renew(session, job.id, name, LEASE))

    def _store(self, session: Session, job: ClaimedJob, result: TranscriptRow) -> None:
        if session.get(Interaction, job.interaction_id) is None:
            return  # erased while it was being transcribed: nothing of it may come back
        replace_transcript(session, job.interaction_id, result)
        replace_body_text(session, job.interaction_id, transcript_text(result.segments))
        finish(session, job.id)
        customer_id = session.get(Interaction, job.interaction_id).customer_id  # type: ignore[union-attr]
        add_events(
            session,
            [
                NewEvent(
                    "interaction.transcribed",
                    {
                        "interaction_id": job.interaction_id,
                        "customer_id": customer_id,
                        "language": result.language,
                    },
                    customer_id,
                    job.interaction_id,
                )
            ],
        )
        # the customer's words are read for marketing bans next
        enqueue(session, DETECT, [job.interaction_id], self.settings.max_attempts)


def _language(requested: object, settings: TranscriptionSettings) -> str | None:
    """A call's own language if its metadata gives one, else the configured one; auto is None."""
    language = requested if isinstance(requested, str) and requested else settings.language
    return None if language == "auto" else language
