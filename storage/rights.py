"""Subject requests (GDPR access, rectification, erasure, objection), legal holds, the
history of corrections to customer records, and blobs waiting to be removed.

A request's `identifiers` are how the person was named when the request came in; an
executed erasure replaces them (and the note) with the kinds only, so the request keeps
proving what was done without keeping whom it was done for. Holds and rectifications refer
to customers and interactions by foreign key with ON DELETE CASCADE: they go with the data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, case, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, utcnow
from storage.errors import NotFound
from storage.interactions import Interaction

REQUEST_KINDS = ("access", "rectification", "erasure", "objection")
REQUEST_STATUSES = ("open", "done")


class SubjectRequest(Base):
    """A person's request about their data, with its legal due date and what was done."""

    __tablename__ = "subject_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    identifiers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column()
    completed_by: Mapped[str | None] = mapped_column(String(120))
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)


class LegalHold(Base):
    """Data the law requires the company to keep (e.g. invoicing correspondence, Finnish
    Accounting Act 2:10): one customer's record and linked interactions, or one interaction."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), index=True
    )
    basis: Mapped[str] = mapped_column(Text)
    until: Mapped[datetime | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column()
    released_by: Mapped[str | None] = mapped_column(String(120))


class CustomerCorrection(Base):
    """One corrected field of a customer record: old and new value, who, when, and the
    rectification request it answered (if any)."""

    __tablename__ = "customer_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    request_id: Mapped[int | None] = mapped_column(Integer)


class BlobDeletion(Base):
    """A blob whose last reference was deleted: the file goes after the commit, and a blob
    left here by a crash in between is removed on the next start."""

    __tablename__ = "blob_deletions"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)


class IndexPurge(Base):
    """A deletion whose documents' terms the SQLite full-text index still holds (FTS5 keeps
    them in older index segments until the index is merged). Queued in the deleting
    transaction; the merge runs after its commit, beside the blob removal, and one a crash
    left queued runs on the next start."""

    __tablename__ = "index_purges"

    id: Mapped[int] = mapped_column(primary_key=True)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)


def active_hold() -> Any:
    """The condition of a hold that binds now: not released, and not past its end date."""
    return (LegalHold.released_at.is_(None)) & (or_(LegalHold.until.is_(None), LegalHold.until > utcnow()))


async def get_request(session: AsyncSession, request_id: int) -> SubjectRequest:
    found = await session.get(SubjectRequest, request_id)
    if found is None:
        raise NotFound("subject request", request_id)
    return found


async def list_requests(
    session: AsyncSession, status: str | None, offset: int, limit: int
) -> tuple[list[SubjectRequest], int]:
    """Open overdue requests first, then by due date (soonest first), then by id: one page
    from `offset`, and the total. (Requests are counted in dozens, not millions: an offset
    is enough.)"""
    overdue = case(((SubjectRequest.status == "open") & (SubjectRequest.due_at < utcnow()), 0), else_=1)
    conds = [SubjectRequest.status == status] if status else []
    total = await session.scalar(select(func.count(SubjectRequest.id)).where(*conds)) or 0
    rows = await session.scalars(
        select(SubjectRequest)
        .where(*conds)
        .order_by(overdue, SubjectRequest.due_at, SubjectRequest.id)
        .offset(offset)
        .limit(limit)
    )
    return list(rows), total


def held_interactions() -> Any:
    """Ids of interactions a binding hold keeps: held one by one, or linked to a held customer."""
    held_customers = select(LegalHold.customer_id).where(active_hold(), LegalHold.customer_id.is_not(None))
    return union(
        select(LegalHold.interaction_id).where(active_hold(), LegalHold.interaction_id.is_not(None)),
        select(Interaction.id).where(Interaction.customer_id.in_(held_customers)),
    )


async def list_holds(
    session: AsyncSession, customer_id: int | None, interaction_ids: Any, binding_only: bool
) -> list[LegalHold]:
    """Holds on this customer or on interactions among `interaction_ids` (a selectable or
    None for every hold), oldest first; `binding_only` leaves out released and ended ones."""
    conds = []
    if customer_id is not None:
        conds.append(LegalHold.customer_id == customer_id)
    if interaction_ids is not None:
        conds.append(LegalHold.interaction_id.in_(interaction_ids))
    query = select(LegalHold)
    if conds:
        query = query.where(or_(*conds))
    if binding_only:
        query = query.where(active_hold())
    return list(await session.scalars(query.order_by(LegalHold.id)))
