"""`kirjuri` as an operator runs it: add a user and a token, serve, capture mail over SMTP, read it
over HTTP, stop with SIGTERM without losing or half-writing anything, and start again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import make_mail, until
from tests.speech import INVOICE_CALL, phone_call

KIRJURI = [sys.executable, "-m", "service.cli"]
SECRET_BODY = "Salainen viestin sisältö 8841"
PASSWORD = "operaattorin-salasana-77"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.http_port = free_port()
        self.smtp_port = free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.output = ""

    def start(self, *extra: str, env: dict[str, str] | None = None) -> None:
        only = extra[extra.index("--only") + 1] if "--only" in extra else None
        listening = [
            p for p, part in ((self.http_port, "api"), (self.smtp_port, "smtp")) if only in (None, part)
        ]
        self.proc = subprocess.Popen(
            [
                *KIRJURI,
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--http-port",
                str(self.http_port),
                "--smtp-port",
                str(self.smtp_port),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: kill() takes the workers too
            # fixed-date test data must outlive its retention period (see conftest.settings)
            env=os.environ | {"KIRJURI_RETENTION_ENABLED": "false"} | (env or {}),
        )
        deadline = time.monotonic() + 60  # generous: returns as soon as it listens
        while time.monotonic() < deadline:
            try:
                for port in listening:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None, self.proc.communicate()[0]
                time.sleep(0.1)
        raise AssertionError("kirjuri serve did not start listening")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=90)  # more than the shutdown grace periods
        self.output += out
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the server and every process it started, as a power cut would."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            out, _ = self.proc.communicate()
            self.output += out or ""


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KIRJURI, *args], input=stdin, capture_output=True, text=True, timeout=60)


def add_admin(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return run(
        "user",
        "add",
        "maija",
        "--role",
        "admin",
        "--password-stdin",
        "--data-dir",
        str(data_dir),
        stdin=PASSWORD + "\n",
    )


async def login_and_list(server: Server) -> list[dict]:
    base = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/v1/session", json={"username": "maija", "password": PASSWORD}) as r:
            assert r.status == 201
            token = (await r.json())["token"]
        async with http.get(f"{base}/api/v1/interactions", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200
            return (await r.json())["items"]


async def test_operator_flow_and_clean_sigterm(server: Server) -> None:
    added = add_admin(server.data_dir)
    assert added.returncode == 0, added.stderr
    again = add_admin(server.data_dir)
    assert again.returncode == 2 and "already exists" in again.stderr
    token = run("token", "add", "pbx", "--scope", "ingest", "--data-dir", str(server.data_dir))
    assert token.returncode == 0 and len(token.stdout.strip()) >= 40

    server.start()
    raw = make_mail(sender="Aino <aino@example.fi>", body=SECRET_BODY, message_id="<cli-1@example.fi>")

    def deliver() -> dict:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as smtp:
            return smtp.sendmail("aino@example.fi", ["journal@localhost"], raw)

    assert await asyncio.to_thread(deliver) == {}
    items = await login_and_list(server)
    assert [i["subject"] for i in items] == ["Lasku 4471"]

    # a transaction still sending DATA when SIGTERM arrives is not acknowledged
    half = smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30)
    half.ehlo()
    half.mail("late@example.fi")
    half.rcpt("journal@localhost")
    half.putcmd("DATA")
    assert half.getreply()[0] == 354
    half.send(make_mail(message_id="<late@example.fi>").replace(b"\r\n.", b"\r\n.."))

    assert await asyncio.to_thread(server.stop) == 0
    try:
        half.send(b"\r\n.\r\n")
        code: int | None = half.getreply()[0]
    except (smtplib.SMTPServerDisconnected, OSError):
        code = None
    assert code != 250, "acknowledged a message during shutdown"
    half.close()

    assert (
        not list(server.data_dir.glob("*.db-wal")) or (server.data_dir / "kirjuri.db-wal").stat().st_size == 0
    )

    server.start()  # the same data dir: everything acknowledged is still there, nothing else
    items = await login_and_list(server)
    assert [i["subject"] for i in items] == ["Lasku 4471"]
    assert server.stop() == 0

    for secret in (SECRET_BODY, PASSWORD, token.stdout.strip(), "aino@example.fi"):
        assert secret not in server.output, f"log leaks {secret!r}"


def test_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[smtp]\nport = 'x'\n")
    result = run("serve", "--config", str(cfg), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "[smtp] port must be a whole number" in result.stderr


def test_password_must_not_be_trivial(tmp_path: Path) -> None:
    result = run(
        "user",
        "add",
        "x",
        "--role",
        "agent",
        "--password-stdin",
        "--data-dir",
        str(tmp_path),
        stdin="short\n",
    )
    assert result.returncode == 2 and "at least 10 characters" in result.stderr
    assert os.path.exists(tmp_path / "kirjuri.db")


async def test_a_transcription_killed_mid_job_is_retried_and_completes_once(
    server: Server, tmp_path: Path
) -> None:
    assert add_admin(server.data_dir).returncode == 0
    recording = phone_call(INVOICE_CALL * 3, tmp_path / "long.wav")
    base = f"http://127.0.0.1:{server.http_port}"
    server.start()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/v1/session", json={"username": "maija", "password": PASSWORD}) as r:
            auth = {"Authorization": f"Bearer {(await r.json())['token']}"}
        form = aiohttp.FormData()
        meta = {
            "external_id": "long-1",
            "direction": "in",
            "from": "0451254423",
            "to": "0942424242",
            "started_at": "2026-11-24T10:00:00Z",
        }
        form.add_field("metadata", json.dumps(meta))
        form.add_field("audio", recording.read_bytes(), filename="long.wav")
        async with http.post(f"{base}/api/v1/calls", data=form, headers=auth) as r:
            assert r.status == 202, await r.text()
            iid = (await r.json())["interaction_id"]

        async def state() -> dict:
            async with http.get(f"{base}/api/v1/interactions/{iid}", headers=auth) as r:
                return await r.json()

        deadline = time.monotonic() + 120
        while (await state())["status"] != "transcribing":
            assert time.monotonic() < deadline, "transcription never started"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)
        server.kill()

    server.start()
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 300
        while True:
            async with http.get(f"{base}/api/v1/interactions/{iid}", headers=auth) as r:
                call = await r.json()
            if call["status"] in ("done", "failed") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    assert server.stop() == 0
    assert call["status"] == "done", call["transcription"]
    assert call["transcription"]["attempts"] == 2  # the killed attempt, then the one that finished
    assert call["transcription"]["error"] is None
    assert {s["speaker"] for s in call["segments"]} == {"agent", "customer"}
    starts = [(s["start"], s["speaker"]) for s in call["segments"]]
    assert len(starts) == len(set(starts))  # one transcript, not two stacked
    assert "requeued 1 transcription job" in server.output


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` that run `serve` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
            if int(fields[1]) == pid and b"serve" in cmdline:
                found.append(int(stat.parent.name))
    return found


def listening_sockets(pid: int, port: int) -> set[int]:
    """The inodes of the TCP sockets listening on `port` that process `pid` holds (Linux /proc)."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()  # local address:port (hex), remote, state (0A = LISTEN), ...
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    listening.add(int(fields[9]))
    held = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if match := re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}")):
                    held.add(int(match[1]))
    return listening & held


async def wait_for_children(server: Server, count: int, other_than: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
    """The server's `count` SMTP child processes (not those in `other_than`), once each is
    listening on the SMTP port with a socket of its own (it opens the database, then listens)."""
    assert server.proc is not None
    parent = server.proc.pid

    def ready() -> list[int]:
        ours = listening_sockets(parent, server.smtp_port)
        return [
            c
            for c in children(parent)
            if c not in other_than and listening_sockets(c, server.smtp_port) - ours
        ]

    await until(lambda: len(ready()) >= count, what=f"{count} SMTP child process(es) listening")
    assert listening_sockets(parent, server.smtp_port), "the server itself stopped listening"
    return ready()


def send_all(port: int, mails: list[bytes]) -> list[int]:
    """Each mail on its own connection, 10 at a time; the reply codes."""

    def one(raw: bytes) -> int:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            refused = smtp.sendmail("aino@example.fi", ["capture@localhost"], raw)
            assert not refused
            return 250

    with ThreadPoolExecutor(max_workers=10) as pool:
        return list(pool.map(one, mails))


def send_at_once(port: int, mails: list[bytes]) -> list[int]:
    """Each mail on its own connection, all at once: every connection gets as far as the end of
    its DATA, then all of them send the final dot together (a barrier); the reply codes."""
    together = threading.Barrier(len(mails))

    def one(raw: bytes) -> int:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                assert smtp.ehlo()[0] == 250
                assert smtp.mail("aino@example.fi")[0] == 250
                assert smtp.rcpt("capture@localhost")[0] == 250
                smtp.putcmd("data")
                assert smtp.getreply()[0] == 354
                data = re.sub(rb"(?m)^\.", b"..", raw)  # dot-stuffing, as smtplib.data() does
                smtp.send(data if data.endswith(b"\r\n") else data + b"\r\n")
                together.wait(timeout=60)
                smtp.send(b".\r\n")
                return smtp.getreply()[0]
        except BaseException:
            together.abort()  # the others fail at once instead of waiting out the barrier
            raise

    with ThreadPoolExecutor(max_workers=len(mails)) as pool:
        return list(pool.map(one, mails))


async def test_smtp_processes_share_the_port_store_each_message_once_and_are_restarted(
    server: Server,
) -> None:
    assert add_admin(server.data_dir).returncode == 0
    server.start(env={"KIRJURI_SMTP_PROCESSES": "2"})
    assert server.proc is not None
    (child,) = await wait_for_children(server, 1)

    # 30 messages, 10 of them sent twice at once (20 connections ending their DATA together,
    # spread by the kernel over the two processes): each still stored once
    mails = [make_mail(message_id=f"<multi-{n}@example.fi>", subject=f"Viesti {n}") for n in range(30)]
    assert await asyncio.to_thread(send_all, server.smtp_port, mails[10:]) == [250] * 20
    assert await asyncio.to_thread(send_at_once, server.smtp_port, mails[:10] * 2) == [250] * 20
    items = await login_and_list(server)
    assert sorted(i["subject"] for i in items) == sorted(f"Viesti {n}" for n in range(30))

    # a dead SMTP process is started again, and mail keeps flowing
    os.kill(child, signal.SIGKILL)
    (replacement,) = await wait_for_children(server, 1, other_than={child})
    later = [make_mail(message_id=f"<later-{n}@example.fi>", subject=f"Myöhemmin {n}") for n in range(10)]
    assert await asyncio.to_thread(send_all, server.smtp_port, later) == [250] * 10
    assert len(await login_and_list(server)) == 40

    assert server.stop() == 0  # waits for every process holding its output: children included
    assert not children(replacement)


async def test_only_one_part(server: Server) -> None:
    """`--only smtp` takes mail without an HTTP listener; `--only api` serves HTTP without SMTP."""
    assert add_admin(server.data_dir).returncode == 0
    server.start("--only", "smtp")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.http_port), timeout=1).close()
    assert send_all(server.smtp_port, [make_mail(message_id="<only-smtp@example.fi>")]) == [250]
    assert server.stop() == 0

    server.start("--only", "api")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.smtp_port), timeout=1).close()
    assert [i["subject"] for i in await login_and_list(server)] == ["Lasku 4471"]
    assert server.stop() == 0
