"""Jobs shared by many workers: each job is taken by exactly one of workers claiming at the
same moment (FOR UPDATE SKIP LOCKED on PostgreSQL, the single writer on SQLite), and a job
whose worker died on another machine goes back to the queue when its lease runs out, without
waiting for some worker to restart (the transcription service sweeps for them)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.calls import TRANSCRIBE
from service.queue import Wakes
from service.settings import Settings
from service.transcription import TranscriptionService
from storage.blobs import BlobStore
from storage.engine import Database
from storage.interactions import insert_interactions
from storage.jobs import Job, claim, enqueue
from tests.conftest import stored_row


def new_calls(session: Session, count: int) -> list[int]:
    ids = insert_interactions(session, [stored_row(f"jobs-test-{n}") for n in range(count)])
    return [i for i in ids if i is not None]


async def test_workers_claiming_at_once_never_take_a_job_twice(settings: Settings) -> None:
    db = Database(settings.storage.database_url)
    await db.open()
    await db.run_write(lambda session: enqueue(session, TRANSCRIBE, new_calls(session, 300), 3))

    async def worker(n: int) -> list[int]:
        taken: list[int] = []
        while True:
            jobs = await db.run_write(
                lambda session: claim(session, [TRANSCRIBE], f"here:{n}", timedelta(minutes=5), limit=3)
            )
            if not jobs:
                return taken
            taken += [j.interaction_id for j in jobs]
            await asyncio.sleep(0)

    try:
        shares = await asyncio.gather(*(worker(n) for n in range(8)))
    finally:
        await db.close()
    taken = [i for share in shares for i in share]
    assert len(taken) == 300 and len(set(taken)) == 300
    assert sum(1 for share in shares if share) > 1  # the work was shared, not one worker's


async def test_a_dead_remote_workers_job_is_requeued_when_its_lease_runs_out(
    settings: Settings, tmp_path: Path
) -> None:
    db = Database(settings.storage.database_url)
    await db.open()

    def queue_and_take(session: Session) -> None:
        enqueue(session, TRANSCRIBE, new_calls(session, 1), 3)
        # taken by a worker on another machine that then died: only its lease can tell
        claim(session, [TRANSCRIBE], "another-host:4242:transcribe-0", timedelta(seconds=lease))

    lease = 3.0
    await db.run_write(queue_and_take)
    claimed = time.monotonic()

    async def status() -> str:
        async with db.read() as session:
            return str(await session.scalar(select(Job.status)))

    service = TranscriptionService(
        db,
        BlobStore(tmp_path / "blobs"),
        replace(settings.transcription, workers=0),
        tmp_path,
        Wakes(),
        sweep_seconds=0.2,
    )
    task = asyncio.create_task(service.run())
    try:
        await asyncio.sleep(1.0)  # about five sweeps, well inside the lease
        assert await status() == "running"  # the lease still holds: the job is not taken twice
        while await status() != "queued":
            assert time.monotonic() - claimed < lease + 15, "the expired lease was never swept"
            await asyncio.sleep(0.1)
        assert time.monotonic() - claimed >= lease - 0.5  # put back when the lease ran out, not before
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.close()
