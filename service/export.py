"""The subject-access export (GDPR art. 15): one ZIP, streamed as it is made.

The archive holds `subject.json` (the customer record, identifiers, every interaction with
its metadata, transcript segments and tags, marketing bans with their history, corrections,
legal holds, and the audit entries of who read the data), `index.html` (the same in short,
in Finnish and English, with the register description and the retention periods), and the
originals: `emails/interaction-<id>.eml` and `calls/call-<id>.<ext>`.

Memory stays flat whatever the subject's size: interactions are read a page at a time by
id, the JSON is written item by item, and originals are copied in 1 MB pieces. `zipfile`
writes to a sink that the HTTP handler empties after every piece (an unseekable output makes
`zipfile` use data descriptors, which every unzip tool reads).
"""

from __future__ import annotations

import asyncio
import html
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime
from typing import IO, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from service.access import Principal
from service.audit import entry_to_dict
from service.customers import customer_to_dict
from service.history import interaction_detail
from service.marketing import bans_for_subject
from service.register import Section
from service.rights import (
    RightsContext,
    Subject,
    change_to_dict,
    hold_to_dict,
    request_to_dict,
    resolve_subject,
)
from service.settings import RetentionSettings
from storage.audit import AuditEntry, add_entry
from storage.base import utcnow
from storage.interactions import Interaction
from storage.rights import CustomerCorrection, get_request, list_holds
from storage.transcripts import Transcript, TranscriptSegment

PAGE = 200
CHUNK = 1 << 20
EXTENSIONS = {
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "audio/flac": ".flac",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
}
CHANNEL_NAMES = {"email": ("Sähköposti", "Email"), "call": ("Puhelu", "Call"), "chat": ("Chat", "Chat")}


class _Sink:
    """A write-only file that keeps what `zipfile` writes until the handler takes it."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


def original_name(i: Interaction) -> str | None:
    """Where an interaction's original lies in the archive (None if it has none)."""
    if i.raw_blob is None:
        return None
    if i.channel == "email":
        return f"emails/interaction-{i.id}.eml"
    if i.channel == "call":
        return f"calls/call-{i.id}{EXTENSIONS.get(i.raw_content_type or '', '.bin')}"
    return f"{i.channel}s/interaction-{i.id}.bin"


async def export_zip(ctx: RightsContext, who: Principal, request_id: int) -> AsyncIterator[bytes]:
    """The ZIP of everything held about the request's subject, in pieces. Raises before the
    first piece (NotFound, PermissionDenied, Conflict) when there is nothing to stream."""
    who.require_role("privacy")
    async with ctx.db.write() as session:
        request = await get_request(session, request_id)
        subject = await resolve_subject(session, request.identifiers)
        report = dict(request.report or {})
        report["exports"] = int(report.get("exports", 0)) + 1
        request.report = report
        # the audit row is written before any data leaves
        add_entry(
            session,
            who.actor,
            "subject.export",
            subject.customer_id,
            detail={"request_id": request_id, "identifiers": len(subject.pairs)},
        )
        request_dict = request_to_dict(request)
    async with ctx.db.read() as session:
        bans = await bans_for_subject(session, subject.customer_id, subject.pairs, ctx.hasher)
        corrections = []
        if subject.customer_id is not None:
            rows = await session.scalars(
                select(CustomerCorrection)
                .where(CustomerCorrection.customer_id == subject.customer_id)
                .order_by(CustomerCorrection.id)
            )
            corrections = [change_to_dict(c) for c in rows]
        holds = [
            hold_to_dict(h)
            for h in await list_holds(
                session, subject.customer_id, select(Interaction.id).where(subject.condition()), False
            )
        ]
    head = {
        "format": "kirjuri-subject-export/1",
        "generated_at": utcnow().isoformat(),
        "generated_by": who.actor,
        "request": request_dict,
        "register": {s.key: {"title": s.title, "fi": s.text["fi"], "en": s.text["en"]} for s in ctx.register},
        "retention_months": _retention(ctx.retention),
        "customer": customer_to_dict(subject.customer) if subject.customer else None,
        "identifiers": [{"kind": k, "value": v} for k, v in subject.pairs],
        "marketing_bans": bans,
        "rectifications": corrections,
        "legal_holds": holds,
    }
    sink = _Sink()
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    counts: dict[str, int] = {}
    with archive.open("subject.json", "w") as out:
        out.write(json.dumps(head, ensure_ascii=False, indent=1)[:-2].encode() + b',\n "interactions": [\n')
        first = True
        async for page in _pages(ctx, subject):
            for item in page:
                counts[item["channel"]] = counts.get(item["channel"], 0) + 1
                out.write((b"" if first else b",\n") + json.dumps(item, ensure_ascii=False).encode())
                first = False
            yield sink.take()
        out.write(b'\n ],\n "audit": [\n')
        first = True
        async for entries in _audit(ctx, subject):
            for entry in entries:
                out.write((b"" if first else b",\n") + json.dumps(entry, ensure_ascii=False).encode())
                first = False
            yield sink.take()
        out.write(b"\n ]\n}\n")
    yield sink.take()
    with archive.open("index.html", "w") as out:
        out.write(_index_head(head, counts, ctx.register).encode())
        async for page in _pages(ctx, subject, full=False):
            out.write("".join(_index_row(item) for item in page).encode())
            yield sink.take()
        out.write(_index_tail(head).encode())
    yield sink.take()
    loop = asyncio.get_running_loop()
    async for originals in _originals(ctx, subject):
        for name, blob in originals:
            info = zipfile.ZipInfo(name, date_time=_zip_time(utcnow()))
            info.compress_type = zipfile.ZIP_STORED
            with archive.open(info, "w", force_zip64=True) as out:
                path = ctx.blobs.path(blob)
                handle: IO[bytes] = await loop.run_in_executor(ctx.executor, open, path, "rb")
                try:
                    while chunk := await loop.run_in_executor(ctx.executor, handle.read, CHUNK):
                        out.write(chunk)
                        yield sink.take()
                finally:
                    handle.close()
    archive.close()
    yield sink.take()


