"""Chat transcripts in: a chat session from the website's chat platform, stored as one
interaction per session and extended as more messages of the session arrive.

The first post of a session goes through ingest like mail and calls (linked by the customer's
email or phone, indexed for search, the marketing-ban detector queued); a later post with the
same `external_id` appends the messages not seen before (the same message twice is kept once),
re-indexes the text and queues the detector again. The messages are kept in the interaction's
meta; its body is the conversation as text ("[customer] …" / "[agent] …" lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from service.errors import InvalidInput, TooLarge
from service.identifiers import normalise_email, normalise_phone
from service.ingest import Capture, CapturedParticipant, Ingestor
from service.queue import DETECT
from service.times import parse_time
from storage.base import without_nul
from storage.engine import Database
from storage.interactions import Interaction
from storage.jobs import enqueue
from storage.search import replace_body_text

ROLES = ("customer", "agent")
MAX_MESSAGES = 2000
MAX_TEXT = 10_000


@dataclass(frozen=True)
class ChatPost:
    """A validated chat post."""

    external_id: str
    started_at: datetime | None
    participants: list[CapturedParticipant]
    messages: list[dict[str, str]]


def parse_chat(body: Any, region: str) -> ChatPost:
    """Validate `{external_id, started_at, participants: [...], messages: [...]}`; raises
    InvalidInput naming the first wrong field."""
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = sorted(set(body) - {"external_id", "started_at", "participants", "messages"})
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}", unknown[0])
    external_id = body.get("external_id")
    if not isinstance(external_id, str) or not 0 < len(external_id.strip()) <= 200:
        raise InvalidInput("external_id must be a string of 1-200 characters", "external_id")
    started = parse_time(body["started_at"], "started_at") if body.get("started_at") is not None else None
    participants: list[CapturedParticipant] = []
    raw_participants = body.get("participants", [])
    if not isinstance(raw_participants, list):
        raise InvalidInput("participants must be a list", "participants")
    for n, p in enumerate(raw_participants):
        where = f"participants[{n}]"
        if not isinstance(p, dict) or p.get("role") not in ROLES:
            raise InvalidInput(f"{where}.role must be customer or agent", where)
        role = "from" if p["role"] == "customer" else "to"
        name = without_nul(p["name"]) if isinstance(p.get("name"), str) else None
        if p.get("email") is not None:
            participants.append(
                CapturedParticipant(role, "email", normalise_email(str(p["email"]), where + ".email"), name)
            )
        if p.get("phone") is not None:
            participants.append(
                CapturedParticipant(
                    role, "phone", normalise_phone(str(p["phone"]), region, where + ".phone"), name
                )
            )
        if p.get("email") is None and p.get("phone") is None and name:
            participants.append(CapturedParticipant(role, "name", name[:300], name[:300]))
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise InvalidInput("messages must be a non-empty list", "messages")
    if len(raw_messages) > MAX_MESSAGES:
        raise TooLarge(f"at most {MAX_MESSAGES} messages in one post", "messages")
    messages = []
    for n, m in enumerate(raw_messages):
        where = f"messages[{n}]"
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise InvalidInput(f"{where}.role must be customer or agent", where)
        text = m.get("text")
        if isinstance(text, str):
            text = without_nul(text)  # PostgreSQL keeps no NUL in text or JSON
        if not isinstance(text, str) or not text.strip():
            raise InvalidInput(f"{where}.text must be a non-empty string", where)
        if len(text) > MAX_TEXT:
            raise TooLarge(f"{where}.text is longer than {MAX_TEXT} characters", where)
        at = parse_time(m.get("at"), where + ".at")
        messages.append({"at": at.astimezone(UTC).isoformat(), "role": m["role"], "text": text.strip()})
    return ChatPost(external_id.strip(), started, participants, messages)


def conversation(messages: list[dict[str, str]]) -> str:
    """The searchable text of a chat: one line per message with its speaker."""
    return "\n".join(f"[{m['role']}] {m['text']}" for m in messages)


def merge(
    old: list[dict[str, str]], new: list[dict[str, str]]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """All messages in time order, each (time, role, text) once; and those that were new."""
    seen = {(m["at"], m["role"], m["text"]) for m in old}
    fresh: list[dict[str, str]] = []
    for m in new:
        key = (m["at"], m["role"], m["text"])
        if key not in seen:
            seen.add(key)
            fresh.append(m)
    return sorted(list(old) + fresh, key=lambda m: m["at"]), fresh


@dataclass(frozen=True)
class ChatReceipt:
    interaction_id: int
    created: bool
    appended: int


async def ingest_chat(ingestor: Ingestor, db: Database, post: ChatPost, max_attempts: int) -> ChatReceipt:
    """Store a new chat session, or append a known session's new messages."""
    messages, _ = merge([], post.messages)
    capture = Capture(
        channel="chat",
        direction="in",
        occurred_at=post.started_at or datetime.fromisoformat(messages[0]["at"]),
        dedup_key=f"chat:ext:{post.external_id}",
        subject="",
        body=conversation(messages),
        participants=list(post.participants),
        meta={"external_id": post.external_id, "messages": messages},
        jobs=[DETECT],
    )
    result = await ingestor.ingest(capture)
    if not result.duplicate:
        return ChatReceipt(result.interaction_id, True, len(messages))
    iid = result.interaction_id

    def append(session: Session) -> int:
        interaction = session.get(Interaction, iid)
        if interaction is None:
            return 0
        merged, fresh = merge(list((interaction.meta or {}).get("messages", [])), messages)
        if fresh:
            interaction.meta = dict(interaction.meta or {}) | {"messages": merged}
            session.flush()
            replace_body_text(session, iid, conversation(merged))
            if any(m["role"] == "customer" for m in fresh):
                enqueue(session, DETECT, [iid], max_attempts)
        return len(fresh)

    return ChatReceipt(iid, False, await db.run_write(append))
