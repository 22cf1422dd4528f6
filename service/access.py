"""Staff logins, service tokens and roles.

Passwords are hashed with argon2id (argon2-cffi) and verified off the event loop. Tokens are
32 random bytes shown once; only their sha256 is stored. Roles are ordered: `agent` reads and
searches, `privacy` also runs subject requests and bans, `admin` also manages users and tokens.
Service tokens carry a scope (`ingest`) instead of a role and cannot read personal data.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from service.errors import AuthenticationFailed, InvalidInput, PermissionDenied
from storage.access import ROLES, add_token, add_user, record_login, token_by_hash, user_by_name
from storage.base import utcnow
from storage.engine import Database

SCOPES = ("ingest", "marketing", "crm", "metrics")
_USERNAME = re.compile(r"[\w.-]{1,100}")
_RANK = {role: i for i, role in enumerate(ROLES)}
_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _HASHER.hash("kirjuri-timing-equaliser")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a staff user (`role`) or a service (`scope`)."""

    name: str
    kind: str
    role: str | None = None
    scope: str | None = None

    def require_role(self, role: str) -> None:
        """Raise PermissionDenied unless this is a staff user with `role` or a higher one."""
        if self.role is None or _RANK[self.role] < _RANK[role]:
            raise PermissionDenied(f"this needs the role {role!r}")

    def require_scope(self, scope: str) -> None:
        """Raise PermissionDenied unless this is a service token with `scope`, or any staff user."""
        if self.kind == "service" and self.scope != scope:
            raise PermissionDenied(f"this needs a token with scope {scope!r}")

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"{self.kind}:{self.name}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def validate_password(password: str) -> None:
    if len(password) < 10:
        raise InvalidInput("a password needs at least 10 characters", "password")


async def create_user(db: Database, executor: Executor, username: str, role: str, password: str) -> None:
    """Add a staff user. Raises InvalidInput for a bad name, role or password; Conflict if taken."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", "role")
    if (
        not username
        or len(username) > 100
        or not username.replace(".", "").replace("-", "").replace("_", "").isalnum()
    ):
        raise InvalidInput("a username is 1-100 letters, digits, '.', '-' or '_'", "username")
    validate_password(password)
    hashed = await asyncio.get_running_loop().run_in_executor(executor, _HASHER.hash, password)
    async with db.write() as session:
        await add_user(session, username, role, hashed)


async def create_service_token(db: Database, name: str, scope: str) -> str:
    """A new service token for a connector; the token is returned once and stored hashed."""
    if scope not in SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(SCOPES)}", "scope")
    if not name or len(name) > 100:
        raise InvalidInput("a token name is 1-100 characters", "name")
    token = new_token()
    async with db.write() as session:
        await add_token(session, token_hash(token), "service", name, scope=scope)
    return token


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def login(
    db: Database,
    executor: Executor,
    username: str,
    password: str,
    ttl_minutes: int,
    max_failures: int = 5,
    lock_minutes: int = 15,
) -> str:
    """A new session token for a user whose password matches; raises AuthenticationFailed.

    Wrong passwords in a row slow the answer down (0.25 s, doubling, at most 4 s) and the
    `max_failures`-th locks the account for `lock_minutes`; a locked account refuses even
    the right password until then.
    """
    async with db.read() as session:
        user = await user_by_name(session, username)
    stored = user.password_hash if user is not None and user.active else _DUMMY_HASH
    ok = await asyncio.get_running_loop().run_in_executor(executor, _verify, stored, password)
    if user is None or not user.active:
        raise AuthenticationFailed("wrong username or password")
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        minutes = int((user.locked_until - now).total_seconds() // 60) + 1
        raise AuthenticationFailed(
            f"the account is locked after repeated wrong passwords; try again in {minutes} min"
        )
    async with db.write() as session:
        failures = await record_login(session, user, ok, max_failures, now + timedelta(minutes=lock_minutes))
    if not ok:
        await asyncio.sleep(min(0.25 * 2 ** (failures - 1), 4.0))
        if failures >= max_failures:
            raise AuthenticationFailed(
                f"the account is locked for {lock_minutes} min after {max_failures} wrong passwords"
            )
        raise AuthenticationFailed("wrong username or password")
    token = new_token()
    async with db.write() as session:
        await add_token(
            session,
            token_hash(token),
            "session",
            user.username,
            user_id=user.id,
            expires_at=utcnow() + timedelta(minutes=ttl_minutes),
        )
    return token


async def authenticate(db: Database, token: str) -> Principal:
    """The caller behind a bearer token; raises AuthenticationFailed if unknown, revoked or expired."""
    async with db.read() as session:
        row = await token_by_hash(session, token_hash(token))
        if row is None or row.revoked or (row.expires_at is not None and row.expires_at <= utcnow()):
            raise AuthenticationFailed("the token is unknown or has expired; log in again")
        if row.kind == "session":
            if row.user is None or not row.user.active:
                raise AuthenticationFailed("the user is disabled")
            return Principal(row.user.username, "user", role=row.user.role)
        return Principal(row.name, "service", scope=row.scope)
