"""Handlers of the core API. Each parses its input, calls one service function, and answers."""

from __future__ import annotations

import csv
import io

from aiohttp import web

from service import access, customers, export, history, marketing, rights, webhooks
from service.api.auth import caller
from service.api.params import bool_param, int_param, json_body, page_params, path_id, time_param
from service.api.responses import blob_ranges, original, stream_zip
from service.appkeys import BLOBS, DB, EXECUTOR, HASHER, METRICS, RIGHTS, SETTINGS
from service.audit import list_audit
from service.errors import InvalidInput
from service.metrics import require_metrics, store_lines
from service.pagination import decode_cursor, encode_cursor
from storage.audit import AuditFilter


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def create_session(request: web.Request) -> web.Response:
    body = await json_body(request)
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("username"), str)
        or not isinstance(body.get("password"), str)
    ):
        raise InvalidInput('send {"username": ..., "password": ...}')
    settings = request.app[SETTINGS]
    token = await access.login(
        request.app[DB],
        request.app[EXECUTOR],
        body["username"],
        body["password"],
        settings.http.session_ttl_minutes,
        settings.http.login_max_failures,
        settings.http.login_lock_minutes,
    )
    return web.json_response(
        {"token": token, "expires_in": settings.http.session_ttl_minutes * 60}, status=201
    )


async def create_customer(request: web.Request) -> web.Response:
    who = caller(request)
    who.require_role("agent")
    change = customers.parse_customer(
        await json_body(request), request.app[SETTINGS].linking.default_region, creating=True
    )
    created = await customers.create_customer(request.app[DB], who, change)
    return web.json_response(created, status=201, headers={"Location": f"/api/v1/customers/{created['id']}"})


async def list_customers(request: web.Request) -> web.Response:
    page = await customers.find_customers(
        request.app[DB],
        caller(request),
        request.query.get("q"),
        request.app[SETTINGS].linking.default_region,
        *page_params(request),
    )
    return web.json_response(page.to_dict())


async def get_customer(request: web.Request) -> web.Response:
    found = await customers.read_customer(request.app[DB], caller(request), path_id(request))
    return web.json_response(found)


async def patch_customer(request: web.Request) -> web.Response:
    who = caller(request)
    who.require_role("agent")
    change = customers.parse_customer(
        await json_body(request), request.app[SETTINGS].linking.default_region, creating=False
    )
    updated = await customers.update_customer(
        request.app[DB], who, path_id(request), change, int_param(request, "request_id")
    )
    return web.json_response(updated)


async def customer_history(request: web.Request) -> web.Response:
    changes = await rights.customer_history(request.app[DB], caller(request), path_id(request))
    return web.json_response({"items": changes, "total": len(changes), "next": None})


async def list_interactions(request: web.Request) -> web.Response:
    query = history.HistoryQuery(
        q=request.query.get("q"),
        customer_id=int_param(request, "customer_id"),
        channel=request.query.get("channel") or None,
        since=time_param(request, "since"),
        until=time_param(request, "until"),
        unlinked=bool_param(request, "unlinked"),
    )
    page = await history.search_history(
        request.app[DB],
        caller(request),
        query,
        *page_params(request),
    )
    return web.json_response(page.to_dict())


async def get_interaction(request: web.Request) -> web.Response:
    return web.json_response(
        await history.read_interaction(request.app[DB], caller(request), path_id(request))
    )


async def get_raw(request: web.Request) -> web.Response:
    iid = path_id(request)
    data, content_type = await history.read_raw(
        request.app[DB], request.app[BLOBS], request.app[EXECUTOR], caller(request), iid
    )
    return original(iid, data, content_type)


async def get_audio(request: web.Request) -> web.StreamResponse:
    """The original recording of a call, with Range support so a player can seek."""
    iid = path_id(request)
    blob, content_type = await history.audio_file(request.app[DB], caller(request), iid)
    headers = {
        "Content-Type": content_type,
        "Content-Disposition": f'inline; filename="call-{iid}"',
        "Cache-Control": "private, no-store",
    }
    return await blob_ranges(request, request.app[BLOBS], request.app[EXECUTOR], blob, headers)


