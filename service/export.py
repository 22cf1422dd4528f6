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
from array import array
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from functools import partial
from types import SimpleNamespace
from typing import IO, Any, cast

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

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
from storage.blobs import Blobs, Reader
from storage.interactions import Attachment, Interaction, Participant, Tag
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


def original_name(iid: int, channel: str, raw_blob: str | None, content_type: str | None) -> str | None:
    """Where an interaction's original lies in the archive (None if it has none)."""
    if raw_blob is None:
        return None
    if channel == "email":
        return f"emails/interaction-{iid}.eml"
    if channel == "call":
        return f"calls/call-{iid}{EXTENSIONS.get(content_type or '', '.bin')}"
    return f"{channel}s/interaction-{iid}.bin"


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
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
    condition = subject.condition()
    db = ctx.db
    # the subject's interaction ids, once: 8 bytes each, and every page after is a lookup by key
    ids = await db.run_read(partial(_subject_ids, condition=condition))
    counts: dict[str, int] = {}
    with archive.open("subject.json", "w") as out:
        out.write(json.dumps(head, ensure_ascii=False, indent=1)[:-2].encode() + b',\n "interactions": [\n')
        separator = b""
        for chunk in _chunks(ids, PAGE):
            items = await db.run_read(partial(_page_items, ids=chunk, counts=counts))
            for item in items:
                out.write(separator + item)
                separator = b",\n"
            yield sink.take()
        out.write(b'\n ],\n "audit": [\n')
        after: int | None = 0
        separator = b""
        while after is not None:
            items, after = await db.run_read(
                partial(_audit_items, condition=condition, subject=subject, after=after)
            )
            for item in items:
                out.write(separator + item)
                separator = b",\n"
            yield sink.take()
        out.write(b"\n ]\n}\n")
    yield sink.take()
    with archive.open("index.html", "w") as out:
        out.write(_index_head(head, counts, ctx.register).encode())
        for chunk in _chunks(ids, PAGE * 5):
            html_rows = await db.run_read(partial(_index_rows, ids=chunk))
            out.write(html_rows.encode())
            yield sink.take()
        out.write(_index_tail(head).encode())
    yield sink.take()
    loop = asyncio.get_running_loop()
    for chunk in _chunks(ids, PAGE * 5):
        files = await db.run_read(partial(_original_files, ids=chunk))
        for group in _groups(files):
            if len(group) == 1 and group[0][2] > GROUP_BYTES:
                name, blob, _ = group[0]
                handle = await loop.run_in_executor(ctx.executor, ctx.blobs.open, blob)
                try:
                    with archive.open(_zip_info(name), "w", force_zip64=True) as out:
                        while await loop.run_in_executor(ctx.executor, _copy_piece, handle, out):
                            yield sink.take()
                finally:
                    handle.close()
            else:
                await loop.run_in_executor(ctx.executor, _copy_files, archive, ctx.blobs, group)
            yield sink.take()
    archive.close()
    yield sink.take()


GROUP_BYTES = 4 << 20  # originals copied in one thread hop; a larger one goes in 1 MB pieces


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_zip_time(utcnow()))
    info.compress_type = zipfile.ZIP_STORED  # originals as they are: audio does not shrink
    return info


def _groups(files: list[tuple[str, str, int]]) -> list[list[tuple[str, str, int]]]:
    """Originals in groups of up to GROUP_BYTES; one larger than that is a group of its own."""
    groups: list[list[tuple[str, str, int]]] = []
    size = GROUP_BYTES
    for f in files:
        if f[2] > GROUP_BYTES:
            groups.append([f])
            size = GROUP_BYTES
            continue
        if size + f[2] > GROUP_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(f)
        size += f[2]
    return groups


def _copy_files(archive: zipfile.ZipFile, blobs: Blobs, files: list[tuple[str, str, int]]) -> None:
    for name, blob, _ in files:
        handle = blobs.open(blob)
        try:
            with archive.open(_zip_info(name), "w") as out:
                while chunk := handle.read(CHUNK):
                    out.write(chunk)
        finally:
            handle.close()


def _copy_piece(handle: Reader, out: IO[bytes]) -> bool:
    chunk = handle.read(CHUNK)
    out.write(chunk)
    return bool(chunk)


def _zip_time(when: datetime) -> tuple[int, int, int, int, int, int]:
    return (when.year, when.month, when.day, when.hour, when.minute, when.second)


def _retention(settings: RetentionSettings) -> dict[str, int]:
    return {channel: settings.months(channel) for channel in ("email", "call", "chat")}


def _subject_ids(session: Session, condition: Any) -> array[int]:
    return array("q", session.scalars(select(Interaction.id).where(condition).order_by(Interaction.id)))


