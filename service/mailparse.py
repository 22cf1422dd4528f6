"""Reading a captured email with the stdlib `email` package (`policy.default`).

Parsing never raises: whatever cannot be read becomes a note in `parse_errors`, and the raw
message is kept whatever happens. Address headers with defects (CVE-2023-27043 style
`alice@x(<bob@y>`) are not guessed at: the mail is flagged for review and not linked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any

from service.htmltext import html_to_text
from service.identifiers import is_plain_email

ADDRESS_HEADERS = (("from", "From"), ("sender", "Sender"), ("reply-to", "Reply-To"),
                   ("to", "To"), ("cc", "Cc"), ("bcc", "Bcc"))


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


def _header(msg: Message, name: str, errors: list[str]) -> Any:
    try:
        return msg[name]
    except Exception as exc:  # noqa: BLE001 - the stdlib raises many kinds on broken headers
        errors.append(f"{name} header could not be read ({type(exc).__name__})")
        return None


def _msg_id(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:998] or None


def _decode_part(part: Message, errors: list[str]) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError, ValueError, AssertionError, KeyError) as exc:
        errors.append(f"body part {part.get_content_type()} could not be decoded ({type(exc).__name__})")
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("cp1252", errors="replace")  # the usual legacy charset here


def _addresses(msg: Message, parsed: ParsedEmail) -> None:
    for role, header in ADDRESS_HEADERS:
        values = []
        try:
            values = msg.get_all(header) or []
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


def _body_and_attachments(msg: EmailMessage, parsed: ParsedEmail) -> None:
    body_part = None
    try:
        body_part = msg.get_body(preferencelist=("plain", "html"))
    except Exception as exc:  # noqa: BLE001
        parsed.parse_errors.append(f"message structure could not be read ({type(exc).__name__})")
    if body_part is not None:
        text = _decode_part(body_part, parsed.parse_errors)
        parsed.body = html_to_text(text) if body_part.get_content_subtype() == "html" else text.strip()
    elif not msg.is_multipart():
        parsed.body = _decode_part(msg, parsed.parse_errors).strip()
        body_part = msg
    for part in msg.walk():
        if part.is_multipart() or part is body_part:
            continue
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        if disposition != "attachment" and not filename and part.get_content_maintype() == "text":
            continue  # the other alternative of the body
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = part.as_bytes()
        parsed.attachments.append(MailAttachment(filename, part.get_content_type(), payload))


def parse_email(raw: bytes) -> ParsedEmail:
    """Everything Kirjuri reads from a message; notes problems instead of raising."""
    parsed = ParsedEmail()
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # noqa: BLE001 - keep the raw bytes whatever the parser thinks
        parsed.parse_errors.append(f"message could not be parsed ({type(exc).__name__})")
        return parsed
    assert isinstance(msg, EmailMessage)
    for defect in msg.defects:
        parsed.parse_errors.append(f"MIME: {type(defect).__name__}")
    parsed.message_id = _msg_id(_header(msg, "Message-ID", parsed.parse_errors))
    parsed.in_reply_to = _msg_id(_header(msg, "In-Reply-To", parsed.parse_errors))
    refs = _header(msg, "References", parsed.parse_errors)
    parsed.references = str(refs).split() if refs else []
    subject = _header(msg, "Subject", parsed.parse_errors)
    parsed.subject = str(subject).strip() if subject is not None else ""
    date = _header(msg, "Date", parsed.parse_errors)
    when = getattr(date, "datetime", None)
    if isinstance(when, datetime):
        parsed.date = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    elif date is not None:
        parsed.parse_errors.append("Date header is not a valid date; the time of capture is used")
    _addresses(msg, parsed)
    try:
        _body_and_attachments(msg, parsed)
    except Exception as exc:  # noqa: BLE001
        parsed.parse_errors.append(f"body could not be read ({type(exc).__name__})")
    return parsed
