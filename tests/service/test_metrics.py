"""`GET /api/v1/metrics` for Prometheus: per-route HTTP counts and latency, the store's state
(interactions, jobs, webhook deliveries), for a monitoring token or an admin only."""

from __future__ import annotations

import re

from service.access import create_service_token
from service.appkeys import DB
from tests.conftest import Kirjuri, make_mail


def value(text: str, name: str, **labels: str) -> float:
    """The sample of `name` whose labels include these, read as Prometheus would."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        inside, _, number = line[len(name) + 1 :].rpartition("} ")
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', inside))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(number)
    raise AssertionError(f"{name} {labels} not in the metrics")


async def test_metrics_count_requests_and_read_the_store(kirjuri: Kirjuri) -> None:
    agent = await kirjuri.login("agent")
    token = await create_service_token(kirjuri.app[DB], "prometheus", "metrics")
    monitor = {"Authorization": f"Bearer {token}"}
    assert (await kirjuri.send(make_mail()))[0] == 250
    for _ in range(3):
        assert (await kirjuri.client.get("/api/v1/customers/999", headers=agent)).status == 404
    assert (await kirjuri.client.get("/api/v1/interactions", headers=agent)).status == 200

    resp = await kirjuri.client.get("/api/v1/metrics", headers=monitor)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await resp.text()
    assert value(text, "kirjuri_http_requests_total", route="/api/v1/customers/{id}", status="404") == 3
    assert value(text, "kirjuri_http_request_seconds_count", route="/api/v1/interactions", method="GET") == 1
    assert value(text, "kirjuri_http_request_seconds_bucket", route="/api/v1/interactions", le="+Inf") == 1
    assert value(text, "kirjuri_interactions", channel="email") == 1
    assert value(text, "kirjuri_jobs", kind="marketing") >= 1
    assert "aino" not in text.lower()  # counts and times only

    assert (await kirjuri.client.get("/api/v1/metrics", headers=agent)).status == 403
    assert (await kirjuri.client.get("/api/v1/metrics")).status == 401
    admin = await kirjuri.login("admin")
    assert (await kirjuri.client.get("/api/v1/metrics", headers=admin)).status == 200
