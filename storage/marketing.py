"""Marketing bans: a customer's (or an identifier's) refusal of marketing on one channel.

One row per subject and channel: a customer (`customer_id`), or an identifier nobody's
customer record holds (`identifier_kind` + `identifier_value`, for an unlinked sender or
caller). `identifier_hash` is a keyed hash of that identifier, so a ban can outlive the
erasure of everything else about the person (erasure clears the value, the hash stays: the
suppression list needs it). Its status moves proposed -> active | rejected, active -> lifted,
and back; every move is a `MarketingBanChange` (who, when, why, which interaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, utcnow
from storage.errors import NotFound

BAN_CHANNELS = ("email", "phone", "sms", "post", "all")
STATUSES = ("proposed", "active", "rejected", "lifted")


class MarketingBan(Base):
    """A marketing ban on one channel, proposed or active, with where it came from."""

    __tablename__ = "marketing_bans"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    identifier_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    identifier_kind: Mapped[str | None] = mapped_column(String(16))
    identifier_value: Mapped[str | None] = mapped_column(String(320))
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    reason: Mapped[str | None] = mapped_column(Text)
    source_interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL")
    )
    confidence: Mapped[float | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MarketingBanChange(Base):
    """One move of a ban's status: the history staff with role privacy can read."""

    __tablename__ = "marketing_ban_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    ban_id: Mapped[int] = mapped_column(ForeignKey("marketing_bans.id", ondelete="CASCADE"), index=True)
    old_status: Mapped[str | None] = mapped_column(String(16))
    new_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(Text)
    source_interaction_id: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class MarketingBanIdentifier(Base):
    """A keyed hash of one of the banned customer's emails or phone numbers: what is left to
    match the ban by once the customer record is erased."""

    __tablename__ = "marketing_ban_identifiers"

    id: Mapped[int] = mapped_column(primary_key=True)
    ban_id: Mapped[int] = mapped_column(ForeignKey("marketing_bans.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    hash: Mapped[str] = mapped_column(String(64), index=True)


async def keep_identifier_hashes(session: AsyncSession, ban: MarketingBan, hashes: dict[str, str]) -> None:
    """Remember these (hash -> kind) identifier hashes for a customer's ban (the ban must be
    flushed); hashes already kept are not added twice."""
    known = set(
        await session.scalars(
            select(MarketingBanIdentifier.hash).where(MarketingBanIdentifier.ban_id == ban.id)
        )
    )
    for value_hash, kind in hashes.items():
        if value_hash not in known:
            session.add(MarketingBanIdentifier(ban_id=ban.id, kind=kind, hash=value_hash))


@dataclass(frozen=True)
class BanSubject:
    """Whose ban: a customer, or an identifier (kind, value, keyed hash) of no customer."""

    customer_id: int | None = None
    kind: str | None = None
    value: str | None = None
    hash: str | None = None


async def new_ban(
    session: AsyncSession,
    subject: BanSubject,
    channel: str,
    status: str,
    actor: str,
    reason: str | None,
    source_interaction_id: int | None = None,
    confidence: float | None = None,
    request_id: int | None = None,
) -> MarketingBan:
    """A ban of this subject on this channel, stored with the first entry of its history."""
    ban = MarketingBan(
        customer_id=subject.customer_id,
        identifier_hash=subject.hash,
        identifier_kind=subject.kind,
        identifier_value=subject.value,
        channel=channel,
        status=status,
        reason=reason,
        source_interaction_id=source_interaction_id,
        confidence=confidence,
        created_by=actor,
    )
    session.add(ban)
    await session.flush()
    change_status(session, ban, status, actor, reason, source_interaction_id, request_id, new=True)
    return ban


async def find_ban(session: AsyncSession, subject: BanSubject, channel: str) -> MarketingBan | None:
    """The ban row of this subject and channel, if there is one."""
    query = select(MarketingBan).where(MarketingBan.channel == channel)
    if subject.customer_id is not None:
        query = query.where(MarketingBan.customer_id == subject.customer_id)
    else:
        query = query.where(MarketingBan.customer_id.is_(None), MarketingBan.identifier_hash == subject.hash)
    return (await session.scalars(query.order_by(MarketingBan.id))).first()


def change_status(
    session: AsyncSession,
    ban: MarketingBan,
    status: str,
    actor: str,
    reason: str | None,
    source_interaction_id: int | None = None,
    request_id: int | None = None,
    new: bool = False,
) -> MarketingBanChange:
    """Move the ban to `status` and keep the move in its history (the ban must be flushed;
    `new` for a ban just made, whose history starts here)."""
    change = MarketingBanChange(
        ban_id=ban.id,
        old_status=None if new else ban.status,
        new_status=status,
        actor=actor,
        reason=reason,
        source_interaction_id=source_interaction_id,
        request_id=request_id,
    )
    ban.status = status
    ban.updated_at = utcnow()
    if reason:
        ban.reason = reason
    session.add(change)
    return change


async def get_ban(session: AsyncSession, ban_id: int) -> MarketingBan:
    ban = await session.get(MarketingBan, ban_id)
    if ban is None:
        raise NotFound("marketing ban", ban_id)
    return ban


async def bans_of(
    session: AsyncSession, customer_id: int | None, hashes: list[str], statuses: tuple[str, ...] = STATUSES
) -> list[MarketingBan]:
    """Bans of a customer and of any of these identifier hashes, oldest first."""
    conds = []
    if customer_id is not None:
        conds.append(MarketingBan.customer_id == customer_id)
    if hashes:
        conds.append(MarketingBan.identifier_hash.in_(hashes))
        conds.append(
            MarketingBan.id.in_(
                select(MarketingBanIdentifier.ban_id).where(MarketingBanIdentifier.hash.in_(hashes))
            )
        )
    if not conds:
        return []
    rows = await session.scalars(
        select(MarketingBan).where(or_(*conds), MarketingBan.status.in_(statuses)).order_by(MarketingBan.id)
    )
    return list(rows)


async def list_bans(
    session: AsyncSession,
    statuses: tuple[str, ...],
    channels: tuple[str, ...] | None,
    after: int | None,
    limit: int,
) -> list[MarketingBan]:
    """Bans in these statuses (and channels), by id, for lists and the suppression list."""
    query = select(MarketingBan).where(MarketingBan.status.in_(statuses))
    if channels:
        query = query.where(MarketingBan.channel.in_(channels))
    if after is not None:
        query = query.where(MarketingBan.id > after)
    return list(await session.scalars(query.order_by(MarketingBan.id).limit(limit)))


async def erased_identifier_hashes(
    session: AsyncSession, ban_ids: list[int], kind: str
) -> dict[int, list[str]]:
    """For bans whose customer is gone: the kept hashes of one kind, by ban."""
    if not ban_ids:
        return {}
    rows = await session.execute(
        select(MarketingBanIdentifier.ban_id, MarketingBanIdentifier.hash).where(
            MarketingBanIdentifier.ban_id.in_(ban_ids), MarketingBanIdentifier.kind == kind
        )
    )
    out: dict[int, list[str]] = {}
    for ban_id, value_hash in rows:
        out.setdefault(ban_id, []).append(value_hash)
    return out


async def history_of(session: AsyncSession, ban_ids: list[int]) -> list[MarketingBanChange]:
    if not ban_ids:
        return []
    rows = await session.scalars(
        select(MarketingBanChange)
        .where(MarketingBanChange.ban_id.in_(ban_ids))
        .order_by(MarketingBanChange.id)
    )
    return list(rows)


async def clear_change_reasons(session: AsyncSession, ban_ids: list[int]) -> None:
    """Blank the reasons in these bans' histories (they may quote the person)."""
    if ban_ids:
        await session.execute(
            update(MarketingBanChange).where(MarketingBanChange.ban_id.in_(ban_ids)).values(reason=None)
        )