def _zip_time(when: datetime) -> tuple[int, int, int, int, int, int]:
    return (when.year, when.month, when.day, when.hour, when.minute, when.second)


def _retention(settings: RetentionSettings) -> dict[str, int]:
    return {channel: settings.months(channel) for channel in ("email", "call", "chat")}


async def _pages(
    ctx: RightsContext, subject: Subject, full: bool = True
) -> AsyncIterator[list[dict[str, Any]]]:
    """The subject's interactions by id, a page at a time: in full (with transcripts and the
    name of the original in the archive) or as the short rows of the index."""
    after = 0
    while True:
        async with ctx.db.read() as session:
            query = select(Interaction).where(subject.condition(), Interaction.id > after)
            if full:
                query = query.options(
                    selectinload(Interaction.participants),
                    selectinload(Interaction.attachments),
                    selectinload(Interaction.tags),
                )
            rows = list(await session.scalars(query.order_by(Interaction.id).limit(PAGE)))
            if not rows:
                return
            after = rows[-1].id
            if not full:
                yield [
                    {
                        "id": i.id,
                        "channel": i.channel,
                        "direction": i.direction,
                        "occurred_at": i.occurred_at.isoformat(),
                        "subject": i.subject,
                        "original": original_name(i),
                    }
                    for i in rows
                ]
                continue
            calls = [i.id for i in rows if i.channel == "call"]
            segments: dict[int, list[dict[str, Any]]] = {}
            facts: dict[int, dict[str, Any]] = {}
            if calls:
                for s in await session.scalars(
                    select(TranscriptSegment)
                    .where(TranscriptSegment.interaction_id.in_(calls))
                    .order_by(TranscriptSegment.interaction_id, TranscriptSegment.start, TranscriptSegment.id)
                ):
                    segments.setdefault(s.interaction_id, []).append(
                        {"start": s.start, "end": s.end, "speaker": s.speaker, "text": s.text}
                    )
                for t in await session.scalars(
                    select(Transcript).where(Transcript.interaction_id.in_(calls))
                ):
                    facts[t.interaction_id] = {
                        "language": t.language,
                        "model": t.model,
                        "model_version": t.model_version,
                        "audio_seconds": t.audio_seconds,
                    }
        page = []
        for i in rows:
            item = interaction_detail(i) | {"original": original_name(i)}
            if i.channel == "call":
                item["transcript"] = facts.get(i.id)
                item["segments"] = segments.get(i.id, [])
            page.append(item)
        yield page


async def _audit(ctx: RightsContext, subject: Subject) -> AsyncIterator[list[dict[str, Any]]]:
    """Audit entries about the subject (their record or their interactions), oldest first."""
    about: list[Any] = [AuditEntry.interaction_id.in_(select(Interaction.id).where(subject.condition()))]
    if subject.customer_id is not None:
        about.append(AuditEntry.customer_id == subject.customer_id)
    after = 0
    while True:
        async with ctx.db.read() as session:
            rows = list(
                await session.scalars(
                    select(AuditEntry)
                    .where(or_(*about), AuditEntry.id > after)
                    .order_by(AuditEntry.id)
                    .limit(PAGE * 5)
                )
            )
        if not rows:
            return
        after = rows[-1].id
        yield [entry_to_dict(e) for e in rows]


async def _originals(ctx: RightsContext, subject: Subject) -> AsyncIterator[list[tuple[str, str]]]:
    after = 0
    while True:
        async with ctx.db.read() as session:
            rows = list(
                await session.scalars(
                    select(Interaction)
                    .where(subject.condition(), Interaction.id > after, Interaction.raw_blob.is_not(None))
                    .order_by(Interaction.id)
                    .limit(PAGE)
                )
            )
        if not rows:
            return
        after = rows[-1].id
        yield [(name, i.raw_blob) for i in rows if (name := original_name(i)) and i.raw_blob]


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _both(fi: str, en: str) -> str:
    return f'<span lang="fi">{_e(fi)}</span> / <span lang="en">{_e(en)}</span>'


