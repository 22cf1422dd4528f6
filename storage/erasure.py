"""Deleting interactions and customers so that nothing of them is left behind.

Rows go with `secure_delete` on (SQLite overwrites deleted content with zeros) and their
full-text entries are deleted. Two things are owed after the commit and queued in the same
transaction: the blobs no other interaction refers to (`blob_deletions`), and on SQLite a
merge of the full-text index (`index_purges`: FTS5 keeps a deleted document's terms in older
index segments until they are merged). The caller removes the files (`BlobStore.delete`)
while the index is merged (`purge_queued_terms`), then clears the queue, so a crash in
between leaves a queue to finish, never a file or a term nobody knows about.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.interactions import Attachment, Interaction, Participant, Tag, unreferenced_blobs
from storage.jobs import Job
from storage.rights import BlobDeletion, IndexPurge
from storage.search import purge_deleted_terms, unindex_interactions
from storage.transcripts import TranscriptSegment

CHUNK = 2000  # ids per statement, well under SQLite's limit of bound parameters


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


@dataclass
class Erased:
    """What a deletion removed, counted by kind, and what it leaves to do after the commit."""

    counts: dict[str, int] = field(default_factory=dict)
    blobs: set[str] = field(default_factory=set)
    source_files: list[tuple[str, str]] = field(default_factory=list)  # (file name, blob)

    def add(self, kind: str, n: int) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n


# rows that belong to one interaction and are counted in an erasure's report (attachments too)
COUNTED: tuple[tuple[str, Any], ...] = (
    ("participants", Participant),
    ("tags", Tag),
    ("transcript_segments", TranscriptSegment),
    ("jobs", Job),
)


async def erase_interactions(session: AsyncSession, ids: Sequence[int], erased: Erased) -> None:
    """Delete these interactions with everything hanging off them (participants, attachments,
    tags, transcripts, jobs, holds) and their full-text entries, and queue what is owed
    after the commit: their blobs that nothing else refers to, and the index merge.

    The counted child rows are deleted by statements of their own, whose row counts are the
    report's (counting them first, then letting ON DELETE CASCADE delete them, read every
    row twice); the rest (transcripts, holds) goes by cascade.
    """
    ids = sorted(set(ids))
    blobs: set[str] = set()
    quiet = {"synchronize_session": False}
    for chunk in _chunks(ids):
        attachment_blobs = list(
            await session.scalars(
                delete(Attachment).where(Attachment.interaction_id.in_(chunk)).returning(Attachment.blob),
                execution_options=quiet,
            )
        )
        erased.add("attachments", len(attachment_blobs))
        blobs.update(attachment_blobs)
        for kind, model in COUNTED:
            result = await session.execute(
                delete(model).where(model.interaction_id.in_(chunk)), execution_options=quiet
            )
            erased.add(kind, int(result.rowcount or 0))  # type: ignore[attr-defined]
        await session.run_sync(unindex_interactions, chunk)
        rows = await session.execute(
            delete(Interaction)
            .where(Interaction.id.in_(chunk))
            .returning(Interaction.channel, Interaction.raw_blob, Interaction.meta),
            execution_options=quiet,
        )
        for channel, raw_blob, meta in rows:
            erased.add(f"{channel}s", 1)
            if raw_blob:
                blobs.add(raw_blob)
                source = (meta or {}).get("source_file")
                if isinstance(source, str) and source:
                    erased.source_files.append((source, raw_blob))
    await queue_blob_deletions(session, blobs, erased)
    if ids:
        await session.run_sync(queue_index_purge)


def queue_index_purge(session: Session) -> None:
    """Owe the full-text index a merge, in the deleting transaction (SQLite only: PostgreSQL
    deletes a document's index entries with its row)."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(IndexPurge))


def purge_queued_terms(session: Session) -> bool:
    """Merge the full-text index if a deletion owes it a merge, and forget what the merge
    paid (a deletion queued meanwhile stays owed); whether it merged."""
    last = session.scalar(select(func.max(IndexPurge.id)))
    if last is None:
        return False
    purge_deleted_terms(session)
    session.execute(delete(IndexPurge).where(IndexPurge.id <= last))
    return True


async def queue_blob_deletions(session: AsyncSession, names: set[str], erased: Erased) -> None:
    """Queue the blobs among `names` that no stored interaction refers to any more."""
    gone = await session.run_sync(unreferenced_blobs, names)
    queued = set(await session.scalars(select(BlobDeletion.name).where(BlobDeletion.name.in_(gone))))
    fresh = sorted(gone - queued)
    if fresh:
        await session.execute(insert(BlobDeletion), [{"name": n} for n in fresh])
    erased.blobs |= gone
    erased.add("blobs", len(gone))


async def pending_blob_deletions(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(BlobDeletion.name)))


async def clear_blob_deletions(session: AsyncSession, names: Iterable[str]) -> None:
    """Forget queued blob deletions whose files are gone."""
    names = sorted(set(names))
    for start in range(0, len(names), CHUNK):
        await session.execute(delete(BlobDeletion).where(BlobDeletion.name.in_(names[start : start + CHUNK])))
