"""Taking the next jobs off the durable queue (`storage.jobs`) for a background worker.

A worker claims jobs of its kinds; when there are none it sleeps until the ingest writer or
another worker says jobs of its kind were queued (its event in `Wakes`), or `poll_seconds`
pass, since jobs queued by another process (`serve --only ...`) wake nobody here. It looks
with a read before it claims with a write, in case another worker took them first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import timedelta

from storage.engine import Database
from storage.jobs import ClaimedJob, claim, runnable

DETECT = "marketing"  # jobs: read an inbound interaction for marketing bans (service/marketing.py)
WEBHOOKS = "webhooks"  # not a job: the wake of the webhook sender, events were queued for delivery


class Wakes:
    """One event per kind of background work (a job kind, or `WEBHOOKS`), set by whatever in
    this process queued work of that kind. A commit of mail that queued marketing jobs wakes
    the marketing worker and not the transcription workers, which would otherwise look at the
    queue after every batch (under a mail burst, a scan past every queued marketing job)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def __getitem__(self, kind: str) -> asyncio.Event:
        """The event a worker of `kind` waits on."""
        return self._events.setdefault(kind, asyncio.Event())

    def wake(self, kinds: Iterable[str]) -> None:
        """Wake the workers of these kinds."""
        for kind in kinds:
            self[kind].set()


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
