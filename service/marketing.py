"""Marketing bans: from what a customer said to "may we contact this person on this channel?".

Detection runs as a durable job (kind `marketing`) queued with each inbound email and after
each call transcript, so it never slows capture and survives restarts. A hit becomes a tag on
the interaction (channels, language, confidence, quote, character span or audio seconds,
detector version) and a ban per channel on the linked customer, or on the sender's or
caller's identifier when no customer is linked: `proposed` for role privacy to confirm, or
`active` at once under `[marketing] auto_apply` with enough confidence. Running the detector
again replaces its tags and proposes nothing twice. Every change of a ban is kept with who,
when, why and the interaction it came from.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from service.access import Principal
from service.audit import record
from service.errors import InvalidInput
from service.events import emit
from service.identifiers import normalise_email, normalise_phone
from service.marketing_detect import VERSION, Hit, detect, email_regions
from service.queue import DETECT, next_jobs
from service.settings import MarketingSettings
from storage.audit import add_entry
from storage.customers import Customer, CustomerIdentifier, get_customer, owners_of
from storage.engine import Database
from storage.interactions import Interaction, Tag, get_interaction
from storage.jobs import ClaimedJob, fail, finish, worker_name
from storage.marketing import (
    BAN_CHANNELS,
    BanSubject,
    MarketingBan,
    MarketingBanChange,
    bans_of,
    change_status,
    clear_change_reasons,
    erased_identifier_hashes,
    find_ban,
    get_ban,
    history_of,
    keep_identifier_hashes,
    list_bans,
    new_ban,
)
from storage.transcripts import Transcript, TranscriptSegment

log = logging.getLogger(__name__)
TAG_KIND = "marketing_ban"
LEASE = timedelta(minutes=5)
# which identifier a channel's suppression list is made of
CHANNEL_IDENTIFIER = {"email": "email", "phone": "phone", "sms": "phone", "post": "address"}


class Hasher:
    """The keyed hash bans keep of an identifier (HMAC-SHA256 of "kind:value")."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_settings(cls, settings: MarketingSettings, data_dir: Path) -> Hasher:
        if settings.hash_key:
            return cls(settings.hash_key.reveal().encode())
        path = data_dir / "marketing-hash.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return cls(path.read_text().strip().encode())

    def __call__(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def of_customer(self, customer: Customer) -> dict[str, str]:
        """The hashes of a customer's emails and phones (hash -> kind): what a ban on them
        is matched by, also once the customer record is erased."""
        return {self(i.kind, i.value): i.kind for i in customer.identifiers if i.kind in ("email", "phone")}


@dataclass(frozen=True)
class Evidence:
    """A hit with where it was found: a character span, or seconds of a call."""

    hit: Hit
    start_seconds: float | None = None
    end_seconds: float | None = None

    def tag_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "channels": list(self.hit.channels),
            "language": self.hit.language,
            "confidence": self.hit.confidence,
            "quote": self.hit.quote,
            "detector_version": VERSION,
        }
        if self.start_seconds is not None:
            data["audio_start"] = self.start_seconds
            data["audio_end"] = self.end_seconds
        else:
            data["span"] = [self.hit.start, self.hit.end]
        return data


@dataclass(frozen=True)
class Passage:
    """Words of the customer's to read: text, how to read it, and where it was said in a call.
    An email's `regions` (the sender's own lines) are found by the detector's process, not
    the process that read the rows: that one also serves SMTP."""

    text: str
    language: str | None
    regions: tuple[tuple[int, int], ...] | None
    source: str
    start_seconds: float | None = None
    end_seconds: float | None = None