async def link_interaction(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not isinstance(body, dict) or "customer_id" not in body:
        raise InvalidInput('send {"customer_id": <id>} (null unlinks)', "customer_id")
    cid = body["customer_id"]
    if cid is not None and (not isinstance(cid, int) or isinstance(cid, bool)):
        raise InvalidInput("customer_id must be a whole number or null", "customer_id")
    return web.json_response(await history.set_link(request.app[DB], caller(request), path_id(request), cid))


async def subjects(request: web.Request) -> web.Response:
    result = await history.subject_lookup(
        request.app[DB],
        caller(request),
        request.app[SETTINGS].linking.default_region,
        request.query.get("email"),
        request.query.get("phone"),
        int_param(request, "customer_id"),
        *page_params(request),
    )
    return web.json_response(result)


async def audit(request: web.Request) -> web.Response:
    flt = AuditFilter(
        actor=request.query.get("actor") or None,
        action=request.query.get("action") or None,
        customer_id=int_param(request, "customer_id"),
        interaction_id=int_param(request, "interaction_id"),
        since=time_param(request, "since"),
        until=time_param(request, "until"),
    )
    page = await list_audit(
        request.app[DB],
        caller(request),
        flt,
        *page_params(request),
    )
    return web.json_response(page.to_dict())


async def put_marketing_ban(request: web.Request) -> web.Response:
    ban, created = await marketing.set_ban(
        request.app[DB],
        caller(request),
        path_id(request),
        request.match_info["channel"],
        await json_body(request),
        active=True,
        hasher=request.app[HASHER],
    )
    return web.json_response(ban, status=201 if created else 200)


async def delete_marketing_ban(request: web.Request) -> web.Response:
    body = await json_body(request) if request.can_read_body else dict(request.query)
    ban, _ = await marketing.set_ban(
        request.app[DB],
        caller(request),
        path_id(request),
        request.match_info["channel"],
        body,
        active=False,
        hasher=request.app[HASHER],
    )
    return web.json_response(ban)


async def marketing_ban_history(request: web.Request) -> web.Response:
    changes = await marketing.ban_history(request.app[DB], caller(request), path_id(request))
    return web.json_response({"items": changes, "total": len(changes), "next": None})


async def list_marketing_bans(request: web.Request) -> web.Response:
    cursor, limit = page_params(request)
    position = decode_cursor(cursor, 1)
    after = int(position[0]) if position else None
    items = await marketing.list_proposals(
        request.app[DB], caller(request), request.query.get("status", "proposed"), after, limit
    )
    nxt = encode_cursor([items[-1]["id"]]) if len(items) == limit else None
    return web.json_response({"items": items, "total": len(items), "next": nxt})


async def confirm_marketing_ban(request: web.Request) -> web.Response:
    body = await json_body(request) if request.can_read_body else {}
    return web.json_response(
        await marketing.decide(
            request.app[DB], caller(request), path_id(request), True, body, request.app[HASHER]
        )
    )


async def reject_marketing_ban(request: web.Request) -> web.Response:
    body = await json_body(request) if request.can_read_body else {}
    return web.json_response(
        await marketing.decide(
            request.app[DB], caller(request), path_id(request), False, body, request.app[HASHER]
        )
    )


async def marketing_check(request: web.Request) -> web.Response:
    result = await marketing.check(
        request.app[DB],
        caller(request),
        await json_body(request),
        request.app[HASHER],
        request.app[SETTINGS].linking.default_region,
    )
    return web.json_response(result)


async def marketing_suppression(request: web.Request) -> web.StreamResponse:
    channel = request.query.get("channel", "")
    items = await marketing.suppression(request.app[DB], caller(request), channel)
    if "text/csv" in request.headers.get("Accept", ""):
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["kind", "identifier", "identifier_hash", "customer_id", "since"])
        for i in items:
            writer.writerow(
                [
                    i["kind"],
                    i["identifier"] or "",
                    i["identifier_hash"] or "",
                    i["customer_id"] or "",
                    i["since"],
                ]
            )
        return web.Response(
            text=out.getvalue(),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="suppression-{channel}.csv"'},
        )
    return web.json_response({"channel": channel, "items": items, "total": len(items), "next": None})


