"""Webhook subscriptions and the outbox of events to deliver to them.

An event is written in the same transaction as the change it reports (`add_event`), with one
delivery row per subscription that wants its type, so a change that commits is always
announced and one that rolls back never is. Deliveries move pending -> delivered, or back to
pending with a later `next_attempt_at` after a failure, or dead once they have used their
attempts; a dead one can be sent again on request. Events name the customer and interaction
they are about (plain integers), so an erasure can remove what is still queued about a person.
All functions take a sync `Session` (run them with `Database.run_write`/`run_read`, or
`AsyncSession.run_sync`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, delete, insert, or_, select, update
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Mapped, Session, mapped_column

from storage.base import Base, table_of, utcnow

EVENT_TYPES = (
    "interaction.created",
    "interaction.transcribed",
    "interaction.linked",
    "marketing_ban.changed",
    "subject.erased",
)


class WebhookSubscription(Base):
    """Where to POST which events, signed with which secret."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    events: Mapped[list[str]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxEvent(Base):
    """Something that happened, with a unique id receivers de-duplicate by."""

    __tablename__ = "outbox_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    customer_id: Mapped[int | None] = mapped_column(Integer, index=True)
    interaction_id: Mapped[int | None] = mapped_column(Integer, index=True)


class WebhookDelivery(Base):
    """One event on its way to one subscription."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox_events.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column()


@dataclass(frozen=True)
class NewEvent:
    """An event to queue: its type, its (minimal) data, and whom it is about."""

    type: str
    data: dict[str, Any]
    customer_id: int | None = None
    interaction_id: int | None = None


def add_events(session: Session, events: Sequence[NewEvent]) -> list[str]:
    """Queue events for every active subscription to their types, in the caller's
    transaction (one query for the subscriptions, two inserts); events nobody subscribes to
    are not written. The session's `event_sink` (the plugins' `on_event`), if any, is called
    with every event once the transaction commits. Returns the ids of those queued."""
    if not events:
        return []
    now = utcnow()
    payloads = [
        {"id": str(uuid.uuid4()), "type": e.type, "created_at": now.isoformat(), "data": e.data}
        for e in events
    ]
    sink = session.info.get("event_sink")
    if sink is not None:
        orm_event.listen(session, "after_commit", lambda _session: sink(payloads), once=True)
    subscriptions_table = table_of(WebhookSubscription)
    subscriptions = session.execute(
        select(subscriptions_table.c.id, subscriptions_table.c.events).where(
            subscriptions_table.c.active.is_(True)
        )
    ).all()
    if not subscriptions:
        return []
    rows: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for new, payload in zip(events, payloads, strict=True):
        wanted = [sid for sid, types in subscriptions if new.type in (types or [])]
        if not wanted:
            continue
        rows.append(
            {
                "id": payload["id"],
                "type": new.type,
                "created_at": now,
                "data": new.data,
                "customer_id": new.customer_id,
                "interaction_id": new.interaction_id,
            }
        )
        deliveries += [
            {
                "event_id": payload["id"],
                "subscription_id": sid,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
            }
            for sid in wanted
        ]
    if rows:
        session.execute(insert(table_of(OutboxEvent)), rows)
        session.execute(insert(table_of(WebhookDelivery)), deliveries)
    return [str(r["id"]) for r in rows]


@dataclass(frozen=True)
class DueDelivery:
    """A delivery to attempt now, with what it needs to be sent."""

    id: int
    url: str
    secret: str
    attempts: int
    event: dict[str, Any]


def any_due(session: Session) -> bool:
    """Whether a delivery is due: a read, so an idle sender takes no write lock."""
    found = session.execute(
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= utcnow())
        .limit(1)
    ).first()
    return found is not None


def claim_due(session: Session, limit: int, lease: timedelta) -> list[DueDelivery]:
    """Take pending deliveries that are due, pushing their next attempt past the lease so that
    another worker does not send them at the same time."""
    now = utcnow()
    rows = session.execute(
        select(WebhookDelivery, OutboxEvent, WebhookSubscription)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    out = []
    for delivery, event, subscription in rows:
        delivery.next_attempt_at = now + lease
        out.append(
            DueDelivery(
                delivery.id,
                subscription.url,
                subscription.secret,
                delivery.attempts,
                {
                    "id": event.id,
                    "type": event.type,
                    "created_at": event.created_at.isoformat(),
                    "data": event.data,
                },
            )
        )
    return out


def mark_delivered(session: Session, delivery_id: int) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(
            status="delivered", delivered_at=utcnow(), last_error=None, attempts=WebhookDelivery.attempts + 1
        )
    )


def mark_failed(
    session: Session, delivery_id: int, error: str, retry_in: timedelta, max_attempts: int
) -> str:
    """Count a failed attempt: pending again after `retry_in`, or dead when out of attempts.
    "gone" when an erasure deleted the delivery meanwhile (the row is locked while it is
    changed, so an erasure cannot delete it between the read and the write)."""
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        return "gone"
    delivery.attempts += 1
    delivery.last_error = error[:1000]
    if delivery.attempts >= max_attempts:
        delivery.status = "dead"
    else:
        delivery.next_attempt_at = utcnow() + retry_in
    return delivery.status


def redeliver(session: Session, delivery_id: int) -> bool:
    """Send a dead (or delivered) delivery again, with fresh attempts; False if unknown."""
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(status="pending", attempts=0, next_attempt_at=utcnow(), last_error=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def forget_events_about(session: Session, customer_id: int | None, interaction_ids: Sequence[int]) -> int:
    """Remove events (and their deliveries, delivered or not) about a person being erased."""
    conds = []
    if customer_id is not None:
        conds.append(OutboxEvent.customer_id == customer_id)
    if interaction_ids:
        conds.append(OutboxEvent.interaction_id.in_(list(interaction_ids)))
    if not conds:
        return 0
    result = session.execute(delete(OutboxEvent).where(or_(*conds)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
