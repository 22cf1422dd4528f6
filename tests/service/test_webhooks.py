"""Webhooks out to a real HTTP receiver on loopback: signed events from the outbox, at least
once with retries, de-duplicated downstream by event id when the receiver goes away mid-stream
or loses its answers, dead letters after the attempts run out and redelivered on request, and
an erasure removing what is still queued about the person."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from service.settings import Settings
from service.signing import HEADER, verify
from tests.conftest import Kirjuri, make_mail, until

SECRET = "a-shared-secret-of-some-length"


class Receiver:
    """A CRM's webhook endpoint: checks the signature, applies each event id once."""

    def __init__(self) -> None:
        self.applied: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self.fail = 0  # answer 500 to this many more requests
        self.lose_answers = 0  # apply, then answer 500 (the answer "lost") this many times
        self.port = 0
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(SECRET, body, request.headers.get(HEADER, "")):
            return web.Response(status=401)
        self.calls += 1
        if self.fail > 0:
            self.fail -= 1
            return web.Response(status=500)
        event = json.loads(body)
        self.applied.setdefault(event["id"], event)
        if self.lose_answers > 0:
            self.lose_answers -= 1
            return web.Response(status=500)
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.applied.values() if e["type"] == type_]


def fast(settings: Settings, attempts: int = 1000) -> Settings:
    """Retries every 0.3 s at most; the default attempts (about 4 minutes of them) outlast any
    outage these tests make, however slow the machine."""
    return settings.replace("transcription", enabled=False).replace(
        "webhooks", backoff_seconds=0.05, max_backoff_seconds=0.3, poll_seconds=0.05, max_attempts=attempts
    )


async def subscribe(kirjuri: Kirjuri, admin: dict[str, str], url: str, events: list[str]) -> dict[str, Any]:
    resp = await kirjuri.client.post(
        "/api/v1/webhooks", json={"url": url, "secret": SECRET, "events": events}, headers=admin
    )
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def deliveries(kirjuri: Kirjuri, admin: dict[str, str], sub: dict[str, Any], status: str) -> list[Any]:
    page = await kirjuri.get_json(f"/api/v1/webhooks/{sub['id']}/deliveries?status={status}", admin)
    return list(page["items"])


async def test_events_are_signed_minimal_and_applied_once_through_outages(
    kirjuri_factory: Any, settings: Settings
) -> None:
    kirjuri: Kirjuri = await kirjuri_factory(fast(settings))
    receiver = Receiver()
    await receiver.start()
    admin = await kirjuri.login("admin")
    agent = await kirjuri.login("agent")
    bad = await kirjuri.client.post(
        "/api/v1/webhooks", json={"url": "ftp://x", "secret": SECRET, "events": []}, headers=admin
    )
    assert bad.status == 400
    refused = await kirjuri.client.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "secret": SECRET, "events": ["interaction.created"]},
        headers=agent,
    )
    assert refused.status == 403
    sub = await subscribe(
        kirjuri, admin, receiver.url, ["interaction.created", "interaction.linked", "marketing_ban.changed"]
    )

    async def delivered(count: int) -> bool:
        return len(await deliveries(kirjuri, admin, sub, "delivered")) == count

    code, text = await kirjuri.send(
        make_mail(sender="Aino <aino@example.fi>", body="Laskun 4471 salainen sisältö")
    )
    assert code == 250
    iid = int(text.rsplit(" ", 1)[1])
    await until(lambda: len(receiver.of_type("interaction.created")) == 1)
    (created,) = receiver.of_type("interaction.created")
    assert created["data"] == {"interaction_id": iid, "channel": "email", "customer_id": None}
    assert set(created) == {"id", "type", "created_at", "data"}
    assert "salainen" not in json.dumps(created)  # no message bodies leave
    resp = await kirjuri.client.post(
        "/api/v1/customers", json={"name": "Aino Oy", "emails": ["aino@example.fi"]}, headers=agent
    )
    cid = (await resp.json())["id"]
    await until(lambda: len(receiver.of_type("interaction.linked")) == 1)
    assert receiver.of_type("interaction.linked")[0]["data"]["customer_id"] == cid
    privacy = await kirjuri.login("privacy")
    resp = await kirjuri.client.put(
        f"/api/v1/customers/{cid}/marketing-bans/phone",
        json={"reason": "asked by phone, secret words"},
        headers=privacy,
    )
    assert resp.status == 201
    await until(lambda: len(receiver.of_type("marketing_ban.changed")) == 1)
    ban_event = receiver.of_type("marketing_ban.changed")[0]
    assert ban_event["data"] | {"ban_id": 0} == {
        "ban_id": 0,
        "customer_id": cid,
        "channel": "phone",
        "status": "active",
    }
    assert "secret words" not in json.dumps(ban_event)

    # the three answers were read (no request is cut off by the stop below): one call each
    await until(lambda: delivered(3), what="the first three deliveries")
    assert receiver.calls == 3

    # the receiver goes away mid-stream: nothing is lost, and once back each event arrives once
    await receiver.stop()
    for n in range(5):
        assert (await kirjuri.send(make_mail(sender=f"p{n}@example.org", body=f"viesti {n}")))[0] == 250

    async def each_failed_once() -> bool:  # connection refused: no call reached the receiver
        pending = await deliveries(kirjuri, admin, sub, "pending")
        return len(pending) == 5 and all(d["attempts"] >= 1 and d["last_error"] for d in pending)

    await until(each_failed_once, what="an attempt at each of the five deliveries to fail")
    receiver.lose_answers = 2  # and two answers get lost after the event was applied
    await receiver.start()
    await until(lambda: delivered(8), what="all eight deliveries")
    assert await deliveries(kirjuri, admin, sub, "pending") == []
    assert await deliveries(kirjuri, admin, sub, "dead") == []
    assert len(receiver.of_type("interaction.created")) == 6
    # nothing is left to send: the five new events took one call each, and the two whose answer
    # was lost one more each (applied only once); the three earlier ones took one each
    assert receiver.calls == 3 + 5 + 2
    await receiver.stop()


