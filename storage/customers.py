"""Customers and their identifiers (email, E.164 phone, business ID), with their queries.

An identifier value is unique per kind across all customers: one address, one customer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload

from storage.base import Base, table_of, utcnow
from storage.errors import Conflict, NotFound

IDENTIFIER_KINDS = ("email", "phone", "business_id", "personal_id")


class Customer(Base):
    """A customer of the company: a company or a person, with its contact details."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    business_id: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(Text)
    bank_account: Mapped[str | None] = mapped_column(String(64))
    contact_person: Mapped[str | None] = mapped_column(String(300))
    notes: Mapped[str | None] = mapped_column(Text)
    # where each field's current value came from: {"name": {"source": "crm:hubspot", "at": ...}}
    field_sources: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    identifiers: Mapped[list[CustomerIdentifier]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerIdentifier.id"
    )

    def values(self, kind: str) -> list[str]:
        """The customer's identifiers of one kind, in the order they were added."""
        return [i.value for i in self.identifiers if i.kind == kind]


class CustomerExternalId(Base):
    """The customer's id in another system (a CRM): `PUT /customers/external/{source}/{id}`
    and CSV imports find the customer again by it, so re-running a sync changes nothing."""

    __tablename__ = "customer_external_ids"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(200))


async def customer_by_external_id(session: AsyncSession, source: str, external_id: str) -> Customer | None:
    found = await session.scalar(
        select(CustomerExternalId.customer_id).where(
            CustomerExternalId.source == source, CustomerExternalId.external_id == external_id
        )
    )
    return await get_customer(session, found) if found is not None else None


class CustomerIdentifier(Base):
    """One normalised way to recognise a customer: lower-case email, E.164 phone, business ID."""

    __tablename__ = "customer_identifiers"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))

    customer: Mapped[Customer] = relationship(back_populates="identifiers")


async def get_customer(session: AsyncSession, customer_id: int) -> Customer:
    """The customer with its identifiers; raises NotFound."""
    customer = await session.scalar(
        select(Customer).where(Customer.id == customer_id).options(selectinload(Customer.identifiers))
    )
    if customer is None:
        raise NotFound("customer", customer_id)
    return customer


def owners_of(session: Session, identifiers: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Map (kind, value) pairs to the id of the customer who holds them, for those that are held.

    Synchronous (batch ingest runs it in one thread hop); async callers use `session.run_sync`.
    """
    pairs = set(identifiers)
    if not pairs:
        return {}
    by_kind: dict[str, list[str]] = {}
    for kind, value in pairs:
        by_kind.setdefault(kind, []).append(value)
    table = table_of(CustomerIdentifier)
    rows = session.execute(
        select(table.c.kind, table.c.value, table.c.customer_id).where(
            or_(*[(table.c.kind == kind) & table.c.value.in_(values) for kind, values in by_kind.items()])
        )
    )
    return {(kind, value): cid for kind, value, cid in rows}


async def set_identifiers(
    session: AsyncSession, customer: Customer, wanted: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Make the customer's identifiers exactly `wanted`; return the pairs that are new.

    Raises Conflict naming the identifier if another customer holds one of them.
    """
    owners = await session.run_sync(owners_of, wanted)
    for pair, owner in owners.items():
        if owner != customer.id:
            raise Conflict(f"{pair[0]} {pair[1]} already belongs to customer {owner}")
    current = {(i.kind, i.value): i for i in customer.identifiers}
    wanted_set = list(dict.fromkeys(wanted))
    for pair, ident in current.items():
        if pair not in wanted_set:
            customer.identifiers.remove(ident)
    added = [pair for pair in wanted_set if pair not in current]
    for kind, value in added:
        customer.identifiers.append(CustomerIdentifier(kind=kind, value=value))
    await session.flush()
    return added


async def search_customers(
    session: AsyncSession, q: str | None, identifier_values: Sequence[str], after_id: int | None, limit: int
) -> tuple[list[Customer], int]:
    """Customers whose name contains `q` or who hold one of `identifier_values`, by id.

    Returns one page (ids greater than `after_id`) and the total number that match.
    """
    cond = None
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        by_ident = select(CustomerIdentifier.customer_id).where(
            or_(
                CustomerIdentifier.value.in_(list(identifier_values)),
                CustomerIdentifier.value.ilike(pattern, escape="\\"),
            )
        )
        cond = or_(Customer.name.ilike(pattern, escape="\\"), Customer.id.in_(by_ident))
    base = select(Customer)
    if cond is not None:
        base = base.where(cond)
    total = await session.scalar(select(func.count()).select_from(base.subquery())) or 0
    page = base.order_by(Customer.id).limit(limit).options(selectinload(Customer.identifiers))
    if after_id is not None:
        page = page.where(Customer.id > after_id)
    return list((await session.scalars(page)).all()), total
