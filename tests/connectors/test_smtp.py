"""The SMTP connector end to end: real smtplib clients against the real listener and app."""

from __future__ import annotations

import asyncio
import random
import smtplib
import subprocess
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP
from sqlalchemy import select

from connectors.smtp import _PLAIN_PATH, CaptureSMTP
from service.settings import Settings
from storage.engine import Database
from storage.interactions import Interaction
from tests.conftest import Kirjuri, make_mail


async def interactions(k: Kirjuri, headers: dict[str, str], query: str = "") -> dict:
    resp = await k.client.get(f"/api/v1/interactions{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_captured_mail_lands_on_the_customers_timeline(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    resp = await kirjuri.client.post(
        "/api/v1/customers",
        headers=auth,
        json={"name": "Aino Asiakas Oy", "emails": ["Aino@Example.fi"], "business_id": "2468823-3"},
    )
    customer = await resp.json()

    code, reply = await kirjuri.send(make_mail(body="Laskun 4471 eräpäivä siirtyy, kiitos."))
    assert code == 250 and "Stored as interaction" in reply

    timeline = await interactions(kirjuri, auth, f"?customer_id={customer['id']}")
    assert timeline["total"] == 1
    item = timeline["items"][0]
    assert item["subject"] == "Lasku 4471"
    assert item["direction"] == "in"
    assert item["link_method"] == "email"
    found = await interactions(kirjuri, auth, "?q=eräpäivä")
    assert [i["id"] for i in found["items"]] == [item["id"]]


async def test_reply_comes_only_after_the_row_and_blob_are_on_disk(
    kirjuri: Kirjuri, settings: Settings
) -> None:
    raw = make_mail(message_id="<durable-1@example.fi>")
    code, _ = await kirjuri.send(raw)
    assert code == 250
    # read the store through a connection of its own, as a process started after a crash would
    db = Database(settings.storage.database_url)
    async with db.read() as session:
        blob = await session.scalar(
            select(Interaction.raw_blob).where(Interaction.message_id == "<durable-1@example.fi>")
        )
    await db.close()
    assert blob is not None
    assert (settings.storage.blob_dir / blob[:2] / blob).read_bytes() == raw


async def test_raw_original_is_returned_byte_for_byte(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    raw = make_mail(message_id="<raw-1@example.fi>", body="Alkuperäinen viesti")
    await kirjuri.send(raw)
    item = (await interactions(kirjuri, auth))["items"][0]
    resp = await kirjuri.client.get(f"/api/v1/interactions/{item['id']}/raw", headers=auth)
    assert resp.status == 200
    assert resp.content_type == "message/rfc822"
    assert await resp.read() == raw


async def test_relay_is_refused(kirjuri: Kirjuri) -> None:
    code, reply = await kirjuri.send(make_mail(), rcpt="someone@elsewhere.example")
    assert code == 550
    assert "Relaying denied" in reply


async def test_same_message_id_twice_is_stored_once(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    raw = make_mail(message_id="<twice@example.fi>")
    first = await kirjuri.send(raw)
    # the journal copy has other trace headers but the same Message-ID
    second = await kirjuri.send(b"Received: from journal.example.fi\r\n" + raw)
    assert first[0] == second[0] == 250
    assert "Already stored" in second[1]
    assert (await interactions(kirjuri, auth))["total"] == 1


async def test_mail_without_message_id_is_deduplicated_by_its_bytes(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    raw = make_mail(message_id=None)
    await kirjuri.send(raw)
    await kirjuri.send(raw)
    await kirjuri.send(make_mail(message_id=None, body="toinen viesti"))
    assert (await interactions(kirjuri, auth))["total"] == 2


async def test_oversize_message_gets_552_and_nothing_is_stored(kirjuri_factory, settings: Settings) -> None:
    k = await kirjuri_factory(settings.replace("smtp", max_message_bytes=20_000))
    auth = await k.login("agent")
    code, _ = await k.send(make_mail(body="x" * 30_000))
    assert code == 552
    code, _ = await k.send(make_mail(body="pieni"))
    assert code == 250
    assert (await interactions(k, auth))["total"] == 1


async def test_malformed_mime_is_stored_with_a_parse_error(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    raw = (
        b"From: aino@example.fi\r\nSubject: rikki\r\nMessage-ID: <broken@example.fi>\r\n"
        b'Content-Type: multipart/mixed; boundary="nope"\r\n\r\n'
        b"no boundary here at all \xff\xfe\r\n"
    )
    code, _ = await kirjuri.send(raw)
    assert code == 250
    item = (await interactions(kirjuri, auth))["items"][0]
    detail = await kirjuri.get_json(f"/api/v1/interactions/{item['id']}", headers=auth)
    assert detail["subject"] == "rikki"
    assert detail["parse_errors"], "the defect must be noted"
    raw_back = await (await kirjuri.client.get(f"/api/v1/interactions/{item['id']}/raw", headers=auth)).read()
    assert raw_back == raw


async def test_broken_charset_still_stores_readable_text(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    raw = (
        b"From: aino@example.fi\r\nSubject: merkist\xf6\r\nMessage-ID: <cs@example.fi>\r\n"
        b"Content-Type: text/plain; charset=x-unknown-8\r\n\r\nT\xe4m\xe4 on viesti\r\n"
    )
    code, _ = await kirjuri.send(raw)
    assert code == 250
    item = (await interactions(kirjuri, auth))["items"][0]
    detail = await kirjuri.get_json(f"/api/v1/interactions/{item['id']}", headers=auth)
    assert "Tämä on viesti" in detail["body"]
    assert any("could not be decoded" in e for e in detail["parse_errors"])


async def test_storage_failure_answers_451_and_the_sender_can_retry(
    kirjuri_factory, settings: Settings, tmp_path: Path
) -> None:
    k = await kirjuri_factory(settings)
    auth = await k.login("agent")
    blob_dir = settings.storage.blob_dir
    blob_dir.mkdir(parents=True, exist_ok=True)
    # make the blob store unwritable in a way root cannot bypass: a shard path that is a file
    raw = make_mail(message_id="<retry@example.fi>")
    import hashlib

    shard = blob_dir / hashlib.sha256(raw).hexdigest()[:2]
    shard.write_bytes(b"not a directory")
    code, reply = await k.send(raw)
    assert code == 451
    assert "Error" not in reply and "Traceback" not in reply
    assert (await interactions(k, auth))["total"] == 0
    shard.unlink()
    code, _ = await k.send(raw)
    assert code == 250
    assert (await interactions(k, auth))["total"] == 1


async def test_connections_over_the_cap_get_421(kirjuri_factory, settings: Settings) -> None:
    k = await kirjuri_factory(settings.replace("smtp", max_connections=2))

    def open_three() -> list[int]:
        clients = [smtplib.SMTP(timeout=30) for _ in range(3)]
        codes = []
        for c in clients:
            try:
                code, _ = c.connect("127.0.0.1", k.smtp_port)
            except smtplib.SMTPConnectError as exc:
                code = exc.smtp_code
            except smtplib.SMTPServerDisconnected:
                code = -1
            codes.append(code)
        for c in clients:
            try:
                c.close()
            except Exception:
                pass
        return codes

    assert await asyncio.to_thread(open_three) == [220, 220, 421]


async def test_unknown_recipient_domain_and_bad_commands_do_not_crash(kirjuri: Kirjuri) -> None:
    def session() -> list[int]:
        with smtplib.SMTP("127.0.0.1", kirjuri.smtp_port, timeout=30) as smtp:
            out = [smtp.docmd("NOOP")[0], smtp.docmd("BOGUS")[0]]
            smtp.ehlo()
            out.append(smtp.docmd("RCPT TO:<x@y>")[0])
            out.append(smtp.docmd("MAIL FROM:<" + "a" * 100 + "@example.fi>")[0])
            return out

    codes = await asyncio.to_thread(session)
    assert codes[0] == 250
    assert codes[1] == 500
    assert codes[2] == 503  # RCPT before MAIL
    assert codes[3] == 553  # local part over 64 characters


def test_envelope_addresses_read_as_aiosmtpd_reads_them() -> None:
    """The plain `<local@domain>` paths Kirjuri reads itself give what aiosmtpd's own reading
    gives, the local-part limit included; every other form is aiosmtpd's."""
    ours, theirs = CaptureSMTP.__new__(CaptureSMTP), SMTP.__new__(SMTP)
    ours.local_part_limit = theirs.local_part_limit = 64
    rng = random.Random(3)
    tails = ["", " SIZE=100", "  BODY=8BITMIME SIZE=1", "(c) X", "x", " "]
    tricky = ["<", ">", "(", ")", " ", "@", ".", '"', "ä", "\t", ",", "\\", "[1.2.3.4]", ":"]
    args = ["<>", "", "<" + "a" * 65 + "@example.fi>", "a@b.fi", "<a@localhost> SIZE=5"]
    for _ in range(3000):
        local = rng.choice(["a", "first.last", "x+tag", "a_b-c", "Z9", "a" * 64])
        arg = f"<{local}@{rng.choice(['example.fi', 'localhost', 'mail.a-b.com'])}>{rng.choice(tails)}"
        if rng.random() < 0.4:  # break it somewhere
            at = rng.randint(0, len(arg))
            arg = arg[:at] + rng.choice(tricky) + arg[at:]
        args.append(arg)

    def read(server: SMTP, arg: str) -> object:
        try:
            return server._getaddr(arg)
        except Exception as exc:  # noqa: BLE001 - aiosmtpd raises on some garbage: so must we
            return type(exc)

    plain = 0
    for arg in args:
        assert read(ours, arg) == read(theirs, arg), arg
        plain += _PLAIN_PATH.fullmatch(arg) is not None  # read by the regex, not by aiosmtpd
    assert plain > 100


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[str, str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


async def test_starttls_and_auth_with_a_service_token(
    kirjuri_factory, settings: Settings, tls_files: tuple[str, str]
) -> None:
    import ssl

    from service.access import create_service_token
    from service.appkeys import DB

    cert, key = tls_files
    k = await kirjuri_factory(
        settings.replace("smtp", tls_cert=cert, tls_key=key, require_starttls=True, auth_required=True)
    )
    token = await create_service_token(k.app[DB], "mail-gateway", "ingest")
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False

    def deliver(user: str, password: str) -> int:
        with smtplib.SMTP("127.0.0.1", k.smtp_port, timeout=30) as smtp:
            smtp.ehlo()
            before_tls = smtp.docmd("MAIL FROM:<a@example.fi>")[0]
            assert before_tls == 530  # must STARTTLS first
            smtp.starttls(context=ctx)
            smtp.ehlo()
            try:
                smtp.login(user, password)
            except smtplib.SMTPAuthenticationError as exc:
                return exc.smtp_code
            refused = smtp.sendmail("a@example.fi", ["journal@capture.test"], make_mail())
            return 250 if refused == {} else 0

    assert await asyncio.to_thread(deliver, "mail-gateway", "wrong-token") == 535
    assert await asyncio.to_thread(deliver, "mail-gateway", token) == 250


async def test_command_budget_cuts_loops_but_not_long_journaling_sessions(
    kirjuri_factory, settings: Settings
) -> None:
    k = await kirjuri_factory(settings.replace("smtp", command_call_limit=3))
    auth = await k.login("agent")

    def session() -> tuple[list[int], int]:
        with smtplib.SMTP("127.0.0.1", k.smtp_port, timeout=30) as smtp:
            refused = [smtp.sendmail("a@example.fi", ["journal@capture.test"], make_mail()) for _ in range(5)]
            assert refused == [{}] * 5  # five messages, more than the per-command budget of 3
            codes = [smtp.docmd("NOOP")[0] for _ in range(4)]
            return codes, len(refused)

    codes, sent = await asyncio.to_thread(session)
    assert codes == [250, 250, 250, 421]
    assert (await interactions(k, auth))["total"] == sent


async def test_large_mail_is_parsed_in_a_process_and_its_body_capped(
    kirjuri_factory, settings: Settings
) -> None:
    k = await kirjuri_factory(
        settings.replace("ingest", parse_workers=1, process_parse_min_bytes=10_000, max_body_chars=5_000)
    )
    auth = await k.login("agent")
    body = "alku " + "x" * 30_000 + " loppusana"
    raw = make_mail(body=body, message_id="<large@example.fi>")
    code, _ = await k.send(raw)
    assert code == 250
    item = (await interactions(k, auth))["items"][0]
    detail = await k.get_json(f"/api/v1/interactions/{item['id']}", headers=auth)
    assert len(detail["body"]) == 5_000 and detail["body"].startswith("alku ")
    assert any("only in the original" in e for e in detail["parse_errors"])
    raw_back = await (await k.client.get(f"/api/v1/interactions/{item['id']}/raw", headers=auth)).read()
    assert raw_back == raw  # nothing is lost: the whole message is in the original


async def test_overlong_names_are_clipped_and_fail_no_mail_sent_with_them(kirjuri: Kirjuri) -> None:
    """Names longer than their columns (PostgreSQL refuses such values) are cut, and the mail
    taken in the same transaction as one that cannot be stored is stored all the same."""
    long_name = "Aino " + "Asiakas" * 60
    odd = EmailMessage()
    odd["From"] = f'"{long_name}" <aino@example.fi>'
    odd["To"] = "myynti@laskukassa.fi"
    odd["Subject"] = "Liite"
    odd["Message-ID"] = "<long-names@example.fi>"
    odd.set_content("Liitteenä lasku.")
    odd.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="lasku" * 150 + ".pdf")
    mails = [make_mail(message_id=f"<mate-{n}@example.fi>") for n in range(6)] + [
        odd.as_bytes(policy=policy.SMTP)
    ]
    replies = await asyncio.gather(*(kirjuri.send(raw) for raw in mails))
    assert [code for code, _ in replies] == [250] * len(mails), replies[-1]

    auth = await kirjuri.login("agent")
    listed = await interactions(kirjuri, auth, "?limit=50")
    assert listed["total"] == len(mails)
    stored = next(i for i in listed["items"] if i["subject"] == "Liite")
    resp = await kirjuri.client.get(f"/api/v1/interactions/{stored['id']}", headers=auth)
    detail = await resp.json()
    sender = next(p for p in detail["participants"] if p["role"] == "from")
    assert sender["value"] == "aino@example.fi"
    assert long_name.startswith(sender["name"]) and len(sender["name"]) == 300
    (attachment,) = detail["attachments"]
    assert attachment["filename"].startswith("lasku") and len(attachment["filename"]) == 500


async def test_nul_characters_in_text_do_not_keep_a_mail_out(kirjuri: Kirjuri) -> None:
    """A NUL decoded from quoted-printable (PostgreSQL keeps no NUL in text) is dropped from the
    stored text; the original keeps it."""
    raw = (
        make_mail(subject="=?utf-8?q?Lasku=00_4471?=", message_id="<nul@example.fi>")
        .replace(b"Hei, laskun numero 4471 on maksettu.", b"Hei,=00 laskun numero 4471 on maksettu.")
        .replace(b"Content-Transfer-Encoding: 7bit", b"Content-Transfer-Encoding: quoted-printable")
    )
    code, reply = await kirjuri.send(raw)
    assert code == 250, reply
    auth = await kirjuri.login("agent")
    (item,) = (await interactions(kirjuri, auth, "?q=maksettu"))["items"]
    resp = await kirjuri.client.get(f"/api/v1/interactions/{item['id']}", headers=auth)
    detail = await resp.json()
    assert detail["subject"] == "Lasku 4471"
    assert detail["body"].startswith("Hei, laskun numero 4471")
    resp = await kirjuri.client.get(f"/api/v1/interactions/{item['id']}/raw", headers=auth)
    assert await resp.read() == raw
