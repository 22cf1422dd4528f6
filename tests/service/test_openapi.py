"""The OpenAPI document matches the routes the app really serves."""

from __future__ import annotations

from tests.conftest import Kirjuri


async def test_openapi_lists_exactly_the_served_routes(kirjuri: Kirjuri) -> None:
    resp = await kirjuri.client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = {
        (r.method, r.resource.canonical)
        for r in kirjuri.app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/api/") and r.method != "HEAD"
    }
    assert documented == served
