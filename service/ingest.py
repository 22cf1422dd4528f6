"""The one entrance for captured data: every connector hands a `Capture` to `Ingestor.ingest`.

`ingest` returns only once the capture is durable: its blobs flushed, then its row committed
(SQLite WAL, `synchronous=FULL`). Captures are written in batches (group commit): one flush
of the blob store and one database commit serve every capture that arrived meanwhile, so
durability does not cost one fsync chain per message. A batch that fails to commit is tried
again one capture at a time, so one that cannot be stored fails alone.
The same `dedup_key` twice (BCC and journal, a retried SMTP transaction) is stored once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import pluggy
from sqlalchemy.orm import Session

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
from service.queue import DETECT, WEBHOOKS, Wakes
from storage.base import utcnow
from storage.blobs import Blobs, sha256_hex
from storage.customers import Customer, owners_of
from storage.engine import Database
from storage.errors import StorageError
from storage.interactions import (
    NewInteraction,
    Tag,
    dedup_keys_stored,
    insert_interactions,
    unreferenced_blobs,
)
from storage.jobs import enqueue
from storage.search import index_interactions
from storage.webhooks import NewEvent, add_events

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
    jobs: list[str] = field(default_factory=list)  # background work queued in the same commit


@dataclass(frozen=True)
class IngestResult:
    """Where a capture was stored; `duplicate` if it had been stored before."""

    interaction_id: int
    duplicate: bool
    customer_id: int | None = None


@dataclass
class _Pending:
    """A capture on its way to the store; an email may still be raw (parsed in the batch)."""

    capture: Capture | None
    future: asyncio.Future[IngestResult]
    raw: bytes | None = None
    received_at: datetime | None = None
    blob_names: list[str] = field(default_factory=list)

    @property
    def parsed(self) -> Capture:
        assert self.capture is not None, "parsed in the blob stage"
        return self.capture


def _fail(batch: Sequence[_Pending], exc: BaseException, stage: str) -> None:
    if not batch:
        return
    if isinstance(exc, StorageError | OSError | IngestFailed | asyncio.CancelledError):
        log.error("%s of %d capture(s) failed: %s", stage, len(batch), exc)
    else:
        log.error("%s of %d capture(s) failed unexpectedly", stage, len(batch), exc_info=exc)
    for item in batch:
        if not item.future.done():
            item.future.set_exception(IngestFailed("storage is unavailable"))


def _take(queue: collections.deque[_Pending], batch: list[_Pending], limit: int) -> list[_Pending]:
    """Move up to `limit` waiting captures from `queue` into `batch` (either thread may call it:
    deque appends and pops are atomic)."""
    while queue and len(batch) < limit:
        batch.append(queue.popleft())
    return batch


class Ingestor:
    """Stores captures durably in a two-stage pipeline. Start with `run()` as a task.

    Stage one parses the batch's raw emails and makes the blobs of every capture durable
    together, in one thread hop; stage two inserts every capture whose blobs are durable in
    one transaction, taken once this process holds the write lock. The stages overlap, so one
    batch's blobs are written while the previous batch commits. A capture whose dedup key is
    stored already (or is stored by an earlier capture of the same transaction) is answered
    as the duplicate it is, and blobs that no row names are removed again.
    """

    def __init__(
        self,
        db: Database,
        blobs: Blobs,
        executor: Executor,
        internal_domains: Sequence[str] = (),
        max_batch: int = 64,
        parser: Executor | None = None,
        process_parse_min_bytes: int = 1_048_576,
        max_body_chars: int = 1_000_000,
        job_max_attempts: int = 3,
        plugins: pluggy.PluginManager | None = None,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.executor = executor
        self.parser = parser or executor
        self.process_parse_min_bytes = process_parse_min_bytes
        self.max_body_chars = max_body_chars
        self.internal_domains = tuple(internal_domains)
        self.max_batch = max_batch
        self.job_max_attempts = job_max_attempts
        # the hooks some plugin implements: none costs nothing on the capture path
        self.plugins = plugins
        self._tags_hook = bool(plugins and plugins.hook.extra_tags.get_hookimpls())
        self._match_hook = bool(plugins and plugins.hook.match_customer.get_hookimpls())
        self.wakes = Wakes()  # set per kind when a commit queued background work
        # each stage's waiting captures, and an event set when some were added
        self._to_blobs: collections.deque[_Pending] = collections.deque()
        self._blobs_ready = asyncio.Event()
        self._to_rows: collections.deque[_Pending] = collections.deque()
        self._rows_ready = asyncio.Event()
        self._large: set[asyncio.Task[None]] = set()

    async def ingest(self, capture: Capture) -> IngestResult:
        """Store the capture and return once it is durable.

        Raises IngestFailed (temporary: try again) when it could not be stored.
        """
        return await self._submit(_Pending(capture, asyncio.get_running_loop().create_future()))

    async def _submit(self, pending: _Pending) -> IngestResult:
        self._to_blobs.append(pending)
        self._blobs_ready.set()
        return await asyncio.shield(pending.future)

    async def stored(self, dedup_key: str) -> int | None:
        """The id of the interaction stored under `dedup_key`, if there is one."""
        known = await self.db.run_read(lambda session: dedup_keys_stored(session, [dedup_key]))
        return known.get(dedup_key)

    async def ingest_email(self, raw: bytes) -> IngestResult:
        """Store a raw email, parsed off the event loop; see `ingest`.

        Ordinary mail is parsed with the rest of its batch in the thread that writes the
        batch's blobs; large mail goes to the parser processes first, so its seconds of
        pure-Python parsing never hold the interpreter lock that the event loop needs.
        """
        loop = asyncio.get_running_loop()
        if len(raw) < self.process_parse_min_bytes:
            return await self._submit(_Pending(None, loop.create_future(), raw=raw, received_at=utcnow()))
        capture = await loop.run_in_executor(
            self.parser, email_capture, raw, utcnow(), self.internal_domains, False
        )
        capture.raw = raw
        return await self.ingest(capture)

    async def run(self) -> None:
        """Both stages; runs until cancelled, finishing the batches in hand first."""
        try:
            async with asyncio.TaskGroup() as group:
                blobs = self._stage(self._to_blobs, self._blobs_ready, self._write_blobs, "writing blobs")
                rows = self._stage(self._to_rows, self._rows_ready, self._write_rows, "writing rows")
                group.create_task(blobs)
                group.create_task(rows)
        finally:
            for task in list(self._large):
                task.cancel()
            await asyncio.gather(*self._large, return_exceptions=True)

    async def _stage(
        self,
        queue: collections.deque[_Pending],
        ready: asyncio.Event,
        work: Callable[[list[_Pending]], Awaitable[None]],
        name: str,
    ) -> None:
        """Run `work` on what waits in `queue` until none is left, then wait for more. `work`
        takes its batch from the queue itself, into the list it is given."""
        while True:
            await ready.wait()
            ready.clear()
            while queue:
                batch: list[_Pending] = []
                try:
                    await asyncio.shield(work(batch))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a stage must outlive any one bad batch
                    if not batch:  # failed before it took any: what waits fails with it
                        _take(queue, batch, len(queue))
                    _fail(batch, exc, name)

    def fail_pending(self) -> None:
        """At shutdown: answer every capture still queued with IngestFailed (the sender retries)."""
        for queue in (self._to_blobs, self._to_rows):
            _fail(list(queue), IngestFailed("the service is shutting down"), "shutdown")
            queue.clear()

    async def _write_blobs(self, batch: list[_Pending]) -> None:
        """Parse the raw emails waiting and make the blobs of every capture waiting durable,
        in one thread hop; pass them on to the rows stage.

        A large capture's blobs are written in a task of their own, so the small captures
        behind it do not wait for megabytes to reach the disk.
        """
        small: list[_Pending] = []
        for p in _take(self._to_blobs, batch, self.max_batch):
            if p.capture is not None and _payload_size(p.capture) >= self.process_parse_min_bytes:
                task = asyncio.create_task(self._write_blobs_of([p], "writing large blobs"))
                self._large.add(task)
                task.add_done_callback(self._large.discard)
            else:
                small.append(p)
        await self._write_blobs_of(small, "writing blobs")

    async def _write_blobs_of(self, fresh: list[_Pending], stage: str) -> None:
        if not fresh:
            return
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self.executor, self._parse_and_put, fresh)
        except (Exception, asyncio.CancelledError) as exc:  # answered per capture, the stage goes on
            _fail(fresh, exc, stage)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self._to_rows.extend(fresh)
        self._rows_ready.set()

    def _parse_and_put(self, batch: list[_Pending]) -> None:
        """In a worker thread: parse what is raw, then store every blob of the batch."""
        for p in batch:
            if p.capture is None:
                assert p.raw is not None and p.received_at is not None
                p.capture = email_capture(p.raw, p.received_at, self.internal_domains, False)
                p.capture.raw = p.raw
            _clip_body(p.capture, self.max_body_chars)
        names = iter(self.blobs.put_many([data for p in batch for data in _payloads(p.parsed)]))
        for p in batch:
            p.blob_names = [next(names) for _ in _payloads(p.parsed)]

    async def _write_rows(self, batch: list[_Pending]) -> None:
        """Insert interactions, participants, attachments and search text in one commit.

        The batch is taken once the transaction runs, not before this process waits for the
        write lock: what arrived meanwhile joins the same commit. `batch` gets what was taken
        (the caller answers those if this raises).
        """

        def insert(session: Session) -> list[IngestResult]:
            return self._insert(session, _take(self._to_rows, batch, self.max_batch))

        results: list[IngestResult | StorageError]
        try:
            results = list(await self.db.run_write(insert))
        except StorageError as exc:
            if len(batch) < 2:
                raise
            log.error("writing rows of %d captures failed (%s); trying each alone", len(batch), exc)
            results = await self._one_by_one(batch)
        queued: set[str] = set()
        for p, result in zip(batch, results, strict=True):
            if isinstance(result, StorageError):
                _fail([p], result, "writing a row")
                continue
            if not p.future.done():
                p.future.set_result(result)
            if not result.duplicate:  # its jobs were queued, and its interaction.created event
                queued.update(p.parsed.jobs, [WEBHOOKS])
        self.wakes.wake(queued)

    async def _one_by_one(self, batch: list[_Pending]) -> list[IngestResult | StorageError]:
        """After a batch failed to commit: each capture in a transaction of its own, so one
        that cannot be stored fails alone and the rest are stored all the same."""
        results: list[IngestResult | StorageError] = []
        for p in batch:
            alone = [p]
            try:
                results += await self.db.run_write(partial(self._insert, batch=alone))
            except StorageError as exc:
                results.append(exc)
        return results

    def _insert(self, session: Session, batch: list[_Pending]) -> list[IngestResult]:
        caps = [p.parsed for p in batch]
        decisions = self._decide(session, caps)
        rows = []
        for p, decision in zip(batch, decisions, strict=True):
            names = list(p.blob_names)
            raw_name = names.pop(0) if p.parsed.raw is not None else None
            rows.append(_row(p.parsed, decision, raw_name, names))
        ids = insert_interactions(session, rows)
        new = [(iid, cap) for iid, cap in zip(ids, caps, strict=True) if iid is not None]
        for kind in sorted({kind for _, cap in new for kind in cap.jobs}):
            enqueue(session, kind, [iid for iid, cap in new if kind in cap.jobs], self.job_max_attempts)
        index_interactions(
            session, [(iid, cap.subject, cap.body, _participant_text(cap)) for iid, cap in new]
        )
        if self._tags_hook and self.plugins is not None:
            for iid, cap, decision in zip(ids, caps, decisions, strict=True):
                if iid is not None:
                    view = plugin_view(cap) | {"id": iid, "customer_id": decision.customer_id}
                    for tags in self.plugins.hook.extra_tags(interaction=view):
                        for tag in tags or []:
                            if isinstance(tag, dict) and isinstance(tag.get("kind"), str):
                                data = tag.get("data") or {}
                                session.add(Tag(interaction_id=iid, kind=tag["kind"][:32], data=data))
        add_events(
            session,
            [
                NewEvent(
                    "interaction.created",
                    {"interaction_id": iid, "channel": cap.channel, "customer_id": decision.customer_id},
                    decision.customer_id,
                    iid,
                )
                for iid, cap, decision in zip(ids, caps, decisions, strict=True)
                if iid is not None
            ],
        )
        # stored meanwhile by another process: answered as the duplicates they are, and their
        # blobs removed unless something refers to them (no personal data left that no row names)
        late = [p for iid, p in zip(ids, batch, strict=True) if iid is None]
        earlier: dict[str, int] = {}
        if late:
            earlier = dedup_keys_stored(session, [p.parsed.dedup_key for p in late])
            self.blobs.delete(unreferenced_blobs(session, [n for p in late for n in p.blob_names]))
        return [
            IngestResult(iid, False, decision.customer_id)
            if iid is not None
            else IngestResult(earlier[cap.dedup_key], True)
            for iid, cap, decision in zip(ids, caps, decisions, strict=True)
        ]

    def _decide(self, session: Session, caps: list[Capture]) -> list[LinkDecision]:
        """Link decisions for a batch, with two identifier look-ups for all of it."""
        pairs = [[(p.kind, p.value) for p in cap.participants] for cap in caps]
        owners = owners_of(session, [pair for ps in pairs for pair in linkable(ps, self.internal_domains)])
        decisions = [
            decide(ps, owners, self.internal_domains, cap.needs_review)
            for ps, cap in zip(pairs, caps, strict=True)
        ]
        candidates = [
            business_id_candidates(d, f"{cap.subject}\n{cap.body}", cap.needs_review)
            for d, cap in zip(decisions, caps, strict=True)
        ]
        by_business_id = owners_of(session, [c for cs in candidates for c in cs])
        decisions = [
            decide_by_business_id(d, cs, by_business_id) for d, cs in zip(decisions, candidates, strict=True)
        ]
        if self._match_hook:
            decisions = [self._plugin_match(session, d, cap) for d, cap in zip(decisions, caps, strict=True)]
        return decisions

    def _plugin_match(self, session: Session, decision: LinkDecision, cap: Capture) -> LinkDecision:
        """Ask the plugins' `match_customer` about an interaction nothing else linked."""
        if decision.customer_id is not None or cap.needs_review or self.plugins is None:
            return decision
        found = self.plugins.hook.match_customer(interaction=plugin_view(cap))
        if not isinstance(found, int) or isinstance(found, bool) or session.get(Customer, found) is None:
            return decision
        return LinkDecision(found, "plugin", decision.participant_owners)


