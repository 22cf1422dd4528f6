"""The customer register: create, correct, read and search customers.

Identifiers are normalised on the way in (lower-case email, E.164 phone, checked business
ID). Whenever a customer gains an identifier, earlier unlinked interactions that name it are
linked to them in the same transaction. Every read and change leaves an audit row.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.access import Principal
from service.audit import record
from service.errors import InvalidInput
from service.events import emit_linked
from service.identifiers import (
    normalise_business_id,
    normalise_email,
    normalise_personal_id,
    normalise_phone,
)
from service.marketing import customer_bans
from service.pagination import Page, decode_cursor, encode_cursor
from storage.audit import add_entry
from storage.base import utcnow
from storage.customers import (
    Customer,
    CustomerExternalId,
    customer_by_external_id,
    get_customer,
    search_customers,
    set_identifiers,
)
from storage.engine import Database
from storage.interactions import link_mentioning, link_unlinked
from storage.rights import CustomerCorrection, SubjectRequest
from storage.search import matching_ids, parse_query

TEXT_FIELDS = {"name": 300, "address": 2000, "bank_account": 64, "contact_person": 300, "notes": 20000}
LIST_FIELDS = ("emails", "phones")
ALL_FIELDS = set(TEXT_FIELDS) | set(LIST_FIELDS) | {"business_id", "personal_id"}


@dataclass
class CustomerChange:
    """Validated fields of a create or update; only keys present in the request are set."""

    fields: dict[str, str | None]
    emails: list[str] | None
    phones: list[str] | None
    business_id: str | None
    business_id_given: bool
    personal_id: str | None = None
    personal_id_given: bool = False

    def given(self) -> list[str]:
        """The fields this change sets (for recording their source)."""
        out = list(self.fields)
        out += [
            name for name, value in (("emails", self.emails), ("phones", self.phones)) if value is not None
        ]
        out += [
            name
            for name, given in (
                ("business_id", self.business_id_given),
                ("personal_id", self.personal_id_given),
            )
            if given
        ]
        return out


def parse_customer(body: Any, region: str, creating: bool) -> CustomerChange:
    """Validate a customer JSON body; raises InvalidInput naming the first wrong field."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = sorted(set(body) - ALL_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}", unknown[0])
    fields: dict[str, str | None] = {}
    for name, max_len in TEXT_FIELDS.items():
        if name not in body:
            continue
        value = body[name]
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{name} must be a string", name)
        if value is not None:
            value = value.strip()
            if len(value) > max_len:
                raise InvalidInput(f"{name} is longer than {max_len} characters", name)
        fields[name] = value or None
    if creating and not fields.get("name"):
        raise InvalidInput("name is required", "name")
    if "name" in fields and not fields["name"]:
        raise InvalidInput("name cannot be empty", "name")
    lists: dict[str, list[str] | None] = {}
    for name in LIST_FIELDS:
        if name not in body:
            lists[name] = [] if creating else None
            continue
        value = body[name]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"{name} must be a list of strings", name)
        if name == "emails":
            lists[name] = list(dict.fromkeys(normalise_email(v, name) for v in value))
        else:
            lists[name] = list(dict.fromkeys(normalise_phone(v, region, name) for v in value))
    business_id = None
    if body.get("business_id") is not None:
        if not isinstance(body["business_id"], str):
            raise InvalidInput("business_id must be a string", "business_id")
        business_id = normalise_business_id(body["business_id"])
    personal_id = None
    if body.get("personal_id") is not None:
        if not isinstance(body["personal_id"], str):
            raise InvalidInput("personal_id must be a string", "personal_id")
        personal_id = normalise_personal_id(body["personal_id"])
    return CustomerChange(
        fields,
        lists["emails"],
        lists["phones"],
        business_id,
        "business_id" in body,
        personal_id,
        "personal_id" in body,
    )


def customer_to_dict(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "business_id": customer.business_id,
        "emails": customer.values("email"),
        "phones": customer.values("phone"),
        "address": customer.address,
        "bank_account": customer.bank_account,
        "contact_person": customer.contact_person,
        "notes": customer.notes,
        "personal_id": next(iter(customer.values("personal_id")), None),
        "field_sources": customer.field_sources or {},
        "created_at": customer.created_at.isoformat(),
        "updated_at": customer.updated_at.isoformat(),
    }


async def _link_earlier(session: AsyncSession, customer_id: int, added: list[tuple[str, str]]) -> list[int]:
    """Link earlier unlinked interactions that name the identifiers the customer just gained:
    as a participant (email, phone), or a business ID written in the text."""
    linked = await link_unlinked(session, customer_id, added)
    for kind, value in added:
        if kind == "business_id":
            mentioning = matching_ids(parse_query(f'"{value}"'))
            linked += await link_mentioning(session, customer_id, mentioning)
    await emit_linked(session, customer_id, linked, "identifier")
    return linked


