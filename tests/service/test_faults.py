"""Faults: the SMTP process is SIGKILLed at random points while clients send 1,000 messages.

Clients behave as a sending mail server does: a message that did not get `250` is sent again
(after a connection error, a reset, or a 4xx). After the last restart every message that got
`250` must be stored exactly once: nothing acknowledged is lost, nothing retried is doubled.
(A worker killed mid-transcription is in test_cli.py: the job completes once.)
"""

from __future__ import annotations

import asyncio
import random
import smtplib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import func, select

from storage.engine import Database
from storage.interactions import Interaction
from tests.conftest import make_mail
from tests.service.test_cli import Server, add_admin

MESSAGES = 1000
CLIENTS = 8
KILLS = 5


def deliver_until_accepted(port: int, raw: bytes, stop: threading.Event) -> int:
    """Send one message until the server says 250; returns how many attempts it took."""
    attempts = 0
    while not stop.is_set():
        attempts += 1
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
                refused = smtp.sendmail("mta@example.fi", ["journal@localhost"], raw)
                if not refused:
                    return attempts
        except (OSError, smtplib.SMTPException):
            pass
        time.sleep(0.05)  # the server is down or restarting: try again, as an MTA's queue would
    raise AssertionError("gave up")


async def stored_message_ids(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        async with db.read() as session:
            rows = await session.execute(
                select(Interaction.message_id, func.count()).group_by(Interaction.message_id)
            )
            return {mid: n for mid, n in rows}
    finally:
        await db.close()


async def test_smtp_sigkilled_at_random_points_keeps_every_acknowledged_message_once(
    server: Server, database_url: str
) -> None:
    assert add_admin(server.data_dir).returncode == 0
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    mails = {
        f"<fault-{n}@example.fi>": make_mail(message_id=f"<fault-{n}@example.fi>", subject=f"Vika {n}")
        for n in range(MESSAGES)
    }
    acknowledged: dict[str, int] = {}
    stop = threading.Event()
    server.start("--only", "smtp")

    progress = threading.Condition()
    finished = [0]  # senders that are through their share

    def send_share(share: list[str]) -> None:
        try:
            for mid in share:
                attempts = deliver_until_accepted(server.smtp_port, mails[mid], stop)
                with progress:
                    acknowledged[mid] = attempts
                    progress.notify_all()
        finally:
            with progress:
                finished[0] += 1
                progress.notify_all()

    def wait_for_acknowledged(count: int) -> bool:
        """Block until `count` messages got 250; False if the stream ended first."""
        with progress:
            progress.wait_for(lambda: len(acknowledged) >= count or finished[0] == CLIENTS)
            return len(acknowledged) >= count and finished[0] < CLIENTS

    # Kill points are counts of acknowledged messages, one at random in each of five windows of
    # the stream: a faster machine moves them earlier in time, never past the end of the stream.
    window = (MESSAGES - 200) // KILLS
    kill_at = [100 + k * window + rng.randrange(window // 2) for k in range(KILLS)]
    ids = list(mails)
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        sending = [pool.submit(send_share, ids[k::CLIENTS]) for k in range(CLIENTS)]
        kills = 0
        try:
            for point in kill_at:
                if not await asyncio.to_thread(wait_for_acknowledged, point):
                    break
                await asyncio.to_thread(server.kill)
                kills += 1
                await asyncio.to_thread(server.start, "--only", "smtp")
            for f in sending:
                await asyncio.wrap_future(f)
        finally:
            stop.set()
    assert kills >= 3, f"the messages went through before the server was killed often (seed {seed})"
    assert sum(acknowledged.values()) > MESSAGES, "no delivery was interrupted"
    await asyncio.to_thread(server.stop)

    url = database_url or f"sqlite+aiosqlite:///{Path(server.data_dir) / 'kirjuri.db'}"
    stored = await stored_message_ids(url)
    missing = [mid for mid in acknowledged if mid not in stored]
    doubled = {mid: n for mid, n in stored.items() if n != 1}
    assert not missing, f"{len(missing)} acknowledged messages lost (seed {seed}): {missing[:5]}"
    assert not doubled, f"stored more than once (seed {seed}): {list(doubled.items())[:5]}"
    assert set(stored) == set(mails), f"stored something no one sent (seed {seed})"