def plugin_view(cap: Capture) -> dict[str, Any]:
    """What plugins see of a capture: no raw bytes, the first 10,000 characters of text."""
    return {
        "channel": cap.channel,
        "direction": cap.direction,
        "subject": cap.subject,
        "body": cap.body[:10_000],
        "participants": [
            {"role": p.role, "kind": p.kind, "value": p.value, "name": p.display_name}
            for p in cap.participants
        ],
    }


def _clip_body(cap: Capture, limit: int) -> None:
    """Cut a text body longer than `limit` characters, with a note (the original keeps all)."""
    if len(cap.body) > limit:
        cap.body = cap.body[:limit]
        cap.parse_errors.append(f"text body longer than {limit} characters: the rest is only in the original")


def _payloads(cap: Capture) -> list[bytes]:
    """The blobs of a capture, raw original first."""
    return ([cap.raw] if cap.raw is not None else []) + [a.data for a in cap.attachments]


def _payload_size(cap: Capture) -> int:
    return sum(len(data) for data in _payloads(cap))


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


def email_capture(
    raw: bytes, received_at: datetime, internal_domains: Sequence[str], keep_raw: bool = True
) -> Capture:
    """A capture of one raw email: parsed headers, text body, attachments, dedup key.

    Mail without a Message-ID is de-duplicated by the sha256 of its bytes. With `keep_raw`
    false the raw bytes are left out (a parser process need not send them back).
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
    direction = "out" if sender and is_internal(sender, internal_domains) else "in"
    return Capture(
        channel="email",
        direction=direction,
        occurred_at=parsed.date or received_at,
        dedup_key=(
            f"email:mid:{parsed.message_id}" if parsed.message_id else f"email:sha256:{sha256_hex(raw)}"
        ),
        raw=raw if keep_raw else None,
        raw_content_type="message/rfc822",
        subject=parsed.subject,
        body=parsed.body,
        message_id=parsed.message_id,
        participants=[CapturedParticipant(a.role, "email", a.address, a.name) for a in parsed.addresses],
        attachments=[CapturedAttachment(a.filename, a.content_type, a.data) for a in parsed.attachments],
        parse_errors=errors,
        needs_review=parsed.address_defects,
        meta=meta,
        # what the customer wrote is read for marketing bans, off the capture path
        jobs=[DETECT] if direction == "in" else [],
    )
