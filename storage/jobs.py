"""A durable job queue in the database (transcribing calls, and later other slow work).

Jobs are rows, so they survive a restart: a job is enqueued in the same transaction as the
interaction it works on, claimed by setting it `running` with a lease and the claiming
worker's name (`host:pid`), and ends `done`, back in `queued` (with a delay) after a failure,
or `failed` once it has used its attempts. A job left `running` by a process that died is
put back in the queue by `release_orphans`: at once when the owner was a process on this
host that no longer exists, otherwise when its lease has run out. The claim uses
`FOR UPDATE SKIP LOCKED` where the database has it, so several workers never take the
same job. All functions take a sync `Session` (run them with `Database.run_write`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Integer, String, Text, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage.base import Base, table_of, utcnow


class Job(Base):
    """One unit of background work on one interaction."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    last_error: Mapped[str | None] = mapped_column(Text)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column()
    worker: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker now holds."""

    id: int
    kind: str
    interaction_id: int
    attempt: int
    max_attempts: int


def worker_name(suffix: str = "") -> str:
    """The name a worker of this process claims jobs under: `host:pid[:suffix]`."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    return f"{name}:{suffix}" if suffix else name


def enqueue(session: Session, kind: str, interaction_ids: Sequence[int], max_attempts: int) -> None:
    """Queue one job of `kind` per interaction (in the caller's transaction)."""
    if not interaction_ids:
        return
    now = utcnow()
    session.execute(
        insert(table_of(Job)),
        [
            {
                "kind": kind,
                "interaction_id": iid,
                "status": "queued",
                "attempts": 0,
                "max_attempts": max_attempts,
                "run_after": now,
                "created_at": now,
                "updated_at": now,
            }
            for iid in interaction_ids
        ],
    )


def runnable(session: Session, kinds: Iterable[str]) -> bool:
    """Whether a job of these kinds could be claimed now: a read, so a worker with nothing to
    do does not take the database's write lock (on SQLite, the one that capture needs)."""
    found = session.execute(
        select(Job.id)
        .where(Job.status == "queued", Job.kind.in_(list(kinds)), Job.run_after <= utcnow())
        .limit(1)
    ).first()
    return found is not None


def claim(
    session: Session, kinds: Iterable[str], worker: str, lease: timedelta, limit: int = 1
) -> list[ClaimedJob]:
    """Take up to `limit` of the oldest runnable jobs of these kinds (none if there are none)."""
    now = utcnow()
    found = session.execute(
        select(Job.id, Job.kind, Job.interaction_id, Job.attempts, Job.max_attempts)
        .where(Job.status == "queued", Job.kind.in_(list(kinds)), Job.run_after <= now)
        .order_by(Job.run_after, Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not found:
        return []
    session.execute(
        update(Job)
        .where(Job.id.in_([f.id for f in found]))
        .values(
            status="running",
            attempts=Job.attempts + 1,
            lease_until=now + lease,
            worker=worker,
            updated_at=now,
        )
    )
    return [ClaimedJob(f.id, f.kind, f.interaction_id, f.attempts + 1, f.max_attempts) for f in found]


def renew(session: Session, job_id: int, worker: str, lease: timedelta) -> bool:
    """Extend a running job's lease; False if the job is no longer this worker's."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running", Job.worker == worker)
        .values(lease_until=utcnow() + lease)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish(session: Session, *job_ids: int) -> None:
    """Mark jobs done."""
    session.execute(
        update(Job)
        .where(Job.id.in_(job_ids))
        .values(status="done", last_error=None, lease_until=None, updated_at=utcnow())
    )


def fail(session: Session, job_id: int, error: str, retry_in: timedelta) -> str:
    """Record a failed attempt: back to the queue after `retry_in`, or `failed` when none are left.

    Returns the job's new status. The row is locked while it is changed, so a job an erasure
    deletes at that moment is either changed first or found gone.
    """
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        return "failed"
    status = "failed" if job.attempts >= job.max_attempts else "queued"
    now = utcnow()
    job.status = status
    job.last_error = error[:2000]
    job.lease_until = None
    job.run_after = now + retry_in
    job.updated_at = now
    return status


def release(session: Session, job_id: int) -> None:
    """Give a running job back unfinished (the service is stopping): queued again, and the
    attempt does not count."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running")
        .values(
            status="queued", attempts=Job.attempts - 1, lease_until=None, worker=None, updated_at=utcnow()
        )
    )


def _alive_here(worker: str | None, host: str) -> bool:
    """Whether a worker name belongs to a process on this host that still exists."""
    if not worker:
        return False
    parts = worker.split(":")
    if parts[0] != host or len(parts) < 2 or not parts[1].isdigit():
        return True  # another host's: only its lease can tell
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_orphans(session: Session) -> int:
    """Put jobs whose worker died back in the queue (or fail them if out of attempts).

    Returns how many jobs were released.
    """
    now = utcnow()
    host = socket.gethostname()
    # rows another transaction holds (a worker finishing, an erasure) are left to the next sweep
    running = session.scalars(
        select(Job).where(Job.status == "running").with_for_update(skip_locked=True)
    ).all()
    released = 0
    for job in running:
        expired = job.lease_until is not None and job.lease_until < now
        if not expired and _alive_here(job.worker, host):
            continue
        job.status = "failed" if job.attempts >= job.max_attempts else "queued"
        job.last_error = "the worker stopped while running this job"
        job.lease_until = None
        job.run_after = now
        job.updated_at = now
        released += 1
    return released


@dataclass(frozen=True)
class JobState:
    """What a person sees of an interaction's job."""

    status: str
    attempts: int
    max_attempts: int
    error: str | None
    updated_at: datetime


def latest_state(session: Session, interaction_id: int, kind: str) -> JobState | None:
    """The state of the newest job of `kind` on an interaction."""
    job = session.scalars(
        select(Job)
        .where(Job.interaction_id == interaction_id, Job.kind == kind)
        .order_by(Job.id.desc())
        .limit(1)
    ).first()
    if job is None:
        return None
    return JobState(job.status, job.attempts, job.max_attempts, job.last_error, job.updated_at)
