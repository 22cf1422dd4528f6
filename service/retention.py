"""Retention: interactions older than their channel's limit (`[retention]`) are deleted.

The deletion is the erasure's (`storage.erasure`: rows, full-text terms, blobs, the watched
folder's copies, WAL), so expired data leaves no residue either; interactions under a
binding legal hold stay. Age is counted from when the interaction happened (`occurred_at`).
`kirjuri retention --dry-run` and the daily run in `kirjuri serve` (worker part) share
`run_retention`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from service.rights import RightsContext, add_months, finish_deletions
from service.settings import RetentionSettings
from storage.audit import add_entry
from storage.base import utcnow
from storage.erasure import Erased, erase_interactions
from storage.interactions import CHANNELS, Interaction
from storage.rights import held_interactions

log = logging.getLogger(__name__)
ACTOR = "system:retention"
BATCH = 5000  # interactions deleted per transaction, so capture never waits long


@dataclass(frozen=True)
class Expiry:
    """One channel's limit and what it reaches now."""

    channel: str
    months: int
    cutoff: datetime | None
    expired: int
    held: int
    oldest: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "months": self.months,
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "expired": self.expired,
            "held": self.held,
            "oldest": self.oldest.isoformat() if self.oldest else None,
        }


def _expired(channel: str, cutoff: datetime, held: bool) -> Any:
    held_ids = held_interactions()
    return (
        (Interaction.channel == channel)
        & (Interaction.occurred_at < cutoff)
        & (Interaction.id.in_(held_ids) if held else Interaction.id.not_in(held_ids))
    )


async def plan(ctx: RightsContext, settings: RetentionSettings, now: datetime | None = None) -> list[Expiry]:
    """What the limits reach now, per channel: expired (to delete) and held (kept)."""
    now = now or utcnow()
    out = []
    async with ctx.db.read() as session:
        for channel in CHANNELS:
            months = settings.months(channel)
            if months <= 0:
                out.append(Expiry(channel, 0, None, 0, 0, None))
                continue
            cutoff = add_months(now, -months)
            expired, oldest = (
                await session.execute(
                    select(func.count(Interaction.id), func.min(Interaction.occurred_at)).where(
                        _expired(channel, cutoff, held=False)
                    )
                )
            ).one()
            held = await session.scalar(
                select(func.count(Interaction.id)).where(_expired(channel, cutoff, True))
            )
            out.append(Expiry(channel, months, cutoff, expired or 0, held or 0, oldest))
    return out


async def run_retention(
    ctx: RightsContext, settings: RetentionSettings, dry_run: bool, now: datetime | None = None
) -> dict[str, Any]:
    """Delete what has expired (or, with `dry_run`, only say what would go)."""
    expiries = await plan(ctx, settings, now)
    report: dict[str, Any] = {"dry_run": dry_run, "channels": [e.to_dict() for e in expiries], "erased": {}}
    if dry_run:
        return report
    erased = Erased()
    for expiry in expiries:
        if expiry.cutoff is None or not expiry.expired:
            continue
        while True:
            async with ctx.db.write() as session:
                ids = list(
                    await session.scalars(
                        select(Interaction.id)
                        .where(_expired(expiry.channel, expiry.cutoff, held=False))
                        .order_by(Interaction.id)
                        .limit(BATCH)
                    )
                )
                if not ids:
                    break
                await erase_interactions(session, ids, erased)
                add_entry(
                    session, ACTOR, "retention.delete", detail={"channel": expiry.channel, "count": len(ids)}
                )
    if erased.counts:
        await finish_deletions(ctx, erased)
    report["erased"] = dict(sorted(erased.counts.items()))
    return report


async def retention_loop(ctx: RightsContext, settings: RetentionSettings, first_delay: float = 60.0) -> None:
    """Run retention a minute after start and then every `check_hours`, until cancelled."""
    await asyncio.sleep(first_delay)
    while True:
        try:
            report = await run_retention(ctx, settings, dry_run=False)
            if report["erased"]:
                log.info("retention deleted %s", report["erased"])
        except Exception:
            log.exception("the retention run failed; it is tried again at the next interval")
        await asyncio.sleep(max(settings.check_hours, 0.01) * 3600)
