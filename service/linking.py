"""Deciding which customer an interaction belongs to.

A participant is recognised by an identifier a customer holds (email, E.164 phone). The
interaction is linked when exactly one customer is recognised; when none is, a valid
business ID written in the subject or body that one customer holds is used. The company's
own addresses never link. Mail whose address headers were defective is never linked on a
guess: it waits for a person (`needs_review`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from service.identifiers import business_ids_in
from storage.customers import owners_of


@dataclass
class LinkDecision:
    """The customer of an interaction (if any), how it was found, and each participant's owner."""

    customer_id: int | None
    method: str | None
    participant_owners: list[int | None]


def is_internal(value: str, internal_domains: Sequence[str]) -> bool:
    """True for the company's own email addresses."""
    domain = value.rsplit("@", 1)[-1].lower() if "@" in value else ""
    return bool(domain) and domain in {d.lower().lstrip("@") for d in internal_domains}


async def decide_link(
    session: AsyncSession,
    participants: Sequence[tuple[str, str]],
    text: str,
    internal_domains: Sequence[str],
    needs_review: bool,
) -> LinkDecision:
    """Link decision for participants given as (kind, normalised value), plus searchable text."""
    external = [(k, v) for k, v in participants if not (k == "email" and is_internal(v, internal_domains))]
    owners = await owners_of(session, external)
    per_participant = [owners.get(p) for p in participants]
    if needs_review:
        return LinkDecision(None, None, per_participant)
    found = {cid for cid in per_participant if cid is not None}
    if len(found) == 1:
        cid = found.pop()
        method = next(k for (k, _), o in zip(participants, per_participant, strict=True) if o == cid)
        return LinkDecision(cid, method, per_participant)
    if not found:
        by_business_id = await owners_of(session, [("business_id", b) for b in business_ids_in(text)])
        candidates = set(by_business_id.values())
        if len(candidates) == 1:
            return LinkDecision(candidates.pop(), "business_id", per_participant)
    return LinkDecision(None, None, per_participant)
