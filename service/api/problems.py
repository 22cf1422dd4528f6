"""One middleware that turns every error into `application/problem+json` (RFC 9457).

Domain errors carry no HTTP types; the mapping from error class to status lives here only.
Unexpected exceptions become a 500 whose body says nothing about the internals (the
traceback goes to the log, without request bodies).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from aiohttp import web

from service.api.params import UnsupportedMediaType
from service.errors import (
    AuthenticationFailed,
    IngestFailed,
    InvalidInput,
    KirjuriError,
    PermissionDenied,
    TooLarge,
    Unprocessable,
    UnsupportedFormat,
)
from storage.errors import BadQuery, Conflict, NotFound, StorageError, Unavailable

log = logging.getLogger(__name__)
PROBLEM_TYPE = "application/problem+json"

_STATUS: list[tuple[type[Exception], int]] = [
    (UnsupportedMediaType, 415),
    (UnsupportedFormat, 415),
    (Unprocessable, 422),
    (TooLarge, 413),
    (InvalidInput, 400),
    (BadQuery, 400),
    (AuthenticationFailed, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (IngestFailed, 503),
    (Unavailable, 503),
]


def problem(status: int, detail: str, **extra: object) -> web.Response:
    """A problem+json response with a title from the status and a detail a person can read."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"WWW-Authenticate": 'Bearer realm="kirjuri"'} if status == 401 else None
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


def status_for(exc: Exception) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (KirjuriError, StorageError) as exc:
        status = status_for(exc)
        if status >= 500:
            log.warning("%s %s failed: %s", request.method, request.path, type(exc).__name__)
            return problem(status, "the service is temporarily unavailable; try again shortly")
        return problem(status, str(exc), field=getattr(exc, "field", None))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = {
            404: f"there is nothing at {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: "the request body is larger than this service accepts",
            416: "the byte range asked for lies outside the file",
        }.get(exc.status, exc.reason)
        response = problem(exc.status, detail)
        for name in ("Allow", "Content-Range"):  # what a 405 or a 416 must say
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return problem(500, "an unexpected error happened; it has been logged")
