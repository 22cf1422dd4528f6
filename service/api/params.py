"""Reading query parameters and JSON bodies; every problem is an InvalidInput naming the field."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from service.errors import InvalidInput
from service.pagination import parse_limit
from service.times import parse_time


class UnsupportedMediaType(InvalidInput):
    """The request body is not JSON (answered 415)."""


def page_params(request: web.Request) -> tuple[str | None, int]:
    """The `cursor` and `limit` of a list request; raises InvalidInput for a bad limit."""
    return request.query.get("cursor"), parse_limit(request.query.get("limit"))


def int_param(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number", name) from None


def bool_param(request: web.Request, name: str) -> bool | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    lowered = value.lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise InvalidInput(f"{name} must be true or false", name)


def time_param(request: web.Request, name: str) -> datetime | None:
    """An ISO 8601 date or time; a time without zone is taken as UTC."""
    value = request.query.get(name)
    if value is None or value == "":
        return None
    return parse_time(value, name)


def path_id(request: web.Request, name: str = "id") -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number", name) from None


async def json_body(request: web.Request) -> Any:
    """The request's JSON body; 415 if it is not JSON, 400 if it does not parse."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    try:
        return json.loads(await request.text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None
