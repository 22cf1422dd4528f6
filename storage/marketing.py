"""Marketing bans: a customer's (or an identifier's) refusal of marketing on one channel.

`identifier_hash` is a keyed hash of an email or phone, so a ban can outlive the erasure of
everything else about the person (the suppression list needs it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, utcnow

BAN_CHANNELS = ("email", "phone", "sms", "post", "all")


class MarketingBan(Base):
    """A marketing ban on one channel, proposed or active, with where it came from."""

    __tablename__ = "marketing_bans"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    identifier_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    reason: Mapped[str | None] = mapped_column(Text)
    source_interaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL")
    )
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
