"""Customers in from a CRM: the idempotent upsert by the CRM's id (with where each field's value
came from), checked identifiers (business ID and personal identity code check characters,
E.164 phones, emails), and the CSV import from the command line with bad rows reported by
line, good rows in, a dry run that changes nothing and a re-run that is a no-op."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from service.access import create_service_token
from service.appkeys import DB
from service.settings import Settings
from tests.conftest import Kirjuri, make_mail, run_kirjuri


async def crm_token(kirjuri: Kirjuri, scope: str = "crm") -> dict[str, str]:
    token = await create_service_token(kirjuri.app[DB], f"{scope}-sync", scope)
    return {"Authorization": f"Bearer {token}"}


async def test_a_crm_upserts_customers_idempotently_with_sources(kirjuri: Kirjuri) -> None:
    crm = await crm_token(kirjuri)
    privacy = await kirjuri.login("privacy")
    code, text = await kirjuri.send(make_mail(sender="Aino <aino@example.fi>", body="Hei"))
    assert code == 250
    earlier = int(text.rsplit(" ", 1)[1])
    body = {
        "name": "Aino Asiakas",
        "emails": ["Aino@Example.fi"],
        "phones": ["045 125 4423"],
        "personal_id": "131052-308t",
        "address": "Mikkolantie 1 B, 00640 Helsinki",
        "sources": {"address": "contact information service", "personal_id": "customer"},
    }
    resp = await kirjuri.client.put("/api/v1/customers/external/hubspot/C-17", json=body, headers=crm)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    cid = created["id"]
    assert created["emails"] == ["aino@example.fi"] and created["phones"] == ["+358451254423"]
    assert created["personal_id"] == "131052-308T"
    assert created["linked_interactions"] == [earlier]
    sources = {k: v["source"] for k, v in created["field_sources"].items()}
    assert sources == {
        "name": "hubspot",
        "emails": "hubspot",
        "phones": "hubspot",
        "personal_id": "customer",
        "address": "contact information service",
    }

    again = await kirjuri.client.put("/api/v1/customers/external/hubspot/C-17", json=body, headers=crm)
    assert again.status == 200
    assert (await again.json())["changed"] == []
    history = await kirjuri.get_json(f"/api/v1/customers/{cid}/history", privacy)
    assert history["items"] == []  # the same data again is no change

    moved = body | {"address": "Uusitie 2, 00100 Helsinki", "sources": {"address": "credit register"}}
    resp = await kirjuri.client.put("/api/v1/customers/external/hubspot/C-17", json=moved, headers=crm)
    assert (await resp.json())["changed"] == ["address"]
    history = await kirjuri.get_json(f"/api/v1/customers/{cid}/history", privacy)
    (change,) = history["items"]
    assert change["old_value"].startswith("Mikkolantie") and change["actor"] == "service:crm-sync"
    record = await kirjuri.get_json(f"/api/v1/customers/{cid}", privacy)
    assert record["field_sources"]["address"]["source"] == "credit register"

    bad = [
        ({"name": "X", "personal_id": "131052-308U"}, "personal_id"),
        ({"name": "X", "business_id": "1234567-8"}, "business_id"),
        ({"name": "X", "emails": ["not an address"]}, "emails"),
        ({"name": "X", "phones": ["12"]}, "phones"),
        ({"emails": ["new@example.fi"]}, "name"),
    ]
    for wrong, field in bad:
        resp = await kirjuri.client.put("/api/v1/customers/external/hubspot/C-99", json=wrong, headers=crm)
        assert resp.status == 400, wrong
        problem = await resp.json()
        assert problem["field"] == field
        assert "131052" not in problem["detail"]  # a personal identity code is never echoed
    taken = {"name": "Toinen", "emails": ["aino@example.fi"]}
    resp = await kirjuri.client.put("/api/v1/customers/external/hubspot/C-18", json=taken, headers=crm)
    assert resp.status == 409
    ingest = await crm_token(kirjuri, "ingest")
    resp = await kirjuri.client.put(
        "/api/v1/customers/external/hubspot/C-19", json={"name": "Y"}, headers=ingest
    )
    assert resp.status == 403


CSV = """\ufefftunnus;nimi;y-tunnus;sähköposti;puhelin;hetu;osoite
A1;Laskukassa Oy;2468823-3;info@laskukassa-asiakas.fi;045 125 4423;;Mikkolantie 1 B
A2;Virheellinen Oy;1234567-8;virhe@example.fi;;;
A3;Aino Asiakas;;aino@example.fi, aino.home@example.org;040 765 4321;131052-308T;
;Ei tunnusta;;ei@example.fi;;;
A5;Väärä posti;;ei-osoite;;;
A6;Toinen Aino;;aino@example.fi;;;
"""


def run_import(settings: Settings, path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    done = run_kirjuri(settings, "customers", "import", str(path), "--source", "crm", *extra)
    return done.returncode, json.loads(done.stdout), done.stderr


async def test_csv_import_reports_bad_rows_and_is_a_no_op_when_run_again(
    kirjuri: Kirjuri, settings: Settings, tmp_path: Path
) -> None:
    agent = await kirjuri.login("agent")
    path = tmp_path / "asiakkaat.csv"
    path.write_text(CSV, encoding="utf-8")

    code, dry, _ = await asyncio.to_thread(run_import, settings, path, "--dry-run")
    assert code == 1
    # each row is checked against what is stored, not against the rows before it in the file
    assert (dry["created"], dry["updated"], dry["unchanged"]) == (3, 0, 0)
    assert {e["line"] for e in dry["errors"]} == {3, 5, 6}
    assert (await kirjuri.get_json("/api/v1/customers", agent))["total"] == 0  # a dry run keeps nothing

    code, first, stderr = await asyncio.to_thread(run_import, settings, path)
    assert code == 1
    assert first["created"] == 2
    errors = {e["line"]: e["reason"] for e in first["errors"]}
    assert set(errors) == {3, 5, 6, 7}
    assert "business_id" in errors[3] and "external id" in errors[5]
    assert "emails" in errors[6] and "already belongs" in errors[7]
    assert "line 3:" in stderr
    customers = await kirjuri.get_json("/api/v1/customers", agent)
    assert sorted(c["name"] for c in customers["items"]) == ["Aino Asiakas", "Laskukassa Oy"]
    aino = next(c for c in customers["items"] if c["name"] == "Aino Asiakas")
    assert aino["emails"] == ["aino@example.fi", "aino.home@example.org"] and aino["phones"] == [
        "+358407654321"
    ]

    code, second, _ = await asyncio.to_thread(run_import, settings, path)
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 2)
    assert (await kirjuri.get_json("/api/v1/customers", agent))["total"] == 2
