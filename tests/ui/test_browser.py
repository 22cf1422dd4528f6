"""The staff web UI in a real browser (Debian's Chromium driven by Playwright) against a real
Kirjuri on loopback, with mail in over SMTP and a call over the HTTP upload: log in, search
with highlighted matches, open a customer, play a call from a transcript segment, link an
unlinked mail, confirm a proposed ban, run an export and an erasure, see 403 for a role that
may not, switch language, and be locked out after wrong passwords."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from service.access import create_service_token
from service.appkeys import DB
from service.settings import Settings
from tests.conftest import PASSWORD, Kirjuri, make_mail
from tests.service.test_marketing import detected
from tests.service.test_rights import stored_id, tone_wav, transcribed, upload_call

CHROMIUM = "/usr/bin/chromium"
SHOTS = os.environ.get("KIRJURI_SCREENSHOTS")  # a folder: keep screenshots of the main pages

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (.ci/run installs it)"
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
        )
        yield launched
        await launched.close()


def ui_settings(settings: Settings) -> Settings:
    return settings.replace("transcription", enabled=False).replace(
        "http", login_max_failures=3, login_lock_minutes=15
    )


async def log_in(page: Page, base: str, name: str, password: str = PASSWORD) -> None:
    await page.goto(base + "/login")
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")


async def shot(page: Page, name: str) -> None:
    if SHOTS:
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


async def seed(kirjuri: Kirjuri) -> dict[str, Any]:
    token = await create_service_token(kirjuri.app[DB], "pbx", "ingest")
    ingest = {"Authorization": f"Bearer {token}"}
    agent_api = await kirjuri.login("agent", "api-agent")
    resp = await kirjuri.client.post(
        "/api/v1/customers",
        json={"name": "Aino Asiakas Oy", "emails": ["aino@example.fi"], "phones": ["040 765 4321"]},
        headers=agent_api,
    )
    cid = (await resp.json())["id"]
    mail = stored_id(
        await kirjuri.send(
            make_mail(
                sender="Aino <aino@example.fi>",
                subject="Lasku 4471",
                body="Hei, laskun 4471 eräpäivä siirtyi.\n\nÄlkää soittako minulle enää myyntipuheluita.",
            )
        )
    )
    await detected(kirjuri, mail)
    stray = stored_id(
        await kirjuri.send(make_mail(sender="Pekka <pekka@example.fi>", subject="Tilaus", body="Uusi tilaus"))
    )
    call = await upload_call(kirjuri, ingest, tone_wav(440, secs=8.0), "pbx-ui")
    # the segment lasts most of the tone: the highlight stays on long enough to be seen
    await transcribed(kirjuri, call, "Haluaisin tietää laskun tilan.", seconds=7.0)
    return {"customer": cid, "mail": mail, "stray": stray, "call": call}


async def test_staff_do_their_work_in_the_browser(
    kirjuri_factory: Any, settings: Settings, browser: Browser
) -> None:
    kirjuri = await kirjuri_factory(ui_settings(settings))
    base = str(kirjuri.client.make_url("")).rstrip("/")
    await kirjuri.add_user("maija", "agent")
    await kirjuri.add_user("tietosuoja", "privacy")
    data = await seed(kirjuri)
    context = await browser.new_context(accept_downloads=True)
    page = await context.new_page()

    # a visitor who is not logged in is sent to the login page; the session cookie is strict
    await page.goto(base + "/")
    assert page.url.startswith(base + "/login")
    await shot(page, "login")
    await log_in(page, base, "maija")
    await expect(page.locator("header")).to_contain_text("maija")
    cookie = next(c for c in await context.cookies() if c["name"] == "kirjuri_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # search: the matched word is highlighted; the customer is found by name too
    await page.fill("input[name=q]", "eräpäivä")
    await page.press("input[name=q]", "Enter")
    await expect(page.locator(".snippet mark").first).to_have_text("eräpäivä")
    await page.goto(base + "/search?q=Aino")
    await expect(page.locator("ul.customers")).to_contain_text("Aino Asiakas Oy")
    await shot(page, "search")

    # the customer page: details, the proposed ban, the timeline
    await page.click("ul.customers a")
    assert page.url == f"{base}/customers/{data['customer']}"
    await expect(page.locator(".bans")).to_contain_text("phone")
    await expect(page.locator("table.list")).to_contain_text("Lasku 4471")
    await shot(page, "customer")

    # a call: clicking a segment plays from there and highlights it
    await page.goto(f"{base}/interactions/{data['call']}")
    segment = page.locator(".segment").first
    await expect(segment).to_contain_text("Haluaisin tietää laskun tilan.")
    await segment.click()
    await expect(segment).to_have_class(re.compile("playing"), timeout=10000)
    await page.wait_for_function("document.getElementById('player').currentTime > 0", timeout=10000)
    await shot(page, "call")

    # unlinked mail from the customer's domain: suggested, linked with one click
    await page.goto(base + "/unlinked")
    await page.click("text=Aino Asiakas Oy")
    assert page.url == base + "/unlinked"
    detail = await kirjuri.get_json(
        f"/api/v1/interactions/{data['stray']}", await kirjuri.login("agent", "check-agent")
    )
    assert detail["customer_id"] == data["customer"]

    # an agent may not review bans or subject requests
    response = await page.goto(base + "/marketing")
    assert response is not None and response.status == 403
    response = await page.goto(base + "/privacy")
    assert response is not None and response.status == 403

    # the language switch
    await page.goto(base + "/search")
    await page.click("a.lang")
    await expect(page.locator("header nav")).to_contain_text("Search")
    await page.click("a.lang")
    await expect(page.locator("header nav")).to_contain_text("Haku")

    await page.click("header button")  # log out
    assert page.url.startswith(base + "/login")
    response = await page.goto(base + "/search")
    assert page.url.startswith(base + "/login")

    # the privacy officer: confirm the ban with its evidence shown
    await log_in(page, base, "tietosuoja")
    await page.goto(base + "/marketing")
    await expect(page.locator(".proposal blockquote")).to_contain_text(
        "Älkää soittako minulle enää myyntipuheluita"
    )
    await shot(page, "marketing")
    await page.click(".proposal >> text=Vahvista")
    await expect(page.locator(".proposal")).to_have_count(0)
    staff = await kirjuri.login("privacy", "api-privacy")
    resp = await kirjuri.client.post(
        "/api/v1/marketing/check", json={"customer_id": data["customer"], "channel": "phone"}, headers=staff
    )
    assert (await resp.json())["allowed"] is False

    # an access request: recorded with its due date, exported as a ZIP download
    await page.goto(base + "/privacy")
    await page.select_option("select[name=kind]", "access")
    await page.fill("input[name=customer_id]", str(data["customer"]))
    await page.click("form.grid button[type=submit]")
    async with page.expect_download() as info:
        await page.click("a.button")
    download = await info.value
    archive = zipfile.ZipFile(io.BytesIO(await asyncio.to_thread(Path(await download.path()).read_bytes)))
    subject = json.loads(archive.read("subject.json"))
    assert subject["customer"]["name"] == "Aino Asiakas Oy"
    assert f"calls/call-{data['call']}.wav" in archive.namelist()

    # an erasure: the confirmation step says what goes and what stays, then it is done
    await page.goto(base + "/privacy")
    await page.select_option("select[name=kind]", "erasure")
    await page.fill("input[name=customer_id]", str(data["customer"]))
    await page.click("form.grid button[type=submit]")
    await expect(page.locator("section.confirm")).to_contain_text("Aino Asiakas Oy")
    await expect(page.locator("section.confirm")).to_contain_text("Puhelu: 1")
    await shot(page, "erasure")
    await page.click("button.danger")
    await expect(page.locator("pre.report")).to_contain_text('"customers": 1')
    assert (await kirjuri.client.get(f"/api/v1/customers/{data['customer']}", headers=staff)).status == 404

    # page views of personal data are audited like API reads
    audit = await kirjuri.get_json("/api/v1/audit?actor=user:maija&action=customer.read", staff)
    assert audit["total"] >= 1
    audit = await kirjuri.get_json("/api/v1/audit?actor=user:maija&action=interaction.read", staff)
    assert data["call"] in [e["interaction_id"] for e in audit["items"]]
    await context.close()


async def test_forms_need_the_csrf_token_and_wrong_passwords_lock(
    kirjuri_factory: Any, settings: Settings, browser: Browser
) -> None:
    kirjuri = await kirjuri_factory(ui_settings(settings))
    base = str(kirjuri.client.make_url("")).rstrip("/")
    await kirjuri.add_user("maija", "agent")
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, base, "maija")
    # a form posted without the page's CSRF token (as another site would) is refused
    forged = (
        "async () => (await fetch('/logout', {method: 'POST', body: new URLSearchParams({csrf: 'x'})}))"
        ".status"
    )
    status = await page.evaluate(forged)
    assert status == 403
    await page.goto(base + "/search")
    assert page.url == base + "/search"  # still logged in

    other = await browser.new_context()
    page = await other.new_page()
    for _ in range(3):
        await log_in(page, base, "maija", "wrong password!")
    await expect(page.locator(".error")).to_contain_text("locked")
    await log_in(page, base, "maija")  # the right password, but locked
    await expect(page.locator(".error")).to_contain_text("locked")
    assert page.url.startswith(base + "/login")
    await other.close()
    await context.close()
