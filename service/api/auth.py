"""Bearer-token authentication for /api/v1, as a middleware, and the caller of a request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from service.access import Principal, authenticate
from service.appkeys import DB
from service.errors import AuthenticationFailed

PRINCIPAL = web.RequestKey("principal", Principal)
OPEN_PATHS = {("GET", "/api/v1/health"), ("GET", "/api/v1/openapi.json"), ("POST", "/api/v1/session")}
# webhooks a platform signs instead of sending a token: the handler checks the signature
SIGNED_PATHS = {("POST", "/api/v1/chats")}
SIGNATURE_HEADER = "X-Kirjuri-Signature"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every /api/v1 call but health, the OpenAPI document and login needs a valid bearer token."""
    route = (request.method, request.path)
    signed = route in SIGNED_PATHS and SIGNATURE_HEADER in request.headers
    if request.path.startswith("/api/") and route not in OPEN_PATHS and not signed:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("this needs an 'Authorization: Bearer <token>' header")
        request[PRINCIPAL] = await authenticate(request.app[DB], token.strip())
    return await handler(request)


def caller(request: web.Request) -> Principal:
    """The authenticated caller of this request."""
    try:
        return request[PRINCIPAL]
    except KeyError:
        raise AuthenticationFailed("not logged in") from None