def customer_passages(session: Session, interaction_ids: list[int]) -> dict[int, list[Passage]]:
    """What the customers said in these interactions (one query per kind, for a whole batch).
    Only the customer's words count: inbound mail without quotes, signature and footers; the
    customer channel of a stereo call (all speech of a mono call); inbound chat."""
    out: dict[int, list[Passage]] = dict.fromkeys(interaction_ids, [])
    rows = session.execute(
        select(
            Interaction.id, Interaction.channel, Interaction.direction, Interaction.body, Interaction.meta
        ).where(Interaction.id.in_(interaction_ids))
    ).all()
    calls = [iid for iid, channel, _, _, _ in rows if channel == "call"]
    for iid, channel, direction, body, meta in rows:
        if channel == "chat":
            # only the customer's messages, each on its own
            messages = (meta or {}).get("messages", [])
            out[iid] = [
                Passage(m["text"], None, None, "chat") for m in messages if m.get("role") == "customer"
            ]
        elif channel == "email" and direction == "in" and body:
            out[iid] = [Passage(body, None, None, channel)]
    if calls:
        languages = dict(
            session.execute(
                select(Transcript.interaction_id, Transcript.language).where(
                    Transcript.interaction_id.in_(calls)
                )
            ).all()
        )
        segments = session.scalars(
            select(TranscriptSegment)
            .where(
                TranscriptSegment.interaction_id.in_(calls),
                TranscriptSegment.speaker.in_(("customer", "unknown")),
            )
            .order_by(TranscriptSegment.interaction_id, TranscriptSegment.start)
        )
        for seg in segments:
            out[seg.interaction_id] = out[seg.interaction_id] + [
                Passage(seg.text, languages.get(seg.interaction_id), None, "call", seg.start, seg.end)
            ]
    return out


def find_statements(passages: list[Passage]) -> list[Evidence]:
    """The statements forbidding marketing in these passages (pure: runs in a worker process)."""
    return [
        Evidence(hit, p.start_seconds, p.end_seconds)
        for p in passages
        for hit in detect(
            p.text,
            language=p.language,
            regions=email_regions(p.text) if p.source == "email" else p.regions,
            source=p.source,
        )
    ]


def _find_all(batch: list[list[Passage]]) -> list[list[Evidence]]:
    return [find_statements(passages) for passages in batch]


def _subject_identifier(interaction: Interaction) -> tuple[str, str] | None:
    """The unlinked person's identifier: who sent the mail, or the customer's side of a call."""
    role = "from" if interaction.direction == "in" else "to"
    for p in interaction.participants:
        if p.role == role and p.kind in ("email", "phone"):
            return p.kind, p.value
    return None


async def apply_statements(
    session: AsyncSession,
    interaction: Interaction,
    found: list[Evidence],
    settings: MarketingSettings,
    hasher: Hasher,
) -> list[MarketingBan]:
    """Replace the detector's tags on the interaction and propose (or apply) the bans they
    call for; returns the bans that changed."""
    await session.execute(delete(Tag).where(Tag.interaction_id == interaction.id, Tag.kind == TAG_KIND))
    for evidence in found:
        session.add(Tag(interaction_id=interaction.id, kind=TAG_KIND, data=evidence.tag_data()))
    if not found:
        return []
    if interaction.customer_id is not None:
        subject = BanSubject(customer_id=interaction.customer_id)
    else:
        ident = _subject_identifier(interaction)
        if ident is None:
            return []
        subject = BanSubject(kind=ident[0], value=ident[1], hash=hasher(*ident))
    best: dict[str, Evidence] = {}
    for evidence in found:
        for channel in evidence.hit.channels:
            if channel not in best or evidence.hit.confidence > best[channel].hit.confidence:
                best[channel] = evidence
    changed = []
    for channel, evidence in sorted(best.items()):
        confidence = evidence.hit.confidence
        status = (
            "active" if settings.auto_apply and confidence >= settings.auto_apply_threshold else "proposed"
        )
        reason = f"{VERSION}: {evidence.hit.quote}"
        ban = await find_ban(session, subject, channel)
        if ban is None:
            ban = await new_ban(
                session, subject, channel, status, "detector", reason, interaction.id, confidence
            )
            await _keep_hashes(session, ban, hasher)
            changed.append(ban)
            continue
        if ban.status in ("proposed", "active"):
            continue
        # rejected or lifted: propose again only on evidence not already decided on
        seen = await session.scalar(
            select(MarketingBanChange.id).where(
                MarketingBanChange.ban_id == ban.id,
                MarketingBanChange.source_interaction_id == interaction.id,
            )
        )
        if seen is None:
            ban.source_interaction_id = interaction.id
            ban.confidence = confidence
            change_status(session, ban, status, "detector", reason, interaction.id)
            await _keep_hashes(session, ban, hasher)
            changed.append(ban)
    for ban in changed:
        await _announce(session, ban)
    return changed


