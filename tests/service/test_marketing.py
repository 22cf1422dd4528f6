"""Marketing bans end to end: a customer's email says "don't call me with sales calls" (over real
SMTP), the detector tags it with the evidence and proposes a phone ban, a privacy officer
confirms it, and a marketing tool is told not to call; quoted replies, footers, someone else's
wish and outbound mail propose nothing; bans set and lifted by hand keep their history."""

from __future__ import annotations

import csv
import hashlib
import io
from typing import Any

from sqlalchemy import select

from service.access import create_service_token
from service.appkeys import DB, HASHER, SETTINGS
from service.marketing import detect_interaction
from service.settings import Settings
from storage.customers import Customer
from storage.jobs import Job
from tests.conftest import Kirjuri, make_mail, until

CUSTOMER = {"name": "Aino Asiakas Oy", "emails": ["aino@example.fi"], "phones": ["045 125 4423"]}
BAN_TEXT = "Hei,\n\nÄlkää soittako minulle enää myyntipuheluita.\n\nTerveisin Aino"


async def add_customer(kirjuri: Kirjuri, headers: dict[str, str], body: dict[str, Any] = CUSTOMER) -> int:
    resp = await kirjuri.client.post("/api/v1/customers", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["id"])


def stored_id(reply: tuple[int, str]) -> int:
    code, text = reply
    assert code == 250, text
    return int(text.rsplit(" ", 1)[1])


async def detected(kirjuri: Kirjuri, iid: int, limit: float = 20) -> None:
    """Wait until the interaction's marketing job has run."""

    async def done() -> bool:
        status = await kirjuri.app[DB].run_read(
            lambda s: s.scalar(select(Job.status).where(Job.interaction_id == iid, Job.kind == "marketing"))
        )
        return bool(status == "done")

    await until(done, limit=limit, what=f"marketing detection of interaction {iid}")


async def marketing_tags(kirjuri: Kirjuri, headers: dict[str, str], iid: int) -> list[dict[str, Any]]:
    await detected(kirjuri, iid)
    detail = await kirjuri.get_json(f"/api/v1/interactions/{iid}", headers)
    return [t["data"] for t in detail["tags"] if t["kind"] == "marketing_ban"]


