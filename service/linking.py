"""Deciding which customer an interaction belongs to.

A participant is recognised by an identifier a customer holds (email, E.164 phone). The
interaction is linked when exactly one customer is recognised; when none is, a valid
business ID written in the subject or body that exactly one customer holds is used. The
company's own addresses never link. Mail whose address headers were defective is never
linked on a guess: it waits for a person (`needs_review`).

`decide` is pure, so ingest can look up the owners of a whole batch in one query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.identifiers import business_ids_in

Pair = tuple[str, str]


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


def linkable(participants: Sequence[Pair], internal_domains: Sequence[str]) -> list[Pair]:
    """The participants whose identifiers may link: everyone but the company's own addresses."""
    return [(k, v) for k, v in participants if not (k == "email" and is_internal(v, internal_domains))]


def decide(
    participants: Sequence[Pair],
    owners: Mapping[Pair, int],
    internal_domains: Sequence[str],
    needs_review: bool,
) -> LinkDecision:
    """Link decision from the owners of identifiers (as looked up by the caller)."""
    allowed = set(linkable(participants, internal_domains))
    per_participant = [owners.get(p) if p in allowed else None for p in participants]
    found = {cid for cid in per_participant if cid is not None}
    if needs_review or len(found) != 1:
        return LinkDecision(None, None, per_participant)
    cid = found.pop()
    method = next(k for (k, _), o in zip(participants, per_participant, strict=True) if o == cid)
    return LinkDecision(cid, method, per_participant)


def business_id_candidates(decision: LinkDecision, text: str, needs_review: bool) -> list[Pair]:
    """Business IDs in the text worth looking up: only when no participant linked anyone."""
    if needs_review or decision.customer_id is not None or any(decision.participant_owners):
        return []
    return [("business_id", b) for b in business_ids_in(text)]


def decide_by_business_id(
    decision: LinkDecision, candidates: Sequence[Pair], owners: Mapping[Pair, int]
) -> LinkDecision:
    """Link through a business ID in the text when exactly one customer holds one of them."""
    found = {owners[p] for p in candidates if p in owners}
    if len(found) == 1:
        return LinkDecision(found.pop(), "business_id", decision.participant_owners)
    return decision
