"""Recording and listing who read or changed personal data.

Every API read of personal data calls `record` after the read and before the data is
returned: if the audit row cannot be written, the data is not handed out.
"""

from __future__ import annotations

from typing import Any

from service.access import Principal
from service.pagination import Page, decode_cursor, encode_cursor
from storage.audit import AuditEntry, AuditFilter, add_entry, list_entries
from storage.engine import Database


async def record(
    db: Database,
    who: Principal,
    action: str,
    customer_id: int | None = None,
    interaction_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one audit row in its own transaction."""
    async with db.write() as session:
        add_entry(session, who.actor, action, customer_id, interaction_id, detail)


def entry_to_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "customer_id": entry.customer_id,
        "interaction_id": entry.interaction_id,
        "detail": entry.detail,
    }


async def list_audit(db: Database, who: Principal, flt: AuditFilter, cursor: str | None, limit: int) -> Page:
    """A page of audit rows, newest first (roles admin and privacy)."""
    who.require_role("privacy")
    before = decode_cursor(cursor, 1)
    async with db.read() as session:
        rows, total = await list_entries(session, flt, int(before[0]) if before else None, limit)
    await record(db, who, "audit.list", detail={"count": len(rows)})
    nxt = encode_cursor([rows[-1].id]) if len(rows) == limit and rows else None
    return Page([entry_to_dict(r) for r in rows], total, nxt)