async def create_subject_request(request: web.Request) -> web.Response:
    created = await rights.create_request(
        request.app[DB],
        caller(request),
        await json_body(request),
        request.app[SETTINGS].linking.default_region,
    )
    return web.json_response(
        created, status=201, headers={"Location": f"/api/v1/subject-requests/{created['id']}"}
    )


async def list_subject_requests(request: web.Request) -> web.Response:
    page = await rights.list_subject_requests(
        request.app[DB], caller(request), request.query.get("status") or None, *page_params(request)
    )
    return web.json_response(page.to_dict())


async def get_subject_request(request: web.Request) -> web.Response:
    return web.json_response(await rights.read_request(request.app[DB], caller(request), path_id(request)))


async def export_subject_request(request: web.Request) -> web.StreamResponse:
    """The access export as a streamed ZIP; errors found before the first byte are problems."""
    rid = path_id(request)
    chunks = export.export_zip(request.app[RIGHTS], caller(request), rid)
    return await stream_zip(request, f"subject-request-{rid}.zip", chunks)


async def execute_subject_request(request: web.Request) -> web.Response:
    result = await rights.execute_request(request.app[RIGHTS], caller(request), path_id(request))
    return web.json_response(result)


async def create_legal_hold(request: web.Request) -> web.Response:
    hold = await rights.create_hold(request.app[DB], caller(request), await json_body(request))
    return web.json_response(hold, status=201, headers={"Location": f"/api/v1/legal-holds/{hold['id']}"})


async def list_legal_holds(request: web.Request) -> web.Response:
    holds = await rights.holds_list(
        request.app[DB],
        caller(request),
        int_param(request, "customer_id"),
        bool_param(request, "active") is not False,
    )
    return web.json_response({"items": holds, "total": len(holds), "next": None})


async def release_legal_hold(request: web.Request) -> web.Response:
    return web.json_response(await rights.release_hold(request.app[DB], caller(request), path_id(request)))


async def put_external_customer(request: web.Request) -> web.Response:
    """Upsert a customer from a CRM: 201 when created, 200 when it existed."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    source = request.match_info["source"]
    sources = customers.parse_sources(body.pop("sources", None), source)
    change = customers.parse_customer(body, request.app[SETTINGS].linking.default_region, creating=False)
    found, created = await customers.upsert_external(
        request.app[DB], caller(request), source, request.match_info["external_id"], change, sources
    )
    return web.json_response(found, status=201 if created else 200)


async def create_webhook(request: web.Request) -> web.Response:
    created = await webhooks.subscribe(request.app[DB], caller(request), await json_body(request))
    return web.json_response(created, status=201, headers={"Location": f"/api/v1/webhooks/{created['id']}"})


async def list_webhooks(request: web.Request) -> web.Response:
    items = await webhooks.subscriptions(request.app[DB], caller(request))
    return web.json_response({"items": items, "total": len(items), "next": None})


async def delete_webhook(request: web.Request) -> web.Response:
    await webhooks.unsubscribe(request.app[DB], caller(request), path_id(request))
    return web.Response(status=204)


async def webhook_deliveries(request: web.Request) -> web.Response:
    _, limit = page_params(request)
    items = await webhooks.deliveries(
        request.app[DB], caller(request), path_id(request), request.query.get("status") or None, limit
    )
    return web.json_response({"items": items, "total": len(items), "next": None})


async def redeliver_webhook(request: web.Request) -> web.Response:
    await webhooks.send_again(request.app[DB], caller(request), path_id(request))
    return web.json_response({"status": "pending"}, status=202)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format: this process's HTTP figures and the store's state."""
    require_metrics(caller(request))
    lines = request.app[METRICS].lines() + await request.app[DB].run_read(store_lines)
    return web.Response(
        body=("\n".join(lines) + "\n").encode(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )
