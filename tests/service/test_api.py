"""The JSON API as staff and integrators use it: logins, roles, customers, history, lookup,
audit, and the shape of every error."""

from __future__ import annotations

import io

import pytest

from tests import postgres
from tests.conftest import Kirjuri, make_mail

PROBLEM = "application/problem+json"


async def post_customer(k: Kirjuri, auth: dict[str, str], **body: object) -> dict:
    resp = await k.client.post("/api/v1/customers", headers=auth, json=body)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_health_is_open_and_everything_else_needs_a_token(kirjuri: Kirjuri) -> None:
    assert (await kirjuri.client.get("/api/v1/health")).status == 200
    resp = await kirjuri.client.get("/api/v1/customers")
    assert resp.status == 401
    assert resp.content_type == PROBLEM
    assert "Bearer" in (await resp.json())["detail"]
    bad = await kirjuri.client.get("/api/v1/customers", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401


async def test_login_with_wrong_password_is_401(kirjuri: Kirjuri) -> None:
    await kirjuri.add_user("maija", "agent")
    resp = await kirjuri.client.post("/api/v1/session", json={"username": "maija", "password": "wrong"})
    assert resp.status == 401
    missing = await kirjuri.client.post("/api/v1/session", json={"username": "nobody", "password": "x"})
    assert missing.status == 401


async def test_service_token_cannot_read_personal_data(kirjuri: Kirjuri) -> None:
    from service.access import create_service_token
    from service.appkeys import DB

    token = await create_service_token(kirjuri.app[DB], "pbx", "ingest")
    resp = await kirjuri.client.get("/api/v1/interactions", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 403


async def test_audit_log_needs_privacy_or_admin(kirjuri: Kirjuri) -> None:
    agent = await kirjuri.login("agent")
    assert (await kirjuri.client.get("/api/v1/audit", headers=agent)).status == 403
    privacy = await kirjuri.login("privacy")
    assert (await kirjuri.client.get("/api/v1/audit", headers=privacy)).status == 200
    admin = await kirjuri.login("admin")
    assert (await kirjuri.client.get("/api/v1/audit", headers=admin)).status == 200


async def test_customer_is_created_read_corrected_and_searched(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    created = await post_customer(
        kirjuri,
        auth,
        name="Mäkinen Tmi",
        emails=["Pekka.Makinen@Example.FI"],
        phones=["045 125 4423"],
        business_id="24688233",
        address="Mikkolantie 1 B, 00640 Helsinki",
        bank_account="FI21 1234 5600 0007 85",
        contact_person="Pekka Mäkinen",
    )
    assert created["emails"] == ["pekka.makinen@example.fi"]
    assert created["phones"] == ["+358451254423"]
    assert created["business_id"] == "2468823-3"

    resp = await kirjuri.client.patch(
        f"/api/v1/customers/{created['id']}", headers=auth, json={"address": "Uusi katu 2", "phones": []}
    )
    assert resp.status == 200
    patched = await resp.json()
    assert patched["address"] == "Uusi katu 2" and patched["phones"] == []
    assert patched["contact_person"] == "Pekka Mäkinen"

    for q in ("mäkinen", "pekka.makinen@example.fi", "2468823-3", "Example.fi"):
        found = await kirjuri.get_json("/api/v1/customers", headers=auth, params={"q": q})
        assert [c["id"] for c in found["items"]] == [created["id"]], q
    none = await kirjuri.get_json("/api/v1/customers", headers=auth, params={"q": "zzz"})
    assert none == {"items": [], "total": 0, "next": None, "total_exact": True}


async def test_customer_search_by_phone_in_any_format(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    c = await post_customer(kirjuri, auth, name="Soitto Oy", phones=["+358 45 125 4423"])
    found = await kirjuri.get_json("/api/v1/customers", headers=auth, params={"q": "045 125 4423"})
    assert [i["id"] for i in found["items"]] == [c["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "X", "emails": ["not-an-address"]}, "emails"),
        ({"name": "X", "phones": ["12"]}, "phones"),
        ({"name": "X", "business_id": "1234567-8"}, "business_id"),
        ({"name": "X", "emails": "a@b.fi"}, "emails"),
        ({"name": "X", "favourite_colour": "blue"}, "favourite_colour"),
        ({"name": 5}, "name"),
    ],
)
async def test_bad_customer_input_is_400_naming_the_field(kirjuri: Kirjuri, body: dict, field: str) -> None:
    auth = await kirjuri.login("agent")
    resp = await kirjuri.client.post("/api/v1/customers", headers=auth, json=body)
    assert resp.status == 400
    assert resp.content_type == PROBLEM
    problem = await resp.json()
    assert problem["status"] == 400 and problem["field"] == field and problem["detail"]


async def test_non_json_is_415_and_broken_json_is_400_and_huge_is_413(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    resp = await kirjuri.client.post("/api/v1/customers", headers=auth, data="name=x")
    assert resp.status == 415 and resp.content_type == PROBLEM
    resp = await kirjuri.client.post(
        "/api/v1/customers", headers=auth | {"Content-Type": "application/json"}, data="{bad"
    )
    assert resp.status == 400 and resp.content_type == PROBLEM
    resp = await kirjuri.client.post(
        "/api/v1/customers",
        headers=auth | {"Content-Type": "application/json"},
        data=io.BytesIO(b'{"name": "' + b"x" * 2_000_000 + b'"}'),
    )
    assert resp.status == 413 and resp.content_type == PROBLEM


async def test_identifier_of_another_customer_is_409(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    await post_customer(kirjuri, auth, name="A", emails=["shared@example.fi"])
    resp = await kirjuri.client.post(
        "/api/v1/customers", headers=auth, json={"name": "B", "emails": ["SHARED@example.fi"]}
    )
    assert resp.status == 409
    assert "shared@example.fi" in (await resp.json())["detail"]


async def test_unknown_sender_stays_unlinked_until_the_customer_is_created(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    await kirjuri.send(make_mail(sender="Uusi <uusi@firma.fi>", body="Haluaisin tarjouksen"))
    unlinked = await kirjuri.get_json("/api/v1/interactions?unlinked=true", headers=auth)
    assert unlinked["total"] == 1
    assert (await kirjuri.get_json("/api/v1/customers", headers=auth))["total"] == 0

    created = await post_customer(kirjuri, auth, name="Firma Oy", emails=["uusi@firma.fi"])
    assert created["linked_interactions"] == [unlinked["items"][0]["id"]]
    unlinked = await kirjuri.get_json("/api/v1/interactions?unlinked=true", headers=auth)
    assert unlinked["total"] == 0
    timeline = await kirjuri.get_json(f"/api/v1/interactions?customer_id={created['id']}", headers=auth)
    assert timeline["total"] == 1


async def test_adding_an_identifier_later_links_earlier_mail(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    c = await post_customer(kirjuri, auth, name="Firma Oy")
    await kirjuri.send(make_mail(sender="toinen@firma.fi"))
    resp = await kirjuri.client.patch(
        f"/api/v1/customers/{c['id']}", headers=auth, json={"emails": ["toinen@firma.fi"]}
    )
    assert len((await resp.json())["linked_interactions"]) == 1


async def test_internal_mail_is_outbound_and_links_to_the_recipient(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    c = await post_customer(kirjuri, auth, name="Aino Oy", emails=["aino@example.fi"])
    await kirjuri.send(make_mail(sender="Myynti <myynti@laskukassa.fi>", to="aino@example.fi"))
    item = (await kirjuri.get_json("/api/v1/interactions", headers=auth))["items"][0]
    assert item["direction"] == "out"
    assert item["customer_id"] == c["id"]


async def test_mail_naming_two_customers_waits_for_a_person(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    await post_customer(kirjuri, auth, name="A", emails=["a@one.fi"])
    b = await post_customer(kirjuri, auth, name="B", emails=["b@two.fi"])
    await kirjuri.send(make_mail(sender="a@one.fi", to="b@two.fi"))
    item = (await kirjuri.get_json("/api/v1/interactions", headers=auth))["items"][0]
    assert item["customer_id"] is None

    resp = await kirjuri.client.post(
        f"/api/v1/interactions/{item['id']}/link", headers=auth, json={"customer_id": b["id"]}
    )
    assert resp.status == 200
    linked = await resp.json()
    assert linked["customer_id"] == b["id"] and linked["link_method"] == "manual"
    resp = await kirjuri.client.post(
        f"/api/v1/interactions/{item['id']}/link", headers=auth, json={"customer_id": 999}
    )
    assert resp.status == 404


async def test_business_id_in_the_text_links_when_no_address_does(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    c = await post_customer(kirjuri, auth, name="Laskukassa asiakas", business_id="2468823-3")
    await kirjuri.send(
        make_mail(sender="kirjanpito@tilitoimisto.fi", body="Koskee yritystä Y-tunnus 2468823-3.")
    )
    item = (await kirjuri.get_json("/api/v1/interactions", headers=auth))["items"][0]
    assert item["customer_id"] == c["id"] and item["link_method"] == "business_id"


async def test_business_id_added_later_links_earlier_mail_that_names_it(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    await kirjuri.send(make_mail(sender="kp@tilitoimisto.fi", body="Asiakkaamme Y-tunnus on 2468823-3."))
    await kirjuri.send(make_mail(sender="muu@tilitoimisto.fi", body="Y-tunnus 1234567-1 ei ole sama."))
    c = await post_customer(kirjuri, auth, name="Asiakas Oy")
    resp = await kirjuri.client.patch(
        f"/api/v1/customers/{c['id']}", headers=auth, json={"business_id": "2468823-3"}
    )
    linked = (await resp.json())["linked_interactions"]
    assert len(linked) == 1
    detail = await kirjuri.get_json(f"/api/v1/interactions/{linked[0]}", headers=auth)
    assert "2468823-3" in detail["body"] and detail["link_method"] == "business_id"


async def test_defective_address_header_is_not_linked_on_a_guess(kirjuri: Kirjuri) -> None:
    """CVE-2023-27043: `alice@x(<bob@y>` must not link to bob."""
    auth = await kirjuri.login("agent")
    await post_customer(kirjuri, auth, name="Bob", emails=["bob@example.fi"])
    raw = (
        b"From: alice@evil.example(<bob@example.fi>\r\nTo: journal@capture.test\r\n"
        b"Subject: hi\r\nMessage-ID: <cve@evil.example>\r\n\r\nhello\r\n"
    )
    code, _ = await kirjuri.send(raw)
    assert code == 250
    item = (await kirjuri.get_json("/api/v1/interactions", headers=auth))["items"][0]
    assert item["customer_id"] is None
    assert item["needs_review"] is True
    # and creating a customer for that address later does not link it either
    await post_customer(kirjuri, auth, name="Alice", emails=["alice@evil.example"])
    again = await kirjuri.get_json(f"/api/v1/interactions/{item['id']}", headers=auth)
    assert again["customer_id"] is None


async def test_interaction_detail_has_participants_body_and_attachments(kirjuri: Kirjuri) -> None:
    from email import policy
    from email.message import EmailMessage

    auth = await kirjuri.login("agent")
    msg = EmailMessage()
    msg["From"] = "Aino <aino@example.fi>"
    msg["To"] = "myynti@laskukassa.fi"
    msg["Cc"] = "Kirjanpito <kp@example.fi>"
    msg["Subject"] = "Liite"
    msg["Message-ID"] = "<att@example.fi>"
    msg.set_content("Teksti")
    msg.add_alternative("<p>Teksti <b>HTML</b></p>", subtype="html")
    msg.add_attachment(b"%PDF-1.4 lasku", maintype="application", subtype="pdf", filename="lasku.pdf")
    await kirjuri.send(msg.as_bytes(policy=policy.SMTP))
    item = (await kirjuri.get_json("/api/v1/interactions", headers=auth))["items"][0]
    detail = await kirjuri.get_json(f"/api/v1/interactions/{item['id']}", headers=auth)
    assert detail["body"] == "Teksti"
    assert {(p["role"], p["value"]) for p in detail["participants"]} == {
        ("from", "aino@example.fi"),
        ("to", "myynti@laskukassa.fi"),
        ("cc", "kp@example.fi"),
    }
    assert [(a["filename"], a["content_type"], a["size"]) for a in detail["attachments"]] == [
        ("lasku.pdf", "application/pdf", len(b"%PDF-1.4 lasku"))
    ]


async def test_list_item_summarises_the_interaction_as_its_detail_does(kirjuri: Kirjuri) -> None:
    """Lists read their rows apart from the detail view (a snippet cut in the database, the
    attachments counted there): the two must agree, characters not bytes."""
    from email import policy
    from email.message import EmailMessage

    auth = await kirjuri.login("agent")
    body = "Hyvää päivää, äöå ÄÖÅ! " * 15  # 360 characters, more bytes in UTF-8
    msg = EmailMessage()
    msg["From"] = "Aino Äijälä <aino@example.fi>"
    msg["To"] = "myynti@laskukassa.fi, Kirjanpito <kp@example.fi>"
    msg["Subject"] = "Kaksi liitettä"
    msg["Message-ID"] = "<summary@example.fi>"
    msg.set_content(body)
    for name in ("lasku.pdf", "kuitti.pdf"):
        msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename=name)
    await kirjuri.send(msg.as_bytes(policy=policy.SMTP))
    item = (await kirjuri.get_json("/api/v1/interactions", headers=auth))["items"][0]
    detail = await kirjuri.get_json(f"/api/v1/interactions/{item['id']}", headers=auth)
    assert item["snippet"] == detail["body"][:200] == body.strip()[:200]
    assert item["attachment_count"] == len(detail["attachments"]) == 2
    assert [(p["role"], p["value"], p["name"]) for p in item["participants"]] == [
        ("from", "aino@example.fi", "Aino Äijälä"),
        ("to", "myynti@laskukassa.fi", None),
        ("to", "kp@example.fi", "Kirjanpito"),
    ]
    assert {k: detail[k] for k in item} == item


async def test_html_only_mail_is_searchable_as_text(kirjuri: Kirjuri) -> None:
    from email import policy
    from email.message import EmailMessage

    auth = await kirjuri.login("agent")
    msg = EmailMessage()
    msg["From"] = "aino@example.fi"
    msg["Subject"] = "Uutiskirje"
    msg.set_content(
        "<html><style>p{}</style><p>Hyvää&nbsp;päivää</p><p>Toinen kappale</p></html>", subtype="html"
    )
    await kirjuri.send(msg.as_bytes(policy=policy.SMTP))
    found = await kirjuri.get_json("/api/v1/interactions", headers=auth, params={"q": "päivää"})
    assert found["total"] == 1
    detail = await kirjuri.get_json(f"/api/v1/interactions/{found['items'][0]['id']}", headers=auth)
    assert detail["body"] == "Hyvää päivää\n\nToinen kappale"


async def test_full_text_search_language(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    to = "myynti@firma.test"
    await kirjuri.send(make_mail(to=to, subject="Äänitys", body="Laskutus siirtyy ensi kuussa. Kiitos!"))
    await kirjuri.send(make_mail(to=to, subject="Toinen", body="Laskun eräpäivä on huomenna."))
    await kirjuri.send(make_mail(to=to, subject="Kolmas", body="Kokous torstaina."))

    async def ids(q: str) -> int:
        resp = await kirjuri.client.get("/api/v1/interactions", headers=auth, params={"q": q})
        assert resp.status == 200, await resp.text()
        return (await resp.json())["total"]

    assert await ids("äänitys") == 1  # case folds for Ä
    assert await ids("lasku*") == 2  # prefix over inflected forms
    assert await ids("lasku* -eräpäivä") == 1
    assert await ids("kokous OR eräpäivä") == 2
    assert await ids('"siirtyy ensi kuussa"') == 1
    assert await ids("aino@example.fi") == 3  # participants are searchable


@pytest.mark.skipif(
    not postgres.wanted(),
    reason="stemming is PostgreSQL's; SQLite's FTS5 matches words as written (lasku* covers inflection)",
)
async def test_postgresql_search_finds_inflected_forms_in_each_language(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    to = "myynti@firma.test"
    for subject, body in [
        ("Eräpäivä", "Laskun eräpäivä on huomenna."),
        ("Muistutus", "Lähetimme teille laskuja viime viikolla."),
        ("Betalning", "Fakturorna är betalda, tack."),
        ("Payment", "The invoices were paid, thanks."),
        ("Kokous", "Kokous torstaina."),
    ]:
        await kirjuri.send(make_mail(to=to, subject=subject, body=body))

    async def subjects(q: str) -> set[str]:
        found = await kirjuri.get_json("/api/v1/interactions", headers=auth, params={"q": q})
        return {i["subject"] for i in found["items"]}

    assert await subjects("lasku") == {"Eräpäivä", "Muistutus"}  # laskun, laskuja
    assert await subjects("faktura") == {"Betalning"}  # fakturorna
    assert await subjects("invoice") == {"Payment"}  # invoices
    found = await kirjuri.get_json("/api/v1/interactions", headers=auth, params={"q": "lasku"})
    assert all("\x02" in i["match"] for i in found["items"])  # the matched word is marked


@pytest.mark.parametrize("q", ['"unclosed', "OR", "kokous OR", "-only", "***", "a" * 501])
async def test_malformed_query_is_400_not_500(kirjuri: Kirjuri, q: str) -> None:
    auth = await kirjuri.login("agent")
    resp = await kirjuri.client.get("/api/v1/interactions", headers=auth, params={"q": q})
    assert resp.status == 400
    assert resp.content_type == PROBLEM
    assert (await resp.json())["detail"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "limit=x",
        "channel=fax",
        "since=yesterday",
        "unlinked=maybe",
        "customer_id=abc",
        "cursor=!!!",
        "since=2026-11-02&until=2026-11-01",
    ],
)
async def test_bad_list_parameters_are_400(kirjuri: Kirjuri, query: str) -> None:
    auth = await kirjuri.login("agent")
    resp = await kirjuri.client.get(f"/api/v1/interactions?{query}", headers=auth)
    assert resp.status == 400, query
    assert resp.content_type == PROBLEM


async def test_pagination_walks_every_item_once(kirjuri: Kirjuri) -> None:
    from datetime import UTC, datetime, timedelta

    auth = await kirjuri.login("agent")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(7):
        # two share a timestamp so the cursor must break the tie by id
        await kirjuri.send(make_mail(body=f"viesti {n}", when=start + timedelta(days=n // 2 * 2)))
    seen: list[int] = []
    url = "/api/v1/interactions?limit=3"
    while url:
        page = await kirjuri.get_json(url, headers=auth)
        assert page["total"] == 7
        seen.extend(i["id"] for i in page["items"])
        url = f"/api/v1/interactions?limit=3&cursor={page['next']}" if page["next"] else ""
    assert len(seen) == len(set(seen)) == 7

    window = await kirjuri.get_json(
        "/api/v1/interactions",
        headers=auth,
        params={"since": "2026-01-03", "until": "2026-01-05T00:00:00+00:00"},
    )
    assert window["total"] == 2


async def test_subject_lookup_finds_linked_and_unlinked_mail(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    await kirjuri.send(make_mail(sender="liisa@koti.fi", body="ennen asiakkuutta"))
    await kirjuri.send(make_mail(sender="joku@muu.fi", to="liisa@koti.fi", cc="a@b.fi", body="kopio"))
    await kirjuri.send(make_mail(sender="vieras@muu.fi", body="ei liity"))

    nobody = await kirjuri.get_json("/api/v1/subjects?email=Liisa@Koti.fi", headers=auth)
    assert nobody["customer"] is None
    assert nobody["interactions"]["total"] == 2

    c = await post_customer(kirjuri, auth, name="Liisa", emails=["liisa@koti.fi"], phones=["0401234567"])
    by_phone = await kirjuri.get_json("/api/v1/subjects?phone=040 123 4567", headers=auth)
    assert by_phone["customer"]["id"] == c["id"]
    assert by_phone["interactions"]["total"] == 2
    by_id = await kirjuri.get_json(f"/api/v1/subjects?customer_id={c['id']}", headers=auth)
    assert by_id["interactions"]["total"] == 2
    assert (await kirjuri.client.get("/api/v1/subjects", headers=auth)).status == 400
    assert (await kirjuri.client.get("/api/v1/subjects?customer_id=404", headers=auth)).status == 404


async def test_every_read_of_personal_data_leaves_an_audit_row(kirjuri: Kirjuri) -> None:
    agent = await kirjuri.login("agent", "maija")
    c = await post_customer(kirjuri, agent, name="Aino Oy", emails=["aino@example.fi"])
    await kirjuri.send(make_mail())
    item = (await kirjuri.get_json("/api/v1/interactions", headers=agent))["items"][0]
    await kirjuri.client.get(f"/api/v1/customers/{c['id']}", headers=agent)
    await kirjuri.client.get(f"/api/v1/interactions/{item['id']}", headers=agent)
    await kirjuri.client.get(f"/api/v1/interactions/{item['id']}/raw", headers=agent)
    await kirjuri.client.get("/api/v1/subjects?email=aino@example.fi", headers=agent)
    await kirjuri.client.get("/api/v1/customers?q=aino", headers=agent)

    privacy = await kirjuri.login("privacy", "tietosuoja")
    resp = await kirjuri.client.get("/api/v1/audit", headers=privacy, params={"actor": "user:maija"})
    rows = (await resp.json())["items"]
    actions = [r["action"] for r in reversed(rows)]
    assert actions == [
        "customer.create",
        "interaction.list",
        "customer.read",
        "interaction.read",
        "interaction.raw",
        "subject.lookup",
        "customer.search",
    ]
    reads = {r["action"]: r for r in rows}
    assert reads["interaction.read"]["interaction_id"] == item["id"]
    assert reads["interaction.read"]["customer_id"] == c["id"]
    assert reads["interaction.list"]["detail"]["ids"] == [item["id"]]
    by_customer = await kirjuri.get_json("/api/v1/audit", headers=privacy, params={"customer_id": c["id"]})
    assert {r["action"] for r in by_customer["items"]} >= {
        "customer.create",
        "customer.read",
        "subject.lookup",
    }


async def test_unknown_paths_and_methods_are_problems(kirjuri: Kirjuri) -> None:
    auth = await kirjuri.login("agent")
    resp = await kirjuri.client.get("/api/v1/customers/999", headers=auth)
    assert resp.status == 404 and resp.content_type == PROBLEM
    resp = await kirjuri.client.get("/api/v1/customers/abc", headers=auth)
    assert resp.status == 400
    resp = await kirjuri.client.get("/api/v1/nothing-here", headers=auth)
    assert resp.status == 404 and resp.content_type == PROBLEM
    # outside the API, a visitor who is not logged in sees the login page, not what exists
    resp = await kirjuri.client.get("/nothing-here", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login?next=/nothing-here"
    resp = await kirjuri.client.delete("/api/v1/customers", headers=auth)
    assert resp.status == 405 and resp.content_type == PROBLEM
