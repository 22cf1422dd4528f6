"""Data subject rights (GDPR arts. 15-17 and 21): requests with their legal due date, who the
subject is, erasure with no residue, legal holds, and the history of corrections.

A request names its subject by identifiers (customer id, email, phone, business ID); the
subject is the customer record any of them points to plus every identifier given, so a
person who is no customer (an unknown sender, a caller) can be the subject too. What
belongs to them is every interaction linked to that record or naming one of the identifiers
(`storage.interactions.about_subject`). Erasure deletes what is theirs alone, keeps what a
binding legal hold or another customer's record needs (and says why), keeps marketing bans
as keyed hashes, and leaves nothing behind: rows are deleted with `secure_delete`, the
full-text index is merged, the blobs and the watched folder's copies are removed after the
commit, and the SQLite WAL is checkpointed and truncated.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.access import Principal
from service.audit import record
from service.errors import InvalidInput
from service.events import emit
from service.identifiers import normalise_business_id, normalise_email, normalise_phone
from service.marketing import Hasher, apply_objection, keep_only_hashes
from service.pagination import Page, decode_cursor, encode_cursor
from service.register import Section
from service.settings import RetentionSettings
from service.times import parse_time
from storage.audit import add_entry
from storage.base import utcnow
from storage.blobs import Blobs, sha256_hex
from storage.customers import Customer, get_customer, owners_of
from storage.engine import Database
from storage.erasure import (
    Erased,
    clear_blob_deletions,
    erase_interactions,
    pending_blob_deletions,
    purge_queued_terms,
)
from storage.errors import Conflict, NotFound
from storage.interactions import Interaction, Participant, about_subject
from storage.rights import (
    REQUEST_KINDS,
    CustomerCorrection,
    LegalHold,
    SubjectRequest,
    get_request,
    list_holds,
    list_requests,
)
from storage.search import matching_ids, parse_query
from storage.webhooks import forget_events_about

log = logging.getLogger(__name__)
IDENTIFIER_KEYS = ("customer_id", "email", "phone", "business_id")


def add_months(when: datetime, months: int) -> datetime:
    """The same day `months` later, or the month's last day if it has fewer (31 Jan -> 28 Feb):
    GDPR art. 12(3)'s "one month" as the Finnish courts count it."""
    month0 = when.month - 1 + months
    year, month = when.year + month0 // 12, month0 % 12 + 1
    return when.replace(year=year, month=month, day=min(when.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Subject:
    """Whom a request is about: their customer record (if any) and every identifier of theirs."""

    customer: Customer | None
    pairs: list[tuple[str, str]]

    @property
    def customer_id(self) -> int | None:
        return self.customer.id if self.customer is not None else None

    def condition(self) -> Any:
        """Which interactions are about the subject."""
        mentioning = None
        business_ids = [v for k, v in self.pairs if k == "business_id"]
        if business_ids:
            mentioning = matching_ids(parse_query(" OR ".join(f'"{b}"' for b in business_ids)))
        participants = [(k, v) for k, v in self.pairs if k in ("email", "phone")]
        return about_subject(self.customer_id, participants, mentioning)


def parse_identifiers(data: Any, region: str) -> dict[str, Any]:
    """Validated, normalised identifiers of a request; raises InvalidInput naming the field."""
    if not isinstance(data, dict) or not data:
        raise InvalidInput(
            'identifiers must be an object with at least one of "customer_id", "email", "phone", '
            '"business_id"',
            "identifiers",
        )
    unknown = sorted(set(data) - set(IDENTIFIER_KEYS))
    if unknown:
        raise InvalidInput(f"unknown identifier(s): {', '.join(unknown)}", f"identifiers.{unknown[0]}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if value is None:
            continue
        field = f"identifiers.{key}"
        if key == "customer_id":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInput("customer_id must be a positive whole number", field)
            out[key] = value
            continue
        if not isinstance(value, str):
            raise InvalidInput(f"{key} must be a string", field)
        if key == "email":
            out[key] = normalise_email(value, field)
        elif key == "phone":
            out[key] = normalise_phone(value, region, field)
        else:
            out[key] = normalise_business_id(value)
    if not out:
        raise InvalidInput("give at least one identifier", "identifiers")
    return out


def request_to_dict(r: SubjectRequest, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    return {
        "id": r.id,
        "kind": r.kind,
        "identifiers": r.identifiers,
        "received_at": r.received_at.isoformat(),
        "due_at": r.due_at.isoformat(),
        "status": r.status,
        "overdue": r.status == "open" and r.due_at < now,
        "note": r.note,
        "created_by": r.created_by,
        "created_at": r.created_at.isoformat(),
        "completed_at": r.completed_at.isoformat() if r.completed_at else None,
        "completed_by": r.completed_by,
        "report": r.report or None,
    }


async def create_request(db: Database, who: Principal, body: Any, region: str) -> dict[str, Any]:
    """Record a subject request with its due date (received + 1 month)."""
    who.require_role("privacy")
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = sorted(set(body) - {"kind", "identifiers", "received_at", "note"})
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}", unknown[0])
    kind = body.get("kind")
    if kind not in REQUEST_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(REQUEST_KINDS)}", "kind")
    identifiers = parse_identifiers(body.get("identifiers"), region)
    received = (
        parse_time(body["received_at"], "received_at") if body.get("received_at") is not None else utcnow()
    )
    if received > utcnow():
        raise InvalidInput("received_at is in the future", "received_at")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 5000):
        raise InvalidInput("note must be a string of at most 5000 characters", "note")
    async with db.write() as session:
        if "customer_id" in identifiers and await session.get(Customer, identifiers["customer_id"]) is None:
            raise InvalidInput(
                f"there is no customer {identifiers['customer_id']}", "identifiers.customer_id"
            )
        request = SubjectRequest(
            kind=kind,
            identifiers=identifiers,
            received_at=received,
            due_at=add_months(received, 1),
            status="open",
            note=(note or "").strip() or None,
            created_by=who.actor,
        )
        session.add(request)
        await session.flush()
        add_entry(
            session,
            who.actor,
            "subject_request.create",
            identifiers.get("customer_id"),
            detail={"request_id": request.id, "kind": kind},
        )
        return request_to_dict(request)


async def list_subject_requests(
    db: Database, who: Principal, status: str | None, cursor: str | None, limit: int
) -> Page:
    """Subject requests, open overdue ones first, then by due date."""
    who.require_role("privacy")
    if status is not None and status not in ("open", "done"):
        raise InvalidInput("status must be open or done", "status")
    position = decode_cursor(cursor, 1)
    offset = int(position[0]) if position else 0
    async with db.read() as session:
        rows, total = await list_requests(session, status, offset, limit)
    await record(db, who, "subject_request.list", detail={"count": len(rows)})
    nxt = encode_cursor([offset + len(rows)]) if len(rows) == limit else None
    now = utcnow()
    return Page([request_to_dict(r, now) for r in rows], total, nxt)


async def read_request(db: Database, who: Principal, request_id: int) -> dict[str, Any]:
    who.require_role("privacy")
    async with db.read() as session:
        found = await get_request(session, request_id)
    await record(
        db,
        who,
        "subject_request.read",
        found.identifiers.get("customer_id"),
        detail={"request_id": request_id},
    )
    return request_to_dict(found)


async def resolve_subject(session: AsyncSession, identifiers: Mapping[str, Any]) -> Subject:
    """The customer record the identifiers point to (customer_id first) and every identifier.

    Raises Conflict if they point to two different customers: a person must decide.
    """
    pairs = [(k, identifiers[k]) for k in ("email", "phone", "business_id") if identifiers.get(k)]
    customer: Customer | None = None
    if identifiers.get("customer_id") is not None:
        try:
            customer = await get_customer(session, int(identifiers["customer_id"]))
        except NotFound:
            customer = None  # erased already: the identifiers still find what is left
    owners = set((await session.run_sync(owners_of, pairs)).values())
    if customer is not None:
        owners.add(customer.id)
    if len(owners) > 1:
        raise Conflict(
            f"the identifiers belong to different customers ({', '.join(map(str, sorted(owners)))})"
        )
    if customer is None and owners:
        customer = await get_customer(session, owners.pop())
    if customer is not None:
        own = [(i.kind, i.value) for i in customer.identifiers]
        if customer.business_id:
            own.append(("business_id", customer.business_id))
        pairs = list(dict.fromkeys(pairs + own))
    return Subject(customer, pairs)


@dataclass(frozen=True)
class RightsContext:
    """What executing requests needs beyond the database."""

    db: Database
    blobs: Blobs
    executor: Executor
    hasher: Hasher
    watch_dir: str
    register: list[Section]
    retention: RetentionSettings


async def execute_request(ctx: RightsContext, who: Principal, request_id: int) -> dict[str, Any]:
    """Carry out a request: erase (erasure), ban marketing on every channel (objection), or
    close it as answered (access: after the export; rectification: after the corrections)."""
    who.require_role("privacy")
    async with ctx.db.read() as session:
        request = await _open_request(session, request_id)
    if request.kind == "erasure":
        report = await erase_subject(ctx, who, request_id)
    elif request.kind == "objection":
        report = await _object(ctx, who, request_id)
    else:
        report = await _close(ctx.db, who, request_id)
    async with ctx.db.read() as session:
        return request_to_dict(await get_request(session, request_id)) | {"report": report}


async def _open_request(session: AsyncSession, request_id: int) -> SubjectRequest:
    """The request, if it is still open (checked again inside each write: two clicks on
    "execute" must not erase twice); raises NotFound or Conflict."""
    request = await get_request(session, request_id)
    if request.status != "open":
        raise Conflict(f"subject request {request_id} is {request.status} already")
    return request


async def _close(db: Database, who: Principal, request_id: int) -> dict[str, Any]:
    async with db.write() as session:
        request = await _open_request(session, request_id)
        report: dict[str, Any] = dict(request.report or {})
        if request.kind == "access" and not report.get("exports"):
            raise Conflict(f"subject request {request_id} has not been exported yet: GET its /export first")
        _complete(request, who, report)
        add_entry(
            session,
            who.actor,
            f"subject_request.{request.kind}",
            request.identifiers.get("customer_id"),
            detail={"request_id": request_id},
        )
    return report


def _complete(request: SubjectRequest, who: Principal, report: dict[str, Any]) -> None:
    request.status = "done"
    request.completed_at = utcnow()
    request.completed_by = who.actor
    request.report = report


async def _object(ctx: RightsContext, who: Principal, request_id: int) -> dict[str, Any]:
    async with ctx.db.write() as session:
        request = await _open_request(session, request_id)
        subject = await resolve_subject(session, request.identifiers)
        bans = await apply_objection(
            session, who.actor, subject.customer_id, subject.pairs, request_id, ctx.hasher
        )
        report = {
            "marketing_bans": [{"id": b["id"], "channel": b["channel"], "status": b["status"]} for b in bans]
        }
        _complete(request, who, report)
        add_entry(
            session,
            who.actor,
            "subject_request.objection",
            subject.customer_id,
            detail={"request_id": request_id},
        )
    return report


async def erase_subject(ctx: RightsContext, who: Principal, request_id: int) -> dict[str, Any]:
    """Erase everything about the request's subject that no hold or other customer needs, and
    return the report: counts per kind erased, and what was retained and why."""
    erased = Erased()
    async with ctx.db.write() as session:
        request = await _open_request(session, request_id)
        plan = await _plan(session, request)
        subject, customer, customer_hold = plan.subject, plan.subject.customer, plan.customer_hold
        retained, doomed, ids = plan.retained, plan.doomed, plan.found
        await erase_interactions(session, doomed, erased)
        bans_kept = await keep_only_hashes(session, customer, subject.pairs, request_id, ctx.hasher)
        if customer is not None and customer_hold is None:
            erased.add("customers", 1)
            erased.add("identifiers", len(customer.identifiers))
            erased.add("rectifications", await _count_changes(session, customer.id))
            await session.delete(customer)
        elif customer is not None and customer_hold is not None:
            retained.append(
                {"kind": "customer", "id": customer.id, "reason": "legal hold"} | _hold_facts(customer_hold)
            )
        erased.add("subject_requests_redacted", await _redact_requests(session, subject))
        # events still queued about the person go; the erasure itself is announced (ids only)
        erased.add(
            "webhook_events",
            await session.run_sync(lambda sync: forget_events_about(sync, subject.customer_id, doomed)),
        )
        report = {
            "erased": dict(sorted(erased.counts.items())),
            "retained": retained,
            "marketing_bans_kept_as_hashes": bans_kept,
            "interactions_found": len(ids),
        }
        _complete(request, who, report)
        await emit(
            session,
            "subject.erased",
            {"request_id": request_id, "customer_id": subject.customer_id, "erased": report["erased"]},
        )
        add_entry(
            session,
            who.actor,
            "subject.erase",
            subject.customer_id,
            detail={"request_id": request_id, "erased": report["erased"], "retained": len(retained)},
        )
    await finish_deletions(ctx, erased)
    return report


@dataclass
class _Plan:
    """What an erasure of a request's subject would erase and keep (and why)."""

    subject: Subject
    found: list[int]
    doomed: list[int]
    retained: list[dict[str, Any]]
    customer_hold: LegalHold | None


async def _plan(session: AsyncSession, request: SubjectRequest) -> _Plan:
    subject = await resolve_subject(session, request.identifiers)
    rows = (
        await session.execute(select(Interaction.id, Interaction.customer_id).where(subject.condition()))
    ).all()
    binding = await list_holds(
        session, subject.customer_id, select(Interaction.id).where(subject.condition()), True
    )
    customer_hold = next((h for h in binding if h.customer_id is not None), None)
    by_interaction = {h.interaction_id: h for h in binding if h.interaction_id is not None}
    retained: list[dict[str, Any]] = []
    doomed: list[int] = []
    others = await _other_customers_named(session, subject)
    for iid, owner in rows:
        hold = by_interaction.get(iid) or (
            customer_hold if owner is not None and owner == subject.customer_id else None
        )
        if owner is not None and owner != subject.customer_id:
            retained.append(
                {"kind": "interaction", "id": iid, "reason": f"linked to another customer ({owner})"}
            )
        elif owner is None and iid in others:
            retained.append(
                {"kind": "interaction", "id": iid, "reason": f"also names another customer ({others[iid]})"}
            )
        elif hold is not None:
            retained.append({"kind": "interaction", "id": iid, "reason": "legal hold"} | _hold_facts(hold))
        else:
            doomed.append(iid)
    return _Plan(subject, [iid for iid, _ in rows], doomed, retained, customer_hold)


async def erasure_preview(db: Database, who: Principal, request_id: int) -> dict[str, Any]:
    """What executing an erasure request would erase and retain, without erasing anything:
    the confirmation step a privacy officer sees first."""
    who.require_role("privacy")
    async with db.read() as session:
        request = await _open_request(session, request_id)
        if request.kind != "erasure":
            raise InvalidInput(
                f"subject request {request_id} is a request of kind {request.kind}, not erasure"
            )
        plan = await _plan(session, request)
        channels: dict[str, int] = {}
        if plan.doomed:
            for channel in await session.scalars(
                select(Interaction.channel).where(Interaction.id.in_(plan.doomed))
            ):
                channels[channel] = channels.get(channel, 0) + 1
        customer = plan.subject.customer
    await record(
        db, who, "subject.erase_preview", plan.subject.customer_id, detail={"request_id": request_id}
    )
    retained = list(plan.retained)
    if customer is not None and plan.customer_hold is not None:
        retained.append(
            {"kind": "customer", "id": customer.id, "reason": "legal hold"} | _hold_facts(plan.customer_hold)
        )
    return {
        "request": request_to_dict(request),
        "customer": {"id": customer.id, "name": customer.name} if customer is not None else None,
        "customer_erased": customer is not None and plan.customer_hold is None,
        "identifiers": [{"kind": k, "value": v} for k, v in plan.subject.pairs],
        "erase": channels,
        "retained": retained,
    }


async def _other_customers_named(session: AsyncSession, subject: Subject) -> dict[int, int]:
    """Interactions about the subject in which another customer takes part (interaction -> that
    customer): their data too, so not the subject's alone to erase."""
    rows = await session.execute(
        select(Participant.interaction_id, Participant.customer_id).where(
            Participant.interaction_id.in_(select(Interaction.id).where(subject.condition())),
            Participant.customer_id.is_not(None),
            Participant.customer_id != (subject.customer_id or 0),
        )
    )
    return {iid: cid for iid, cid in rows if cid is not None}


def _hold_facts(hold: LegalHold) -> dict[str, Any]:
    return {"hold_id": hold.id, "basis": hold.basis, "until": hold.until.isoformat() if hold.until else None}


async def _count_changes(session: AsyncSession, customer_id: int) -> int:
    query = select(func.count(CustomerCorrection.id)).where(CustomerCorrection.customer_id == customer_id)
    return await session.scalar(query) or 0


async def _redact_requests(session: AsyncSession, subject: Subject) -> int:
    """Requests naming the subject keep their kind, dates and reports but lose whom they named."""
    values = {v for _, v in subject.pairs}
    n = 0
    for request in await session.scalars(select(SubjectRequest)):
        ids = request.identifiers or {}
        named = {str(v) for k, v in ids.items() if k != "customer_id"}
        if (
            subject.customer_id is not None and ids.get("customer_id") == subject.customer_id
        ) or named & values:
            request.identifiers = {"erased": sorted(k for k in ids if k != "erased")}
            request.note = None
            n += 1
    return n


async def finish_deletions(ctx: RightsContext, erased: Erased | None = None) -> None:
    """After an erasure commits: remove the queued blobs and the watched folder's copies of
    erased recordings while the full-text index is merged (the blobs wait on the disk's
    journal, the merge on the CPU: 10,000 files took 0.7 s and merging the index of 100,000
    interactions 0.6-0.9 s, one after the other), forget the queues, and truncate the SQLite
    WAL (which still holds the erased pages as they were before). Also run on start for what
    a crash left queued."""
    loop = asyncio.get_running_loop()
    async with ctx.db.read() as session:
        names = await pending_blob_deletions(session)

    async def remove_files() -> None:
        if erased is not None and erased.source_files and ctx.watch_dir:
            await loop.run_in_executor(
                ctx.executor, _remove_source_files, Path(ctx.watch_dir), erased.source_files
            )
        if names:
            await loop.run_in_executor(ctx.executor, ctx.blobs.delete, names)

    outcomes = await asyncio.gather(
        remove_files(), ctx.db.run_write(purge_queued_terms), return_exceptions=True
    )
    for outcome in outcomes:  # both ran to the end; what one failed at stays queued for the next start
        if isinstance(outcome, BaseException):
            raise outcome
    if names:
        async with ctx.db.write() as session:
            await clear_blob_deletions(session, names)
    if not await ctx.db.checkpoint():
        log.warning(
            "the WAL could not be truncated after an erasure (readers kept it busy); the next erasure retries"
        )


def _remove_source_files(watch_dir: Path, files: list[tuple[str, str]]) -> None:
    """Delete `processed/<name>` (or a `-N` twin of it) and its sidecar when its bytes are the
    erased recording's."""
    processed = watch_dir / "processed"
    for name, blob in files:
        stem, suffix = Path(name).stem, Path(name).suffix
        for candidate in [processed / name, *processed.glob(f"{stem}-*{suffix}")]:
            try:
                if candidate.is_file() and sha256_hex(candidate.read_bytes()) == blob:
                    candidate.unlink()
                    candidate.with_suffix(".json").unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove an erased recording from the watched folder: %s", exc.strerror)


# legal holds


def parse_hold(body: Any) -> tuple[int | None, int | None, str, datetime | None]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = sorted(set(body) - {"customer_id", "interaction_id", "basis", "until"})
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}", unknown[0])
    cid, iid = body.get("customer_id"), body.get("interaction_id")
    if (cid is None) == (iid is None):
        raise InvalidInput("give exactly one of customer_id or interaction_id", "customer_id")
    for name, value in (("customer_id", cid), ("interaction_id", iid)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidInput(f"{name} must be a whole number", name)
    basis = body.get("basis")
    if not isinstance(basis, str) or not basis.strip() or len(basis) > 2000:
        raise InvalidInput("basis must say which law requires keeping the data (1-2000 characters)", "basis")
    until = parse_time(body["until"], "until") if body.get("until") is not None else None
    if until is not None and until <= utcnow():
        raise InvalidInput("until must be in the future", "until")
    return cid, iid, basis.strip(), until


def hold_to_dict(h: LegalHold) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": h.id,
        "customer_id": h.customer_id,
        "interaction_id": h.interaction_id,
        "basis": h.basis,
        "until": h.until.isoformat() if h.until else None,
        "active": h.released_at is None and (h.until is None or h.until > now),
        "created_by": h.created_by,
        "created_at": h.created_at.isoformat(),
        "released_at": h.released_at.isoformat() if h.released_at else None,
        "released_by": h.released_by,
    }