async def test_dead_letters_are_listed_and_redelivered(kirjuri_factory: Any, settings: Settings) -> None:
    kirjuri: Kirjuri = await kirjuri_factory(fast(settings, attempts=2))
    receiver = Receiver()
    await receiver.start()
    receiver.fail = 2
    admin = await kirjuri.login("admin")
    sub = await subscribe(kirjuri, admin, receiver.url, ["interaction.created"])
    assert (await kirjuri.send(make_mail(sender="x@example.org")))[0] == 250

    async def died() -> bool:
        return bool(await deliveries(kirjuri, admin, sub, "dead"))

    await until(died, what="the delivery to die")
    (letter,) = await deliveries(kirjuri, admin, sub, "dead")
    assert letter["attempts"] == 2 and letter["last_error"] == "HTTP 500"
    assert receiver.applied == {}
    resp = await kirjuri.client.post(f"/api/v1/webhooks/deliveries/{letter['id']}/redeliver", headers=admin)
    assert resp.status == 202
    await until(lambda: len(receiver.applied) == 1)
    assert (await kirjuri.get_json(f"/api/v1/webhooks/{sub['id']}/deliveries?status=delivered", admin))[
        "total"
    ] == 1
    resp = await kirjuri.client.delete(f"/api/v1/webhooks/{sub['id']}", headers=admin)
    assert resp.status == 204
    assert (await kirjuri.get_json("/api/v1/webhooks", admin))["total"] == 0
    await receiver.stop()


async def test_an_erasure_removes_queued_events_about_the_person(
    kirjuri_factory: Any, settings: Settings
) -> None:
    kirjuri: Kirjuri = await kirjuri_factory(fast(settings))
    receiver = Receiver()
    await receiver.start()
    port = receiver.port
    await receiver.stop()  # the CRM is down while the person's mail comes in and is erased
    receiver.port = port
    admin = await kirjuri.login("admin")
    privacy = await kirjuri.login("privacy")
    sub = await subscribe(kirjuri, admin, receiver.url, ["interaction.created", "subject.erased"])
    assert (await kirjuri.send(make_mail(sender="poistettava@example.org", body="x")))[0] == 250
    assert (await kirjuri.send(make_mail(sender="muu@example.org", body="y")))[0] == 250
    resp = await kirjuri.client.post(
        "/api/v1/subject-requests",
        json={"kind": "erasure", "identifiers": {"email": "poistettava@example.org"}},
        headers=privacy,
    )
    rid = (await resp.json())["id"]
    report = await (
        await kirjuri.client.post(f"/api/v1/subject-requests/{rid}/execute", headers=privacy)
    ).json()
    assert report["report"]["erased"]["webhook_events"] == 1
    await receiver.start()
    await until(lambda: len(receiver.of_type("subject.erased")) == 1)
    await until(lambda: len(receiver.of_type("interaction.created")) >= 1)

    async def drained() -> bool:  # then an event that should not come never will
        return not await deliveries(kirjuri, admin, sub, "pending")

    await until(drained, what="the outbox to empty")
    assert len(await deliveries(kirjuri, admin, sub, "delivered")) == 2
    assert await deliveries(kirjuri, admin, sub, "dead") == []
    created = receiver.of_type("interaction.created")
    assert len(created) == 1  # only the other person's mail
    assert receiver.of_type("subject.erased")[0]["data"]["request_id"] == rid
    await receiver.stop()