def _chunks(ids: array[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size].tolist()


def _page_items(session: Session, ids: list[int], counts: dict[str, int]) -> list[bytes]:
    """These interactions in full (with transcripts and the name of the original in the
    archive), as JSON."""
    rows = _light_interactions(session, ids)
    calls = [i.id for i in rows if i.channel == "call"]
    segments: dict[int, list[dict[str, Any]]] = {}
    facts: dict[int, dict[str, Any]] = {}
    if calls:
        for s in session.scalars(
            select(TranscriptSegment)
            .where(TranscriptSegment.interaction_id.in_(calls))
            .order_by(TranscriptSegment.interaction_id, TranscriptSegment.start, TranscriptSegment.id)
        ):
            segments.setdefault(s.interaction_id, []).append(
                {"start": s.start, "end": s.end, "speaker": s.speaker, "text": s.text}
            )
        for t in session.scalars(select(Transcript).where(Transcript.interaction_id.in_(calls))):
            facts[t.interaction_id] = {
                "language": t.language,
                "model": t.model,
                "model_version": t.model_version,
                "audio_seconds": t.audio_seconds,
            }
    items = []
    for i in rows:
        counts[i.channel] = counts.get(i.channel, 0) + 1
        item = interaction_detail(i) | {
            "original": original_name(i.id, i.channel, i.raw_blob, i.raw_content_type)
        }
        if i.channel == "call":
            item["transcript"] = facts.get(i.id)
            item["segments"] = segments.get(i.id, [])
        items.append(json.dumps(item, ensure_ascii=False).encode())
    return items


def _light_interactions(session: Session, ids: list[int]) -> list[Interaction]:
    """These interactions with participants, attachments and tags, read with plain column
    queries into simple objects that `interaction_detail` reads like ORM ones: the ORM's
    bookkeeping was two thirds of an export's time."""
    related: dict[str, dict[int, list[SimpleNamespace]]] = {}
    for name, model in (("participants", Participant), ("attachments", Attachment), ("tags", Tag)):
        table = model.__table__
        by_interaction: dict[int, list[SimpleNamespace]] = {}
        for row in session.execute(
            select(table).where(table.c.interaction_id.in_(ids)).order_by(table.c.id)
        ).mappings():
            by_interaction.setdefault(row["interaction_id"], []).append(SimpleNamespace(**row))
        related[name] = by_interaction
    rows = []
    table = Interaction.__table__
    for row in session.execute(select(table).where(table.c.id.in_(ids)).order_by(table.c.id)).mappings():
        item = SimpleNamespace(**row, **{name: related[name].get(row["id"], []) for name in related})
        rows.append(cast(Interaction, item))
    return rows


def _audit_items(
    session: Session, condition: Any, subject: Subject, after: int
) -> tuple[list[bytes], int | None]:
    """Audit entries about the subject (their record or their interactions), oldest first."""
    about: list[Any] = [AuditEntry.interaction_id.in_(select(Interaction.id).where(condition))]
    if subject.customer_id is not None:
        about.append(AuditEntry.customer_id == subject.customer_id)
    rows = list(
        session.scalars(
            select(AuditEntry)
            .where(or_(*about), AuditEntry.id > after)
            .order_by(AuditEntry.id)
            .limit(PAGE * 5)
        )
    )
    if not rows:
        return [], None
    return [json.dumps(entry_to_dict(e), ensure_ascii=False).encode() for e in rows], rows[-1].id


def _index_rows(session: Session, ids: list[int]) -> str:
    rows = session.execute(
        select(
            Interaction.id,
            Interaction.channel,
            Interaction.direction,
            Interaction.occurred_at,
            Interaction.subject,
            Interaction.raw_blob,
            Interaction.raw_content_type,
        )
        .where(Interaction.id.in_(ids))
        .order_by(Interaction.id)
    ).all()
    html_rows = [
        _index_row(
            iid, channel, direction, occurred_at.isoformat(), subj, original_name(iid, channel, blob, ctype)
        )
        for iid, channel, direction, occurred_at, subj, blob, ctype in rows
    ]
    return "".join(html_rows)


def _original_files(session: Session, ids: list[int]) -> list[tuple[str, str, int]]:
    """(name in the archive, blob, size) of the subject's originals, a page at a time."""
    rows = session.execute(
        select(
            Interaction.id,
            Interaction.channel,
            Interaction.raw_blob,
            Interaction.raw_content_type,
            Interaction.raw_size,
        )
        .where(Interaction.id.in_(ids), Interaction.raw_blob.is_not(None))
        .order_by(Interaction.id)
    ).all()
    return [
        (name, blob, size)
        for iid, channel, blob, ctype, size in rows
        if blob is not None and (name := original_name(iid, channel, blob, ctype)) is not None
    ]


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


def _index_row(
    iid: int, channel: str, direction: str, occurred_at: str, subject: str | None, original: str | None
) -> str:
    link = f'<a href="{_e(original)}">{_e(original)}</a>' if original else ""
    return (
        f"<tr><td>{iid}</td><td>{_e(occurred_at[:19])}</td><td>{_e(channel)}</td>"
        f"<td>{_e(direction)}</td><td>{_e(subject)}</td><td>{link}</td></tr>\n"
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
