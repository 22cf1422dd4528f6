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
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
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
    capture: Capture
    future: asyncio.Future[IngestResult]
    blob_names: list[str] = field(default_factory=list)


def _fail(batch: Sequence[_Pending], exc: BaseException, stage: str) -> None:
    if isinstance(exc, StorageError | OSError | IngestFailed | asyncio.CancelledError):
        log.error("%s of %d capture(s) failed: %s", stage, len(batch), exc)
    else:
        log.error("%s of %d capture(s) failed unexpectedly", stage, len(batch), exc_info=exc)
    for item in batch:
        if not item.future.done():
            item.future.set_exception(IngestFailed("storage is unavailable"))


async def _drain(queue: asyncio.Queue[_Pending], limit: int) -> list[_Pending]:
    batch = [await queue.get()]
    while len(batch) < limit and not queue.empty():
        batch.append(queue.get_nowait())
    return batch


class Ingestor:
    """Stores captures durably in a two-stage pipeline. Start with `run()` as a task.

    Stage one drops captures already stored and writes the blobs of the rest (made durable
    together); stage two inserts every capture whose blobs are durable in one transaction.
    The stages overlap, so one batch's blobs are written while the previous batch commits.
    A capture whose dedup key is already on its way waits for that one instead.
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
        self.internal_domains = list(internal_domains)
        self.max_batch = max_batch
        self.job_max_attempts = job_max_attempts
        # the hooks some plugin implements: none costs nothing on the capture path
        self.plugins = plugins
        self._tags_hook = bool(plugins and plugins.hook.extra_tags.get_hookimpls())
        self._match_hook = bool(plugins and plugins.hook.match_customer.get_hookimpls())
        self.jobs_queued = asyncio.Event()  # set when a commit queued background jobs
        self._to_blobs: asyncio.Queue[_Pending] = asyncio.Queue()
        self._to_rows: asyncio.Queue[_Pending] = asyncio.Queue()
        self._in_flight: dict[str, asyncio.Future[IngestResult]] = {}
        self._large: set[asyncio.Task[None]] = set()

    async def ingest(self, capture: Capture) -> IngestResult:
        """Store the capture and return once it is durable.

        Raises IngestFailed (temporary: try again) when it could not be stored.
        """
        if len(capture.body) > self.max_body_chars:
            capture.body = capture.body[: self.max_body_chars]
            capture.parse_errors.append(
                f"text body longer than {self.max_body_chars} characters: the rest is only in the original"
            )
        key = capture.dedup_key
        earlier = self._in_flight.get(key)
        if earlier is not None:
            first = await asyncio.shield(earlier)
            return IngestResult(first.interaction_id, True, first.customer_id)
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            await self._to_blobs.put(_Pending(capture, future))
            return await asyncio.shield(future)
        finally:
            if self._in_flight.get(key) is future:
                del self._in_flight[key]

    async def stored(self, dedup_key: str) -> int | None:
        """The id of the interaction stored under `dedup_key`, if there is one."""
        known = await self.db.run_read(lambda session: dedup_keys_stored(session, [dedup_key]))
        return known.get(dedup_key)

    async def ingest_email(self, raw: bytes) -> IngestResult:
        """Parse a raw email off the event loop and store it; see `ingest`.

        Ordinary mail is parsed in a thread (cheaper than shipping it to another process);
        large mail goes to the parser processes, so its seconds of pure-Python parsing never
        hold the interpreter lock that the event loop needs.
        """
        loop = asyncio.get_running_loop()
        where = self.parser if len(raw) >= self.process_parse_min_bytes else self.executor
        capture = await loop.run_in_executor(
            where, email_capture, raw, utcnow(), tuple(self.internal_domains), False
        )
        capture.raw = raw
        return await self.ingest(capture)

    async def run(self) -> None:
        """Both stages; runs until cancelled, finishing the batches in hand first."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._stage(self._to_blobs, self._write_blobs, "writing blobs"))
                group.create_task(self._stage(self._to_rows, self._write_rows, "writing rows"))
        finally:
            for task in list(self._large):
                task.cancel()
            await asyncio.gather(*self._large, return_exceptions=True)

    async def _stage(
        self,
        queue: asyncio.Queue[_Pending],
        work: Callable[[list[_Pending]], Awaitable[None]],
        name: str,
    ) -> None:
        while True:
            batch = await _drain(queue, self.max_batch)
            try:
                await asyncio.shield(work(batch))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a stage must outlive any one bad batch
                _fail(batch, exc, name)

    def fail_pending(self) -> None:
        """At shutdown: answer every capture still queued with IngestFailed (the sender retries)."""
        for queue in (self._to_blobs, self._to_rows):
            while not queue.empty():
                _fail([queue.get_nowait()], IngestFailed("the service is shutting down"), "shutdown")

    async def _write_blobs(self, batch: list[_Pending]) -> None:
        """Answer duplicates of stored captures; make the blobs of the rest durable; pass them on.

        A large capture's blobs are written in a task of their own, so the small captures
        behind it do not wait for megabytes to reach the disk.
        """
        keys = [p.capture.dedup_key for p in batch]
        known = await self.db.run_read(lambda session: dedup_keys_stored(session, keys))
        small: list[_Pending] = []
        for p in batch:
            if p.capture.dedup_key in known:
                p.future.set_result(IngestResult(known[p.capture.dedup_key], True))
            elif _payload_size(p.capture) >= self.process_parse_min_bytes:
                task = asyncio.create_task(self._write_blobs_of([p], "writing large blobs"))
                self._large.add(task)
                task.add_done_callback(self._large.discard)
            else:
                small.append(p)
        await self._write_blobs_of(small, "writing blobs")

    async def _write_blobs_of(self, fresh: list[_Pending], stage: str) -> None:
        payloads = [data for p in fresh for data in _payloads(p.capture)]
        try:
            loop = asyncio.get_running_loop()
            names = iter(await loop.run_in_executor(self.executor, self.blobs.put_many, payloads))
        except (Exception, asyncio.CancelledError) as exc:  # answered per capture, the stage goes on
            _fail(fresh, exc, stage)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for p in fresh:
            p.blob_names = [next(names) for _ in _payloads(p.capture)]
            self._to_rows.put_nowait(p)

    async def _write_rows(self, batch: list[_Pending]) -> None:
        """Insert the batch's interactions, participants, attachments and search text in one commit."""
        results = await self.db.run_write(lambda session: self._insert(session, batch))
        for p, result in zip(batch, results, strict=True):
            if not p.future.done():
                p.future.set_result(result)
        if any(p.capture.jobs for p, r in zip(batch, results, strict=True) if not r.duplicate):
            self.jobs_queued.set()

    def _insert(self, session: Session, batch: list[_Pending]) -> list[IngestResult]:
        caps = [p.capture for p in batch]
        decisions = self._decide(session, caps)
        rows = []
        for p, decision in zip(batch, decisions, strict=True):
            names = list(p.blob_names)
            raw_name = names.pop(0) if p.capture.raw is not None else None
            rows.append(_row(p.capture, decision, raw_name, names))
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
            earlier = dedup_keys_stored(session, [p.capture.dedup_key for p in late])
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
        jobs=["marketing"] if direction == "in" else [],
    )
