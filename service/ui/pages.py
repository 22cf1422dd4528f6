"""The web UI's pages. Each handler reads its input, calls the service functions the API
uses (which check the role and write the audit rows), and renders a template."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from service import customers, export, history, marketing, rights
from service.access import login, token_hash
from service.api.auth import caller
from service.api.params import page_params, time_param
from service.api.responses import blob_ranges, original, stream_zip
from service.appkeys import BLOBS, DB, EXECUTOR, HASHER, RIGHTS, SETTINGS
from service.audit import list_audit
from service.errors import AuthenticationFailed, InvalidInput
from service.ui.i18n import LANGUAGES
from service.ui.web import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    TOKEN,
    new_login_csrf,
    render,
    set_cookie,
)
from storage.access import revoke_token
from storage.audit import AuditFilter

PAGE = 25


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never //other.site or a scheme) after login."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/search"


async def root(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/search")


async def login_page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    # the browser's other requests (a favicon) may come here too: keep the token it has, or
    # the form on the screen would no longer match the cookie
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    response = render(
        request,
        "login.html",
        status=status,
        error=error,
        login_csrf=token,
        next=_safe_next(request.query.get("next")),
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token)
    return response


async def login_post(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or form.get("csrf") != cookie:
        return await login_page(request, error="the form expired; try again", status=403)
    settings = request.app[SETTINGS].http
    try:
        token = await login(
            request.app[DB],
            request.app[EXECUTOR],
            str(form.get("username", "")),
            str(form.get("password", "")),
            settings.ui_idle_minutes,
            settings.login_max_failures,
            settings.login_lock_minutes,
        )
    except AuthenticationFailed as exc:
        return await login_page(request, error=str(exc), status=401)
    response = web.HTTPSeeOther(_safe_next(str(form.get("next", ""))))
    set_cookie(request, response, SESSION_COOKIE, token)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    async with request.app[DB].write() as session:
        await revoke_token(session, token_hash(request[TOKEN]))
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def switch_language(request: web.Request) -> web.StreamResponse:
    code = request.match_info["code"]
    response = web.HTTPSeeOther(_safe_next(request.query.get("next")))
    if code in LANGUAGES:
        set_cookie(request, response, LANG_COOKIE, code, max_age=365 * 24 * 3600)
    raise response


async def search(request: web.Request) -> web.Response:
    who = caller(request)
    q = (request.query.get("q") or "").strip() or None
    query = history.HistoryQuery(
        q=q,
        channel=request.query.get("channel") or None,
        since=time_param(request, "since"),
        until=time_param(request, "until"),
        tag=request.query.get("tag") or None,
    )
    cursor, _ = page_params(request)
    found_customers: list[dict[str, Any]] = []
    if q:
        found_customers = (
            await customers.find_customers(
                request.app[DB], who, q, request.app[SETTINGS].linking.default_region, None, 5
            )
        ).items
    page = await history.search_history(request.app[DB], who, query, cursor, PAGE)
    more = None
    if page.next:
        more = "/search?" + urlencode(
            {k: v for k, v in request.query.items() if k != "cursor"} | {"cursor": page.next}
        )
    return render(
        request,
        "search.html",
        q=q or "",
        query=request.query,
        page=page,
        customers=found_customers,
        more=more,
    )


async def customer(request: web.Request) -> web.Response:
    who = caller(request)
    cid = _id(request)
    record = await customers.read_customer(request.app[DB], who, cid)
    cursor, _ = page_params(request)
    timeline = await history.search_history(
        request.app[DB], who, history.HistoryQuery(customer_id=cid), cursor, PAGE
    )
    more = f"/customers/{cid}?cursor={timeline.next}" if timeline.next else None
    return render(request, "customer.html", customer=record, timeline=timeline, more=more)


async def interaction(request: web.Request) -> web.Response:
    detail = await history.read_interaction(request.app[DB], caller(request), _id(request))
    return render(request, "interaction.html", i=detail)


async def audio(request: web.Request) -> web.StreamResponse:
    iid = _id(request)
    blob, content_type = await history.audio_file(request.app[DB], caller(request), iid)
    headers = {"Content-Type": content_type, "Cache-Control": "private, no-store"}
    return await blob_ranges(request, request.app[BLOBS], request.app[EXECUTOR], blob, headers)


async def raw(request: web.Request) -> web.Response:
    iid = _id(request)
    data, content_type = await history.read_raw(
        request.app[DB], request.app[BLOBS], request.app[EXECUTOR], caller(request), iid
    )
    return original(iid, data, content_type)


async def link(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        cid = int(str(form.get("customer_id", "")))
    except ValueError:
        raise InvalidInput("choose a customer", "customer_id") from None
    iid = _id(request)
    await history.set_link(request.app[DB], caller(request), iid, cid)
    raise web.HTTPSeeOther(_safe_next(str(form.get("next", "")) or "/unlinked"))


async def unlinked(request: web.Request) -> web.Response:
    who = caller(request)
    cursor, _ = page_params(request)
    page = await history.search_history(
        request.app[DB], who, history.HistoryQuery(unlinked=True), cursor, PAGE
    )
    suggestions = await customers.suggest_for(
        request.app[DB], who, page.items, request.app[SETTINGS].linking.internal_domains
    )
    more = f"/unlinked?cursor={page.next}" if page.next else None
    return render(request, "unlinked.html", page=page, suggestions=suggestions, more=more)


async def marketing_page(request: web.Request) -> web.Response:
    who = caller(request)
    proposals = await marketing.list_proposals(request.app[DB], who, "proposed", None, 100)
    evidence = await marketing.evidence_of(request.app[DB], [p["id"] for p in proposals])
    return render(request, "marketing.html", proposals=proposals, evidence=evidence)


async def marketing_decide(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    confirm = request.match_info["decision"] == "confirm"
    await marketing.decide(
        request.app[DB],
        caller(request),
        _id(request),
        confirm,
        {"reason": form.get("reason") or None},
        request.app[HASHER],
    )
    raise web.HTTPSeeOther("/marketing")


async def privacy(request: web.Request) -> web.Response:
    who = caller(request)
    cursor, _ = page_params(request)
    page = await rights.list_subject_requests(request.app[DB], who, None, cursor, 100)
    return render(request, "privacy.html", page=page)


async def privacy_create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    identifiers: dict[str, Any] = {}
    for key in ("email", "phone", "business_id"):
        value = str(form.get(key, "")).strip()
        if value:
            identifiers[key] = value
    raw_id = str(form.get("customer_id", "")).strip()
    if raw_id:
        if not raw_id.isdigit():
            raise InvalidInput("customer id must be a number", "customer_id")
        identifiers["customer_id"] = int(raw_id)
    body = {
        "kind": form.get("kind"),
        "identifiers": identifiers,
        "note": str(form.get("note", "")).strip() or None,
    }
    if form.get("received_at"):
        body["received_at"] = str(form.get("received_at"))
    created = await rights.create_request(
        request.app[DB], caller(request), body, request.app[SETTINGS].linking.default_region
    )
    raise web.HTTPSeeOther(f"/privacy/requests/{created['id']}")


async def privacy_request(request: web.Request) -> web.Response:
    who = caller(request)
    rid = _id(request)
    found = await rights.read_request(request.app[DB], who, rid)
    preview = None
    if found["kind"] == "erasure" and found["status"] == "open":
        preview = await rights.erasure_preview(request.app[DB], who, rid)
    return render(request, "privacy_request.html", r=found, preview=preview)


async def privacy_export(request: web.Request) -> web.StreamResponse:
    rid = _id(request)
    chunks = export.export_zip(request.app[RIGHTS], caller(request), rid)
    return await stream_zip(request, f"subject-request-{rid}.zip", chunks)


async def privacy_execute(request: web.Request) -> web.StreamResponse:
    rid = _id(request)
    await rights.execute_request(request.app[RIGHTS], caller(request), rid)
    raise web.HTTPSeeOther(f"/privacy/requests/{rid}")


async def audit(request: web.Request) -> web.Response:
    flt = AuditFilter(actor=request.query.get("actor") or None, action=request.query.get("action") or None)
    cursor, _ = page_params(request)
    page = await list_audit(request.app[DB], caller(request), flt, cursor, 100)
    more = (
        "/audit?"
        + urlencode({k: v for k, v in request.query.items() if k != "cursor"} | {"cursor": page.next})
        if page.next
        else None
    )
    return render(request, "audit.html", page=page, more=more)


def _id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None


def setup(app: web.Application) -> None:
    """The pages at their stable URLs, and the static files."""
    from service.ui.web import HERE, TEMPLATES, environment

    app[TEMPLATES] = environment()
    add = app.router.add_route
    add("GET", "/", root)
    add("GET", "/login", login_page)
    add("POST", "/login", login_post)
    add("POST", "/logout", logout)
    add("GET", "/lang/{code}", switch_language)
    add("GET", "/search", search)
    add("GET", "/customers/{id}", customer)
    add("GET", "/interactions/{id}", interaction)
    add("GET", "/interactions/{id}/audio", audio)
    add("GET", "/interactions/{id}/raw", raw)
    add("POST", "/interactions/{id}/link", link)
    add("GET", "/unlinked", unlinked)
    add("GET", "/marketing", marketing_page)
    add("POST", "/marketing/{id}/{decision:confirm|reject}", marketing_decide)
    add("GET", "/privacy", privacy)
    add("POST", "/privacy/requests", privacy_create)
    add("GET", "/privacy/requests/{id}", privacy_request)
    add("GET", "/privacy/requests/{id}/export", privacy_export)
    add("POST", "/privacy/requests/{id}/execute", privacy_execute)
    add("GET", "/audit", audit)
    app.router.add_static("/static/", HERE / "static", append_version=False)