async def create_hold(db: Database, who: Principal, body: Any) -> dict[str, Any]:
    """Put a customer (record and linked interactions) or one interaction on legal hold."""
    who.require_role("privacy")
    cid, iid, basis, until = parse_hold(body)
    async with db.write() as session:
        if cid is not None:
            await get_customer(session, cid)
        if iid is not None and await session.get(Interaction, iid) is None:
            raise NotFound("interaction", iid)
        hold = LegalHold(customer_id=cid, interaction_id=iid, basis=basis, until=until, created_by=who.actor)
        session.add(hold)
        await session.flush()
        add_entry(session, who.actor, "legal_hold.create", cid, iid, detail={"hold_id": hold.id})
        return hold_to_dict(hold)


async def holds_list(
    db: Database, who: Principal, customer_id: int | None, active_only: bool
) -> list[dict[str, Any]]:
    who.require_role("privacy")
    async with db.read() as session:
        rows = await list_holds(
            session,
            customer_id,
            None
            if customer_id is None
            else select(Interaction.id).where(Interaction.customer_id == customer_id),
            active_only,
        )
    await record(db, who, "legal_hold.list", customer_id, detail={"count": len(rows)})
    return [hold_to_dict(h) for h in rows]


async def release_hold(db: Database, who: Principal, hold_id: int) -> dict[str, Any]:
    who.require_role("privacy")
    async with db.write() as session:
        hold = await session.get(LegalHold, hold_id)
        if hold is None:
            raise NotFound("legal hold", hold_id)
        if hold.released_at is None:
            hold.released_at = utcnow()
            hold.released_by = who.actor
        add_entry(
            session,
            who.actor,
            "legal_hold.release",
            hold.customer_id,
            hold.interaction_id,
            detail={"hold_id": hold_id},
        )
        return hold_to_dict(hold)


# rectification history


def change_to_dict(c: CustomerCorrection) -> dict[str, Any]:
    return {
        "id": c.id,
        "field": c.field,
        "old_value": c.old_value,
        "new_value": c.new_value,
        "actor": c.actor,
        "at": c.at.isoformat(),
        "request_id": c.request_id,
    }


async def customer_history(db: Database, who: Principal, customer_id: int) -> list[dict[str, Any]]:
    """Every correction of a customer record, oldest first (role privacy)."""
    who.require_role("privacy")
    async with db.read() as session:
        await get_customer(session, customer_id)
        rows = await session.scalars(
            select(CustomerCorrection)
            .where(CustomerCorrection.customer_id == customer_id)
            .order_by(CustomerCorrection.id)
        )
        changes = [change_to_dict(c) for c in rows]
    await record(db, who, "customer.history", customer_id, detail={"count": len(changes)})
    return changes
