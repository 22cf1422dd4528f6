"""Data subject rights through the API, on data that came in over real SMTP and the real call
connectors: requests with due dates, the access export ZIP, rectification history, erasure
that leaves nothing in the database file, its WAL, the search index, the blob store or the
watched call folder, legal holds, objections, and retention from the command line."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import wave
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import FormData
from sqlalchemy import text as sql

from service.appkeys import DB
from service.settings import Settings
from storage.search import replace_body_text
from storage.transcripts import SegmentRow, TranscriptRow, replace_transcript
from tests.conftest import Kirjuri, make_mail, run_kirjuri, until, with_s3_blobs
from tests.s3 import S3Server

NAME = "Zyxwick Quornby"
EMAIL = "zyx.quornby@example.fi"
EMAIL2 = "zq.home@example.org"
PHONE = "040 765 4321"
PHONE_E164 = "+358407654321"
WORD = "Plumbaxite"
# what must not be left anywhere once the person is erased (FTS5 stores terms lower-cased
# and after the prefix they share with the term before them, hence the word's tail)
NEEDLES = [
    NAME.lower().encode(),
    b"quornby",
    EMAIL.encode(),
    EMAIL2.encode(),
    PHONE_E164.encode(),
    b"umbaxite",
]


def tone_wav(freq: float, secs: float = 1.0, rate: int = 8000) -> bytes:
    t = np.arange(int(rate * secs)) / rate
    samples = (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return out.getvalue()


def stored_id(reply: tuple[int, str]) -> int:
    code, text = reply
    assert code == 250, text
    return int(text.rsplit(" ", 1)[1])


async def add_customer(kirjuri: Kirjuri, headers: dict[str, str], body: dict[str, Any]) -> int:
    resp = await kirjuri.client.post("/api/v1/customers", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["id"])


async def new_request(kirjuri: Kirjuri, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = await kirjuri.client.post("/api/v1/subject-requests", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def execute(kirjuri: Kirjuri, headers: dict[str, str], request_id: int) -> dict[str, Any]:
    resp = await kirjuri.client.post(f"/api/v1/subject-requests/{request_id}/execute", headers=headers)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def upload_call(kirjuri: Kirjuri, headers: dict[str, str], audio: bytes, external_id: str) -> int:
    form = FormData()
    meta = {
        "external_id": external_id,
        "direction": "in",
        "from": PHONE,
        "to": "+358 9 4242 4242",
        "started_at": "2026-11-24T09:15:00+02:00",
        "channel_layout": "mono",
    }
    form.add_field("metadata", json.dumps(meta), content_type="application/json")
    form.add_field("audio", io.BytesIO(audio), filename="call.wav", content_type="application/octet-stream")
    resp = await kirjuri.client.post("/api/v1/calls", data=form, headers=headers)
    assert resp.status == 202, await resp.text()
    return int((await resp.json())["interaction_id"])


async def transcribed(kirjuri: Kirjuri, call_id: int, text: str, seconds: float = 1.0) -> None:
    """Store a transcript as the transcription worker does (the worker itself is tested with
    real speech in tests/connectors/test_calls.py; here it is switched off to keep this fast):
    one customer segment from the start to `seconds`."""
    row = TranscriptRow("fi", "test", "1", seconds, 0.1, [SegmentRow(0.0, seconds, "customer", text, -0.2)])

    def store(session: Any) -> None:
        replace_transcript(session, call_id, row)
        replace_body_text(session, call_id, f"[customer] {text}")

    await kirjuri.app[DB].run_write(store)


def quiet(settings: Settings) -> Settings:
    return settings.replace("transcription", enabled=False)


async def test_requests_have_due_dates_overdue_first_and_checked_input(
    kirjuri_factory: Any, settings: Settings
) -> None:
    kirjuri = await kirjuri_factory(quiet(settings))
    privacy = await kirjuri.login("privacy")
    agent = await kirjuri.login("agent")
    late = await new_request(
        kirjuri,
        privacy,
        kind="access",
        identifiers={"email": "Late@Example.fi"},
        received_at="2026-01-31T10:00:00Z",
    )
    fresh = await new_request(kirjuri, privacy, kind="erasure", identifiers={"phone": PHONE}, note="soitti")
    assert late["due_at"].startswith("2026-02-28T10:00:00")  # one month, clamped to February's end
    assert late["overdue"] is True and fresh["overdue"] is False
    assert late["identifiers"] == {"email": "late@example.fi"}
    assert fresh["identifiers"] == {"phone": PHONE_E164}
    listed = await kirjuri.get_json("/api/v1/subject-requests", privacy)
    assert [r["id"] for r in listed["items"]] == [late["id"], fresh["id"]]

    bad = [
        ({"kind": "delete", "identifiers": {"email": EMAIL}}, "kind"),
        ({"kind": "access", "identifiers": {}}, "identifiers"),
        ({"kind": "access", "identifiers": {"email": "not-an-address"}}, "identifiers.email"),
        ({"kind": "access", "identifiers": {"customer_id": 999}}, "identifiers.customer_id"),
        ({"kind": "access", "identifiers": {"email": EMAIL}, "received_at": "2999-01-01"}, "received_at"),
    ]
    for body, field in bad:
        resp = await kirjuri.client.post("/api/v1/subject-requests", json=body, headers=privacy)
        assert resp.status == 400, body
        assert resp.content_type == "application/problem+json"
        assert (await resp.json())["field"] == field
    resp = await kirjuri.client.post(
        "/api/v1/subject-requests", json={"kind": "access", "identifiers": {"email": EMAIL}}, headers=agent
    )
    assert resp.status == 403
    # an access request is closed only once it has been exported
    resp = await kirjuri.client.post(f"/api/v1/subject-requests/{late['id']}/execute", headers=privacy)
    assert resp.status == 409


async def test_rectification_keeps_old_and_new_values_for_the_privacy_role(
    kirjuri_factory: Any, settings: Settings
) -> None:
    kirjuri = await kirjuri_factory(quiet(settings))
    agent = await kirjuri.login("agent")
    privacy = await kirjuri.login("privacy")
    cid = await add_customer(
        kirjuri, agent, {"name": "Aino Asiakas", "address": "Vanhatie 1", "emails": [EMAIL]}
    )
    request = await new_request(kirjuri, privacy, kind="rectification", identifiers={"customer_id": cid})
    resp = await kirjuri.client.patch(
        f"/api/v1/customers/{cid}?request_id={request['id']}",
        json={"address": "Uusitie 2", "emails": [EMAIL, EMAIL2]},
        headers=agent,
    )
    assert resp.status == 200, await resp.text()
    resp = await kirjuri.client.patch(
        f"/api/v1/customers/{cid}?request_id=9999", json={"name": "X"}, headers=agent
    )
    assert resp.status == 400

    history = await kirjuri.get_json(f"/api/v1/customers/{cid}/history", privacy)
    by_field = {c["field"]: c for c in history["items"]}
    assert set(by_field) == {"address", "emails"}
    assert by_field["address"]["old_value"] == "Vanhatie 1"
    assert by_field["address"]["new_value"] == "Uusitie 2"
    assert json.loads(by_field["emails"]["new_value"]) == [EMAIL, EMAIL2]
    assert by_field["address"]["actor"] == "user:agent-user"
    assert by_field["address"]["request_id"] == request["id"]
    assert (await kirjuri.client.get(f"/api/v1/customers/{cid}/history", headers=agent)).status == 403


async def test_access_export_holds_everything_about_the_person(
    kirjuri_factory: Any, settings: Settings
) -> None:
    kirjuri = await kirjuri_factory(quiet(settings))
    agent = await kirjuri.login("agent")
    privacy = await kirjuri.login("privacy")
    cid = await add_customer(kirjuri, agent, {"name": NAME, "emails": [EMAIL], "phones": [PHONE]})
    mail = make_mail(sender=f"{NAME} <{EMAIL}>", subject="Lasku 4471", body=f"Hei, {WORD} on maksettu.")
    linked = stored_id(await kirjuri.send(mail))
    other_address = make_mail(sender=f"Z <{EMAIL2}>", subject="Kotoa", body="Toinen osoitteeni.")
    unlinked = stored_id(await kirjuri.send(other_address))
    stored_id(await kirjuri.send(make_mail(sender="Joku <joku@example.fi>", body="Ei kuulu tähän.")))
    audio = tone_wav(440)
    call = await upload_call(kirjuri, agent, audio, "pbx-export")
    await transcribed(kirjuri, call, "Haluan tietää laskuni tilan.")
    resp = await kirjuri.client.put(
        f"/api/v1/customers/{cid}/marketing-bans/phone", json={"reason": "asked by phone"}, headers=privacy
    )
    assert resp.status == 201
    await kirjuri.get_json(f"/api/v1/customers/{cid}", agent)  # a read that the export must show

    request = await new_request(
        kirjuri, privacy, kind="access", identifiers={"customer_id": cid, "email": EMAIL2}
    )
    resp = await kirjuri.client.get(f"/api/v1/subject-requests/{request['id']}/export", headers=privacy)
    assert resp.status == 200
    assert resp.content_type == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    assert archive.testzip() is None
    subject = json.loads(archive.read("subject.json"))
    assert subject["customer"]["id"] == cid
    assert {(i["kind"], i["value"]) for i in subject["identifiers"]} >= {
        ("email", EMAIL),
        ("email", EMAIL2),
        ("phone", PHONE_E164),
    }
    items = {i["id"]: i for i in subject["interactions"]}
    assert set(items) == {linked, unlinked, call}
    assert items[call]["segments"][0]["text"] == "Haluan tietää laskuni tilan."
    assert items[call]["segments"][0]["speaker"] == "customer"
    assert [b["channel"] for b in subject["marketing_bans"]] == ["phone"]
    assert subject["marketing_bans"][0]["history"][0]["reason"] == "asked by phone"
    assert any(a["action"] == "customer.read" and a["actor"] == "user:agent-user" for a in subject["audit"])
    assert subject["register"]["register_name"]["fi"] == "Laskukassa Oy:n asiakasrekisteri"
    assert subject["retention_months"]["call"] == settings.retention.call_months

    raw = await (await kirjuri.client.get(f"/api/v1/interactions/{linked}/raw", headers=agent)).read()
    assert archive.read(items[linked]["original"]) == raw
    assert archive.read(f"calls/call-{call}.wav") == audio
    index = archive.read("index.html").decode()
    for text in ("Rekisterinpitäjä", "Controller", "EU", "ETA", NAME, "Suoramarkkinointikiellot"):
        assert text in index
    assert f"emails/interaction-{linked}.eml" in index

    audit = await kirjuri.get_json("/api/v1/audit?action=subject.export", privacy)
    assert audit["items"][0]["customer_id"] == cid
    done = await execute(kirjuri, privacy, request["id"])
    assert done["status"] == "done" and done["report"]["exports"] == 1


@pytest.mark.parametrize("blob_store", ["disk", "s3"])
async def test_an_export_streams_with_flat_memory_in_pieces(
    kirjuri_factory: Any, settings: Settings, s3_server: S3Server, blob_store: str
) -> None:
    """Several originals bigger than the piece size arrive as many pieces, not one buffer,
    read from the blob folder or from an S3 bucket alike."""
    if blob_store == "s3":
        settings, _ = with_s3_blobs(settings, s3_server)
    kirjuri = await kirjuri_factory(quiet(settings))
    agent = await kirjuri.login("agent")
    privacy = await kirjuri.login("privacy")
    await add_customer(kirjuri, agent, {"name": NAME, "phones": [PHONE]})
    sizes = []
    for n in range(3):
        audio = tone_wav(300 + n * 50, secs=200)  # 3.2 MB each
        sizes.append(len(audio))
        await upload_call(kirjuri, agent, audio, f"pbx-big-{n}")
    request = await new_request(kirjuri, privacy, kind="access", identifiers={"phone": PHONE})
    resp = await kirjuri.client.get(f"/api/v1/subject-requests/{request['id']}/export", headers=privacy)
    assert resp.status == 200
    assert "Content-Length" not in resp.headers  # streamed, not built first
    pieces = 0
    body = bytearray()
    async for chunk in resp.content.iter_any():
        pieces += 1
        body += chunk
    assert pieces > 3
    archive = zipfile.ZipFile(io.BytesIO(bytes(body)))
    assert archive.testzip() is None
    assert sorted(i.file_size for i in archive.infolist() if i.filename.startswith("calls/")) == sorted(sizes)


def files_under(*roots: Path) -> list[Path]:
    return [Path(d) / f for root in roots for d, _, names in os.walk(root) for f in names]


def residue(*roots: Path) -> list[str]:
    found = []
    for path in files_under(*roots):
        data = path.read_bytes().lower()
        found += [f"{needle.decode()} in {path}" for needle in NEEDLES if needle in data]
    return found


@pytest.mark.parametrize("blob_store", ["disk", "s3"])
async def test_erasure_leaves_no_residue(
    kirjuri_factory: Any, settings: Settings, tmp_path: Path, s3_server: S3Server, blob_store: str
) -> None:
    folder = tmp_path / "calls"
    bucket = ""
    if blob_store == "s3":  # a versioned bucket: a plain DELETE would keep every old version
        settings, bucket = with_s3_blobs(settings, s3_server)
    kirjuri = await kirjuri_factory(
        quiet(settings).replace("calls", watch_dir=str(folder), settle_seconds=0.0, poll_seconds=0.1)
    )
    agent = await kirjuri.login("agent")
    privacy = await kirjuri.login("privacy")
    cid = await add_customer(
        kirjuri,
        agent,
        {"name": NAME, "emails": [EMAIL], "phones": [PHONE], "address": f"{WORD}katu 7", "notes": "Quornby"},
    )
    ban_mail = make_mail(
        sender=f"{NAME} <{EMAIL}>",
        subject=f"{WORD} tilaus",
        body=f"Hei, {WORD} tilaus.\n\nÄlkää soittako minulle enää myyntipuheluita.\n\n{NAME}",
    )
    first = stored_id(await kirjuri.send(ban_mail))
    second = stored_id(await kirjuri.send(make_mail(sender=f"Z Q <{EMAIL2}>", body=f"Toinen {WORD} viesti")))
    other = stored_id(await kirjuri.send(make_mail(sender="Muu <muu@example.fi>", body="Lasku 99 maksettu.")))
    folder.mkdir(exist_ok=True)
    (folder / f"call-{PHONE_E164}.json").write_text(
        json.dumps({"external_id": "pbx-erase", "direction": "in", "from": PHONE, "channel_layout": "mono"})
    )
    part = folder / f"call-{PHONE_E164}.wav.part"  # written whole, then named: settle_seconds is 0
    part.write_bytes(tone_wav(523))
    part.rename(folder / f"call-{PHONE_E164}.wav")
    processed = folder / "processed" / f"call-{PHONE_E164}.wav"
    await until(processed.exists, limit=20, what="the watched folder to take the call")
    calls = await kirjuri.get_json("/api/v1/interactions?channel=call", agent)
    (call,) = [c["id"] for c in calls["items"]]
    await transcribed(kirjuri, call, f"Tässä {NAME}, {WORD} asiassa.")
    resp = await kirjuri.client.patch(
        f"/api/v1/customers/{cid}", json={"address": "Uusikatu 1"}, headers=agent
    )
    assert resp.status == 200
    resp = await kirjuri.client.put(
        f"/api/v1/customers/{cid}/marketing-bans/email", json={"reason": f"{NAME} asked"}, headers=privacy
    )
    assert resp.status == 201
    search = await kirjuri.get_json(f"/api/v1/interactions?q={WORD}", agent)
    assert search["total"] == 3
    request = await new_request(
        kirjuri,
        privacy,
        kind="erasure",
        identifiers={"customer_id": cid, "email": EMAIL2},
        note=f"{NAME} soitti ja pyysi poistoa",
    )

    result = await execute(kirjuri, privacy, request["id"])

    report = result["report"]
    assert report["erased"]["customers"] == 1
    assert report["erased"]["emails"] == 2 and report["erased"]["calls"] == 1
    assert report["erased"]["blobs"] == 3
    # the rows hanging off them are counted: a sender or caller each, the ban's tag, the transcript
    assert report["erased"]["participants"] >= 3
    assert report["erased"]["tags"] >= 1 and report["erased"]["transcript_segments"] >= 1
    assert report["retained"] == []
    assert report["marketing_bans_kept_as_hashes"] >= 1
    assert result["identifiers"] == {"erased": ["customer_id", "email"]} and result["note"] is None
    for iid in (first, second, call):
        assert (await kirjuri.client.get(f"/api/v1/interactions/{iid}", headers=agent)).status == 404
    assert (await kirjuri.client.get(f"/api/v1/customers/{cid}", headers=agent)).status == 404
    assert (await kirjuri.client.get(f"/api/v1/interactions/{other}", headers=agent)).status == 200
    assert (await kirjuri.get_json(f"/api/v1/interactions?q={WORD}", agent))["total"] == 0
    assert not processed.exists() and not processed.with_suffix(".json").exists()
    # the ban still answers for the erased address, by keyed hash
    resp = await kirjuri.client.post(
        "/api/v1/marketing/check", json={"email": EMAIL, "channel": "email"}, headers=privacy
    )
    assert (await resp.json())["allowed"] is False
    erase_rows = await kirjuri.get_json("/api/v1/audit?action=subject.erase", privacy)
    assert erase_rows["items"][0]["detail"]["request_id"] == request["id"]
    assert erase_rows["items"][0]["detail"]["erased"]["customers"] == 1

    # the database file, its WAL (written on since: audit rows), the blob store, the folder
    assert residue(settings.storage.data_path, folder) == []
    if bucket:  # only the other customer's mail is left in the bucket, in no other version
        raw = await kirjuri.client.get(f"/api/v1/interactions/{other}/raw", headers=agent)
        assert s3_server.stored(bucket) == [f"blobs/{hashlib.sha256(await raw.read()).hexdigest()}"]
        assert not (settings.storage.data_path / "blobs").exists()


async def still_owed(kirjuri: Kirjuri) -> list[int]:
    """How many blob removals and index merges an erasure still owes (their queues' rows)."""
    return list(
        await kirjuri.app[DB].run_read(
            lambda session: [
                session.execute(sql(f"SELECT count(*) FROM {table}")).scalar()
                for table in ("blob_deletions", "index_purges")
            ]
        )
    )


async def test_an_erasure_cut_off_after_its_commit_is_finished_on_the_next_start(
    kirjuri_factory: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an erasure owes after its commit (the blob files, and on SQLite the merge that
    drops the erased words from the full-text index) is queued in the same transaction: if
    the process dies before paying it, the next start does."""
    settings = quiet(settings)
    kirjuri = await kirjuri_factory(settings)
    agent, privacy = await kirjuri.login("agent"), await kirjuri.login("privacy")
    cid = await add_customer(kirjuri, agent, {"name": NAME, "emails": [EMAIL]})
    stored_id(await kirjuri.send(make_mail(sender=f"{NAME} <{EMAIL}>", body=f"{WORD} tilaus, {NAME}")))
    stored_id(await kirjuri.send(make_mail(sender="Muu <muu@example.fi>", body="Lasku 99 maksettu.")))
    request = await new_request(kirjuri, privacy, kind="erasure", identifiers={"customer_id": cid})

    async def dies_first(*args: Any, **kwargs: Any) -> None:  # the process is killed here
        return None

    monkeypatch.setattr("service.rights.finish_deletions", dies_first)
    await execute(kirjuri, privacy, request["id"])
    monkeypatch.undo()
    assert (await kirjuri.get_json(f"/api/v1/interactions?q={WORD}", agent))["total"] == 0
    owed = await still_owed(kirjuri)
    sqlite = kirjuri.app[DB].is_sqlite
    assert owed == [1, 1 if sqlite else 0]
    blobs = settings.storage.data_path / "blobs"
    assert residue(blobs)  # the raw mail is still on disk
    if sqlite:  # and the word is still in the index's older segment
        assert [r for r in residue(settings.storage.data_path) if "/blobs/" not in r]
    await kirjuri.client.close()

    again = await kirjuri_factory(settings)

    owed = await still_owed(again)
    assert owed == [0, 0]
    assert residue(settings.storage.data_path) == []
    other = await again.get_json(
        "/api/v1/interactions?q=maksettu", await again.login("agent", "after-restart")
    )
    assert other["total"] == 1  # the other mail and its index entry are untouched


async def test_holds_and_other_customers_keep_what_they_need(
    kirjuri_factory: Any, settings: Settings
) -> None:
    kirjuri = await kirjuri_factory(quiet(settings))
    agent = await kirjuri.login("agent")
    privacy = await kirjuri.login("privacy")
    await add_customer(kirjuri, agent, {"name": NAME, "emails": [EMAIL]})
    other_customer = await add_customer(kirjuri, agent, {"name": "Muu Oy", "emails": ["muu@example.fi"]})
    invoice = stored_id(
        await kirjuri.send(make_mail(sender=EMAIL, subject="Lasku 1001", body="Laskun liite"))
    )
    chatter = stored_id(await kirjuri.send(make_mail(sender=EMAIL, subject="Hei", body="Kiitos")))
    cc = stored_id(await kirjuri.send(make_mail(sender="muu@example.fi", Cc=EMAIL, body="Tiedoksi")))
    until = (datetime.now(UTC) + timedelta(days=6 * 365)).isoformat()
    resp = await kirjuri.client.post(
        "/api/v1/legal-holds",
        json={"interaction_id": invoice, "basis": "Kirjanpitolaki 2:10", "until": until},
        headers=privacy,
    )
    assert resp.status == 201, await resp.text()
    hold = await resp.json()
    bad = await kirjuri.client.post("/api/v1/legal-holds", json={"interaction_id": invoice}, headers=privacy)
    assert bad.status == 400

    request = await new_request(kirjuri, privacy, kind="erasure", identifiers={"email": EMAIL})
    resp = await kirjuri.client.post(f"/api/v1/subject-requests/{request['id']}/execute", headers=agent)
    assert resp.status == 403
    report = (await execute(kirjuri, privacy, request["id"]))["report"]

    retained = {r["id"]: r for r in report["retained"]}
    assert retained[invoice]["reason"] == "legal hold"
    assert retained[invoice]["basis"] == "Kirjanpitolaki 2:10" and retained[invoice]["hold_id"] == hold["id"]
    # mail naming two customers is linked to neither (a person decides); it is the other's too
    assert retained[cc]["reason"] == f"also names another customer ({other_customer})"
    assert report["erased"]["emails"] == 1
    assert (await kirjuri.client.get(f"/api/v1/interactions/{invoice}", headers=agent)).status == 200
    assert (await kirjuri.client.get(f"/api/v1/interactions/{chatter}", headers=agent)).status == 404
    again = await kirjuri.client.post(f"/api/v1/subject-requests/{request['id']}/execute", headers=privacy)
    assert again.status == 409

    # a hold on a whole customer keeps the record and its timeline; a released hold keeps nothing
    held = await add_customer(kirjuri, agent, {"name": "Pidetty Oy", "emails": ["pidetty@example.fi"]})
    kept = stored_id(await kirjuri.send(make_mail(sender="pidetty@example.fi", body="Sopimus")))
    resp = await kirjuri.client.post(
        "/api/v1/legal-holds", json={"customer_id": held, "basis": "Luottolaitoslaki"}, headers=privacy
    )
    customer_hold = await resp.json()
    request = await new_request(kirjuri, privacy, kind="erasure", identifiers={"customer_id": held})
    report = (await execute(kirjuri, privacy, request["id"]))["report"]
    assert {(r["kind"], r["id"]) for r in report["retained"]} == {("customer", held), ("interaction", kept)}
    assert (await kirjuri.client.get(f"/api/v1/customers/{held}", headers=agent)).status == 200
    released = await kirjuri.client.delete(f"/api/v1/legal-holds/{customer_hold['id']}", headers=privacy)
    assert (await released.json())["active"] is False
    request = await new_request(kirjuri, privacy, kind="erasure", identifiers={"customer_id": held})
    report = (await execute(kirjuri, privacy, request["id"]))["report"]
    assert report["retained"] == [] and report["erased"]["customers"] == 1


async def test_an_objection_bans_marketing_on_every_channel(kirjuri_factory: Any, settings: Settings) -> None:
    kirjuri = await kirjuri_factory(quiet(settings))
    agent = await kirjuri.login("agent")
    privacy = await kirjuri.login("privacy")
    cid = await add_customer(kirjuri, agent, {"name": NAME, "emails": [EMAIL]})
    request = await new_request(kirjuri, privacy, kind="objection", identifiers={"customer_id": cid})
    report = (await execute(kirjuri, privacy, request["id"]))["report"]
    assert [(b["channel"], b["status"]) for b in report["marketing_bans"]] == [("all", "active")]
    for channel in ("email", "phone", "post"):
        resp = await kirjuri.client.post(
            "/api/v1/marketing/check", json={"customer_id": cid, "channel": channel}, headers=privacy
        )
        assert (await resp.json())["allowed"] is False
    stranger = await new_request(kirjuri, privacy, kind="objection", identifiers={"phone": "050 111 2222"})
    report = (await execute(kirjuri, privacy, stranger["id"]))["report"]
    assert report["marketing_bans"][0]["status"] == "active"
    resp = await kirjuri.client.post(
        "/api/v1/marketing/check", json={"phone": "+358501112222", "channel": "phone"}, headers=privacy
    )
    assert (await resp.json())["allowed"] is False


async def test_retention_from_the_command_line(kirjuri_factory: Any, settings: Settings) -> None:
    kirjuri = await kirjuri_factory(quiet(settings))
    agent = await kirjuri.login("agent")
    privacy = await kirjuri.login("privacy")
    old_time = datetime(2019, 3, 1, 9, 0, tzinfo=UTC)
    old = stored_id(await kirjuri.send(make_mail(sender=EMAIL, body=f"Vanha {WORD}", when=old_time)))
    old_held = stored_id(await kirjuri.send(make_mail(sender=EMAIL, subject="Lasku", when=old_time)))
    new = stored_id(await kirjuri.send(make_mail(sender=EMAIL, body="Uusi", when=datetime.now(UTC))))
    resp = await kirjuri.client.post(
        "/api/v1/legal-holds",
        json={"interaction_id": old_held, "basis": "Kirjanpitolaki 2:10"},
        headers=privacy,
    )
    assert resp.status == 201

    def cli(*args: str) -> dict[str, Any]:
        done = run_kirjuri(settings, "retention", *args)
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    dry = await asyncio.to_thread(cli, "--dry-run")
    email = next(c for c in dry["channels"] if c["channel"] == "email")
    assert (email["months"], email["expired"], email["held"]) == (72, 1, 1)
    assert email["oldest"].startswith("2019-03-01")
    assert (await kirjuri.client.get(f"/api/v1/interactions/{old}", headers=agent)).status == 200

    done = await asyncio.to_thread(cli)
    assert done["erased"]["emails"] == 1
    assert (await kirjuri.client.get(f"/api/v1/interactions/{old}", headers=agent)).status == 404
    for kept in (old_held, new):
        assert (await kirjuri.client.get(f"/api/v1/interactions/{kept}", headers=agent)).status == 200
    assert (await kirjuri.get_json(f"/api/v1/interactions?q={WORD}", agent))["total"] == 0
