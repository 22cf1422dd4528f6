"""Reading the times people and systems send: ISO 8601, and a time without a zone is UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.errors import InvalidInput


def parse_time(value: Any, field: str) -> datetime:
    """An aware datetime from an ISO 8601 date or time; raises InvalidInput naming the field."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be an ISO 8601 date or time", field)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{field} must be an ISO 8601 date or time, e.g. 2026-11-25T10:00:00Z", field
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
