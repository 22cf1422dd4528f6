"""SMTP capture connector: the mail system BCCs or journals to it; every message accepted is
stored durably before the 250 reply (RFC 5321 §6.1).

Replies:
  250  stored (or already stored: same Message-ID, or the same bytes without one)
  421  too many connections, or the service is shutting down
  451  storage failed: temporary, the sender retries; no exception text ever reaches the client
  550  recipient is not a capture address (never an open relay)
  552  message larger than `[smtp] max_message_bytes` (aiosmtpd's SIZE limit)
Runs on the app's own event loop as an aiohttp cleanup context.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import ssl
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from service.access import authenticate
from service.appkeys import DB, INGESTOR, SETTINGS
from service.errors import IngestFailed, KirjuriError
from service.ingest import Ingestor
from service.mailparse import PLAIN_ADDR_SPEC
from service.settings import SmtpSettings
from storage.engine import Database
from storage.errors import StorageError

log = logging.getLogger(__name__)
SHUTDOWN_GRACE_SECONDS = 30.0
# `<local@domain>` and what follows it in MAIL FROM / RCPT TO, in the plain form only
_PLAIN_PATH = re.compile(rf"<({PLAIN_ADDR_SPEC})>[ \t]*([^( \t].*)?")


class AcceptList:
    """Which recipients are capture addresses: exact addresses and `@domain` entries."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.addresses = {e.lower() for e in entries if not e.startswith("@")}
        self.domains = {e[1:].lower() for e in entries if e.startswith("@")}

    def accepts(self, address: str) -> bool:
        address = address.strip().lower()
        if address.count("@") != 1:
            return False
        return address in self.addresses or address.rsplit("@", 1)[1] in self.domains


class Gate:
    """Connection count and shutdown state shared by every session of one listener."""

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self.sessions: set[CaptureSMTP] = set()
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.closing = False


class CaptureHandler:
    """aiosmtpd handler: accept capture recipients, store each message, answer honestly."""

    def __init__(self, ingestor: Ingestor, accept: AcceptList, gate: Gate, db: Database) -> None:
        self.ingestor = ingestor
        self.accept = accept
        self.gate = gate
        self.db = db

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.gate.closing:
            return "421 4.3.2 Service shutting down, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not self.accept.accepts(address):
            return "550 5.7.1 Relaying denied: not a capture address"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.gate.closing:
            return "421 4.3.2 Service shutting down, message not stored; try again later"
        raw = envelope.original_content
        if not isinstance(raw, bytes) or not raw:
            return "554 5.6.0 Empty message"
        self.gate.in_flight += 1
        self.gate.idle.clear()
        try:
            result = await self.ingestor.ingest_email(raw)
        except (IngestFailed, StorageError, OSError):
            return "451 4.3.0 Message not stored; try again later"
        finally:
            self.gate.in_flight -= 1
            if self.gate.in_flight == 0:
                self.gate.idle.set()
        if result.duplicate:
            return f"250 2.0.0 Already stored as interaction {result.interaction_id}"
        return f"250 2.0.0 Stored as interaction {result.interaction_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session error: %s", type(error).__name__)
        return "451 4.3.0 Temporary server error; try again later"

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH PLAIN with a service token: user = the token's name, password = the token."""
        if len(args) == 1:
            answer = await server.challenge_auth("")
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=False)
        else:
            try:
                answer = base64.b64decode(args[1].encode(), validate=True)
            except ValueError:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        parts = answer.split(b"\x00")
        if len(parts) != 3:
            await server.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        login, token = parts[1].decode(errors="replace"), parts[2].decode(errors="replace")
        try:
            who = await authenticate(self.db, token)
        except (KirjuriError, StorageError):
            return AuthResult(success=False, handled=False)
        ok = who.kind == "service" and who.scope == "ingest" and who.name == login
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)


class CaptureSMTP(SMTP):
    """aiosmtpd's SMTP with a cap on concurrent connections."""

    def __init__(self, handler: CaptureHandler, gate: Gate, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.gate = gate

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self not in self.gate.sessions  # STARTTLS calls this again for the same session
        super().connection_made(transport)
        if not first:
            return
        self.gate.sessions.add(self)
        if self.gate.closing or len(self.gate.sessions) > self.gate.max_connections:
            if self._handler_coroutine is not None:
                self._handler_coroutine.cancel()
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(b"421 4.7.0 Too many connections, try again later\r\n")
            transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        self.gate.sessions.discard(self)
        super().connection_lost(error)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The address and the rest of a MAIL FROM or RCPT TO argument, as aiosmtpd reads
        them; a plain `<local@domain>` by one regex (aiosmtpd's own reading declares a
        `typing.Protocol` class on every call and runs the full RFC 5322 parser: about 35 us a
        command, two commands a message), every other form by aiosmtpd itself."""
        match = _PLAIN_PATH.fullmatch(arg)
        if match is None:
            return super()._getaddr(arg)  # type: ignore[no-any-return]
        address, rest = match.group(1), match.group(2) or ""
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, rest


def call_limits(limit: int) -> dict[str, int]:
    """Per-session command budgets for aiosmtpd: `limit` for each command, but a journaling
    mail system sends many messages over one connection, so MAIL, DATA and RSET get 100
    times as many and RCPT 1000 times."""
    transaction = {"MAIL": limit * 100, "DATA": limit * 100, "RSET": limit * 100, "RCPT": limit * 1000}
    return {"*": limit, **transaction}


def tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    """A server TLS context for STARTTLS, or None when no certificate is configured."""
    if not settings.tls_cert and not settings.tls_key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


async def smtp_listener(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: listen for SMTP on the app's loop; on shutdown let transactions finish."""
    settings = app[SETTINGS].smtp
    # aiosmtpd logs envelope addresses and AUTH lines at INFO: keep personal data out of logs
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    gate = Gate(settings.max_connections)
    handler = CaptureHandler(app[INGESTOR], AcceptList(settings.accept), gate, app[DB])
    context = tls_context(settings)
    SMTPClass = type("LimitedSMTP", (CaptureSMTP,), {"local_part_limit": settings.local_part_limit})
    factory = partial(
        SMTPClass,
        handler,
        gate,
        data_size_limit=settings.max_message_bytes,
        hostname=settings.hostname,
        ident="Kirjuri",
        timeout=settings.session_timeout,
        command_call_limit=call_limits(settings.command_call_limit),
        tls_context=context,
        require_starttls=settings.require_starttls and context is not None,
        auth_required=settings.auth_required,
        auth_require_tls=True,
        auth_exclude_mechanism=["LOGIN"],
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        factory, settings.host, settings.port, reuse_port=settings.processes > 1 or None
    )
    app[SMTP_SERVER] = server
    log.info("SMTP capture listening on %s:%s", settings.host, server.sockets[0].getsockname()[1])
    try:
        yield
    finally:
        gate.closing = True
        server.close()
        try:
            await asyncio.wait_for(gate.idle.wait(), SHUTDOWN_GRACE_SECONDS)
        except TimeoutError:
            log.error("SMTP shutdown: %d transaction(s) still storing after grace period", gate.in_flight)
        for session in list(gate.sessions):
            if session.transport is not None:
                session.transport.close()
        await server.wait_closed()


SMTP_SERVER = web.AppKey("smtp_server", asyncio.Server)


def setup(app: web.Application) -> None:
    """Entry point `kirjuri.connectors: smtp`: add the listener when `[smtp] enabled`."""
    if app[SETTINGS].smtp.enabled:
        app.cleanup_ctx.append(smtp_listener)
