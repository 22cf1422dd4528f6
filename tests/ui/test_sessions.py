"""Web UI sessions without a browser: the idle timeout slides with each page and ends the
session when it runs out; logout revokes it; cookies are Secure when configured so (behind a
TLS proxy); a page cannot be framed or cached."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from service.access import token_hash
from service.appkeys import DB
from service.settings import Settings
from storage.access import Token
from storage.base import utcnow
from tests.conftest import PASSWORD, Kirjuri


async def form_login(kirjuri: Kirjuri, name: str) -> str:
    page = await (await kirjuri.client.get("/login")).text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    resp = await kirjuri.client.post(
        "/login",
        data={"csrf": csrf.group(1), "username": name, "password": PASSWORD, "next": "/search"},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    return str(resp.cookies["kirjuri_session"].value)


async def expiry(kirjuri: Kirjuri, token: str) -> Any:
    return await kirjuri.app[DB].run_read(
        lambda s: s.scalar(select(Token.expires_at).where(Token.token_hash == token_hash(token)))
    )


async def test_cookies_are_secure_behind_a_tls_proxy(kirjuri_factory: Any, settings: Settings) -> None:
    plain: Kirjuri = await kirjuri_factory(settings)
    cookie = (await plain.client.get("/login")).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    proxied: Kirjuri = await kirjuri_factory(settings.replace("http", secure_cookies=True))
    assert "Secure" in (await proxied.client.get("/login")).headers["Set-Cookie"]


async def test_the_idle_timeout_slides_and_ends_the_session(kirjuri_factory: Any, settings: Settings) -> None:
    kirjuri: Kirjuri = await kirjuri_factory(settings.replace("http", ui_idle_minutes=10))
    await kirjuri.add_user("maija", "agent")
    token = await form_login(kirjuri, "maija")
    first = await expiry(kirjuri, token)
    assert timedelta(minutes=9) < first - utcnow() <= timedelta(minutes=10)

    await kirjuri.app[DB].run_write(
        lambda s: s.execute(
            update(Token)
            .where(Token.token_hash == token_hash(token))
            .values(expires_at=utcnow() + timedelta(minutes=1))
        )
    )
    resp = await kirjuri.client.get("/search", allow_redirects=False)
    assert resp.status == 200
    assert resp.headers["X-Frame-Options"] == "DENY" and "no-store" in resp.headers["Cache-Control"]
    assert await expiry(kirjuri, token) - utcnow() > timedelta(minutes=9)  # the page slid it on

    await kirjuri.app[DB].run_write(
        lambda s: s.execute(
            update(Token)
            .where(Token.token_hash == token_hash(token))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    )
    resp = await kirjuri.client.get("/search", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login")


async def test_logout_revokes_the_session(kirjuri_factory: Any, settings: Settings) -> None:
    kirjuri: Kirjuri = await kirjuri_factory(settings)
    await kirjuri.add_user("maija", "agent")
    token = await form_login(kirjuri, "maija")
    page = await (await kirjuri.client.get("/search")).text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    resp = await kirjuri.client.post("/logout", data={"csrf": csrf.group(1)}, allow_redirects=False)
    assert resp.status == 303
    # the old cookie value no longer works, even if someone kept it
    kirjuri.client.session.cookie_jar.update_cookies({"kirjuri_session": token})
    resp = await kirjuri.client.get("/search", allow_redirects=False)
    assert resp.status == 303
