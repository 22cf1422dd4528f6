"""The one entrance for captured data: every connector hands a `Capture` to `Ingestor.ingest`.

`ingest` returns only once the capture is durable: its blobs fsynced, then its row committed
(SQLite WAL, `synchronous=FULL`). A single writer task takes captures off a queue and writes
them in batches (group commit): one blob-directory fsync per shard and one database commit
serve every capture that arrived meanwhile, so durability does not cost one fsync chain per
message. Each capture gets its own savepoint, so one bad capture fails alone.
The same `dedup_key` twice (BCC and journal, a retried SMTP transaction) is stored once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import IngestFailed
from service.linking import (
    LinkDecision,
    business_id_candidates,
    decide,
    decide_by_business_id,
    is_internal,
    linkable,
)
from service.mailparse import parse_email
from storage.base import utcnow
from storage.blobs import BlobStore, sha256_hex
from storage.customers import owners_of
from storage.engine import Database
from storage.errors import StorageError
from storage.interactions import NewInteraction, dedup_keys_stored, insert_interactions
from storage.search import index_interactions

log = logging.getLogger(__name__)


@dataclass
class CapturedParticipant:
    """A party to the interaction: `kind` is email or phone, `value` normalised."""

    role: str
    kind: str
    value: str
    display_name: str | None = None


@dataclass
class CapturedAttachment:
    """A file that came with the capture."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass
class Capture:
    """Everything a connector captured, ready to store."""

    channel: str
    direction: str
    occurred_at: datetime
    dedup_key: str
    raw: bytes | None = None
    raw_content_type: str | None = None
    subject: str = ""
    body: str = ""
    message_id: str | None = None
    participants: list[CapturedParticipant] = field(default_factory=list)
    attachments: list[CapturedAttachment] = field(default_factory=list)
    parse_errors: list[str] = field(default_factory=list)
    needs_review: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestResult:
    """Where a capture was stored; `duplicate` if it had been stored before."""

    interaction_id: int
    duplicate: bool
    customer_id: int | None = None


@dataclass
class _Pending:
    capture: Capture
    future: asyncio.Future[IngestResult]


class Ingestor:
    """Stores captures durably, in batches, from one writer task. Start with `run()` as a task."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        executor: Executor,
        internal_domains: Sequence[str] = (),
        max_batch: int = 64,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.executor = executor
        self.internal_domains = list(internal_domains)
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.batches = 0

    async def ingest(self, capture: Capture) -> IngestResult:
        """Store the capture and return once it is durable.

        Raises IngestFailed (temporary: try again) when it could not be stored.
        """
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(capture, future))
        return await future

    async def ingest_email(self, raw: bytes) -> IngestResult:
        """Parse a raw email off the event loop and store it; see `ingest`."""
        loop = asyncio.get_running_loop()
        capture = await loop.run_in_executor(
            self.executor, email_capture, raw, utcnow(), tuple(self.internal_domains)
        )
        return await self.ingest(capture)

    async def run(self) -> None:
        """The writer loop: runs until cancelled, finishing the batch in hand first."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await asyncio.shield(self._write_batch(batch))

    def fail_pending(self) -> None:
        """At shutdown: answer every capture still queued with IngestFailed (the sender retries)."""
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(IngestFailed("the service is shutting down"))

    async def _write_batch(self, batch: list[_Pending]) -> None:
        self.batches += 1
        try:
            results = await self._store(batch)
        except Exception as exc:  # noqa: BLE001 - the writer must outlive any one bad batch
            if isinstance(exc, StorageError | OSError):
                log.error("storing %d capture(s) failed: %s", len(batch), exc)
            else:
                log.exception("unexpected error storing %d capture(s)", len(batch))
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(IngestFailed("storage is unavailable"))
            return
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

    async def _store(self, batch: list[_Pending]) -> list[IngestResult]:
        """Blobs first (fsynced), then every row of the batch in one transaction."""
        async with self.db.read() as session:
            known = await dedup_keys_stored(session, [p.capture.dedup_key for p in batch])
        # only captures not stored before get blobs, so a duplicate leaves no orphan blob
        fresh: dict[str, Capture] = {}
        for p in batch:
            if p.capture.dedup_key not in known:
                fresh.setdefault(p.capture.dedup_key, p.capture)
        payloads: list[bytes] = []
        for cap in fresh.values():
            if cap.raw is not None:
                payloads.append(cap.raw)
            payloads.extend(a.data for a in cap.attachments)
        loop = asyncio.get_running_loop()
        names = iter(await loop.run_in_executor(self.executor, self.blobs.put_many, payloads))

        stored: dict[str, IngestResult] = {}
        if fresh:
            async with self.db.write() as session:
                caps = list(fresh.values())
                decisions = await self._decide(session, caps)
                rows = []
                for cap, decision in zip(caps, decisions, strict=True):
                    raw_name = next(names) if cap.raw is not None else None
                    rows.append(_row(cap, decision, raw_name, [next(names) for _ in cap.attachments]))
                ids = await insert_interactions(session, rows)
                await index_interactions(
                    session,
                    [
                        (iid, cap.subject, cap.body, _participant_text(cap))
                        for iid, cap in zip(ids, caps, strict=True)
                    ],
                )
            for iid, cap, decision in zip(ids, caps, decisions, strict=True):
                stored[cap.dedup_key] = IngestResult(iid, False, decision.customer_id)
        results: list[IngestResult] = []
        answered: set[str] = set()
        for p in batch:
            key = p.capture.dedup_key
            if key in known:
                results.append(IngestResult(known[key], True))
            elif key in answered:  # the same capture twice in one batch
                results.append(IngestResult(stored[key].interaction_id, True, stored[key].customer_id))
            else:
                results.append(stored[key])
                answered.add(key)
        return results

    async def _decide(self, session: AsyncSession, caps: list[Capture]) -> list[LinkDecision]:
        """Link decisions for a batch, with two identifier look-ups for all of it."""
        pairs = [[(p.kind, p.value) for p in cap.participants] for cap in caps]
        owners = await owners_of(
            session, [pair for ps in pairs for pair in linkable(ps, self.internal_domains)]
        )
        decisions = [
            decide(ps, owners, self.internal_domains, cap.needs_review)
            for ps, cap in zip(pairs, caps, strict=True)
        ]
        candidates = [
            business_id_candidates(d, f"{cap.subject}\n{cap.body}", cap.needs_review)
            for d, cap in zip(decisions, caps, strict=True)
        ]
        by_business_id = await owners_of(session, [c for cs in candidates for c in cs])
        return [
            decide_by_business_id(d, cs, by_business_id) for d, cs in zip(decisions, candidates, strict=True)
        ]


def _participant_text(cap: Capture) -> str:
    return " ".join(f"{p.display_name or ''} {p.value}".strip() for p in cap.participants)


def _row(
    cap: Capture, decision: LinkDecision, raw_name: str | None, attachment_names: list[str]
) -> NewInteraction:
    return NewInteraction(
        values={
            "channel": cap.channel,
            "direction": cap.direction,
            "occurred_at": cap.occurred_at,
            "captured_at": utcnow(),
            "subject": cap.subject,
            "body": cap.body,
            "message_id": cap.message_id,
            "dedup_key": cap.dedup_key,
            "raw_blob": raw_name,
            "raw_size": len(cap.raw) if cap.raw is not None else 0,
            "raw_content_type": cap.raw_content_type,
            "customer_id": decision.customer_id,
            "link_method": decision.method,
            "needs_review": cap.needs_review,
            "parse_errors": list(cap.parse_errors),
            "meta": dict(cap.meta),
        },
        participants=[
            {
                "role": p.role,
                "kind": p.kind,
                "value": p.value,
                "display_name": p.display_name,
                "customer_id": owner,
            }
            for p, owner in zip(cap.participants, decision.participant_owners, strict=True)
        ],
        attachments=[
            {"filename": a.filename, "content_type": a.content_type, "size": len(a.data), "blob": name}
            for a, name in zip(cap.attachments, attachment_names, strict=True)
        ],
    )


def email_capture(raw: bytes, received_at: datetime, internal_domains: Sequence[str]) -> Capture:
    """A capture of one raw email: parsed headers, text body, attachments, dedup key.

    Mail without a Message-ID is de-duplicated by the sha256 of its bytes.
    """
    parsed = parse_email(raw)
    sender = next((a.address for a in parsed.addresses if a.role == "from"), "")
    meta: dict[str, Any] = {}
    if parsed.in_reply_to:
        meta["in_reply_to"] = parsed.in_reply_to
    if parsed.references:
        meta["references"] = parsed.references
    errors = list(parsed.parse_errors)
    if parsed.date is None and not any(e.startswith("Date") for e in errors):
        errors.append("no Date header; the time of capture is used")
    return Capture(
        channel="email",
        direction="out" if sender and is_internal(sender, internal_domains) else "in",
        occurred_at=parsed.date or received_at,
        dedup_key=(
            f"email:mid:{parsed.message_id}" if parsed.message_id else f"email:sha256:{sha256_hex(raw)}"
        ),
        raw=raw,
        raw_content_type="message/rfc822",
        subject=parsed.subject,
        body=parsed.body,
        message_id=parsed.message_id,
        participants=[CapturedParticipant(a.role, "email", a.address, a.name) for a in parsed.addresses],
        attachments=[CapturedAttachment(a.filename, a.content_type, a.data) for a in parsed.attachments],
        parse_errors=errors,
        needs_review=parsed.address_defects,
        meta=meta,
    )