def _identifiers(c: Customer, change: CustomerChange) -> list[tuple[str, str]]:
    emails = change.emails if change.emails is not None else c.values("email")
    phones = change.phones if change.phones is not None else c.values("phone")
    business_id = change.business_id if change.business_id_given else c.business_id
    personal_ids = (
        ([change.personal_id] if change.personal_id else [])
        if change.personal_id_given
        else c.values("personal_id")
    )
    pairs = [("email", e) for e in emails] + [("phone", p) for p in phones]
    if business_id:
        pairs.append(("business_id", business_id))
    pairs += [("personal_id", p) for p in personal_ids]
    return pairs


async def create_customer(db: Database, who: Principal, change: CustomerChange) -> dict[str, Any]:
    """Add a customer and link earlier unlinked interactions that name its identifiers.

    Raises Conflict if an identifier belongs to another customer.
    """
    who.require_role("agent")
    async with db.write() as session:
        customer = Customer(**change.fields, business_id=change.business_id, identifiers=[])
        session.add(customer)
        await session.flush()
        added = await set_identifiers(session, customer, _identifiers(customer, change))
        linked = await _link_earlier(session, customer.id, added)
        add_entry(session, who.actor, "customer.create", customer.id, detail={"linked": len(linked)})
        return customer_to_dict(customer) | {"linked_interactions": linked}


async def _apply(
    session: AsyncSession,
    who: Principal,
    customer: Customer,
    change: CustomerChange,
    request_id: int | None,
    keep_history: bool = True,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Set the change's fields and identifiers on the customer, keeping each changed field's
    old and new value in its history (not for a record being created); returns the changed
    fields and the new identifiers."""
    before = _snapshot(customer)
    for key, value in change.fields.items():
        setattr(customer, key, value)
    if change.business_id_given:
        customer.business_id = change.business_id
    added = await set_identifiers(session, customer, _identifiers(customer, change))
    after = _snapshot(customer)
    changed = sorted(k for k in after if after[k] != before[k])
    for key in changed if keep_history else []:
        session.add(
            CustomerCorrection(
                customer_id=customer.id,
                field=key,
                old_value=before[key],
                new_value=after[key],
                actor=who.actor,
                request_id=request_id,
            )
        )
    return changed, added


async def update_customer(
    db: Database, who: Principal, customer_id: int, change: CustomerChange, request_id: int | None = None
) -> dict[str, Any]:
    """Correct a customer's fields; identifier lists given replace the old ones. Each changed
    field is kept in the record's history (old and new value, who, when, and the subject
    request it answers, if one is given).

    Raises NotFound, InvalidInput for an unknown request, or Conflict if an identifier
    belongs to another customer.
    """
    who.require_role("agent")
    async with db.write() as session:
        if request_id is not None and await session.get(SubjectRequest, request_id) is None:
            raise InvalidInput(f"there is no subject request {request_id}", "request_id")
        customer = await get_customer(session, customer_id)
        changed, added = await _apply(session, who, customer, change, request_id)
        linked = await _link_earlier(session, customer.id, added)
        add_entry(
            session,
            who.actor,
            "customer.update",
            customer.id,
            detail={"fields": changed, "linked": len(linked), "request_id": request_id},
        )
        await session.flush()
        return customer_to_dict(customer) | {"linked_interactions": linked}


def _snapshot(customer: Customer) -> dict[str, str | None]:
    """The correctable fields as text (identifier lists as JSON), to compare and keep."""
    out: dict[str, str | None] = {name: getattr(customer, name) for name in TEXT_FIELDS}
    out["business_id"] = customer.business_id
    out["emails"] = json.dumps(customer.values("email"), ensure_ascii=False)
    out["phones"] = json.dumps(customer.values("phone"), ensure_ascii=False)
    out["personal_id"] = next(iter(customer.values("personal_id")), None)
    return out


async def read_customer(db: Database, who: Principal, customer_id: int) -> dict[str, Any]:
    """One customer record; raises NotFound."""
    who.require_role("agent")
    async with db.read() as session:
        customer = await get_customer(session, customer_id)
        bans = await customer_bans(session, customer_id)
    await record(db, who, "customer.read", customer_id)
    return customer_to_dict(customer) | {"marketing_bans": bans}


async def find_customers(
    db: Database, who: Principal, q: str | None, region: str, cursor: str | None, limit: int
) -> Page:
    """Customers matching `q` in name, email, phone or business ID (all customers without q)."""
    who.require_role("agent")
    after = decode_cursor(cursor, 1)
    exact: list[str] = []
    if q:
        q = q.strip()
        for normalise in (normalise_email, normalise_business_id):
            try:
                exact.append(normalise(q))
            except InvalidInput:
                pass
        try:
            exact.append(normalise_phone(q, region))
        except InvalidInput:
            pass
    async with db.read() as session:
        rows, total = await search_customers(
            session, q or None, exact, int(after[0]) if after else None, limit
        )
    await record(db, who, "customer.search", detail={"count": len(rows), "ids": [c.id for c in rows]})
    nxt = encode_cursor([rows[-1].id]) if rows and len(rows) == limit else None
    return Page([customer_to_dict(c) for c in rows], total, nxt)


async def suggest_for(
    db: Database, who: Principal, items: list[dict[str, Any]], internal_domains: list[str]
) -> dict[int, list[dict[str, Any]]]:
    """For unlinked interactions (summaries), customers they may belong to: a customer with an
    address at the sender's mail domain (not the company's own), or whose name is the
    sender's display name. At most three per interaction; one audit row for the lot."""
    who.require_role("agent")
    internal = {d.lower().lstrip("@") for d in internal_domains}
    out: dict[int, list[dict[str, Any]]] = {}
    async with db.read() as session:
        for item in items:
            seen: dict[int, dict[str, Any]] = {}
            for p in item["participants"]:
                if p["role"] not in ("from", "reply-to"):
                    continue
                probes = []
                if p["kind"] == "email" and "@" in p["value"]:
                    domain = p["value"].rsplit("@", 1)[1]
                    if domain not in internal:
                        probes.append("@" + domain)
                if p.get("name"):
                    probes.append(p["name"])
                for probe in probes:
                    found, _ = await search_customers(session, probe, [], None, 3)
                    for c in found:
                        seen.setdefault(c.id, {"id": c.id, "name": c.name})
            if seen:
                out[item["id"]] = list(seen.values())[:3]
    await record(
        db, who, "customer.suggest", detail={"interactions": len(items), "with_suggestions": len(out)}
    )
    return out