async def _announce(session: AsyncSession, ban: MarketingBan) -> None:
    """`marketing_ban.changed` with the ban's ids and state (never its reason or quote)."""
    await session.flush()
    data = {"ban_id": ban.id, "customer_id": ban.customer_id, "channel": ban.channel, "status": ban.status}
    await emit(session, "marketing_ban.changed", data, ban.customer_id, ban.source_interaction_id)


async def _keep_hashes(session: AsyncSession, ban: MarketingBan, hasher: Hasher) -> None:
    """Keep keyed hashes of a banned customer's emails and phones with the ban, so it still
    matches them once the customer record is erased."""
    if ban.customer_id is None:
        return
    customer = await get_customer(session, ban.customer_id)
    await keep_identifier_hashes(session, ban, hasher.of_customer(customer))


def ban_to_dict(ban: MarketingBan) -> dict[str, Any]:
    return {
        "id": ban.id,
        "customer_id": ban.customer_id,
        "identifier": (
            {"kind": ban.identifier_kind, "value": ban.identifier_value, "hash": ban.identifier_hash}
            if ban.identifier_hash
            else None
        ),
        "channel": ban.channel,
        "status": ban.status,
        "reason": ban.reason,
        "confidence": ban.confidence,
        "source_interaction_id": ban.source_interaction_id,
        "created_by": ban.created_by,
        "created_at": ban.created_at.isoformat(),
        "updated_at": ban.updated_at.isoformat(),
    }


def change_to_dict(change: MarketingBanChange) -> dict[str, Any]:
    return {
        "ban_id": change.ban_id,
        "old_status": change.old_status,
        "new_status": change.new_status,
        "actor": change.actor,
        "reason": change.reason,
        "source_interaction_id": change.source_interaction_id,
        "request_id": change.request_id,
        "at": change.at.isoformat(),
    }


async def customer_bans(session: AsyncSession, customer_id: int) -> dict[str, list[dict[str, Any]]]:
    """A customer's active bans and pending proposals, for the customer record."""
    bans = await bans_of(session, customer_id, [], ("active", "proposed"))
    return {
        "active": [ban_to_dict(b) for b in bans if b.status == "active"],
        "proposed": [ban_to_dict(b) for b in bans if b.status == "proposed"],
    }


def _channel(channel: str) -> str:
    if channel not in BAN_CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(BAN_CHANNELS)}", "channel")
    return channel


def _reason(body: Any, required: bool) -> str | None:
    reason = body.get("reason") if isinstance(body, dict) else None
    if reason is not None and not isinstance(reason, str):
        raise InvalidInput("reason must be a string", "reason")
    if required and not (reason or "").strip():
        raise InvalidInput('say why: {"reason": "..."}', "reason")
    return (reason or "").strip()[:2000] or None


async def set_ban(
    db: Database, who: Principal, customer_id: int, channel: str, body: Any, active: bool, hasher: Hasher
) -> tuple[dict[str, Any], bool]:
    """Set (active) or lift a customer's ban on a channel by hand; (ban, created)."""
    who.require_role("privacy")
    channel = _channel(channel)
    reason = _reason(body, required=True)
    async with db.write() as session:
        await get_customer(session, customer_id)
        ban = await find_ban(session, BanSubject(customer_id=customer_id), channel)
        created = ban is None
        status = "active" if active else "lifted"
        if ban is None:
            if not active:
                raise InvalidInput(f"the customer has no {channel} ban to lift", "channel")
            ban = await new_ban(
                session, BanSubject(customer_id=customer_id), channel, status, who.actor, reason
            )
        elif ban.status != status:
            change_status(session, ban, status, who.actor, reason)
        await _keep_hashes(session, ban, hasher)
        await _announce(session, ban)
        add_entry(
            session,
            who.actor,
            f"marketing_ban.{'set' if active else 'lift'}",
            customer_id,
            detail={"channel": channel},
        )
        await session.flush()
        return ban_to_dict(ban), created


