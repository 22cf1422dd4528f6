"""Taking the next job off the durable queue (`storage.jobs`) for a background worker.

A worker claims a job of its kinds; when there is none it sleeps until the ingest writer or
another worker says new jobs were queued (`wake`), or `poll_seconds` pass, since jobs queued
by another process (`serve --only ...`) wake nobody here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from storage.engine import Database
from storage.jobs import ClaimedJob, claim


async def next_job(
    db: Database,
    kinds: Sequence[str],
    worker: str,
    lease: timedelta,
    wake: asyncio.Event,
    poll_seconds: float,
) -> ClaimedJob:
    """The next job of these kinds, claimed for `worker` with a lease; waits until there is one."""
    while True:
        job = await db.run_write(lambda session: claim(session, kinds, worker, lease))
        if job is not None:
            return job
        try:
            await asyncio.wait_for(wake.wait(), timeout=poll_seconds)
        except TimeoutError:
            pass
        wake.clear()
