"""Kirjuri's plugin hooks, declared in one place (pluggy, as datasette does).

A plugin is a module with functions marked `@hookimpl` named after these specs; it is found
through the `kirjuri` entry point group of an installed package, or listed in `[plugins]
modules`. Hooks run inside Kirjuri's own processes and threads: keep them quick, and hand slow
work (calls to a CRM) to a queue of your own.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("kirjuri")
hookimpl = pluggy.HookimplMarker("kirjuri")


@hookspec(firstresult=True)
def match_customer(interaction: dict[str, Any]) -> int | None:
    """Link an interaction that no email, phone or business ID linked: return the id of the
    customer it belongs to, or None. `interaction` has channel, direction, subject, body (the
    first 10,000 characters) and participants (role, kind, value, name). Called as the
    interaction is stored, in the storing transaction's thread."""


@hookspec
def extra_tags(interaction: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Tags to add to an interaction as it is stored: `[{"kind": str, "data": {...}}]` (the
    same `interaction` as `match_customer`, with `id` and `customer_id`)."""


@hookspec
def on_event(event: dict[str, Any]) -> None:
    """Called once with each event (`{"id", "type", "created_at", "data"}`, as webhooks carry
    it) right after the change it reports is committed."""