async def decide(
    db: Database, who: Principal, ban_id: int, confirm: bool, body: Any, hasher: Hasher
) -> dict[str, Any]:
    """Confirm (active) or reject a proposed ban."""
    who.require_role("privacy")
    reason = _reason(body, required=False)
    async with db.write() as session:
        ban = await get_ban(session, ban_id)
        if ban.status != "proposed":
            raise InvalidInput(f"ban {ban_id} is {ban.status}, not proposed")
        change_status(session, ban, "active" if confirm else "rejected", who.actor, reason)
        await _keep_hashes(session, ban, hasher)
        await _announce(session, ban)
        add_entry(
            session,
            who.actor,
            f"marketing_ban.{'confirm' if confirm else 'reject'}",
            ban.customer_id,
            ban.source_interaction_id,
            {"ban_id": ban.id, "channel": ban.channel},
        )
        await session.flush()
        return ban_to_dict(ban)


async def list_proposals(
    db: Database, who: Principal, status: str, after: int | None, limit: int
) -> list[dict[str, Any]]:
    who.require_role("privacy")
    if status not in ("proposed", "active", "rejected", "lifted"):
        raise InvalidInput("status must be proposed, active, rejected or lifted", "status")
    async with db.read() as session:
        bans = await list_bans(session, (status,), None, after, limit)
    await record(db, who, "marketing_ban.list", detail={"status": status, "count": len(bans)})
    return [ban_to_dict(b) for b in bans]


async def ban_history(db: Database, who: Principal, customer_id: int) -> list[dict[str, Any]]:
    """Every change of a customer's bans, oldest first (role privacy)."""
    who.require_role("privacy")
    async with db.read() as session:
        await get_customer(session, customer_id)
        bans = await bans_of(session, customer_id, [])
        changes = await history_of(session, [b.id for b in bans])
    await record(db, who, "marketing_ban.history", customer_id)
    channel = {b.id: b.channel for b in bans}
    return [change_to_dict(c) | {"channel": channel[c.ban_id]} for c in changes]


async def check(db: Database, who: Principal, body: Any, hasher: Hasher, region: str) -> dict[str, Any]:
    """May we contact this person on this channel? `{"email"|"phone"|"customer_id", "channel"}`."""
    who.require_scope("marketing")
    if not isinstance(body, dict):
        raise InvalidInput('send {"email" or "phone" or "customer_id": ..., "channel": ...}')
    channel = body.get("channel")
    if channel not in ("email", "phone", "sms", "post"):
        raise InvalidInput("channel must be one of email, phone, sms, post", "channel")
    given = [k for k in ("email", "phone", "customer_id") if body.get(k) is not None]
    if len(given) != 1:
        raise InvalidInput("give exactly one of email, phone, customer_id")
    customer_id: int | None = None
    hashes: list[str] = []
    async with db.read() as session:
        if given[0] == "customer_id":
            if not isinstance(body["customer_id"], int):
                raise InvalidInput("customer_id must be a number", "customer_id")
            customer_id = body["customer_id"]
        else:
            kind = given[0]
            raw = body[kind]
            if not isinstance(raw, str):
                raise InvalidInput(f"{kind} must be a string", kind)
            value = normalise_email(raw) if kind == "email" else normalise_phone(raw, region)
            hashes = [hasher(kind, value)]
            owners = await session.run_sync(owners_of, [(kind, value)])
            customer_id = owners.get((kind, value))
        if customer_id is not None:
            customer = await get_customer(session, customer_id)  # NotFound for an unknown id
            hashes += list(hasher.of_customer(customer))
        bans = await bans_of(session, customer_id, hashes, ("active",))
    blocking = [b for b in bans if b.channel in (channel, "all")]
    await record(
        db, who, "marketing.check", customer_id, detail={"channel": channel, "allowed": not blocking}
    )
    if blocking:
        ban = blocking[0]
        return {
            "allowed": False,
            "reason": f"active marketing ban on {ban.channel}" + (f": {ban.reason}" if ban.reason else ""),
            "ban": ban_to_dict(ban),
        }
    return {"allowed": True, "reason": f"no active marketing ban on {channel}", "ban": None}