_SOURCE = re.compile(r"[\w.:@-]{1,100}")


def parse_sources(value: Any, default: str) -> dict[str, str]:
    """`{"field": "where its value came from"}` of a synced customer; the CRM for the rest."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(v, str) and 0 < len(v) <= 100 for v in value.values()
    ):
        raise InvalidInput('sources must be {"<field>": "<source>", ...}', "sources")
    unknown = sorted(set(value) - ALL_FIELDS)
    if unknown:
        raise InvalidInput(f"sources names unknown field(s): {', '.join(unknown)}", "sources")
    return {k: v.strip() or default for k, v in value.items()}


class _RolledBack(Exception):
    """Ends a dry run's transaction (rolling it back) with what it would have done."""

    def __init__(self, result: dict[str, Any], created: bool) -> None:
        self.result = result
        self.created = created


async def upsert_external(
    db: Database,
    who: Principal,
    source: str,
    external_id: str,
    change: CustomerChange,
    sources: dict[str, str],
    dry_run: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Create or update the customer a CRM knows as `source`/`external_id` (idempotent: the
    same data again changes nothing and adds no history). Each field set keeps where its
    value came from: the body's `sources` (e.g. "customer", "credit register", "contact
    information service") or the CRM. Returns the customer and whether it was created.

    Raises InvalidInput, or Conflict if an identifier belongs to another customer. With
    `dry_run` everything is checked and the transaction rolled back.
    """
    who.require_scope("crm")
    for name, value in (("source", source), ("external_id", external_id)):
        if not _SOURCE.fullmatch(value):
            raise InvalidInput(f"{name} is 1-100 letters, digits or . : @ _ -", name)
    try:
        async with db.write() as session:
            customer = await customer_by_external_id(session, source, external_id)
            created = customer is None
            if customer is None:
                if not change.fields.get("name"):
                    raise InvalidInput("name is required for a new customer", "name")
                customer = Customer(name=change.fields["name"], identifiers=[], field_sources={})
                session.add(customer)
                await session.flush()
                session.add(
                    CustomerExternalId(customer_id=customer.id, source=source, external_id=external_id)
                )
            changed, added = await _apply(session, who, customer, change, None, keep_history=not created)
            now = utcnow().isoformat()
            recorded = dict(customer.field_sources or {})
            for name in change.given():
                label = sources.get(name, source)
                if created or name in changed or recorded.get(name, {}).get("source") != label:
                    recorded[name] = {"source": label, "at": now}
            if recorded != (customer.field_sources or {}):
                customer.field_sources = recorded
            linked = await _link_earlier(session, customer.id, added)
            if created or changed or linked:
                add_entry(
                    session,
                    who.actor,
                    "customer.sync",
                    customer.id,
                    detail={"source": source, "created": created, "fields": changed, "linked": len(linked)},
                )
            await session.flush()
            result = customer_to_dict(customer) | {"linked_interactions": linked, "changed": changed}
            if dry_run:
                raise _RolledBack(result, created)
            return result, created
    except _RolledBack as done:
        return done.result, done.created
