"""List pages: `{"items", "total", "next"}` with an opaque cursor, and the limit rules.

A page of interactions also says `total_exact`: false when counting every match would cost
more than the page itself (a search for a very common word), and `total` is then a lower
bound ("10000 or more")."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from service.errors import InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass
class Page:
    """One page of a list and the cursor of the next (None on the last page)."""

    items: list[dict[str, Any]]
    total: int
    next: str | None
    total_exact: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "total": self.total, "next": self.next, "total_exact": self.total_exact}


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, length: int) -> list[Any] | None:
    """The values inside a cursor this service made; raises InvalidInput for anything else."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeError):
        raise InvalidInput("the cursor is not one this service gave out", "cursor") from None
    if not isinstance(values, list) or len(values) != length:
        raise InvalidInput("the cursor is not one this service gave out", "cursor")
    return values


def parse_limit(value: str | None) -> int:
    """The page size asked for (default 50, at most 500); raises InvalidInput."""
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise InvalidInput("limit must be a whole number", "limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", "limit")
    return limit