async def suppression(db: Database, who: Principal, channel: str) -> list[dict[str, Any]]:
    """Every identifier that must not be contacted on `channel`: the identifiers of customers
    with an active ban on it (or on all), and the identifiers (or, after erasure, only the
    keyed hashes) of banned people who are not customers."""
    who.require_scope("marketing")
    if channel not in ("email", "phone", "sms", "post"):
        raise InvalidInput("channel must be one of email, phone, sms, post", "channel")
    kind = CHANNEL_IDENTIFIER[channel]
    items: list[dict[str, Any]] = []
    async with db.read() as session:
        bans = await list_bans(session, ("active",), (channel, "all"), None, 1_000_000)
        customer_ids = sorted({b.customer_id for b in bans if b.customer_id is not None})
        since: dict[int, str] = {}
        for b in bans:
            if b.customer_id is not None:
                since.setdefault(b.customer_id, b.updated_at.isoformat())
        if kind == "address":
            rows = await session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))
            for c in rows:
                if c.address:
                    items.append(
                        {
                            "customer_id": c.id,
                            "kind": "address",
                            "identifier": f"{c.name}\n{c.address}",
                            "identifier_hash": None,
                            "since": since[c.id],
                        }
                    )
        else:
            idents = await session.scalars(
                select(CustomerIdentifier)
                .where(CustomerIdentifier.customer_id.in_(customer_ids), CustomerIdentifier.kind == kind)
                .order_by(CustomerIdentifier.customer_id, CustomerIdentifier.value)
            )
            for i in idents:
                items.append(
                    {
                        "customer_id": i.customer_id,
                        "kind": kind,
                        "identifier": i.value,
                        "identifier_hash": None,
                        "since": since[i.customer_id],
                    }
                )
            for b in bans:
                if b.customer_id is None and b.identifier_hash and b.identifier_kind == kind:
                    items.append(
                        {
                            "customer_id": None,
                            "kind": kind,
                            "identifier": b.identifier_value,  # None once erased
                            "identifier_hash": b.identifier_hash,
                            "since": b.updated_at.isoformat(),
                        }
                    )
            # bans of customers since erased: only the kept hashes of their identifiers are left
            erased = [b for b in bans if b.customer_id is None and not b.identifier_hash]
            kept = await erased_identifier_hashes(session, [b.id for b in erased], kind)
            for b in erased:
                for value_hash in kept.get(b.id, []):
                    items.append(
                        {
                            "customer_id": None,
                            "kind": kind,
                            "identifier": None,
                            "identifier_hash": value_hash,
                            "since": b.updated_at.isoformat(),
                        }
                    )
    await record(db, who, "marketing.suppression", detail={"channel": channel, "count": len(items)})
    return items


async def detect_batch(
    db: Database,
    executor: Executor,
    interaction_ids: list[int],
    settings: MarketingSettings,
    hasher: Hasher,
) -> dict[int, int | Exception]:
    """Run the detector on stored interactions: read what they say in one transaction, detect
    in `executor` (a process pool keeps the CPU work off the interpreter that serves SMTP and
    HTTP), then write only where something was found, or where an earlier run left tags, so
    capture's writes seldom wait. Per interaction: statements found, or the error."""

    def read(session: Session) -> tuple[dict[int, list[Passage]], set[int]]:
        tagged = session.scalars(
            select(Tag.interaction_id).where(Tag.kind == TAG_KIND, Tag.interaction_id.in_(interaction_ids))
        )
        return customer_passages(session, interaction_ids), set(tagged)

    passages, tagged = await db.run_read(read)
    ids = list(passages)
    found = await asyncio.get_running_loop().run_in_executor(executor, _find_all, [passages[i] for i in ids])
    outcome: dict[int, int | Exception] = {}
    nothing = [iid for iid, evidence in zip(ids, found, strict=True) if not evidence]
    outcome.update(dict.fromkeys(nothing, 0))
    stale = [iid for iid in nothing if iid in tagged]  # an earlier run's tags, now unfounded
    if stale:
        await db.run_write(
            lambda session: session.execute(
                delete(Tag).where(Tag.kind == TAG_KIND, Tag.interaction_id.in_(stale))
            )
        )
    changed = 0
    for iid, evidence in zip(ids, found, strict=True):
        if not evidence:
            continue
        try:
            async with db.write() as session:
                interaction = await get_interaction(session, iid)
                changed += len(await apply_statements(session, interaction, evidence, settings, hasher))
            outcome[iid] = len(evidence)
        except Exception as exc:  # noqa: BLE001 - reported per interaction
            outcome[iid] = exc
    if changed:
        log.info("%d marketing ban(s) proposed or set", changed)
    return outcome


