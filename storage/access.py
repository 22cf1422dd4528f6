"""Staff users and API tokens (login sessions and service tokens), with their queries.

Tokens are stored only as their sha256: a leaked database does not leak working tokens.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.base import Base, utcnow
from storage.errors import Conflict

ROLES = ("agent", "privacy", "admin")


class User(Base):
    """A named employee with personal credentials and one role."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # wrong passwords in a row, and until when the account is locked after too many
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column()


class Token(Base):
    """A bearer token: a staff login session (`user_id`) or a service token (`scope`)."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User | None] = relationship(lazy="joined")


async def add_user(session: AsyncSession, username: str, role: str, password_hash: str) -> User:
    """Create a user; raises Conflict if the name is taken."""
    if await session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(username=username, role=role, password_hash=password_hash)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"user {username!r} already exists") from exc
    return user


async def user_by_name(session: AsyncSession, username: str) -> User | None:
    """The user with this name, active or not."""
    return await session.scalar(select(User).where(User.username == username))


async def add_token(
    session: AsyncSession,
    token_hash: str,
    kind: str,
    name: str,
    scope: str | None = None,
    user_id: int | None = None,
    expires_at: datetime | None = None,
) -> Token:
    """Store a token's hash."""
    token = Token(
        token_hash=token_hash, kind=kind, name=name, scope=scope, user_id=user_id, expires_at=expires_at
    )
    session.add(token)
    await session.flush()
    return token


async def token_by_hash(session: AsyncSession, token_hash: str) -> Token | None:
    """The token with this hash, with its user loaded."""
    return await session.scalar(select(Token).where(Token.token_hash == token_hash))


async def record_login(
    session: AsyncSession, user: User, ok: bool, max_failures: int, lock_until: datetime
) -> int:
    """Count a login attempt: a success clears the count; a failure adds one and, at
    `max_failures`, locks the account until `lock_until`. Returns the failures in a row."""
    failures = 0 if ok else user.failed_logins + 1
    values: dict[str, object] = {"failed_logins": failures}
    if failures >= max_failures:
        values = {"failed_logins": 0, "locked_until": lock_until}
    elif ok:
        values["locked_until"] = None
    await session.execute(update(User).where(User.id == user.id).values(**values))
    return failures


async def extend_token(session: AsyncSession, token_hash: str, expires_at: datetime) -> None:
    """Move a session token's expiry (the web UI's idle timeout slides with each page)."""
    await session.execute(update(Token).where(Token.token_hash == token_hash).values(expires_at=expires_at))


async def revoke_token(session: AsyncSession, token_hash: str) -> None:
    await session.execute(update(Token).where(Token.token_hash == token_hash).values(revoked=True))
