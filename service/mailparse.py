"""Reading a captured email with the stdlib `email` package (`policy.default`).

Parsing never raises: whatever cannot be read becomes a note in `parse_errors`, and the raw
message is kept whatever happens. Address headers with defects (CVE-2023-27043 style
`alice@x(<bob@y>`) are not guessed at: the mail is flagged for review and not linked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any

from service.htmltext import html_to_text
from service.identifiers import is_plain_email

ADDRESS_HEADERS = (
    ("from", "From"),
    ("sender", "Sender"),
    ("reply-to", "Reply-To"),
    ("to", "To"),
    ("cc", "Cc"),
    ("bcc", "Bcc"),
)


@dataclass
class MailAddress:
    """One address from an address header, with the header it came from."""

    role: str
    address: str
    name: str | None


@dataclass
class MailAttachment:
    """A non-body part of the message."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass
class ParsedEmail:
    """What Kirjuri keeps of an email besides its raw bytes."""

    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    subject: str = ""
    date: datetime | None = None
    addresses: list[MailAddress] = field(default_factory=list)
    body: str = ""
    attachments: list[MailAttachment] = field(default_factory=list)
    parse_errors: list[str] = field(default_factory=list)
    address_defects: bool = False


def _raw_headers(msg: Message, name: str) -> list[str]:
    """The unfolded values of a header as written (compat32 keeps them unparsed)."""
    return [str(v).replace("\r\n", "").replace("\n", "") for v in msg.get_all(name) or []]


def _header(msg: Message, name: str, errors: list[str]) -> Any:
    """The first value of a header parsed by `policy.default` (RFC 2047 words decoded)."""
    values = _raw_headers(msg, name)
    if not values:
        return None
    try:
        return policy.default.header_factory(name, values[0])
    except Exception as exc:  # noqa: BLE001 - the stdlib raises many kinds on broken headers
        errors.append(f"{name} header could not be read ({type(exc).__name__})")
        return None


def _msg_id(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:998] or None


def _decode_part(part: Message, errors: list[str]) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "us-ascii"
    try:
        return payload.decode(charset)
    except LookupError:
        errors.append(f"body part {part.get_content_type()} could not be decoded (unknown charset)")
    except UnicodeDecodeError:
        errors.append(f"body part {part.get_content_type()} could not be decoded as {charset}")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("cp1252", errors="replace")  # the usual legacy charset here


def _addresses(msg: Message, parsed: ParsedEmail) -> None:
    for role, header in ADDRESS_HEADERS:
        values = []
        try:
            values = [policy.default.header_factory(header, v) for v in _raw_headers(msg, header)]
        except Exception as exc:  # noqa: BLE001
            parsed.parse_errors.append(f"{header} header could not be read ({type(exc).__name__})")
            parsed.address_defects = True
        for value in values:
            if getattr(value, "defects", None):
                parsed.address_defects = True
                parsed.parse_errors.append(f"{header} header is malformed; not used for linking")
            for addr in getattr(value, "addresses", ()):
                spec = addr.addr_spec
                if not spec or spec == "<>":
                    continue
                if not is_plain_email(spec):
                    parsed.address_defects = True
                    parsed.parse_errors.append(f"{header} holds an address that is not plain")
                    continue
                parsed.addresses.append(MailAddress(role, spec.lower(), addr.display_name or None))


class _Body:
    """Walks the MIME tree once: the first inline text/plain is the body (else the first
    inline text/html, as text); other leaves and attached messages are attachments."""

    def __init__(self, parsed: ParsedEmail) -> None:
        self.parsed = parsed
        self.plain: str | None = None
        self.html: str | None = None

    def visit(self, part: Message, depth: int = 0) -> None:
        ctype = part.get_content_type()
        maintype = ctype.split("/", 1)[0]
        if maintype == "multipart" and depth < 50:
            payload = part.get_payload()
            for sub in payload if isinstance(payload, list) else []:
                if isinstance(sub, Message):
                    self.visit(sub, depth + 1)
            return
        filename = part.get_filename()
        if maintype == "message":
            inner = part.get_payload()
            first = inner[0] if isinstance(inner, list) and inner else None
            data = first.as_bytes() if isinstance(first, Message) else part.as_bytes()
            self.parsed.attachments.append(MailAttachment(filename, ctype, data))
            return
        if part.get_content_disposition() != "attachment" and not filename and maintype == "text":
            if ctype == "text/plain" and self.plain is None:
                self.plain = _decode_part(part, self.parsed.parse_errors)
                return
            if ctype == "text/html" and self.html is None:
                self.html = _decode_part(part, self.parsed.parse_errors)
                return
            if ctype in ("text/plain", "text/html"):
                return  # the other alternative of the body
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        self.parsed.attachments.append(MailAttachment(filename, ctype, data))

    def text(self) -> str:
        if self.plain is not None:
            return self.plain.strip()
        return html_to_text(self.html) if self.html is not None else ""


def parse_email(raw: bytes) -> ParsedEmail:
    """Everything Kirjuri reads from a message; notes problems instead of raising.

    The message is parsed once with `compat32`, which keeps headers as written and does not
    re-parse one on every access; the few headers Kirjuri reads are then parsed with
    `policy.default`'s header classes (RFC 2047 words, strict address lists). About three
    times faster on ordinary mail than `policy.default` throughout.
    """
    parsed = ParsedEmail()
    try:
        tree = BytesParser(policy=policy.compat32).parsebytes(raw)
    except Exception as exc:  # noqa: BLE001 - keep the raw bytes whatever the parser thinks
        parsed.parse_errors.append(f"message could not be parsed ({type(exc).__name__})")
        return parsed
    for defect in {type(d).__name__ for p in tree.walk() for d in p.defects}:
        parsed.parse_errors.append(f"MIME: {defect}")
    ids = {name: _raw_headers(tree, name) for name in ("Message-ID", "In-Reply-To", "References")}
    parsed.message_id = _msg_id(ids["Message-ID"][0]) if ids["Message-ID"] else None
    parsed.in_reply_to = _msg_id(ids["In-Reply-To"][0]) if ids["In-Reply-To"] else None
    parsed.references = " ".join(ids["References"]).split()
    subject = _header(tree, "Subject", parsed.parse_errors)
    parsed.subject = str(subject).strip() if subject is not None else ""
    date = _header(tree, "Date", parsed.parse_errors)
    when = getattr(date, "datetime", None)
    if isinstance(when, datetime):
        parsed.date = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    elif date is not None:
        parsed.parse_errors.append("Date header is not a valid date; the time of capture is used")
    _addresses(tree, parsed)
    body = _Body(parsed)
    try:
        body.visit(tree)
    except Exception as exc:  # noqa: BLE001
        parsed.parse_errors.append(f"body could not be read ({type(exc).__name__})")
    parsed.body = body.text()
    return parsed
