"""Chat transcripts from the website's chat platform: `POST /api/v1/chats`.

The body is a chat session (JSON, see `service.chats.parse_chat`). A post carries either a
service token with scope `ingest` or the platform's signature (`X-Kirjuri-Signature`, checked
with `[chat] secret`; a wrong or stale one is a 401). The first post of a session answers 201,
later posts to the same `external_id` 200 with how many messages were new.
"""

from __future__ import annotations

import json

from aiohttp import web

from service.api.auth import caller
from service.api.params import UnsupportedMediaType
from service.appkeys import DB, INGESTOR, SETTINGS
from service.chats import ingest_chat, parse_chat
from service.errors import AuthenticationFailed, InvalidInput
from service.signing import HEADER, verify


async def post_chat(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the chat as application/json")
    raw = await request.read()
    signature = request.headers.get(HEADER)
    if signature is not None:
        secret = settings.chat.secret.reveal()
        if not secret or not verify(secret, raw, signature, settings.chat.signature_tolerance):
            raise AuthenticationFailed("the chat's signature is wrong or too old")
    else:
        caller(request).require_scope("ingest")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None
    post = parse_chat(body, settings.linking.default_region)
    receipt = await ingest_chat(
        request.app[INGESTOR], request.app[DB], post, settings.transcription.max_attempts
    )
    return web.json_response(
        {"interaction_id": receipt.interaction_id, "created": receipt.created, "appended": receipt.appended},
        status=201 if receipt.created else 200,
    )


def setup(app: web.Application) -> None:
    """Entry point `kirjuri.connectors: chat`."""
    app.router.add_post("/api/v1/chats", post_chat)