async def check(kirjuri: Kirjuri, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = await kirjuri.client.post("/api/v1/marketing/check", json=body, headers=headers)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def test_a_ban_in_an_email_is_tagged_proposed_confirmed_and_answered(kirjuri: Kirjuri) -> None:
    agent = await kirjuri.login("agent")
    privacy = await kirjuri.login("privacy")
    customer_id = await add_customer(kirjuri, agent)
    raw = make_mail(
        sender="Aino <aino@example.fi>", subject="Soitot", body=BAN_TEXT, message_id="<ban-1@example.fi>"
    )
    iid = stored_id(await kirjuri.send(raw))

    (tag,) = await marketing_tags(kirjuri, agent, iid)
    assert tag["channels"] == ["phone"]
    assert tag["language"] == "fi"
    assert tag["quote"] == "Älkää soittako minulle enää myyntipuheluita."
    detail = await kirjuri.get_json(f"/api/v1/interactions/{iid}", agent)
    start, end = tag["span"]
    assert detail["body"][start:end] == tag["quote"]
    assert tag["detector_version"]

    customer = await kirjuri.get_json(f"/api/v1/customers/{customer_id}", agent)
    assert customer["marketing_bans"]["active"] == []
    (proposal,) = customer["marketing_bans"]["proposed"]
    assert (proposal["channel"], proposal["source_interaction_id"]) == ("phone", iid)
    # a proposal does not stop anyone yet
    assert (await check(kirjuri, agent, phone="+358451254423", channel="phone"))["allowed"] is True

    # only role privacy decides
    resp = await kirjuri.client.post(f"/api/v1/marketing-bans/{proposal['id']}/confirm", headers=agent)
    assert resp.status == 403
    resp = await kirjuri.client.post(
        f"/api/v1/marketing-bans/{proposal['id']}/confirm", json={"reason": "read the mail"}, headers=privacy
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "active"

    # a marketing tool with its own token asks before calling, by any identifier
    token = await create_service_token(kirjuri.app[DB], "crm", "marketing")
    tool = {"Authorization": f"Bearer {token}"}
    answer = await check(kirjuri, tool, phone="045 125 4423", channel="phone")
    assert answer["allowed"] is False
    assert answer["ban"]["channel"] == "phone"
    assert (await check(kirjuri, tool, customer_id=customer_id, channel="phone"))["allowed"] is False
    assert (await check(kirjuri, tool, email="AINO@example.fi", channel="phone"))["allowed"] is False
    assert (await check(kirjuri, tool, email="aino@example.fi", channel="email"))["allowed"] is True
    # an ingest token may not ask
    ingest = await create_service_token(kirjuri.app[DB], "pbx", "ingest")
    resp = await kirjuri.client.post(
        "/api/v1/marketing/check",
        json={"phone": "045 125 4423", "channel": "phone"},
        headers={"Authorization": f"Bearer {ingest}"},
    )
    assert resp.status == 403

    listed = await kirjuri.get_json("/api/v1/marketing/suppression?channel=phone", tool)
    assert [i["identifier"] for i in listed["items"]] == ["+358451254423"]
    resp = await kirjuri.client.get(
        "/api/v1/marketing/suppression?channel=sms", headers=tool | {"Accept": "text/csv"}
    )
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert list(csv.DictReader(io.StringIO(await resp.text()))) == []  # a phone ban is not an sms ban
    email_list = await kirjuri.get_json("/api/v1/marketing/suppression?channel=email", tool)
    assert email_list["items"] == []

    history = await kirjuri.get_json(f"/api/v1/customers/{customer_id}/marketing-bans/history", privacy)
    assert [(c["old_status"], c["new_status"], c["actor"]) for c in history["items"]] == [
        (None, "proposed", "detector"),
        ("proposed", "active", "user:privacy-user"),
    ]
    assert history["items"][0]["source_interaction_id"] == iid
    resp = await kirjuri.client.get(f"/api/v1/customers/{customer_id}/marketing-bans/history", headers=agent)
    assert resp.status == 403

    # running the detector again neither duplicates the tag nor proposes the ban again
    settings: Settings = kirjuri.app[SETTINGS]
    await detect_interaction(kirjuri.app[DB], iid, settings.marketing, kirjuri.app[HASHER])
    assert len(await marketing_tags(kirjuri, agent, iid)) == 1
    history_again = await kirjuri.get_json(f"/api/v1/customers/{customer_id}/marketing-bans/history", privacy)
    assert len(history_again["items"]) == 2

    audit = await kirjuri.get_json("/api/v1/audit?action=marketing.check", privacy)
    assert {e["actor"] for e in audit["items"]} >= {"service:crm", "user:agent-user"}


async def test_what_is_not_the_customers_own_refusal_proposes_nothing(kirjuri: Kirjuri) -> None:
    agent = await kirjuri.login("agent")
    customer_id = await add_customer(kirjuri, agent)
    mails = [
        # the customer's reply quoting their own earlier words
        "Kiitos, asia selvä.\n\nAino kirjoitti 12.11.2026:\n> Älkää soittako minulle enää myyntipuheluita.",
        # our newsletter's footer in a reply
        "Lasku on maksettu.\n\nJos et halua enää uutiskirjettämme, peruuta tilaus täältä.",
        # someone else's wish, in the very words of a ban
        "Vaimoni pyytää: älkää soittako hänelle myyntipuheluita. Minulle saa soittaa.",
        # scheduling: when to call with offers, not whether
        "Älkää soittako myyntipuheluita ennen yhdeksää.",
        # payment talk, and the company's own marketing team
        "En halua maksaa tätä laskua. Please do not hesitate to contact our marketing team about offers.",
    ]
    ids = []
    for n, body in enumerate(mails):
        raw = make_mail(sender="Aino <aino@example.fi>", body=body, message_id=f"<no-ban-{n}@example.fi>")
        ids.append(stored_id(await kirjuri.send(raw)))
    # our own outbound mail saying how to opt out is not the customer's statement either
    out = make_mail(
        sender="Myynti <myynti@laskukassa.fi>",
        to="Aino <aino@example.fi>",
        body="Voitte kieltää suoramarkkinoinnin milloin tahansa: Kiellän suoramarkkinoinnin -lomake.",
        message_id="<out-1@laskukassa.fi>",
    )
    out_id = stored_id(await kirjuri.send(out))
    for iid in ids:
        assert await marketing_tags(kirjuri, agent, iid) == [], iid
    detail = await kirjuri.get_json(f"/api/v1/interactions/{out_id}", agent)
    assert detail["direction"] == "out" and detail["tags"] == []
    customer = await kirjuri.get_json(f"/api/v1/customers/{customer_id}", agent)
    assert customer["marketing_bans"] == {"active": [], "proposed": []}


async def test_an_unknown_senders_ban_is_kept_on_their_address_and_applied_at_once(
    kirjuri_factory: Any, settings: Settings
) -> None:
    kirjuri = await kirjuri_factory(settings.replace("marketing", auto_apply=True))
    agent = await kirjuri.login("agent")
    raw = make_mail(
        sender="Pekka <pekka@example.com>",
        body="Hello,\nplease unsubscribe me from your newsletter.\n-- \nPekka",
        message_id="<unknown-ban@example.com>",
    )
    iid = stored_id(await kirjuri.send(raw))
    (tag,) = await marketing_tags(kirjuri, agent, iid)
    assert (tag["channels"], tag["language"]) == (["email"], "en")
    answer = await check(kirjuri, agent, email="pekka@example.com", channel="email")
    assert answer["allowed"] is False
    assert answer["ban"]["identifier"]["value"] == "pekka@example.com"
    assert answer["ban"]["status"] == "active"
    listed = await kirjuri.get_json("/api/v1/marketing/suppression?channel=email", agent)
    (item,) = listed["items"]
    assert item["identifier"] == "pekka@example.com"
    assert item["identifier_hash"] == kirjuri.app[HASHER]("email", "pekka@example.com")


async def test_bans_set_and_lifted_by_hand_keep_their_history(kirjuri: Kirjuri) -> None:
    agent = await kirjuri.login("agent")
    privacy = await kirjuri.login("privacy")
    customer_id = await add_customer(kirjuri, agent)
    url = f"/api/v1/customers/{customer_id}/marketing-bans"

    resp = await kirjuri.client.put(f"{url}/all", json={"reason": "asked by phone"}, headers=agent)
    assert resp.status == 403
    resp = await kirjuri.client.put(f"{url}/all", json={}, headers=privacy)
    assert resp.status == 400 and "reason" in (await resp.json())["detail"]
    resp = await kirjuri.client.put(f"{url}/fax", json={"reason": "x"}, headers=privacy)
    assert resp.status == 400
    resp = await kirjuri.client.put(f"{url}/all", json={"reason": "asked by phone"}, headers=privacy)
    assert resp.status == 201, await resp.text()
    # "all" covers every channel
    for channel in ("email", "phone", "sms", "post"):
        assert (await check(kirjuri, agent, customer_id=customer_id, channel=channel))["allowed"] is False

    resp = await kirjuri.client.delete(
        f"{url}/all", json={"reason": "customer consented again"}, headers=privacy
    )
    assert resp.status == 200 and (await resp.json())["status"] == "lifted"
    assert (await check(kirjuri, agent, customer_id=customer_id, channel="post"))["allowed"] is True
    resp = await kirjuri.client.delete(f"{url}/sms", json={"reason": "nothing to lift"}, headers=privacy)
    assert resp.status == 400

    history = await kirjuri.get_json(f"{url}/history", privacy)
    assert [(c["new_status"], c["reason"]) for c in history["items"]] == [
        ("active", "asked by phone"),
        ("lifted", "customer consented again"),
    ]
    assert all(c["actor"] == "user:privacy-user" for c in history["items"])


async def test_a_customers_ban_outlives_the_customer_record_as_keyed_hashes(kirjuri: Kirjuri) -> None:
    """Erasure (the subject-rights issue) deletes the customer; the ban must still answer."""
    agent = await kirjuri.login("agent")
    privacy = await kirjuri.login("privacy")
    customer_id = await add_customer(kirjuri, agent)
    resp = await kirjuri.client.put(
        f"/api/v1/customers/{customer_id}/marketing-bans/email", json={"reason": "asked"}, headers=privacy
    )
    assert resp.status == 201

    async with kirjuri.app[DB].write() as session:
        await session.delete(await session.get(Customer, customer_id))

    answer = await check(kirjuri, agent, email="aino@example.fi", channel="email")
    assert answer["allowed"] is False
    assert answer["ban"]["customer_id"] is None
    assert (await check(kirjuri, agent, phone="045 125 4423", channel="email"))["allowed"] is False
    assert (await check(kirjuri, agent, email="other@example.fi", channel="email"))["allowed"] is True
    listed = await kirjuri.get_json("/api/v1/marketing/suppression?channel=email", agent)
    (item,) = listed["items"]
    assert item["identifier"] is None
    assert item["identifier_hash"] == kirjuri.app[HASHER]("email", "aino@example.fi")
    # the hash is keyed: not the plain sha256 anyone could compute from a list of addresses
    assert item["identifier_hash"] != hashlib.sha256(b"email:aino@example.fi").hexdigest()
