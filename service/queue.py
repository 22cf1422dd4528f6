"""Taking the next jobs off the durable queue (`storage.jobs`) for a background worker.

A worker claims jobs of its kinds; when there are none it sleeps until the ingest writer or
another worker says new jobs were queued (`wake`), or `poll_seconds` pass, since jobs queued
by another process (`serve --only ...`) wake nobody here. It looks with a read before it
claims with a write: every ingest commit wakes every worker, and most find nothing of theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from storage.engine import Database
from storage.jobs import ClaimedJob, claim, runnable


async def next_jobs(
    db: Database,
    kinds: Sequence[str],
    worker: str,
    lease: timedelta,
    wake: asyncio.Event,
    poll_seconds: float,
    limit: int = 1,
) -> list[ClaimedJob]:
    """The next jobs of these kinds (at least one, at most `limit`), claimed for `worker` with
    a lease; waits until there are some."""
    while True:
        if await db.run_read(lambda session: runnable(session, kinds)):
            jobs = await db.run_write(lambda session: claim(session, kinds, worker, lease, limit))
            if jobs:
                return jobs
        try:
            await asyncio.wait_for(wake.wait(), timeout=poll_seconds)
        except TimeoutError:
            pass
        wake.clear()
