"""Shared fixtures: a real Kirjuri app on loopback (HTTP via aiohttp's test server, SMTP on a
free port on the same loop), a fresh SQLite file per test (or, with
KIRJURI_TEST_DATABASE=postgresql, a fresh database on a PostgreSQL server the session starts:
tests/postgres.py), and small factories for staff users, logins and mail."""

from __future__ import annotations

import asyncio
import inspect
import os
import smtplib
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from connectors.smtp import SMTP_SERVER
from service.access import create_user
from service.app import create_app
from service.appkeys import DB
from service.settings import Secret, Settings, load_settings
from service.whisper_model import bundled_model_dir
from storage.interactions import NewInteraction
from tests import postgres
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer | None]:
    """The session's PostgreSQL server on the PostgreSQL run, None on the SQLite one."""
    if not postgres.wanted():
        yield None
        return
    server = postgres.PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(postgres_server: postgres.PostgresServer | None) -> Iterator[str]:
    """A fresh PostgreSQL database for this test, or "" for the SQLite file in the data dir."""
    if postgres_server is None:
        yield ""
        return
    url = postgres_server.new_database()
    try:
        yield url
    finally:
        postgres_server.drop(url)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Defaults with a fresh data dir and free ports (0 = the OS picks one)."""
    base = load_settings(environ={})
    return (
        base.replace("storage", data_dir=str(tmp_path / "data"), url=Secret(database_url))
        .replace("smtp", port=0, accept=["journal@capture.test", "@localhost"])
        .replace("linking", internal_domains=["laskukassa.fi"])
        .replace("ingest", parse_workers=0)  # the CLI test covers the parser processes
        .replace("marketing", workers=0)  # and the detector's
        # the test mail and calls carry fixed dates: the background sweep would erase them
        # once they pass their retention period (`kirjuri retention` is tested on its own)
        .replace("retention", enabled=False)
    )


@pytest.fixture(scope="session")
def whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled base model, joined and verified once for the whole test session."""
    return bundled_model_dir(tmp_path_factory.mktemp("whisper"))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An S3-compatible server (moto's) for the session; each test asks for its own bucket."""
    server = S3Server()
    yield server
    server.stop()


def with_s3_blobs(settings: Settings, server: S3Server, prefix: str = "blobs/") -> tuple[Settings, str]:
    """These settings with blobs in a fresh versioned bucket of `server`; and the bucket's name."""
    bucket = server.new_bucket()
    return settings.replace(
        "storage",
        blob_url=f"s3://{bucket}/{prefix}",
        s3_endpoint_url=server.endpoint,
        s3_region=REGION,
        s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=Secret(SECRET_KEY),
    ), bucket


def run_kirjuri(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a `kirjuri` command on the same store as the test's app: its data dir, its
    database when it is not the SQLite file, and no KIRJURI_* settings from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIRJURI_")}
    if settings.storage.url:
        env["KIRJURI_STORAGE_URL"] = settings.storage.url.reveal()
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args, "--data-dir", settings.storage.data_dir],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def stored_row(dedup_key: str, **values: Any) -> NewInteraction:
    """An interaction to insert straight into the store (tests of storage, not of ingest):
    an inbound call on 24 November 2026 unless `values` say otherwise."""
    defaults: dict[str, Any] = {
        "channel": "call",
        "direction": "in",
        "occurred_at": datetime(2026, 11, 24, tzinfo=UTC),
        "raw_size": 0,
        "needs_review": False,
        "parse_errors": [],
        "meta": {},
    }
    return NewInteraction(
        values=defaults | values | {"dedup_key": dedup_key}, participants=[], attachments=[]
    )


@dataclass
class Kirjuri:
    """A running app under test and helpers to talk to it as a person or a mail system would."""

    client: TestClient
    smtp_port: int

    @property
    def app(self) -> Any:
        return self.client.app

    async def add_user(self, name: str, role: str) -> None:
        with ThreadPoolExecutor(max_workers=1) as executor:
            await create_user(self.app[DB], executor, name, role, PASSWORD)

    async def login(self, role: str = "agent", name: str | None = None) -> dict[str, str]:
        """Create a user with this role, log in over HTTP, and return the auth header."""
        name = name or f"{role}-user"
        await self.add_user(name, role)
        resp = await self.client.post("/api/v1/session", json={"username": name, "password": PASSWORD})
        assert resp.status == 201, await resp.text()
        return {"Authorization": f"Bearer {(await resp.json())['token']}"}

    async def get_json(self, path: str, headers: dict[str, str], **kwargs: Any) -> Any:
        """GET a path over HTTP and return its JSON body."""
        return await (await self.client.get(path, headers=headers, **kwargs)).json()

    async def send(
        self, raw: bytes, rcpt: str = "journal@capture.test", sender: str = "mta@example.fi"
    ) -> tuple[int, str]:
        """Deliver a message with smtplib (in a thread) and return the DATA reply."""

        def deliver() -> tuple[int, str]:
            with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as smtp:
                smtp.ehlo()
                code, _ = smtp.mail(sender)
                assert code == 250
                code, msg = smtp.rcpt(rcpt)
                if code != 250:
                    return code, msg.decode()
                code, msg = smtp.data(raw)
                return code, msg.decode()

        return await asyncio.to_thread(deliver)


def make_mail(
    sender: str = "Aino Asiakas <aino@example.fi>",
    to: str = "Myynti <myynti@laskukassa.fi>",
    subject: str = "Lasku 4471",
    body: str = "Hei, laskun numero 4471 on maksettu.",
    message_id: str | None = "",
    when: datetime | None = None,
    **headers: str,
) -> bytes:
    """A well-formed email as bytes; message_id None leaves the header out."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when or datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
    if message_id is not None:
        msg["Message-ID"] = message_id or make_msgid(domain="example.fi")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes(policy=policy.SMTP)


@pytest.fixture
def kirjuri_factory(
    database_url: str,  # set up before the app and dropped after it has shut down
    aiohttp_client: Callable[..., Any],
) -> Callable[[Settings], Any]:
    async def start(settings: Settings) -> Kirjuri:
        client = await aiohttp_client(create_app(settings))
        port = client.app[SMTP_SERVER].sockets[0].getsockname()[1] if settings.smtp.enabled else 0
        return Kirjuri(client, port)

    return start


@pytest.fixture
async def kirjuri(kirjuri_factory: Callable[[Settings], Any], settings: Settings) -> Kirjuri:
    return await kirjuri_factory(settings)


async def until(
    check: Callable[[], bool | Awaitable[bool]], limit: float = 60, what: str = "the condition"
) -> None:
    """Return as soon as `check()` (a bool, or an awaitable of one) holds, polling every 50 ms;
    fail after `limit` seconds, generous so that a slow machine only makes the test slower."""
    deadline = time.monotonic() + limit
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"timed out after {limit} s waiting for {what}"
        await asyncio.sleep(0.05)
