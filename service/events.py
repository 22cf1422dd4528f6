"""Queuing webhook events from the async code paths (linking, bans, erasure): the outbox rows
go into the caller's transaction, so the event is announced exactly when the change commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.webhooks import NewEvent, add_events


async def emit(
    session: AsyncSession,
    type_: str,
    data: dict[str, Any],
    customer_id: int | None = None,
    interaction_id: int | None = None,
) -> None:
    """Queue one event in the session's transaction."""
    event = NewEvent(type_, data, customer_id, interaction_id)
    await session.run_sync(lambda sync: add_events(sync, [event]))


async def emit_linked(
    session: AsyncSession, customer_id: int | None, interaction_ids: list[int], how: str
) -> None:
    """`interaction.linked` for each interaction now linked to (or unlinked from) a customer."""
    events = [
        NewEvent(
            "interaction.linked",
            {"interaction_id": iid, "customer_id": customer_id, "method": how},
            customer_id,
            iid,
        )
        for iid in interaction_ids
    ]
    if events:
        await session.run_sync(lambda sync: add_events(sync, events))
