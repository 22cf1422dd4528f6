"""Webhooks out: subscriptions (role admin) and the worker that delivers the outbox.

Each delivery is a JSON POST `{"id", "type", "created_at", "data"}` signed with the
subscription's secret (`X-Kirjuri-Signature`, see `service.signing`), at least once: a
receiver de-duplicates by the event id. A 2xx answer delivers it; anything else (an error
status, a refused connection, a timeout) schedules another attempt after an exponential
backoff with jitter, until `[webhooks] max_attempts`, when the delivery is dead: visible in the
API and sent again on request. Data carries ids and minimal facts, never message bodies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import aiohttp
from sqlalchemy import select

from service.access import Principal
from service.audit import record
from service.errors import InvalidInput
from service.settings import WebhookSettings
from service.signing import HEADER, sign
from storage.engine import Database
from storage.errors import NotFound
from storage.webhooks import (
    EVENT_TYPES,
    DueDelivery,
    OutboxEvent,
    WebhookDelivery,
    WebhookSubscription,
    any_due,
    claim_due,
    mark_delivered,
    mark_failed,
    redeliver,
)

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)


def subscription_to_dict(s: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": s.id,
        "url": s.url,
        "events": s.events,
        "active": s.active,
        "created_by": s.created_by,
        "created_at": s.created_at.isoformat(),
    }


def parse_subscription(body: Any) -> tuple[str, str, list[str]]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = sorted(set(body) - {"url", "secret", "events"})
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}", unknown[0])
    url = body.get("url")
    if not isinstance(url, str) or len(url) > 2000:
        raise InvalidInput("url must be an http(s) URL", "url")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidInput("url must be an http(s) URL", "url")
    secret = body.get("secret")
    if not isinstance(secret, str) or not 16 <= len(secret) <= 200:
        raise InvalidInput("secret must be a string of 16-200 characters", "secret")
    events = body.get("events")
    if not isinstance(events, list) or not events or not all(e in EVENT_TYPES for e in events):
        raise InvalidInput(f"events must be a non-empty list of: {', '.join(EVENT_TYPES)}", "events")
    return url, secret, list(dict.fromkeys(events))


async def subscribe(db: Database, who: Principal, body: Any) -> dict[str, Any]:
    who.require_role("admin")
    url, secret, events = parse_subscription(body)
    async with db.write() as session:
        sub = WebhookSubscription(url=url, secret=secret, events=events, created_by=who.actor)
        session.add(sub)
        await session.flush()
        return subscription_to_dict(sub)


async def subscriptions(db: Database, who: Principal) -> list[dict[str, Any]]:
    who.require_role("admin")
    async with db.read() as session:
        rows = await session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))
        return [subscription_to_dict(s) for s in rows]


async def unsubscribe(db: Database, who: Principal, subscription_id: int) -> None:
    """Delete a subscription and its deliveries not yet made."""
    who.require_role("admin")
    async with db.write() as session:
        sub = await session.get(WebhookSubscription, subscription_id)
        if sub is None:
            raise NotFound("webhook subscription", subscription_id)
        await session.delete(sub)


async def deliveries(
    db: Database, who: Principal, subscription_id: int, status: str | None, limit: int
) -> list[dict[str, Any]]:
    """A subscription's deliveries, newest first (`status=dead` for the dead letters)."""
    who.require_role("admin")
    if status is not None and status not in ("pending", "delivered", "dead"):
        raise InvalidInput("status must be pending, delivered or dead", "status")
    async with db.read() as session:
        if await session.get(WebhookSubscription, subscription_id) is None:
            raise NotFound("webhook subscription", subscription_id)
        query = (
            select(WebhookDelivery, OutboxEvent.type)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.subscription_id == subscription_id)
        )
        if status:
            query = query.where(WebhookDelivery.status == status)
        rows = (await session.execute(query.order_by(WebhookDelivery.id.desc()).limit(limit))).all()
    await record(
        db, who, "webhook.deliveries", detail={"subscription_id": subscription_id, "count": len(rows)}
    )
    return [
        {
            "id": d.id,
            "event_id": d.event_id,
            "type": event_type,
            "status": d.status,
            "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at.isoformat(),
            "last_error": d.last_error,
            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
        }
        for d, event_type in rows
    ]


async def send_again(db: Database, who: Principal, delivery_id: int) -> None:
    who.require_role("admin")
    if not await db.run_write(lambda session: redeliver(session, delivery_id)):
        raise NotFound("webhook delivery", delivery_id)


def backoff(attempt: int, settings: WebhookSettings) -> timedelta:
    """Exponential (base doubling per attempt, capped) with full jitter between half and all of it."""
    ceiling = min(settings.backoff_seconds * 2 ** max(attempt - 1, 0), settings.max_backoff_seconds)
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


class WebhookService:
    """Delivers due outbox deliveries, a few at a time, until cancelled."""

    def __init__(self, db: Database, settings: WebhookSettings, wake: asyncio.Event) -> None:
        self.db = db
        self.settings = settings
        self.wake = wake

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                try:
                    due = []
                    if await self.db.run_read(any_due):
                        due = await self.db.run_write(lambda session: claim_due(session, 20, LEASE))
                except Exception:
                    log.exception("could not read the webhook outbox; trying again shortly")
                    due = []
                if due:
                    await asyncio.gather(*(self._send(http, d) for d in due))
                    continue
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=self.settings.poll_seconds)
                except TimeoutError:
                    pass
                self.wake.clear()

    async def _send(self, http: aiohttp.ClientSession, delivery: DueDelivery) -> None:
        body = json.dumps(delivery.event, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", HEADER: sign(delivery.secret, body)}
        error: str | None = None
        try:
            async with http.post(delivery.url, data=body, headers=headers) as resp:
                await resp.read()
                if not 200 <= resp.status < 300:
                    error = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        retry_in = backoff(delivery.attempts + 1, self.settings)
        try:
            if error is None:
                await self.db.run_write(lambda session: mark_delivered(session, delivery.id))
                return
            status = await self.db.run_write(
                lambda session: mark_failed(
                    session, delivery.id, error or "", retry_in, self.settings.max_attempts
                )
            )
        except Exception:  # noqa: BLE001 - the dispatcher outlives a failed write
            # the delivery stays pending; its lease runs out and it is sent again
            log.exception("could not record webhook delivery %d", delivery.id)
            return
        if status == "dead":
            log.warning("a webhook delivery is dead after %d attempts: %s", self.settings.max_attempts, error)
