"""Chats from the website's chat platform: a session becomes one interaction on the customer's
timeline, later posts append only new messages, the text is searchable, the marketing-ban
detector reads only the customer's messages, and signed webhooks are checked."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select

from service.access import create_service_token
from service.appkeys import DB
from service.settings import Secret, Settings
from service.signing import sign
from storage.jobs import Job
from tests.conftest import Kirjuri, until


async def detected(kirjuri: Kirjuri, iid: int, limit: float = 20) -> None:
    """Wait until every marketing job of the interaction (one per post) has run."""

    async def done() -> bool:
        states = await kirjuri.app[DB].run_read(
            lambda s: list(
                s.scalars(select(Job.status).where(Job.interaction_id == iid, Job.kind == "marketing"))
            )
        )
        return bool(states) and all(state == "done" for state in states)

    await until(done, limit=limit, what=f"marketing detection of interaction {iid}")


SESSION = {
    "external_id": "chat-991",
    "started_at": "2026-11-25T09:00:00+02:00",
    "participants": [
        {"role": "customer", "name": "Aino", "email": "Aino@Example.fi"},
        {"role": "agent", "name": "Maija"},
    ],
    "messages": [
        {"at": "2026-11-25T09:00:05+02:00", "role": "customer", "text": "Hei, missä on laskuni 4471?"},
        {
            "at": "2026-11-25T09:00:40+02:00",
            "role": "agent",
            "text": "Hei! Katson heti. Älkää soittako ennen yhdeksää.",
        },
    ],
}


async def ingest_headers(kirjuri: Kirjuri) -> dict[str, str]:
    return {"Authorization": f"Bearer {await create_service_token(kirjuri.app[DB], 'chat', 'ingest')}"}


async def test_a_chat_session_lands_on_the_timeline_and_grows(kirjuri: Kirjuri) -> None:
    agent = await kirjuri.login("agent")
    ingest = await ingest_headers(kirjuri)
    resp = await kirjuri.client.post(
        "/api/v1/customers", json={"name": "Aino Oy", "emails": ["aino@example.fi"]}, headers=agent
    )
    cid = (await resp.json())["id"]

    resp = await kirjuri.client.post("/api/v1/chats", json=SESSION, headers=ingest)
    assert resp.status == 201, await resp.text()
    first = await resp.json()
    iid = first["interaction_id"]
    assert first["appended"] == 2

    more = SESSION | {
        "messages": SESSION["messages"][1:]
        + [
            {
                "at": "2026-11-25T09:02:00+02:00",
                "role": "customer",
                "text": "Älkää soittako minulle enää myyntipuheluita.",
            }
        ]
    }
    resp = await kirjuri.client.post("/api/v1/chats", json=more, headers=ingest)
    assert resp.status == 200
    assert await resp.json() == {"interaction_id": iid, "created": False, "appended": 1}

    detail = await kirjuri.get_json(f"/api/v1/interactions/{iid}", agent)
    assert detail["channel"] == "chat" and detail["customer_id"] == cid
    assert detail["body"].splitlines() == [
        "[customer] Hei, missä on laskuni 4471?",
        "[agent] Hei! Katson heti. Älkää soittako ennen yhdeksää.",
        "[customer] Älkää soittako minulle enää myyntipuheluita.",
    ]
    found = await kirjuri.get_json("/api/v1/interactions?q=myyntipuheluita", agent)
    assert [i["id"] for i in found["items"]] == [iid]
    timeline = await kirjuri.get_json(f"/api/v1/interactions?customer_id={cid}&channel=chat", agent)
    assert timeline["total"] == 1

    # the customer's refusal is tagged; the agent's "don't call before nine" is not theirs
    await detected(kirjuri, iid)
    detail = await kirjuri.get_json(f"/api/v1/interactions/{iid}", agent)
    tags = [t["data"] for t in detail["tags"] if t["kind"] == "marketing_ban"]
    assert [t["quote"] for t in tags] == ["Älkää soittako minulle enää myyntipuheluita."]
    assert tags[0]["channels"] == ["phone"]


async def test_nul_characters_and_long_names_do_not_keep_a_chat_out(kirjuri: Kirjuri) -> None:
    """PostgreSQL keeps no NUL in text or JSON and no longer name than its column: the chat
    is stored without the NULs and with the name cut, on a new post and on an appended one."""
    agent = await kirjuri.login("agent")
    ingest = await ingest_headers(kirjuri)
    odd = SESSION | {
        "external_id": "chat-nul",
        "participants": [{"role": "customer", "name": "Aino\u0000 " + "Asiakas" * 60}],
        "messages": [
            {"at": "2026-11-25T09:00:05+02:00", "role": "customer", "text": "Hei\u0000, lasku 4471?"}
        ],
    }
    resp = await kirjuri.client.post("/api/v1/chats", json=odd, headers=ingest)
    assert resp.status == 201, await resp.text()
    iid = (await resp.json())["interaction_id"]
    later = odd | {
        "messages": [{"at": "2026-11-25T09:01:00+02:00", "role": "customer", "text": "Kiitos\u0000!"}]
    }
    resp = await kirjuri.client.post("/api/v1/chats", json=later, headers=ingest)
    assert resp.status == 200, await resp.text()
    detail = await kirjuri.get_json(f"/api/v1/interactions/{iid}", agent)
    assert detail["body"].splitlines() == ["[customer] Hei, lasku 4471?", "[customer] Kiitos!"]
    (who,) = detail["participants"]
    assert who["name"].startswith("Aino Asiakas") and len(who["name"]) == 300


async def test_bad_chats_are_refused_with_the_reason(kirjuri: Kirjuri) -> None:
    ingest = await ingest_headers(kirjuri)
    cases: list[tuple[Any, str]] = [
        (SESSION | {"messages": []}, "messages"),
        (SESSION | {"messages": [{"at": "2026-11-25T09:00:00Z", "role": "bot", "text": "x"}]}, "messages[0]"),
        (
            SESSION | {"participants": [{"role": "customer", "email": "not-an-address"}]},
            "participants[0].email",
        ),
        (SESSION | {"external_id": ""}, "external_id"),
    ]
    for body, field in cases:
        resp = await kirjuri.client.post("/api/v1/chats", json=body, headers=ingest)
        assert resp.status == 400, body
        assert (await resp.json())["field"] == field
    resp = await kirjuri.client.post("/api/v1/chats", json=SESSION)
    assert resp.status == 401
    marketing = {"Authorization": f"Bearer {await create_service_token(kirjuri.app[DB], 'm', 'marketing')}"}
    resp = await kirjuri.client.post("/api/v1/chats", json=SESSION, headers=marketing)
    assert resp.status == 403


async def test_signed_chat_webhooks_are_checked(kirjuri_factory: Any, settings: Settings) -> None:
    kirjuri: Kirjuri = await kirjuri_factory(settings.replace("chat", secret=Secret("s3cret-shared")))
    body = json.dumps(SESSION).encode()

    async def post(signature: str) -> int:
        headers = {"Content-Type": "application/json", "X-Kirjuri-Signature": signature}
        return (await kirjuri.client.post("/api/v1/chats", data=body, headers=headers)).status

    assert await post(sign("s3cret-shared", body)) == 201
    assert await post(sign("wrong secret", body)) == 401
    assert await post(sign("s3cret-shared", body + b" ")) == 401
    assert await post(sign("s3cret-shared", body, at=int(time.time()) - 3600)) == 401  # replayed
    assert await post("garbage") == 401