async def detect_interaction(
    db: Database, interaction_id: int, settings: MarketingSettings, hasher: Hasher
) -> int:
    """Run the detector on one stored interaction, here; the number of statements found."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        result = (await detect_batch(db, executor, [interaction_id], settings, hasher))[interaction_id]
    if isinstance(result, Exception):
        raise result
    return result


class MarketingService:
    """Takes `marketing` jobs off the queue in batches and runs the detector; start with `run()`."""

    def __init__(
        self,
        db: Database,
        executor: Callable[[], Executor],
        settings: MarketingSettings,
        hasher: Hasher,
        wake: asyncio.Event,
        poll_seconds: float = 1.0,
        batch: int = 50,
    ) -> None:
        self.db = db
        self.make_executor = executor  # made again when a detector process dies
        self.executor = executor()
        self.settings = settings
        self.hasher = hasher
        self.wake = wake
        self.poll_seconds = poll_seconds
        self.batch = batch

    async def run(self) -> None:
        name = worker_name("marketing")
        loop = asyncio.get_running_loop()
        while True:
            jobs = await next_jobs(self.db, [DETECT], name, LEASE, self.wake, self.poll_seconds, self.batch)
            started = loop.time()
            await self._run(jobs)
            # capture comes first: detection takes at most a third of the time (and of the
            # database's single writer) while mail keeps arriving; the queue keeps the rest
            await asyncio.sleep(min(2 * (loop.time() - started), 5.0))

    async def _run(self, jobs: list[ClaimedJob]) -> None:
        by_interaction = {job.interaction_id: job for job in jobs}
        try:
            outcome = await detect_batch(
                self.db, self.executor, list(by_interaction), self.settings, self.hasher
            )
        except Exception as exc:  # noqa: BLE001 - the whole batch failed: each job records it
            outcome = dict.fromkeys(by_interaction, exc)
            if isinstance(exc, BrokenProcessPool):
                self.executor = self.make_executor()
        done = [by_interaction[i].id for i, r in outcome.items() if not isinstance(r, Exception)]
        failed = {by_interaction[i].id: r for i, r in outcome.items() if isinstance(r, Exception)}

        def settle(session: Session) -> None:
            if done:
                finish(session, *done)
            for job_id, error in failed.items():
                fail(session, job_id, f"{type(error).__name__}: {error}", timedelta(seconds=30))

        await self.db.run_write(settle)
        for error in failed.values():
            log.warning("marketing detection failed: %s", type(error).__name__)

    def close(self) -> None:
        """Stop the detector processes (a batch in hand is retried after its lease)."""
        self.executor.shutdown(wait=True, cancel_futures=True)


async def apply_objection(
    session: AsyncSession,
    actor: str,
    customer_id: int | None,
    identifiers: list[tuple[str, str]],
    request_id: int,
    hasher: Hasher,
) -> list[dict[str, Any]]:
    """A person objects to direct marketing (GDPR art. 21): an active ban on every channel,
    on their customer record, or, for someone who is no customer, on each of their emails
    and phone numbers. Returns the bans as they now are."""
    if customer_id is not None:
        subjects = [BanSubject(customer_id=customer_id)]
    else:
        subjects = [
            BanSubject(kind=kind, value=value, hash=hasher(kind, value))
            for kind, value in identifiers
            if kind in ("email", "phone")
        ]
    if not subjects:
        raise InvalidInput("an objection needs a customer, an email or a phone number", "identifiers")
    reason = f"objection to direct marketing, subject request {request_id}"
    out = []
    for subject in subjects:
        ban = await find_ban(session, subject, "all")
        if ban is None:
            ban = await new_ban(session, subject, "all", "active", actor, reason, request_id=request_id)
        elif ban.status != "active":
            change_status(session, ban, "active", actor, reason, request_id=request_id)
        await _keep_hashes(session, ban, hasher)
        await _announce(session, ban)
        out.append(ban_to_dict(ban))
    return out


async def bans_for_subject(
    session: AsyncSession, customer_id: int | None, identifiers: list[tuple[str, str]], hasher: Hasher
) -> list[dict[str, Any]]:
    """Every ban of a person (any status) with its history, for their access export."""
    hashes = [hasher(kind, value) for kind, value in identifiers if kind in ("email", "phone")]
    bans = await bans_of(session, customer_id, hashes)
    changes = await history_of(session, [b.id for b in bans])
    return [
        ban_to_dict(b) | {"history": [change_to_dict(c) for c in changes if c.ban_id == b.id]} for b in bans
    ]


async def keep_only_hashes(
    session: AsyncSession,
    customer: Customer | None,
    identifiers: list[tuple[str, str]],
    request_id: int,
    hasher: Hasher,
) -> int:
    """Before a person is erased: their bans keep working by keyed hash alone. A customer's
    bans take hashes of every email and phone the customer has now; identifier bans lose
    the identifier's value; reasons and evidence quotes (the person's words) are cleared.
    Returns how many bans were kept."""
    hashes = [hasher(kind, value) for kind, value in identifiers if kind in ("email", "phone")]
    bans = await bans_of(session, customer.id if customer else None, hashes)
    note = f"kept as keyed hashes after erasure (subject request {request_id})"
    for ban in bans:
        if customer is not None and ban.customer_id == customer.id:
            await keep_identifier_hashes(session, ban, hasher.of_customer(customer))
        ban.identifier_value = None
        ban.reason = note
    await clear_change_reasons(session, [b.id for b in bans])
    return len(bans)


async def evidence_of(db: Database, ban_ids: list[int]) -> dict[int, dict[str, Any]]:
    """For bans found by the detector: the tag on their source interaction (quote, span or
    audio seconds) for the channel of the ban, to show next to a proposal."""
    if not ban_ids:
        return {}
    async with db.read() as session:
        bans = list(await session.scalars(select(MarketingBan).where(MarketingBan.id.in_(ban_ids))))
        sources = [b.source_interaction_id for b in bans if b.source_interaction_id is not None]
        tags = list(
            await session.scalars(select(Tag).where(Tag.interaction_id.in_(sources), Tag.kind == TAG_KIND))
        )
    out: dict[int, dict[str, Any]] = {}
    for ban in bans:
        for tag in tags:
            if tag.interaction_id == ban.source_interaction_id and (
                ban.channel in tag.data.get("channels", []) or not out.get(ban.id)
            ):
                out[ban.id] = dict(tag.data)
    return out