def _index_head(head: dict[str, Any], counts: dict[str, int], register: list[Section]) -> str:
    request = head["request"]
    customer = head["customer"]
    parts = [
        "<!doctype html>\n<html lang=fi><head><meta charset=utf-8>",
        "<title>Rekisteriote / Register extract</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}"
        "pre{white-space:pre-wrap}</style></head><body>",
        f"<h1>{_both('Rekisteriote', 'Register extract')}</h1>",
        f"<p>{_both('Pyyntö', 'Request')} {request['id']} ({_e(request['kind'])}), "
        f"{_both('vastaanotettu', 'received')} {_e(request['received_at'][:10])}, "
        f"{_both('muodostettu', 'generated')} {_e(head['generated_at'][:19])} UTC.</p>",
        f"<h2>{_both('Henkilötiedot', 'Personal data')}</h2>",
    ]
    if customer:
        labels = [
            ("name", "Nimi", "Name"),
            ("business_id", "Y-tunnus", "Business ID"),
            ("address", "Osoite", "Address"),
            ("bank_account", "Pankkitili", "Bank account"),
            ("contact_person", "Yhteyshenkilö", "Contact person"),
            ("notes", "Muistiinpanot", "Notes"),
        ]
        parts.append("<table>")
        for key, fi, en in labels:
            parts.append(f"<tr><th>{_both(fi, en)}</th><td>{_e(customer.get(key))}</td></tr>")
        parts.append("</table>")
    else:
        parts.append(f"<p>{_both('Ei asiakasrekisterissä.', 'Not in the customer register.')}</p>")
    parts.append(f"<h3>{_both('Tunnisteet', 'Identifiers')}</h3><ul>")
    parts += [f"<li>{_e(i['kind'])}: {_e(i['value'])}</li>" for i in head["identifiers"]]
    parts.append("</ul>")
    parts.append(f"<h3>{_both('Yhteydenotot', 'Interactions')}</h3><ul>")
    for channel, n in sorted(counts.items()):
        fi, en = CHANNEL_NAMES.get(channel, (channel, channel))
        parts.append(f"<li>{_both(fi, en)}: {n}</li>")
    parts.append("</ul>")
    bans = head["marketing_bans"]
    parts.append(f"<h3>{_both('Suoramarkkinointikiellot', 'Direct marketing bans')}</h3>")
    if bans:
        parts.append("<ul>")
        parts += [
            f"<li>{_e(b['channel'])}: {_e(b['status'])} ({_e(b['updated_at'][:10])})</li>" for b in bans
        ]
        parts.append("</ul>")
    else:
        parts.append(f"<p>{_both('Ei kieltoja.', 'None.')}</p>")
    parts.append(f"<h2>{_both('Rekisteriseloste', 'Register description')}</h2>")
    for n, section in enumerate(register, 1):
        parts.append(f"<h3>{n}. {_both(section.title['fi'], section.title['en'])}</h3>")
        parts.append(
            f'<pre lang="fi">{_e(section.text["fi"])}</pre><pre lang="en">{_e(section.text["en"])}</pre>'
        )
    parts.append(f"<h3>{_both('Säilytysajat', 'Retention')}</h3><ul>")
    for channel, months in head["retention_months"].items():
        fi, en = CHANNEL_NAMES.get(channel, (channel, channel))
        kept = (
            _both(f"{months} kk", f"{months} months") if months else _both("toistaiseksi", "without a limit")
        )
        parts.append(f"<li>{_both(fi, en)}: {kept}</li>")
    parts.append("</ul>")
    parts.append(
        f"<h2>{_both('Yhteydenotot', 'Interactions')}</h2><table><tr><th>#</th>"
        f"<th>{_both('Aika', 'Time')}</th><th>{_both('Kanava', 'Channel')}</th>"
        f"<th>{_both('Suunta', 'Direction')}</th><th>{_both('Aihe', 'Subject')}</th>"
        f"<th>{_both('Alkuperäinen', 'Original')}</th></tr>\n"
    )
    return "".join(parts)


def _index_row(item: dict[str, Any]) -> str:
    original = item["original"]
    link = f'<a href="{_e(original)}">{_e(original)}</a>' if original else ""
    return (
        f"<tr><td>{item['id']}</td><td>{_e(item['occurred_at'][:19])}</td><td>{_e(item['channel'])}</td>"
        f"<td>{_e(item['direction'])}</td><td>{_e(item['subject'])}</td><td>{link}</td></tr>\n"
    )


def _index_tail(head: dict[str, Any]) -> str:
    return (
        "</table><p>"
        + _both(
            "Kaikki tiedot koneluettavassa muodossa: subject.json.",
            "All data, machine-readable: subject.json.",
        )
        + "</p>"
        "</body></html>\n"
    )
