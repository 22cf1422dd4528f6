"""A plugin as a company would write one for its own CRM: mail whose subject carries the CRM's
customer reference ("ASIAKAS-<id>") is linked to that customer and tagged with the reference,
and every event is collected (as a plugin would forward it)."""

from __future__ import annotations

import re
from typing import Any

from service.hookspecs import hookimpl

REFERENCE = re.compile(r"ASIAKAS-(\d+)")
EVENTS: list[dict[str, Any]] = []


@hookimpl
def match_customer(interaction: dict[str, Any]) -> int | None:
    found = REFERENCE.search(interaction["subject"] or "")
    return int(found.group(1)) if found else None


@hookimpl
def extra_tags(interaction: dict[str, Any]) -> list[dict[str, Any]] | None:
    found = REFERENCE.search(interaction["subject"] or "")
    return [{"kind": "crm_reference", "data": {"ref": found.group(0)}}] if found else None


@hookimpl
def on_event(event: dict[str, Any]) -> None:
    EVENTS.append(event)
