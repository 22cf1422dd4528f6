"""The web UI's plumbing: session cookies, CSRF, the language, templates and error pages.

A staff member logs in with the same personal account as the API: the session is an API
session token kept in an HttpOnly, SameSite=Strict cookie (Secure over TLS) whose expiry
slides with each page, so `[http] ui_idle_minutes` without a page logs them out. Every form
carries a CSRF token derived from the session token (HMAC-free: sha256 of a prefix and the
secret token, which a page of another site can neither read nor compute); the login form,
before there is a session, uses a double-submit cookie. Page handlers call the same service
functions as the API, so roles and audit rows are the same.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from service.access import Principal, authenticate, token_hash
from service.api.auth import PRINCIPAL
from service.appkeys import DB, SETTINGS
from service.errors import AuthenticationFailed, InvalidInput, PermissionDenied
from service.ui.i18n import LANGUAGES, translate
from storage.access import extend_token
from storage.base import utcnow
from storage.errors import BadQuery, Conflict, NotFound
from storage.search import MARK_END, MARK_START

log = logging.getLogger(__name__)
SESSION_COOKIE = "kirjuri_session"
LANG_COOKIE = "kirjuri_lang"
LOGIN_CSRF_COOKIE = "kirjuri_login_csrf"
TEMPLATES = web.AppKey("templates", jinja2.Environment)
TOKEN = web.RequestKey("session_token", str)
PUBLIC = ("/login", "/static/", "/lang/", "/favicon.ico")
HERE = Path(__file__).resolve().parent

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["mark"] = mark_matches
    env.filters["clock"] = lambda seconds: f"{int(seconds) // 60}:{int(seconds) % 60:02d}"
    return env


def mark_matches(snippet: str) -> Markup:
    """A search snippet with its matched words in <mark> (the rest escaped)."""
    escaped = str(escape(snippet))
    return Markup(escaped.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>"))


def language(request: web.Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, "fi")
    return lang if lang in LANGUAGES else "fi"


def csrf_token(session_token: str) -> str:
    return hashlib.sha256(f"kirjuri-csrf:{session_token}".encode()).hexdigest()


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    lang = language(request)
    who: Principal | None = request.get(PRINCIPAL)
    token = request.get(TOKEN)
    page = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            t=lambda key: translate(lang, key),
            lang=lang,
            who=who,
            is_privacy=who is not None and who.role in ("privacy", "admin"),
            csrf=csrf_token(token) if token else "",
            path=request.path_qs,
            **context,
        )
    )
    return web.Response(
        text=page,
        status=status,
        content_type="text/html",
        headers={"Cache-Control": "private, no-store", "X-Frame-Options": "DENY"},
    )


def set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, **extra: Any
) -> None:
    secure = request.secure or request.app[SETTINGS].http.secure_cookies
    response.set_cookie(name, value, httponly=True, samesite="Strict", secure=secure, path="/", **extra)


@web.middleware
async def ui_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pages need a session (else: to /login); POSTs need the CSRF token; errors are pages."""
    if request.path.startswith("/api/"):
        return await handler(request)
    if not request.path.startswith(PUBLIC):
        token = request.cookies.get(SESSION_COOKIE, "")
        try:
            if not token:
                raise AuthenticationFailed("not logged in")
            request[PRINCIPAL] = await authenticate(request.app[DB], token)
        except AuthenticationFailed:
            if request.method == "GET":
                raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs)}") from None
            return render(request, "error.html", status=401, message="login")
        request[TOKEN] = token
        await _slide(request, token)
        if request.method == "POST":
            form = await request.post()
            if not hmac.compare_digest(str(form.get("csrf", "")), csrf_token(token)):
                return render(request, "error.html", status=403, message="forbidden")
    try:
        return await handler(request)
    except PermissionDenied:
        return render(request, "error.html", status=403, message="forbidden")
    except NotFound:
        return render(request, "error.html", status=404, message="not_found")
    except (InvalidInput, BadQuery, Conflict) as exc:
        return render(
            request,
            "error.html",
            status=409 if isinstance(exc, Conflict) else 400,
            message="bad_input",
            detail=str(exc),
        )
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return render(request, "error.html", status=500, message="server_error")


async def _slide(request: web.Request, token: str) -> None:
    """Keep the session alive for another `ui_idle_minutes` from this page on."""
    idle = timedelta(minutes=request.app[SETTINGS].http.ui_idle_minutes)
    async with request.app[DB].write() as session:
        await extend_token(session, token_hash(token), utcnow() + idle)


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)
