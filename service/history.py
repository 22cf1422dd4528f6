"""The interaction history: search, timelines, one interaction, its raw original, manual links,
and subject lookup (everything held about one person, linked to a customer or not).

Each read leaves an audit row naming what was read.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from service.access import Principal
from service.audit import record
from service.calls import call_detail
from service.customers import customer_to_dict
from service.errors import InvalidInput
from service.events import emit_linked
from service.identifiers import normalise_email, normalise_phone
from service.pagination import Page, decode_cursor, encode_cursor
from storage.audit import add_entry
from storage.blobs import Blobs
from storage.customers import Customer, get_customer, owners_of
from storage.engine import Database
from storage.errors import NotFound
from storage.interactions import (
    CHANNELS,
    Interaction,
    InteractionFilter,
    Listed,
    ListedParticipant,
    get_interaction,
    list_interactions,
    listed,
)
from storage.search import matched_snippets, parse_query, resolved


@dataclass(frozen=True)
class HistoryQuery:
    """What a person asked the history for."""

    q: str | None = None
    customer_id: int | None = None
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    unlinked: bool | None = None
    tag: str | None = None


def participant_to_dict(p: ListedParticipant) -> dict[str, Any]:
    return {
        "role": p.role,
        "kind": p.kind,
        "value": p.value,
        "name": p.display_name,
        "customer_id": p.customer_id,
    }


def interaction_summary(i: Listed) -> dict[str, Any]:
    """The fields shown in lists and timelines (no full body)."""
    return {
        "id": i.id,
        "channel": i.channel,
        "direction": i.direction,
        "occurred_at": i.occurred_at.isoformat(),
        "subject": i.subject,
        "snippet": i.snippet,
        "customer_id": i.customer_id,
        "link_method": i.link_method,
        "needs_review": i.needs_review,
        "participants": [participant_to_dict(p) for p in i.participants],
        "attachment_count": i.attachment_count,
    }


def interaction_detail(i: Interaction) -> dict[str, Any]:
    """Everything about one interaction except its raw bytes."""
    return interaction_summary(listed(i)) | {
        "body": i.body,
        "message_id": i.message_id,
        "captured_at": i.captured_at.isoformat(),
        "raw_size": i.raw_size,
        "parse_errors": i.parse_errors,
        "meta": i.meta,
        "attachments": [
            {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in i.attachments
        ],
        "tags": [
            {"id": t.id, "kind": t.kind, "data": t.data, "created_at": t.created_at.isoformat()}
            for t in i.tags
        ],
    }


def _filter(query: HistoryQuery) -> InteractionFilter:
    """The filter of a history query (its `match`: the parsed full-text expression)."""
    if query.channel is not None and query.channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}", "channel")
    if query.since and query.until and query.since >= query.until:
        raise InvalidInput("since must be before until", "since")
    return InteractionFilter(
        customer_id=query.customer_id,
        channel=query.channel,
        since=query.since,
        until=query.until,
        unlinked=query.unlinked,
        match=parse_query(query.q) if query.q is not None else None,
        tag=query.tag,
    )


@dataclass
class FoundPage:
    """A page of the history: its rows, total, the cursor of the next page, and snippets."""

    rows: list[Listed]
    total: int
    exact: bool
    next: str | None
    snippets: dict[int, str]


async def read_page(
    db: Database, flt: InteractionFilter, cursor: str | None, limit: int, snippets: bool = False
) -> FoundPage:
    """One page of the history and, with `snippets`, where each matched the full-text query.

    One read: the query resolved once (stemmed, or prefixes expanded) for the page and its
    snippets, all from the same snapshot (on PostgreSQL three transactions had cost 2-3 ms
    more than one).
    """
    before = decode_cursor(cursor, 2)
    key = None
    if before:
        try:
            key = (datetime.fromisoformat(before[0]), int(before[1]))
        except (TypeError, ValueError):
            raise InvalidInput("the cursor is not one this service gave out", "cursor") from None

    def read(session: Session) -> FoundPage:
        match = resolved(session, flt.match) if flt.match is not None else None
        rows, total, exact = list_interactions(session, replace(flt, match=match), key, limit)
        found = {}
        if snippets and match is not None and rows:
            found = matched_snippets(session, match, [r.id for r in rows])
        nxt = None
        if rows and len(rows) == limit:
            nxt = encode_cursor([rows[-1].occurred_at.isoformat(), rows[-1].id])
        return FoundPage(rows, total, exact, nxt, found)

    return await db.run_read(read)


async def search_history(
    db: Database, who: Principal, query: HistoryQuery, cursor: str | None, limit: int
) -> Page:
    """Interactions matching the query, newest first. Raises InvalidInput for a bad query."""
    who.require_role("agent")
    flt = _filter(query)
    found = await read_page(db, flt, cursor, limit, snippets=True)
    ids = [r.id for r in found.rows]
    await record(
        db,
        who,
        "interaction.list",
        query.customer_id,
        detail={"count": len(ids), "ids": ids, "searched": query.q is not None},
    )
    items = [
        interaction_summary(r) | ({"match": found.snippets[r.id]} if r.id in found.snippets else {})
        for r in found.rows
    ]
    return Page(items, found.total, found.next, found.exact)


async def read_interaction(db: Database, who: Principal, interaction_id: int) -> dict[str, Any]:
    """One interaction with participants, body, attachments and tags; raises NotFound."""
    who.require_role("agent")
    async with db.read() as session:
        found = await get_interaction(session, interaction_id)
    detail = interaction_detail(found)
    if found.channel == "call":
        detail |= await db.run_read(lambda session: call_detail(session, interaction_id))
    await record(db, who, "interaction.read", found.customer_id, found.id)
    return detail


async def read_raw(
    db: Database, blobs: Blobs, executor: Executor, who: Principal, interaction_id: int
) -> tuple[bytes, str]:
    """The original bytes as captured and their content type; raises NotFound."""
    who.require_role("agent")
    async with db.read() as session:
        found = await get_interaction(session, interaction_id)
    if found.raw_blob is None:
        raise NotFound("raw original of interaction", interaction_id)
    data = await asyncio.get_running_loop().run_in_executor(executor, blobs.read, found.raw_blob)
    await record(db, who, "interaction.raw", found.customer_id, found.id)
    return data, found.raw_content_type or "application/octet-stream"


async def audio_file(db: Database, who: Principal, interaction_id: int) -> tuple[str, str]:
    """The blob of a call's original recording and its content type; raises NotFound.

    The caller streams the blob (with Range support); the read is audited here.
    """
    who.require_role("agent")
    async with db.read() as session:
        found = await get_interaction(session, interaction_id)
    if found.channel != "call" or found.raw_blob is None:
        raise NotFound("recording of interaction", interaction_id)
    await record(db, who, "interaction.audio", found.customer_id, found.id)
    return found.raw_blob, found.raw_content_type or "application/octet-stream"


async def set_link(
    db: Database, who: Principal, interaction_id: int, customer_id: int | None
) -> dict[str, Any]:
    """Link an interaction to a customer by hand (or unlink it with None); raises NotFound."""
    who.require_role("agent")
    async with db.write() as session:
        found = await get_interaction(session, interaction_id)
        if customer_id is not None:
            await get_customer(session, customer_id)
        previous = found.customer_id
        await session.execute(
            update(Interaction)
            .where(Interaction.id == interaction_id)
            .values(
                customer_id=customer_id,
                link_method="manual" if customer_id is not None else None,
                needs_review=False,
            )
        )
        await emit_linked(session, customer_id, [interaction_id], "manual")
        add_entry(
            session,
            who.actor,
            "interaction.link" if customer_id else "interaction.unlink",
            customer_id or previous,
            interaction_id,
            detail={"previous_customer_id": previous},
        )
    async with db.read() as session:
        return interaction_detail(await get_interaction(session, interaction_id))


async def subject_lookup(
    db: Database,
    who: Principal,
    region: str,
    email: str | None,
    phone: str | None,
    customer_id: int | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """Everything held about one person: their customer record, if any, and every interaction
    linked to it or naming one of its identifiers (or the identifier asked for)."""
    who.require_role("agent")
    given = [x for x in (email, phone, customer_id) if x is not None]
    if len(given) != 1:
        raise InvalidInput("give exactly one of email, phone or customer_id")
    pairs: list[tuple[str, str]] = []
    if email is not None:
        pairs.append(("email", normalise_email(email)))
    if phone is not None:
        pairs.append(("phone", normalise_phone(phone, region)))
    customer: Customer | None = None
    async with db.read() as session:
        if customer_id is not None:
            customer = await get_customer(session, customer_id)
        else:
            owner = (await session.run_sync(owners_of, pairs)).get(pairs[0])
            if owner is not None:
                customer = await get_customer(session, owner)
    if customer is not None:
        pairs = list(dict.fromkeys(pairs + [(i.kind, i.value) for i in customer.identifiers]))
    flt = InteractionFilter(customer_id=customer.id if customer else None, naming=pairs)
    found = await read_page(db, flt, cursor, limit)
    await record(
        db,
        who,
        "subject.lookup",
        customer.id if customer else None,
        detail={"identifiers": len(pairs), "count": len(found.rows), "ids": [r.id for r in found.rows]},
    )
    page = Page([interaction_summary(r) for r in found.rows], found.total, found.next, found.exact)
    return {
        "customer": customer_to_dict(customer) if customer else None,
        "identifiers": [{"kind": k, "value": v} for k, v in pairs],
        "interactions": page.to_dict(),
    }
