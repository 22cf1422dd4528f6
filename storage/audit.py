"""The audit log: who read or changed which personal data, and when.

Customer and interaction ids are plain integers, not foreign keys, so the record that a
person's data was read or erased outlives the data itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, utcnow


class AuditEntry(Base):
    """One read or change of personal data, by one actor."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[int | None] = mapped_column(Integer, index=True)
    interaction_id: Mapped[int | None] = mapped_column(Integer, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


@dataclass(frozen=True)
class AuditFilter:
    """What a list of audit entries is narrowed to."""

    actor: str | None = None
    action: str | None = None
    customer_id: int | None = None
    interaction_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def add_entry(
    session: AsyncSession,
    actor: str,
    action: str,
    customer_id: int | None = None,
    interaction_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit row to the session's transaction."""
    entry = AuditEntry(
        actor=actor,
        action=action,
        customer_id=customer_id,
        interaction_id=interaction_id,
        detail=detail or {},
    )
    session.add(entry)
    return entry


async def list_entries(
    session: AsyncSession, flt: AuditFilter, before_id: int | None, limit: int
) -> tuple[list[AuditEntry], int]:
    """Newest first: a page of entries with ids below `before_id`, and the total that match."""
    conds: list[Any] = []
    if flt.actor:
        conds.append(AuditEntry.actor == flt.actor)
    if flt.action:
        conds.append(AuditEntry.action == flt.action)
    if flt.customer_id is not None:
        conds.append(AuditEntry.customer_id == flt.customer_id)
    if flt.interaction_id is not None:
        conds.append(AuditEntry.interaction_id == flt.interaction_id)
    if flt.since:
        conds.append(AuditEntry.at >= flt.since)
    if flt.until:
        conds.append(AuditEntry.at < flt.until)
    total = await session.scalar(select(func.count(AuditEntry.id)).where(*conds)) or 0
    page = select(AuditEntry).where(*conds).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        page = page.where(AuditEntry.id < before_id)
    return list((await session.scalars(page)).all()), total
